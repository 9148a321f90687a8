-- +goose Up
-- Reservations of a reservation sale: who asked to buy before the sale
-- began, in the order they asked (seq). At the sale the first reservers,
-- as many as the goods' units, are admitted; nobody else is.
CREATE TABLE reservations (
  seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  goods_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY uk_reservations_goods_user (goods_id, user_id),
  KEY idx_reservations_goods_seq (goods_id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- +goose Down
DROP TABLE reservations;
