-- +goose Up
-- Payment: orders start unpaid (status 0) with a deadline; paid is 1,
-- cancelled 2. An unpaid order past its deadline is cancelled and its stock
-- returned once: a return is a goods_stock_logs row with op 1, unique per
-- (order_id, op) beside the sale's op 0. Goods may limit the units one user
-- buys; user_purchases is the database's guard for it.
ALTER TABLE goods ADD COLUMN per_user_limit INT NOT NULL DEFAULT 0 AFTER sale;
ALTER TABLE goods_stock_logs
    ADD COLUMN op TINYINT NOT NULL DEFAULT 0 AFTER order_id,
    DROP INDEX uk_goods_stock_logs_order_id,
    ADD UNIQUE KEY uk_goods_stock_logs_order_op (order_id, op);
ALTER TABLE orders ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_orders_status_deadline (status, pay_deadline);
ALTER TABLE order_1 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_1_status_deadline (status, pay_deadline);
ALTER TABLE order_2 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_2_status_deadline (status, pay_deadline);
ALTER TABLE order_3 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_3_status_deadline (status, pay_deadline);
ALTER TABLE order_4 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_4_status_deadline (status, pay_deadline);
ALTER TABLE order_5 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_5_status_deadline (status, pay_deadline);
ALTER TABLE order_6 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_6_status_deadline (status, pay_deadline);
ALTER TABLE order_7 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_7_status_deadline (status, pay_deadline);
ALTER TABLE order_8 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_8_status_deadline (status, pay_deadline);
ALTER TABLE order_9 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_9_status_deadline (status, pay_deadline);
ALTER TABLE order_10 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_10_status_deadline (status, pay_deadline);
ALTER TABLE order_11 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_11_status_deadline (status, pay_deadline);
ALTER TABLE order_12 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_12_status_deadline (status, pay_deadline);
ALTER TABLE order_13 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_13_status_deadline (status, pay_deadline);
ALTER TABLE order_14 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_14_status_deadline (status, pay_deadline);
ALTER TABLE order_15 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_15_status_deadline (status, pay_deadline);
ALTER TABLE order_16 ADD COLUMN status TINYINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN pay_deadline DATETIME(3) NULL AFTER status, ADD KEY idx_order_16_status_deadline (status, pay_deadline);
CREATE TABLE user_purchases (
    goods_id BIGINT NOT NULL,
    user_id  BIGINT NOT NULL,
    units    BIGINT NOT NULL,
    PRIMARY KEY (goods_id, user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- +goose Down
DROP TABLE user_purchases;
ALTER TABLE order_16 DROP KEY idx_order_16_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_15 DROP KEY idx_order_15_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_14 DROP KEY idx_order_14_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_13 DROP KEY idx_order_13_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_12 DROP KEY idx_order_12_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_11 DROP KEY idx_order_11_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_10 DROP KEY idx_order_10_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_9 DROP KEY idx_order_9_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_8 DROP KEY idx_order_8_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_7 DROP KEY idx_order_7_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_6 DROP KEY idx_order_6_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_5 DROP KEY idx_order_5_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_4 DROP KEY idx_order_4_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_3 DROP KEY idx_order_3_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_2 DROP KEY idx_order_2_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE order_1 DROP KEY idx_order_1_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE orders DROP KEY idx_orders_status_deadline, DROP COLUMN pay_deadline, DROP COLUMN status;
ALTER TABLE goods_stock_logs DROP INDEX uk_goods_stock_logs_order_op, DROP COLUMN op, ADD UNIQUE KEY uk_goods_stock_logs_order_id (order_id);
ALTER TABLE goods DROP COLUMN per_user_limit;
