-- +goose Up
-- SQLite twin of ../mysql/00018_goods_checkout.sql.
ALTER TABLE goods ADD COLUMN checkout TEXT NOT NULL DEFAULT 'order';

-- +goose Down
ALTER TABLE goods DROP COLUMN checkout;
