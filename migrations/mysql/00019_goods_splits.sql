-- +goose Up
-- How a goods' stock is split over buckets (V14): the buckets' hash tags,
-- comma-separated, and the most units one bucket is given at once. Redis's
-- goods hash holds the same; a rebuild of a lost hash puts it back from here.
CREATE TABLE goods_splits (
    goods_id   BIGINT       NOT NULL PRIMARY KEY,
    tags       VARCHAR(2048) NOT NULL,
    bucket_max BIGINT       NOT NULL,
    created_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
);

-- +goose Down
DROP TABLE goods_splits;
