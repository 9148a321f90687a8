-- +goose Up
-- SQLite twin of ../mysql/00006_cached_movements.sql.
ALTER TABLE admin_stock_ops ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
DROP INDEX idx_admin_stock_ops_goods_id;
CREATE INDEX idx_admin_stock_ops_pending ON admin_stock_ops (goods_id, cached);
ALTER TABLE goods_stock_logs ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
DROP INDEX idx_goods_stock_logs_goods_id;
CREATE INDEX idx_goods_stock_logs_pending ON goods_stock_logs (goods_id, op, cached);
UPDATE admin_stock_ops SET cached = 1;
UPDATE goods_stock_logs SET cached = 1 WHERE op = 1;

-- +goose Down
DROP INDEX idx_goods_stock_logs_pending;
CREATE INDEX idx_goods_stock_logs_goods_id ON goods_stock_logs (goods_id);
ALTER TABLE goods_stock_logs DROP COLUMN cached;
DROP INDEX idx_admin_stock_ops_pending;
CREATE INDEX idx_admin_stock_ops_goods_id ON admin_stock_ops (goods_id);
ALTER TABLE admin_stock_ops DROP COLUMN cached;
