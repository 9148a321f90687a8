-- +goose Up
-- How the shop page buys a goods: 'order' (POST /order, the order in the
-- answer) or 'seckill' (POST /seckill, a token polled until its order is
-- written: async accept and poll).
ALTER TABLE goods ADD COLUMN checkout VARCHAR(16) NOT NULL DEFAULT 'order';

-- +goose Down
ALTER TABLE goods DROP COLUMN checkout;
