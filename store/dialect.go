package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/glebarez/go-sqlite" // the pure-Go "sqlite" driver
	"github.com/go-sql-driver/mysql"

	"github.com/go-seckill/seckill/service"
)

// The differences between MySQL/MariaDB and SQLite stay in this file:
// opening and creating a database, and telling their errors apart. The
// migration lock is in package migrations.

// SQLitePrefix starts a DSN that names an SQLite file, as the standalone
// mode uses: sqlite:data/seckill.db.
const SQLitePrefix = "sqlite:"

// SQLite's extended result codes for unique key violations.
const (
	sqliteConstraintUnique     = 2067
	sqliteConstraintPrimaryKey = 1555
)

// pool is one open database.
type pool struct {
	db     *sql.DB
	sqlite bool
	id     string // which database, whatever the DSN's options
}

func openPool(ctx context.Context, dsn string, maxOpen int, obs Observer) (pool, error) {
	if path, ok := strings.CutPrefix(dsn, SQLitePrefix); ok {
		return openSQLite(ctx, path, obs)
	}
	return openMySQL(ctx, dsn, maxOpen, obs)
}

// openDB opens a pool of driver drv on dsn whose statements obs times
// (none when obs is nil).
func openDB(drv driver.Driver, dsn, dep string, obs Observer) (*sql.DB, error) {
	conn, err := connectorOf(drv, dsn)
	if err != nil {
		return nil, err
	}
	if obs != nil {
		conn = observedConnector{Connector: conn, dep: dep, obs: obs}
	}
	return sql.OpenDB(conn), nil
}

// HostID names the database a DSN names as the shard map does: its
// address and database, without credentials or options.
func HostID(dsn string) string { return databaseID(dsn) }

// databaseID identifies the database a DSN names.
func databaseID(dsn string) string {
	if path, ok := strings.CutPrefix(dsn, SQLitePrefix); ok {
		if abs, err := filepath.Abs(path); err == nil {
			return SQLitePrefix + abs
		}
		return dsn
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return dsn
	}
	return cfg.Net + "(" + cfg.Addr + ")/" + cfg.DBName
}

func openMySQL(ctx context.Context, dsn string, maxOpen int, obs Observer) (pool, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return pool{}, fmt.Errorf("parse mysql dsn: %w", err)
	}
	if err := createDatabase(ctx, *cfg); err != nil {
		return pool{}, err
	}
	cfg.ParseTime = true
	// Client-side interpolation saves a prepare round trip per statement.
	cfg.InterpolateParams = true
	db, err := openDB(&mysql.MySQLDriver{}, cfg.FormatDSN(), "mysql", obs)
	if err != nil {
		return pool{}, err
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return pool{}, unavailable(fmt.Errorf("mysql %s/%s: %w", cfg.Addr, cfg.DBName, err))
	}
	return pool{db: db, id: databaseID(dsn)}, nil
}

var dbNamePattern = regexp.MustCompile(`^[A-Za-z0-9_$]+$`)

// CheckDatabaseName refuses a MySQL database name that is not letters,
// digits, _ and $: names are put in statements as they are.
func CheckDatabaseName(name string) error {
	if !dbNamePattern.MatchString(name) {
		return fmt.Errorf("mysql database name %q: use letters, digits, _ and $ only", name)
	}
	return nil
}

// createDatabase makes the DSN's database if it does not exist yet.
func createDatabase(ctx context.Context, cfg mysql.Config) error {
	name := cfg.DBName
	if name == "" {
		return errors.New("mysql dsn names no database")
	}
	if err := CheckDatabaseName(name); err != nil {
		return err
	}
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		return unavailable(fmt.Errorf("create database %s on %s: %w", name, cfg.Addr, err))
	}
	return nil
}

// openSQLite opens (creating) the file at path. One connection: SQLite
// takes one writer at a time, and a single connection queues writers in
// Go instead of failing them with SQLITE_BUSY.
func openSQLite(ctx context.Context, path string, obs Observer) (pool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return pool{}, fmt.Errorf("sqlite folder: %w", err)
	}
	db, err := openDB(&sqlite.Driver{}, path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)", "sqlite", obs)
	if err != nil {
		return pool{}, err
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return pool{}, fmt.Errorf("sqlite %s: %w", path, err)
	}
	return pool{db: db, sqlite: true, id: databaseID(SQLitePrefix + path)}, nil
}

// isDuplicate says err is a unique key violation, MySQL's 1062 or SQLite's
// SQLITE_CONSTRAINT_UNIQUE / _PRIMARYKEY.
func isDuplicate(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1062
	}
	var se interface{ Code() int }
	return errors.As(err, &se) && (se.Code() == sqliteConstraintUnique || se.Code() == sqliteConstraintPrimaryKey)
}

// isKeyDuplicate says err is a violation of an order table's unique key on
// (user_id, idem_key), not of its primary key: MySQL names the key
// (uk_<table>_user_key), SQLite the columns.
func isKeyDuplicate(err error) bool {
	return isDuplicate(err) && (strings.Contains(err.Error(), "_user_key") || strings.Contains(err.Error(), "idem_key"))
}

// MySQL server errors that mean the server is there but cannot serve now:
// too many connections, lock wait timeout, deadlock, shutting down, query
// interrupted or killed, read-only, out of memory, statement timeout, and
// a table missing (an order host being restored or migrated: the host is
// unusable for now, and a retry may well find it back).
var mysqlUnavailable = map[uint16]bool{1040: true, 1205: true, 1213: true, 1053: true, 1317: true, 1927: true,
	1290: true, 1836: true, 1037: true, 1038: true, 1041: true, 3024: true, 4031: true, 1146: true}

// MySQL server errors that mean a value does not fit its column: out of
// range, too long, incorrect value. Input the handlers let through.
var mysqlOutOfRange = map[uint16]bool{1264: true, 1406: true, 1366: true, 1292: true, 1690: true}

// SQLite's primary result codes for a busy or locked database.
const (
	sqliteBusy   = 5
	sqliteLocked = 6
)

// serverError classifies an error the database server answered: known is
// false for errors that are not the server's.
func serverError(err error) (classified error, known bool) {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch {
		case mysqlUnavailable[me.Number]:
			return unavailable(err), true
		case mysqlOutOfRange[me.Number]:
			return fmt.Errorf("%w: a value is out of range for its column", service.ErrInvalid), true
		}
		// A syntax error, an unknown table or column: a bug, never "try again".
		return fmt.Errorf("database: %w", err), true
	}
	var se interface{ Code() int }
	if errors.As(err, &se) {
		if code := se.Code() & 0xff; code == sqliteBusy || code == sqliteLocked {
			return unavailable(err), true
		}
		return fmt.Errorf("database: %w", err), true
	}
	return nil, false
}

// forUpdate locks the rows a SELECT reads until the transaction ends. An
// SQLite transaction holds the database's only connection: nothing else
// runs meanwhile.
func (d *Database) forUpdate() string {
	if d.pools[0].sqlite {
		return ""
	}
	return " FOR UPDATE"
}

// createOrderTable makes an order table like orders, unless it exists:
// MySQL copies orders' definition, indexes included; SQLite has no such
// statement and is given the same columns and indexes.
func createOrderTable(sqlite bool, name string) []string {
	if !sqlite {
		return []string{"CREATE TABLE IF NOT EXISTS " + name + " LIKE orders"}
	}
	return []string{
		"CREATE TABLE IF NOT EXISTS " + name + ` (
    id           INTEGER NOT NULL PRIMARY KEY,
    user_id      INTEGER NOT NULL,
    goods_id     INTEGER NOT NULL,
    number       INTEGER NOT NULL,
    amount       INTEGER NOT NULL DEFAULT 0,
    discount     INTEGER NOT NULL DEFAULT 0,
    coupon_id    INTEGER NULL,
    created_at   DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at   DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    deleted_at   DATETIME NULL,
    status       INTEGER NOT NULL DEFAULT 0,
    pay_deadline DATETIME NULL,
    idem_key     TEXT NULL)`,
		"CREATE INDEX IF NOT EXISTS idx_" + name + "_user_id ON " + name + " (user_id)",
		"CREATE INDEX IF NOT EXISTS idx_" + name + "_goods_id ON " + name + " (goods_id)",
		"CREATE INDEX IF NOT EXISTS idx_" + name + "_created_at ON " + name + " (created_at)",
		"CREATE INDEX IF NOT EXISTS idx_" + name + "_status_deadline ON " + name + " (status, pay_deadline)",
		"CREATE UNIQUE INDEX IF NOT EXISTS uk_" + name + "_user_key ON " + name + " (user_id, idem_key)",
	}
}

// CouponTableDDL makes a MySQL table named name shaped like the coupon
// tables (the benchmark's ceilings insert into such tables).
func CouponTableDDL(name string) []string { return createCouponTable(false, name) }

// createCouponTable makes a coupon table of a logical database, unless it
// exists: the columns and indexes of the coupon tables of migration 00008,
// index names carrying the table's (SQLite's are the database's). The
// slot and key indexes keep _slot and _user_key in their names: MySQL
// names the index a duplicate hit, and InsertCoupon tells them apart so.
func createCouponTable(sqlite bool, name string) []string {
	if !sqlite {
		return []string{"CREATE TABLE IF NOT EXISTS " + name + ` (
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
  UNIQUE KEY uk_` + name + `_slot (template_id, user_id, seq),
  UNIQUE KEY uk_` + name + `_user_key (user_id, idem_key),
  KEY idx_` + name + `_user (user_id, status),
  KEY idx_` + name + `_expiry (status, expires_at),
  KEY idx_` + name + `_template (template_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`}
	}
	return []string{
		"CREATE TABLE IF NOT EXISTS " + name + ` (
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
  used_at DATETIME NULL)`,
		"CREATE UNIQUE INDEX IF NOT EXISTS uk_" + name + "_slot ON " + name + " (template_id, user_id, seq)",
		"CREATE UNIQUE INDEX IF NOT EXISTS uk_" + name + "_user_key ON " + name + " (user_id, idem_key)",
		"CREATE INDEX IF NOT EXISTS idx_" + name + "_user ON " + name + " (user_id, status)",
		"CREATE INDEX IF NOT EXISTS idx_" + name + "_expiry ON " + name + " (status, expires_at)",
		"CREATE INDEX IF NOT EXISTS idx_" + name + "_template ON " + name + " (template_id, status)",
	}
}

// sqlAddUnits adds units to rows of user_purchases, making those that are
// missing: n rows of (goods_id, user_id, units), in the primary's words.
func (d *Database) sqlAddUnits(n int) string {
	values := strings.TrimSuffix(strings.Repeat("(?, ?, ?),", n), ",")
	if d.gdb.Dialector.Name() == "sqlite" {
		return "INSERT INTO user_purchases (goods_id, user_id, units) VALUES " + values +
			" ON CONFLICT (goods_id, user_id) DO UPDATE SET units = units + excluded.units"
	}
	return "INSERT INTO user_purchases (goods_id, user_id, units) VALUES " + values +
		" ON DUPLICATE KEY UPDATE units = units + VALUES(units)"
}
