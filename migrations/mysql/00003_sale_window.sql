-- +goose Up
-- The sale window: orders before start_at or after end_at are refused.
-- NULL leaves that side open.
ALTER TABLE goods
    ADD COLUMN start_at DATETIME(3) NULL AFTER sale,
    ADD COLUMN end_at   DATETIME(3) NULL AFTER start_at;

-- +goose Down
ALTER TABLE goods DROP COLUMN end_at, DROP COLUMN start_at;
