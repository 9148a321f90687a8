-- +goose Up
-- SQLite twin of ../mysql/00015_reservations.sql.
CREATE TABLE reservations (
  seq INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  goods_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uk_reservations_goods_user ON reservations (goods_id, user_id);
CREATE INDEX idx_reservations_goods_seq ON reservations (goods_id, seq);

-- +goose Down
DROP TABLE reservations;
