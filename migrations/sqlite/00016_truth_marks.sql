-- +goose Up
-- SQLite twin of ../mysql/00016_truth_marks.sql.
CREATE TABLE goods_truth_marks (
    goods_id      INTEGER NOT NULL PRIMARY KEY,
    settled_below INTEGER NOT NULL
);

-- +goose Down
DROP TABLE goods_truth_marks;
