-- +goose Up
-- Prices and what shoppers pay; dead letters an admin can act on.
-- goods.price is cents. Each order keeps amount = price x number at order
-- time, and once paid the discount of the coupon redeemed against it (and
-- that coupon's id): a second payment request answers from the row.
ALTER TABLE goods ADD COLUMN price BIGINT NOT NULL DEFAULT 0 AFTER name;
ALTER TABLE orders ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_1 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_2 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_3 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_4 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_5 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_6 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_7 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_8 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_9 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_10 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_11 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_12 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_13 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_14 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_15 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
ALTER TABLE order_16 ADD COLUMN amount BIGINT NOT NULL DEFAULT 0 AFTER number, ADD COLUMN discount BIGINT NOT NULL DEFAULT 0 AFTER amount, ADD COLUMN coupon_id BIGINT NULL AFTER discount;
-- A dead letter's topic (where a replay republishes its body), how many
-- times its message was given up on, and its status: open, replayed (its
-- body republished; reopened when the replay is given up on again) or
-- resolved (handled by a person). Every action is a row of
-- dead_letter_actions: who, when, what, with a note.
ALTER TABLE dead_letters ADD COLUMN topic VARCHAR(64) NOT NULL DEFAULT '' AFTER goods_id, ADD COLUMN attempts INT NOT NULL DEFAULT 1 AFTER reason, ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT 'open' AFTER attempts, ADD COLUMN updated_at DATETIME(3) NULL AFTER created_at;
CREATE TABLE dead_letter_actions (
    id         BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    letter_id  BIGINT        NOT NULL,
    action     VARCHAR(16)   NOT NULL,
    actor      VARCHAR(100)  NOT NULL,
    note       VARCHAR(1000) NOT NULL DEFAULT '',
    created_at DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    KEY idx_dead_letter_actions_letter (letter_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- +goose Down
DROP TABLE dead_letter_actions;
ALTER TABLE dead_letters DROP COLUMN updated_at, DROP COLUMN status, DROP COLUMN attempts, DROP COLUMN topic;
ALTER TABLE order_16 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_15 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_14 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_13 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_12 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_11 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_10 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_9 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_8 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_7 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_6 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_5 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_4 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_3 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_2 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE order_1 DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE orders DROP COLUMN coupon_id, DROP COLUMN discount, DROP COLUMN amount;
ALTER TABLE goods DROP COLUMN price;
