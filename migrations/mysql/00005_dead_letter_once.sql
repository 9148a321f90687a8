-- +goose Up
-- One dead letter per order: copies of a message (a republish, a duplicate
-- delivery) that fail the same way add no row.
ALTER TABLE dead_letters DROP INDEX idx_dead_letters_order_id, ADD UNIQUE KEY uk_dead_letters_order_id (order_id);

-- +goose Down
ALTER TABLE dead_letters DROP INDEX uk_dead_letters_order_id, ADD KEY idx_dead_letters_order_id (order_id);
