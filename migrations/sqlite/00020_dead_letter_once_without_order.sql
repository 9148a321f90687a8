-- +goose Up
-- SQLite twin of ../mysql/00020_dead_letter_once_without_order.sql.
ALTER TABLE dead_letters ADD COLUMN body_key BLOB NULL;
CREATE UNIQUE INDEX uk_dead_letters_topic_body_key ON dead_letters (topic, body_key);

-- +goose Down
DROP INDEX uk_dead_letters_topic_body_key;
ALTER TABLE dead_letters DROP COLUMN body_key;
