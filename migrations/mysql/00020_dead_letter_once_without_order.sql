-- +goose Up
-- One dead letter per message that names no order (an accepted request
-- given up on, an undecodable body): copies of it that fail the same way,
-- such as a message of several requests retried whole, add no row, as
-- copies of an order's message add none. body_key is the SHA-256 of the
-- body, NULL for letters naming an order (their order_id keeps them once).
ALTER TABLE dead_letters ADD COLUMN body_key BINARY(32) NULL AFTER body, ADD UNIQUE KEY uk_dead_letters_topic_body_key (topic, body_key);

-- +goose Down
ALTER TABLE dead_letters DROP INDEX uk_dead_letters_topic_body_key, DROP COLUMN body_key;
