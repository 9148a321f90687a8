-- +goose Up
-- No foreign keys to goods: the shared lock they take deadlocks with the
-- stock updates on the hot row.
CREATE TABLE goods (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name       VARCHAR(100) NOT NULL,
    stock      BIGINT       NOT NULL DEFAULT 0,
    sale       BIGINT       NOT NULL DEFAULT 0,
    created_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    deleted_at DATETIME(3)  NULL,
    CONSTRAINT goods_stock_not_negative CHECK (stock >= 0),
    CONSTRAINT goods_sale_not_negative CHECK (sale >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Orders of V1 and V2. id is a snowflake id, unique across all order tables.
CREATE TABLE orders (
    id         BIGINT      NOT NULL PRIMARY KEY,
    user_id    BIGINT      NOT NULL,
    goods_id   BIGINT      NOT NULL,
    number     INT         NOT NULL,
    created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    deleted_at DATETIME(3) NULL,
    KEY idx_orders_user_id (user_id),
    KEY idx_orders_goods_id (goods_id),
    KEY idx_orders_created_at (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- One row per order whose decrement reached goods.stock: the unique order_id
-- makes the decrement happen once however often its message arrives.
CREATE TABLE goods_stock_logs (
    id         BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    goods_id   BIGINT      NOT NULL,
    order_id   BIGINT      NOT NULL,
    number     INT         NOT NULL,
    created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    deleted_at DATETIME(3) NULL,
    UNIQUE KEY uk_goods_stock_logs_order_id (order_id),
    KEY idx_goods_stock_logs_goods_id (goods_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Messages the consumer gave up on, with the reason, never dropped silently.
CREATE TABLE dead_letters (
    id         BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    order_id   BIGINT        NULL,
    goods_id   BIGINT        NULL,
    body       BLOB          NOT NULL,
    reason     VARCHAR(1000) NOT NULL,
    created_at DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    KEY idx_dead_letters_order_id (order_id),
    KEY idx_dead_letters_goods_id (goods_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Admin stock additions: the unique op_id makes a retried addition a no-op.
CREATE TABLE admin_stock_ops (
    id         BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    op_id      VARCHAR(64) NOT NULL,
    goods_id   BIGINT      NOT NULL,
    delta      BIGINT      NOT NULL,
    created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY uk_admin_stock_ops_op_id (op_id),
    KEY idx_admin_stock_ops_goods_id (goods_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- +goose Down
DROP TABLE admin_stock_ops;
DROP TABLE dead_letters;
DROP TABLE goods_stock_logs;
DROP TABLE orders;
DROP TABLE goods;
