-- +goose Up
-- SQLite twin of ../mysql/00009_shard_map.sql.
CREATE TABLE shard_map (
    logical_db INTEGER NOT NULL PRIMARY KEY,
    host       TEXT    NOT NULL,
    target     TEXT    NULL,
    epoch      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE shard_fences (
    logical_db INTEGER NOT NULL PRIMARY KEY,
    frozen     INTEGER NOT NULL DEFAULT 0
);
INSERT INTO shard_fences (logical_db, frozen) VALUES (0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0);

CREATE TABLE order_layout (
    id     INTEGER NOT NULL PRIMARY KEY,
    hosts  INTEGER NOT NULL,
    tables INTEGER NOT NULL
);

-- +goose Down
DROP TABLE order_layout;
DROP TABLE shard_fences;
DROP TABLE shard_map;
