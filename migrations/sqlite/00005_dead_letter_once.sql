-- +goose Up
-- SQLite twin of ../mysql/00005_dead_letter_once.sql.
DROP INDEX idx_dead_letters_order_id;
CREATE UNIQUE INDEX uk_dead_letters_order_id ON dead_letters (order_id);

-- +goose Down
DROP INDEX uk_dead_letters_order_id;
CREATE INDEX idx_dead_letters_order_id ON dead_letters (order_id);
