-- +goose Up
-- SQLite twin of ../mysql/00019_goods_splits.sql.
CREATE TABLE goods_splits (
    goods_id   INTEGER NOT NULL PRIMARY KEY,
    tags       TEXT    NOT NULL,
    bucket_max INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- +goose Down
DROP TABLE goods_splits;
