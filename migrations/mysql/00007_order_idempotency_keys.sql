-- +goose Up
-- An order placed under an Idempotency-Key keeps the key, unique per user
-- in its table: a retry after Redis lost its record of the key finds the
-- order instead of placing a second one. Void rows and orders without a
-- key hold NULL, which the unique key lets repeat.
ALTER TABLE orders ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_orders_user_key (user_id, idem_key);
ALTER TABLE order_1 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_1_user_key (user_id, idem_key);
ALTER TABLE order_2 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_2_user_key (user_id, idem_key);
ALTER TABLE order_3 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_3_user_key (user_id, idem_key);
ALTER TABLE order_4 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_4_user_key (user_id, idem_key);
ALTER TABLE order_5 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_5_user_key (user_id, idem_key);
ALTER TABLE order_6 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_6_user_key (user_id, idem_key);
ALTER TABLE order_7 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_7_user_key (user_id, idem_key);
ALTER TABLE order_8 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_8_user_key (user_id, idem_key);
ALTER TABLE order_9 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_9_user_key (user_id, idem_key);
ALTER TABLE order_10 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_10_user_key (user_id, idem_key);
ALTER TABLE order_11 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_11_user_key (user_id, idem_key);
ALTER TABLE order_12 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_12_user_key (user_id, idem_key);
ALTER TABLE order_13 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_13_user_key (user_id, idem_key);
ALTER TABLE order_14 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_14_user_key (user_id, idem_key);
ALTER TABLE order_15 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_15_user_key (user_id, idem_key);
ALTER TABLE order_16 ADD COLUMN idem_key VARCHAR(160) NULL AFTER pay_deadline, ADD UNIQUE KEY uk_order_16_user_key (user_id, idem_key);

-- +goose Down
ALTER TABLE order_16 DROP KEY uk_order_16_user_key, DROP COLUMN idem_key;
ALTER TABLE order_15 DROP KEY uk_order_15_user_key, DROP COLUMN idem_key;
ALTER TABLE order_14 DROP KEY uk_order_14_user_key, DROP COLUMN idem_key;
ALTER TABLE order_13 DROP KEY uk_order_13_user_key, DROP COLUMN idem_key;
ALTER TABLE order_12 DROP KEY uk_order_12_user_key, DROP COLUMN idem_key;
ALTER TABLE order_11 DROP KEY uk_order_11_user_key, DROP COLUMN idem_key;
ALTER TABLE order_10 DROP KEY uk_order_10_user_key, DROP COLUMN idem_key;
ALTER TABLE order_9 DROP KEY uk_order_9_user_key, DROP COLUMN idem_key;
ALTER TABLE order_8 DROP KEY uk_order_8_user_key, DROP COLUMN idem_key;
ALTER TABLE order_7 DROP KEY uk_order_7_user_key, DROP COLUMN idem_key;
ALTER TABLE order_6 DROP KEY uk_order_6_user_key, DROP COLUMN idem_key;
ALTER TABLE order_5 DROP KEY uk_order_5_user_key, DROP COLUMN idem_key;
ALTER TABLE order_4 DROP KEY uk_order_4_user_key, DROP COLUMN idem_key;
ALTER TABLE order_3 DROP KEY uk_order_3_user_key, DROP COLUMN idem_key;
ALTER TABLE order_2 DROP KEY uk_order_2_user_key, DROP COLUMN idem_key;
ALTER TABLE order_1 DROP KEY uk_order_1_user_key, DROP COLUMN idem_key;
ALTER TABLE orders DROP KEY uk_orders_user_key, DROP COLUMN idem_key;
