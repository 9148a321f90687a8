-- +goose Up
-- Sharded order tables of V3 and later: an order of user u goes to
-- order_(u/10 % mysql.order_tables + 1), on host u % len(mysql.shards) from V4 on.
-- Sixteen, the seed's number, is the most mysql.order_tables may use.
CREATE TABLE order_1 LIKE orders;
CREATE TABLE order_2 LIKE orders;
CREATE TABLE order_3 LIKE orders;
CREATE TABLE order_4 LIKE orders;
CREATE TABLE order_5 LIKE orders;
CREATE TABLE order_6 LIKE orders;
CREATE TABLE order_7 LIKE orders;
CREATE TABLE order_8 LIKE orders;
CREATE TABLE order_9 LIKE orders;
CREATE TABLE order_10 LIKE orders;
CREATE TABLE order_11 LIKE orders;
CREATE TABLE order_12 LIKE orders;
CREATE TABLE order_13 LIKE orders;
CREATE TABLE order_14 LIKE orders;
CREATE TABLE order_15 LIKE orders;
CREATE TABLE order_16 LIKE orders;

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
