-- +goose Up
-- SQLite twin of ../mysql/00001_init.sql for the standalone mode: the same
-- tables, columns, nullability and unique keys (checked by schema_test.go).
CREATE TABLE goods (
    id         INTEGER      NOT NULL PRIMARY KEY AUTOINCREMENT,
    name       VARCHAR(100) NOT NULL,
    stock      INTEGER      NOT NULL DEFAULT 0 CHECK (stock >= 0),
    sale       INTEGER      NOT NULL DEFAULT 0 CHECK (sale >= 0),
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME     NULL
);

CREATE TABLE orders (
    id         INTEGER NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    goods_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE INDEX idx_orders_user_id ON orders (user_id);
CREATE INDEX idx_orders_goods_id ON orders (goods_id);
CREATE INDEX idx_orders_created_at ON orders (created_at);

CREATE TABLE goods_stock_logs (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    goods_id   INTEGER NOT NULL,
    order_id   INTEGER NOT NULL,
    number     INTEGER NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_goods_stock_logs_order_id ON goods_stock_logs (order_id);
CREATE INDEX idx_goods_stock_logs_goods_id ON goods_stock_logs (goods_id);

CREATE TABLE dead_letters (
    id         INTEGER       NOT NULL PRIMARY KEY AUTOINCREMENT,
    order_id   INTEGER       NULL,
    goods_id   INTEGER       NULL,
    body       BLOB          NOT NULL,
    reason     VARCHAR(1000) NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX idx_dead_letters_order_id ON dead_letters (order_id);
CREATE INDEX idx_dead_letters_goods_id ON dead_letters (goods_id);

CREATE TABLE admin_stock_ops (
    id         INTEGER     NOT NULL PRIMARY KEY AUTOINCREMENT,
    op_id      VARCHAR(64) NOT NULL,
    goods_id   INTEGER     NOT NULL,
    delta      INTEGER     NOT NULL,
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE UNIQUE INDEX uk_admin_stock_ops_op_id ON admin_stock_ops (op_id);
CREATE INDEX idx_admin_stock_ops_goods_id ON admin_stock_ops (goods_id);

-- +goose Down
DROP TABLE admin_stock_ops;
DROP TABLE dead_letters;
DROP TABLE goods_stock_logs;
DROP TABLE orders;
DROP TABLE goods;
