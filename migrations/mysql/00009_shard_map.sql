-- +goose Up
-- V7: which host holds each of the 8 logical databases, on the primary.
-- host and target name a host by address and database (no credentials):
-- target is where a logical database goes while it moves (before the
-- switch) or where it came from (after it, until its old copy is deleted).
-- A logical database gets its row when its tables are made, on its first
-- write; epoch grows with every change the expansion makes, and every
-- instance says in Redis which epoch it holds.
CREATE TABLE shard_map (
    logical_db INT          NOT NULL PRIMARY KEY,
    host       VARCHAR(255) NOT NULL,
    target     VARCHAR(255) NULL,
    epoch      BIGINT       NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- On every host: a logical database's writes there happen only while its
-- row says frozen = 0. Each write reads its row in the same statement (a
-- shared lock), so the freeze of a move waits for the writes in flight and
-- stops every later one. A host a logical database left keeps it frozen.
CREATE TABLE shard_fences (
    logical_db INT NOT NULL PRIMARY KEY,
    frozen     INT NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
INSERT INTO shard_fences (logical_db, frozen) VALUES (0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0);

-- V3 and V4 place orders by formulas of mysql.order_tables and the number
-- of mysql.shards: the layout their orders were placed in, so that a start
-- in another one is refused while those orders exist.
CREATE TABLE order_layout (
    id     INT NOT NULL PRIMARY KEY,
    hosts  INT NOT NULL,
    tables INT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- +goose Down
DROP TABLE order_layout;
DROP TABLE shard_fences;
DROP TABLE shard_map;
