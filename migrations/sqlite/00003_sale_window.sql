-- +goose Up
-- SQLite twin of ../mysql/00003_sale_window.sql.
ALTER TABLE goods ADD COLUMN start_at DATETIME NULL;
ALTER TABLE goods ADD COLUMN end_at DATETIME NULL;

-- +goose Down
ALTER TABLE goods DROP COLUMN end_at;
ALTER TABLE goods DROP COLUMN start_at;
