// Package store is the storage side of the service: MySQL through GORM,
// Redis scripts, NSQ producers and the snowflake ids. It translates driver
// errors into the service's errors.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/go-seckill/seckill/service"
)

// MySQL is the primary host: goods, the V1/V2 orders, stock logs, dead
// letters and admin stock ops.
type MySQL struct {
	gdb *gorm.DB
	// db runs the statements of the order path and the consumer directly:
	// measured here, GORM's per-statement work costs about a fifth of the
	// insert rate, and these statements are fixed.
	db *sql.DB
}

var _ service.GoodsStore = (*MySQL)(nil)

var dbNamePattern = regexp.MustCompile(`^[A-Za-z0-9_$]+$`)

// OpenMySQL connects to dsn, creating its database when it is missing.
func OpenMySQL(ctx context.Context, dsn string, maxOpen int) (*MySQL, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse mysql dsn: %w", err)
	}
	if err := createDatabase(ctx, *cfg); err != nil {
		return nil, err
	}
	cfg.ParseTime = true
	// Client-side interpolation saves a prepare round trip per statement.
	cfg.InterpolateParams = true
	gdb, err := gorm.Open(gormmysql.New(gormmysql.Config{DSN: cfg.FormatDSN()}), &gorm.Config{
		SkipDefaultTransaction: true,
		TranslateError:         true,
		Logger:                 logger.Discard,
	})
	if err != nil {
		return nil, fmt.Errorf("open mysql %s: %w", cfg.Addr, err)
	}
	db, err := gdb.DB()
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("mysql %s: %w", cfg.Addr, err)
	}
	return &MySQL{gdb: gdb, db: db}, nil
}

// createDatabase makes the DSN's database if it does not exist yet.
func createDatabase(ctx context.Context, cfg mysql.Config) error {
	name := cfg.DBName
	if name == "" {
		return errors.New("mysql dsn names no database")
	}
	if !dbNamePattern.MatchString(name) {
		return fmt.Errorf("mysql database name %q: use letters, digits, _ and $ only", name)
	}
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		return fmt.Errorf("create database %s on %s: %w", name, cfg.Addr, err)
	}
	return nil
}

// DB is the pool, for migrations and tests.
func (m *MySQL) DB() *sql.DB { return m.db }

// Close closes the pool.
func (m *MySQL) Close() error { return m.db.Close() }

// Ping checks the host answers.
func (m *MySQL) Ping(ctx context.Context) error { return unavailable(m.db.PingContext(ctx)) }

type goodsRow struct {
	ID        int64
	Name      string
	Stock     int64
	Sale      int64
	CreatedAt time.Time
}

func (goodsRow) TableName() string { return "goods" }

func (r goodsRow) goods() service.Goods {
	return service.Goods{ID: r.ID, Name: r.Name, Stock: r.Stock, Sale: r.Sale, CreatedAt: r.CreatedAt}
}

func (m *MySQL) CreateGoods(ctx context.Context, name string, stock int64) (service.Goods, error) {
	row := goodsRow{Name: name, Stock: stock, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := m.gdb.WithContext(ctx).Create(&row).Error; err != nil {
		return service.Goods{}, unavailable(err)
	}
	return row.goods(), nil
}

func (m *MySQL) Goods(ctx context.Context, id int64) (service.Goods, error) {
	var row goodsRow
	err := m.gdb.WithContext(ctx).Where("id = ? AND deleted_at IS NULL", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return service.Goods{}, fmt.Errorf("%w: goods %d", service.ErrNotFound, id)
	}
	if err != nil {
		return service.Goods{}, unavailable(err)
	}
	return row.goods(), nil
}

func (m *MySQL) ListGoods(ctx context.Context) ([]service.Goods, error) {
	var rows []goodsRow
	if err := m.gdb.WithContext(ctx).Where("deleted_at IS NULL").Order("id").Limit(1000).Find(&rows).Error; err != nil {
		return nil, unavailable(err)
	}
	out := make([]service.Goods, len(rows))
	for i, r := range rows {
		out[i] = r.goods()
	}
	return out, nil
}

func (m *MySQL) AddStock(ctx context.Context, goodsID, n int64, opID string) error {
	return m.gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Exec("INSERT INTO admin_stock_ops (op_id, goods_id, delta) VALUES (?, ?, ?)", opID, goodsID, n).Error
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return fmt.Errorf("%w: op_id %q", service.ErrDuplicate, opID)
		}
		if err != nil {
			return unavailable(err)
		}
		res := tx.Exec("UPDATE goods SET stock = stock + ? WHERE id = ? AND deleted_at IS NULL", n, goodsID)
		if res.Error != nil {
			return unavailable(res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("%w: goods %d", service.ErrNotFound, goodsID)
		}
		return nil
	})
}

const (
	sqlDecrement   = "UPDATE goods SET stock = stock - ?, sale = sale + ? WHERE id = ? AND stock >= ?"
	sqlInsertOrder = "INSERT INTO orders (id, user_id, goods_id, number) VALUES (?, ?, ?, ?)"
	sqlInsertLog   = "INSERT INTO goods_stock_logs (goods_id, order_id, number) VALUES (?, ?, ?)"
)

func (m *MySQL) SellInTx(ctx context.Context, o service.Order, gate func() error) error {
	return m.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlDecrement, o.Number, o.Number, o.GoodsID, o.Number)
		if err != nil {
			return unavailable(err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return service.ErrSoldOut
		}
		if _, err := tx.ExecContext(ctx, sqlInsertOrder, o.ID, o.UserID, o.GoodsID, o.Number); err != nil {
			return unavailable(err)
		}
		if _, err := tx.ExecContext(ctx, sqlInsertLog, o.GoodsID, o.ID, o.Number); err != nil {
			return unavailable(err)
		}
		return gate()
	})
}

func (m *MySQL) InsertOrder(ctx context.Context, o service.Order) error {
	_, err := m.db.ExecContext(ctx, sqlInsertOrder, o.ID, o.UserID, o.GoodsID, o.Number)
	return unavailable(err)
}

func (m *MySQL) ApplyStock(ctx context.Context, msg service.StockMessage) error {
	return m.inTx(ctx, func(tx *sql.Tx) error {
		// The log goes first: a duplicate stops here, before the hot row lock.
		if _, err := tx.ExecContext(ctx, sqlInsertLog, msg.GoodsID, msg.OrderID, msg.Number); err != nil {
			if isDuplicate(err) {
				return service.ErrAlreadyApplied
			}
			return unavailable(err)
		}
		res, err := tx.ExecContext(ctx, sqlDecrement, msg.Number, msg.Number, msg.GoodsID, msg.Number)
		if err != nil {
			return unavailable(err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return service.ErrSoldOut
		}
		return nil
	})
}

// orderTables are every table that holds orders on this host.
var orderTables = []string{"orders"}

func (m *MySQL) ScanOrders(ctx context.Context, afterID, beforeID int64, limit int) ([]service.StockMessage, error) {
	var out []service.StockMessage
	for _, table := range orderTables {
		rows, err := m.db.QueryContext(ctx,
			"SELECT id, goods_id, user_id, number FROM "+table+" WHERE id > ? AND id < ? ORDER BY id LIMIT ?",
			afterID, beforeID, limit)
		if err != nil {
			return nil, unavailable(err)
		}
		for rows.Next() {
			var s service.StockMessage
			if err := rows.Scan(&s.OrderID, &s.GoodsID, &s.UserID, &s.Number); err != nil {
				rows.Close()
				return nil, unavailable(err)
			}
			out = append(out, s)
		}
		if err := rows.Close(); err != nil {
			return nil, unavailable(err)
		}
	}
	return out, nil
}

func (m *MySQL) Settled(ctx context.Context, ids []int64) (map[int64]bool, error) {
	settled := make(map[int64]bool, len(ids))
	if len(ids) == 0 {
		return settled, nil
	}
	var found []int64
	err := m.gdb.WithContext(ctx).Raw(
		"SELECT order_id FROM goods_stock_logs WHERE order_id IN ? UNION SELECT order_id FROM dead_letters WHERE order_id IN ?",
		ids, ids).Scan(&found).Error
	if err != nil {
		return nil, unavailable(err)
	}
	for _, id := range found {
		settled[id] = true
	}
	return settled, nil
}

func (m *MySQL) DeadLetter(ctx context.Context, msg service.StockMessage, body []byte, reason string) error {
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	return unavailable(m.gdb.WithContext(ctx).Exec(
		"INSERT INTO dead_letters (order_id, goods_id, body, reason) VALUES (?, ?, ?, ?)",
		nullIfZero(msg.OrderID), nullIfZero(msg.GoodsID), body, reason).Error)
}

func nullIfZero(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id > 0} }

func (m *MySQL) Counts(ctx context.Context, goodsID int64) (orders, stockLogs, deadLetters int64, err error) {
	for _, table := range orderTables {
		var n int64
		if err := m.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE goods_id = ?", goodsID).Scan(&n); err != nil {
			return 0, 0, 0, unavailable(err)
		}
		orders += n
	}
	err = m.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM goods_stock_logs WHERE goods_id = ?),
		(SELECT COUNT(*) FROM dead_letters WHERE goods_id = ?)`,
		goodsID, goodsID).Scan(&stockLogs, &deadLetters)
	return orders, stockLogs, deadLetters, unavailable(err)
}

// inTx runs fn in a transaction it owns: commit when fn returns nil, else
// roll back and return fn's error.
func (m *MySQL) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return unavailable(tx.Commit())
}

func isDuplicate(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}

// unavailable marks a driver error as the dependency failing; nil stays nil.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", service.ErrUnavailable, err)
}
