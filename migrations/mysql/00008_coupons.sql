-- +goose Up
-- The coupon domain. Templates, their stock additions (idempotent by op_id)
-- and the claimed coupons, placed over the hosts and tables by user like the
-- orders: coupon_1..coupon_16 on every host.
CREATE TABLE coupon_templates (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(200) NOT NULL,
  type VARCHAR(16) NOT NULL,
  value BIGINT NOT NULL,
  threshold BIGINT NOT NULL DEFAULT 0,
  stock BIGINT NOT NULL,
  per_user_limit INT NOT NULL,
  start_at DATETIME(3) NULL,
  end_at DATETIME(3) NULL,
  valid_for_ms BIGINT NOT NULL,
  sub_stocks INT NOT NULL,
  tags TEXT NOT NULL,
  ended TINYINT NOT NULL DEFAULT 0,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  KEY idx_coupon_templates_end (ended, end_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_stock_ops (
  template_id BIGINT NOT NULL,
  op_id VARCHAR(100) NOT NULL,
  added BIGINT NOT NULL,
  in_redis TINYINT NOT NULL DEFAULT 0,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (template_id, op_id),
  KEY idx_coupon_stock_ops_pending (in_redis, template_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
-- A coupon row: seq is which of the user's per-user-limit slots it holds
-- (unique per template and user, so concurrent claims of one user cannot
-- pass the limit; NULL when the template has none, and on void rows);
-- idem_key the claim's Idempotency-Key, unique per user. status: 0 unused,
-- 1 used, 2 expired, 3 void (a fence written under the id of a claim whose
-- write had an unknown outcome).
CREATE TABLE coupon_1 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_1_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_1_user_key (user_id, idem_key),
  KEY idx_coupon_1_user (user_id, status),
  KEY idx_coupon_1_expiry (status, expires_at),
  KEY idx_coupon_1_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_2 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_2_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_2_user_key (user_id, idem_key),
  KEY idx_coupon_2_user (user_id, status),
  KEY idx_coupon_2_expiry (status, expires_at),
  KEY idx_coupon_2_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_3 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_3_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_3_user_key (user_id, idem_key),
  KEY idx_coupon_3_user (user_id, status),
  KEY idx_coupon_3_expiry (status, expires_at),
  KEY idx_coupon_3_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_4 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_4_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_4_user_key (user_id, idem_key),
  KEY idx_coupon_4_user (user_id, status),
  KEY idx_coupon_4_expiry (status, expires_at),
  KEY idx_coupon_4_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_5 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_5_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_5_user_key (user_id, idem_key),
  KEY idx_coupon_5_user (user_id, status),
  KEY idx_coupon_5_expiry (status, expires_at),
  KEY idx_coupon_5_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_6 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_6_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_6_user_key (user_id, idem_key),
  KEY idx_coupon_6_user (user_id, status),
  KEY idx_coupon_6_expiry (status, expires_at),
  KEY idx_coupon_6_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_7 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_7_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_7_user_key (user_id, idem_key),
  KEY idx_coupon_7_user (user_id, status),
  KEY idx_coupon_7_expiry (status, expires_at),
  KEY idx_coupon_7_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_8 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_8_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_8_user_key (user_id, idem_key),
  KEY idx_coupon_8_user (user_id, status),
  KEY idx_coupon_8_expiry (status, expires_at),
  KEY idx_coupon_8_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_9 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_9_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_9_user_key (user_id, idem_key),
  KEY idx_coupon_9_user (user_id, status),
  KEY idx_coupon_9_expiry (status, expires_at),
  KEY idx_coupon_9_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_10 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_10_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_10_user_key (user_id, idem_key),
  KEY idx_coupon_10_user (user_id, status),
  KEY idx_coupon_10_expiry (status, expires_at),
  KEY idx_coupon_10_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_11 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_11_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_11_user_key (user_id, idem_key),
  KEY idx_coupon_11_user (user_id, status),
  KEY idx_coupon_11_expiry (status, expires_at),
  KEY idx_coupon_11_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_12 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_12_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_12_user_key (user_id, idem_key),
  KEY idx_coupon_12_user (user_id, status),
  KEY idx_coupon_12_expiry (status, expires_at),
  KEY idx_coupon_12_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_13 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_13_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_13_user_key (user_id, idem_key),
  KEY idx_coupon_13_user (user_id, status),
  KEY idx_coupon_13_expiry (status, expires_at),
  KEY idx_coupon_13_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_14 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_14_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_14_user_key (user_id, idem_key),
  KEY idx_coupon_14_user (user_id, status),
  KEY idx_coupon_14_expiry (status, expires_at),
  KEY idx_coupon_14_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_15 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_15_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_15_user_key (user_id, idem_key),
  KEY idx_coupon_15_user (user_id, status),
  KEY idx_coupon_15_expiry (status, expires_at),
  KEY idx_coupon_15_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE coupon_16 (
  id BIGINT NOT NULL PRIMARY KEY,
  template_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  seq INT NULL,
  status TINYINT NOT NULL DEFAULT 0,
  sub_stock INT NOT NULL DEFAULT 0,
  idem_key VARCHAR(160) NULL,
  order_id BIGINT NULL,
  claimed_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  UNIQUE KEY uk_coupon_16_slot (template_id, user_id, seq),
  UNIQUE KEY uk_coupon_16_user_key (user_id, idem_key),
  KEY idx_coupon_16_user (user_id, status),
  KEY idx_coupon_16_expiry (status, expires_at),
  KEY idx_coupon_16_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

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
