-- +goose Up
-- Stock coming in (an admin addition, a cancelled order's return) moves
-- MySQL first, then Redis. cached = 1 once Redis holds the movement: its
-- own Redis step ran, or a repair or rebuild of Redis from the truth stood
-- in for it. A retry of a cached movement leaves Redis alone; Redis keeps a
-- marker (op:<op_id>, ret:<order_id>) only while a movement is in flight.
-- The keys find the goods' pending movements (cached = 0) without reading
-- their history; they replace the goods_id keys, which they extend.
ALTER TABLE admin_stock_ops
    ADD COLUMN cached TINYINT NOT NULL DEFAULT 0 AFTER delta,
    DROP INDEX idx_admin_stock_ops_goods_id,
    ADD KEY idx_admin_stock_ops_pending (goods_id, cached);
ALTER TABLE goods_stock_logs
    ADD COLUMN cached TINYINT NOT NULL DEFAULT 0 AFTER number,
    DROP INDEX idx_goods_stock_logs_goods_id,
    ADD KEY idx_goods_stock_logs_pending (goods_id, op, cached);
-- Movements recorded before: Redis applied them under markers that were
-- never removed; the reconciliation removes those markers now.
UPDATE admin_stock_ops SET cached = 1;
UPDATE goods_stock_logs SET cached = 1 WHERE op = 1;

-- +goose Down
ALTER TABLE goods_stock_logs
    DROP INDEX idx_goods_stock_logs_pending,
    ADD KEY idx_goods_stock_logs_goods_id (goods_id),
    DROP COLUMN cached;
ALTER TABLE admin_stock_ops
    DROP INDEX idx_admin_stock_ops_pending,
    ADD KEY idx_admin_stock_ops_goods_id (goods_id),
    DROP COLUMN cached;
