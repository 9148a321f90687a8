-- +goose Up
-- SQLite twin of ../mysql/00002_order_tables.sql (SQLite has no CREATE TABLE LIKE).
CREATE TABLE order_1 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_1_user_id ON order_1 (user_id);
CREATE INDEX idx_order_1_goods_id ON order_1 (goods_id);
CREATE INDEX idx_order_1_created_at ON order_1 (created_at);
CREATE TABLE order_2 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_2_user_id ON order_2 (user_id);
CREATE INDEX idx_order_2_goods_id ON order_2 (goods_id);
CREATE INDEX idx_order_2_created_at ON order_2 (created_at);
CREATE TABLE order_3 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_3_user_id ON order_3 (user_id);
CREATE INDEX idx_order_3_goods_id ON order_3 (goods_id);
CREATE INDEX idx_order_3_created_at ON order_3 (created_at);
CREATE TABLE order_4 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_4_user_id ON order_4 (user_id);
CREATE INDEX idx_order_4_goods_id ON order_4 (goods_id);
CREATE INDEX idx_order_4_created_at ON order_4 (created_at);
CREATE TABLE order_5 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_5_user_id ON order_5 (user_id);
CREATE INDEX idx_order_5_goods_id ON order_5 (goods_id);
CREATE INDEX idx_order_5_created_at ON order_5 (created_at);
CREATE TABLE order_6 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_6_user_id ON order_6 (user_id);
CREATE INDEX idx_order_6_goods_id ON order_6 (goods_id);
CREATE INDEX idx_order_6_created_at ON order_6 (created_at);
CREATE TABLE order_7 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_7_user_id ON order_7 (user_id);
CREATE INDEX idx_order_7_goods_id ON order_7 (goods_id);
CREATE INDEX idx_order_7_created_at ON order_7 (created_at);
CREATE TABLE order_8 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_8_user_id ON order_8 (user_id);
CREATE INDEX idx_order_8_goods_id ON order_8 (goods_id);
CREATE INDEX idx_order_8_created_at ON order_8 (created_at);
CREATE TABLE order_9 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_9_user_id ON order_9 (user_id);
CREATE INDEX idx_order_9_goods_id ON order_9 (goods_id);
CREATE INDEX idx_order_9_created_at ON order_9 (created_at);
CREATE TABLE order_10 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_10_user_id ON order_10 (user_id);
CREATE INDEX idx_order_10_goods_id ON order_10 (goods_id);
CREATE INDEX idx_order_10_created_at ON order_10 (created_at);
CREATE TABLE order_11 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_11_user_id ON order_11 (user_id);
CREATE INDEX idx_order_11_goods_id ON order_11 (goods_id);
CREATE INDEX idx_order_11_created_at ON order_11 (created_at);
CREATE TABLE order_12 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_12_user_id ON order_12 (user_id);
CREATE INDEX idx_order_12_goods_id ON order_12 (goods_id);
CREATE INDEX idx_order_12_created_at ON order_12 (created_at);
CREATE TABLE order_13 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_13_user_id ON order_13 (user_id);
CREATE INDEX idx_order_13_goods_id ON order_13 (goods_id);
CREATE INDEX idx_order_13_created_at ON order_13 (created_at);
CREATE TABLE order_14 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_14_user_id ON order_14 (user_id);
CREATE INDEX idx_order_14_goods_id ON order_14 (goods_id);
CREATE INDEX idx_order_14_created_at ON order_14 (created_at);
CREATE TABLE order_15 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_15_user_id ON order_15 (user_id);
CREATE INDEX idx_order_15_goods_id ON order_15 (goods_id);
CREATE INDEX idx_order_15_created_at ON order_15 (created_at);
CREATE TABLE order_16 (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_order_16_user_id ON order_16 (user_id);
CREATE INDEX idx_order_16_goods_id ON order_16 (goods_id);
CREATE INDEX idx_order_16_created_at ON order_16 (created_at);

-- +goose Down
DROP TABLE order_16;
DROP TABLE order_15;
DROP TABLE order_14;
DROP TABLE order_13;
DROP TABLE order_12;
DROP TABLE order_11;
DROP TABLE order_10;
DROP TABLE order_9;
DROP TABLE order_8;
DROP TABLE order_7;
DROP TABLE order_6;
DROP TABLE order_5;
DROP TABLE order_4;
DROP TABLE order_3;
DROP TABLE order_2;
DROP TABLE order_1;
