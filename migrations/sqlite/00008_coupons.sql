-- +goose Up
-- SQLite twin of ../mysql/00008_coupons.sql.
CREATE TABLE coupon_templates (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  value INTEGER NOT NULL,
  threshold INTEGER NOT NULL DEFAULT 0,
  stock INTEGER NOT NULL,
  per_user_limit INTEGER NOT NULL,
  start_at DATETIME NULL,
  end_at DATETIME NULL,
  valid_for_ms INTEGER NOT NULL,
  sub_stocks INTEGER NOT NULL,
  tags TEXT NOT NULL,
  ended INTEGER NOT NULL DEFAULT 0,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_coupon_templates_end ON coupon_templates (ended, end_at);
CREATE TABLE coupon_stock_ops (
  template_id INTEGER NOT NULL,
  op_id TEXT NOT NULL,
  added INTEGER NOT NULL,
  in_redis INTEGER NOT NULL DEFAULT 0,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (template_id, op_id)
);
CREATE INDEX idx_coupon_stock_ops_pending ON coupon_stock_ops (in_redis, template_id);
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

-- +goose Down
DROP TABLE coupon_16;
DROP TABLE coupon_15;
DROP TABLE coupon_14;
DROP TABLE coupon_13;
DROP TABLE coupon_12;
DROP TABLE coupon_11;
DROP TABLE coupon_10;
DROP TABLE coupon_9;
DROP TABLE coupon_8;
DROP TABLE coupon_7;
DROP TABLE coupon_6;
DROP TABLE coupon_5;
DROP TABLE coupon_4;
DROP TABLE coupon_3;
DROP TABLE coupon_2;
DROP TABLE coupon_1;
DROP TABLE coupon_stock_ops;
DROP TABLE coupon_templates;
