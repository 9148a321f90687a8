-- +goose Up
-- SQLite twin of ../mysql/00014_coupons_follow_the_shard_map.sql.
DROP TABLE IF EXISTS coupon_1;
DROP TABLE IF EXISTS coupon_2;
DROP TABLE IF EXISTS coupon_3;
DROP TABLE IF EXISTS coupon_4;
DROP TABLE IF EXISTS coupon_5;
DROP TABLE IF EXISTS coupon_6;
DROP TABLE IF EXISTS coupon_7;
DROP TABLE IF EXISTS coupon_8;
DROP TABLE IF EXISTS coupon_9;
DROP TABLE IF EXISTS coupon_10;
DROP TABLE IF EXISTS coupon_11;
DROP TABLE IF EXISTS coupon_12;
DROP TABLE IF EXISTS coupon_13;
DROP TABLE IF EXISTS coupon_14;
DROP TABLE IF EXISTS coupon_15;
DROP TABLE IF EXISTS coupon_16;

-- +goose Down
-- The old tables come back, empty: the records stay in the logical databases' tables.
CREATE TABLE coupon_1 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_1_slot ON coupon_1 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_1_user_key ON coupon_1 (user_id, idem_key);
CREATE INDEX idx_coupon_1_user ON coupon_1 (user_id, status);
CREATE INDEX idx_coupon_1_expiry ON coupon_1 (status, expires_at);
CREATE INDEX idx_coupon_1_template ON coupon_1 (template_id, status);
CREATE TABLE coupon_2 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_2_slot ON coupon_2 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_2_user_key ON coupon_2 (user_id, idem_key);
CREATE INDEX idx_coupon_2_user ON coupon_2 (user_id, status);
CREATE INDEX idx_coupon_2_expiry ON coupon_2 (status, expires_at);
CREATE INDEX idx_coupon_2_template ON coupon_2 (template_id, status);
CREATE TABLE coupon_3 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_3_slot ON coupon_3 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_3_user_key ON coupon_3 (user_id, idem_key);
CREATE INDEX idx_coupon_3_user ON coupon_3 (user_id, status);
CREATE INDEX idx_coupon_3_expiry ON coupon_3 (status, expires_at);
CREATE INDEX idx_coupon_3_template ON coupon_3 (template_id, status);
CREATE TABLE coupon_4 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_4_slot ON coupon_4 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_4_user_key ON coupon_4 (user_id, idem_key);
CREATE INDEX idx_coupon_4_user ON coupon_4 (user_id, status);
CREATE INDEX idx_coupon_4_expiry ON coupon_4 (status, expires_at);
CREATE INDEX idx_coupon_4_template ON coupon_4 (template_id, status);
CREATE TABLE coupon_5 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_5_slot ON coupon_5 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_5_user_key ON coupon_5 (user_id, idem_key);
CREATE INDEX idx_coupon_5_user ON coupon_5 (user_id, status);
CREATE INDEX idx_coupon_5_expiry ON coupon_5 (status, expires_at);
CREATE INDEX idx_coupon_5_template ON coupon_5 (template_id, status);
CREATE TABLE coupon_6 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_6_slot ON coupon_6 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_6_user_key ON coupon_6 (user_id, idem_key);
CREATE INDEX idx_coupon_6_user ON coupon_6 (user_id, status);
CREATE INDEX idx_coupon_6_expiry ON coupon_6 (status, expires_at);
CREATE INDEX idx_coupon_6_template ON coupon_6 (template_id, status);
CREATE TABLE coupon_7 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_7_slot ON coupon_7 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_7_user_key ON coupon_7 (user_id, idem_key);
CREATE INDEX idx_coupon_7_user ON coupon_7 (user_id, status);
CREATE INDEX idx_coupon_7_expiry ON coupon_7 (status, expires_at);
CREATE INDEX idx_coupon_7_template ON coupon_7 (template_id, status);
CREATE TABLE coupon_8 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_8_slot ON coupon_8 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_8_user_key ON coupon_8 (user_id, idem_key);
CREATE INDEX idx_coupon_8_user ON coupon_8 (user_id, status);
CREATE INDEX idx_coupon_8_expiry ON coupon_8 (status, expires_at);
CREATE INDEX idx_coupon_8_template ON coupon_8 (template_id, status);
CREATE TABLE coupon_9 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_9_slot ON coupon_9 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_9_user_key ON coupon_9 (user_id, idem_key);
CREATE INDEX idx_coupon_9_user ON coupon_9 (user_id, status);
CREATE INDEX idx_coupon_9_expiry ON coupon_9 (status, expires_at);
CREATE INDEX idx_coupon_9_template ON coupon_9 (template_id, status);
CREATE TABLE coupon_10 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_10_slot ON coupon_10 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_10_user_key ON coupon_10 (user_id, idem_key);
CREATE INDEX idx_coupon_10_user ON coupon_10 (user_id, status);
CREATE INDEX idx_coupon_10_expiry ON coupon_10 (status, expires_at);
CREATE INDEX idx_coupon_10_template ON coupon_10 (template_id, status);
CREATE TABLE coupon_11 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_11_slot ON coupon_11 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_11_user_key ON coupon_11 (user_id, idem_key);
CREATE INDEX idx_coupon_11_user ON coupon_11 (user_id, status);
CREATE INDEX idx_coupon_11_expiry ON coupon_11 (status, expires_at);
CREATE INDEX idx_coupon_11_template ON coupon_11 (template_id, status);
CREATE TABLE coupon_12 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_12_slot ON coupon_12 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_12_user_key ON coupon_12 (user_id, idem_key);
CREATE INDEX idx_coupon_12_user ON coupon_12 (user_id, status);
CREATE INDEX idx_coupon_12_expiry ON coupon_12 (status, expires_at);
CREATE INDEX idx_coupon_12_template ON coupon_12 (template_id, status);
CREATE TABLE coupon_13 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_13_slot ON coupon_13 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_13_user_key ON coupon_13 (user_id, idem_key);
CREATE INDEX idx_coupon_13_user ON coupon_13 (user_id, status);
CREATE INDEX idx_coupon_13_expiry ON coupon_13 (status, expires_at);
CREATE INDEX idx_coupon_13_template ON coupon_13 (template_id, status);
CREATE TABLE coupon_14 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_14_slot ON coupon_14 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_14_user_key ON coupon_14 (user_id, idem_key);
CREATE INDEX idx_coupon_14_user ON coupon_14 (user_id, status);
CREATE INDEX idx_coupon_14_expiry ON coupon_14 (status, expires_at);
CREATE INDEX idx_coupon_14_template ON coupon_14 (template_id, status);
CREATE TABLE coupon_15 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_15_slot ON coupon_15 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_15_user_key ON coupon_15 (user_id, idem_key);
CREATE INDEX idx_coupon_15_user ON coupon_15 (user_id, status);
CREATE INDEX idx_coupon_15_expiry ON coupon_15 (status, expires_at);
CREATE INDEX idx_coupon_15_template ON coupon_15 (template_id, status);
CREATE TABLE coupon_16 (
  id INTEGER NOT NULL PRIMARY KEY,
  template_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  seq INTEGER NULL,
  status INTEGER NOT NULL DEFAULT 0,
  sub_stock INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NULL,
  order_id INTEGER NULL,
  claimed_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL,
  used_at DATETIME NULL
);
CREATE UNIQUE INDEX uk_coupon_16_slot ON coupon_16 (template_id, user_id, seq);
CREATE UNIQUE INDEX uk_coupon_16_user_key ON coupon_16 (user_id, idem_key);
CREATE INDEX idx_coupon_16_user ON coupon_16 (user_id, status);
CREATE INDEX idx_coupon_16_expiry ON coupon_16 (status, expires_at);
CREATE INDEX idx_coupon_16_template ON coupon_16 (template_id, status);
