-- +goose Up
-- Where each goods' truth starts reading its orders. Every order of the
-- goods with an id below settled_below is applied (it has a sale stock
-- log), void or refused: states no order leaves, so the truth has nothing
-- to take off for them and reads only the orders from the mark on. The
-- truth itself moves the mark, only past ids made longer ago than an order
-- row can commit after its id (outbox.late_horizon); no row: no order is
-- known settled yet.
CREATE TABLE goods_truth_marks (
    goods_id      BIGINT NOT NULL PRIMARY KEY,
    settled_below BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- +goose Down
DROP TABLE goods_truth_marks;
