-- +goose Up
-- Coupon records follow V7's shard map: each user's records live in the
-- coupon tables of the user's logical database, l<db>_coupon_1..16, made
-- with its order tables on whichever host holds it and moved with them by
-- the expansion (store/coupons.go, store/reshard.go). The coupon_1..16
-- tables of every host, placed by V4's user_id % hosts, go.
--
-- Dropped, not moved: coupons came with 00008 and no release carries
-- them, so no deployment holds records there. Moving them would not be a
-- statement of this file either: a row's new table lives on the host the
-- primary's shard map names for its logical database (another server,
-- which this migration, run on each database alone, cannot reach), and
-- that logical database may have no tables yet; it would need a Go step
-- across hosts for rows that do not exist.
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
-- The old tables come back, empty: the records stay in the logical databases'
-- tables. coupon_2..16 copy coupon_1 (index names included, which nothing reads).
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
CREATE TABLE coupon_2 LIKE coupon_1;
CREATE TABLE coupon_3 LIKE coupon_1;
CREATE TABLE coupon_4 LIKE coupon_1;
CREATE TABLE coupon_5 LIKE coupon_1;
CREATE TABLE coupon_6 LIKE coupon_1;
CREATE TABLE coupon_7 LIKE coupon_1;
CREATE TABLE coupon_8 LIKE coupon_1;
CREATE TABLE coupon_9 LIKE coupon_1;
CREATE TABLE coupon_10 LIKE coupon_1;
CREATE TABLE coupon_11 LIKE coupon_1;
CREATE TABLE coupon_12 LIKE coupon_1;
CREATE TABLE coupon_13 LIKE coupon_1;
CREATE TABLE coupon_14 LIKE coupon_1;
CREATE TABLE coupon_15 LIKE coupon_1;
CREATE TABLE coupon_16 LIKE coupon_1;
