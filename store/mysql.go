// Package store is the storage side of the service: MySQL through GORM,
// Redis scripts, NSQ producers and the snowflake ids. It translates driver
// errors into the service's errors.
package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/go-seckill/seckill/migrations"
	"github.com/go-seckill/seckill/service"
)

// MySQL is the primary host (goods, the V1/V2 orders, stock logs, dead
// letters and admin stock ops) and the order hosts of V4 and later.
type MySQL struct {
	gdb *gorm.DB
	// db runs the statements of the order path and the consumer directly:
	// measured here, GORM's per-statement work costs about a fifth of the
	// insert rate, and these statements are fixed.
	db *sql.DB
	// hosts[0] is the primary, then one per mysql.shards entry; an entry
	// naming the primary's database shares its pool.
	hosts []*sql.DB
	// databases are the distinct databases among hosts, each counted once.
	databases []*sql.DB
}

var _ service.GoodsStore = (*MySQL)(nil)

var dbNamePattern = regexp.MustCompile(`^[A-Za-z0-9_$]+$`)

// OpenMySQL connects to the primary at dsn and to the order hosts at
// shards, creating their databases when they are missing.
func OpenMySQL(ctx context.Context, dsn string, shards []string, maxOpen int) (m *MySQL, err error) {
	primary, err := openPool(ctx, dsn, maxOpen)
	if err != nil {
		return nil, err
	}
	m = &MySQL{db: primary, hosts: []*sql.DB{primary}, databases: []*sql.DB{primary}}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	seen := map[string]*sql.DB{databaseOf(dsn): primary}
	for _, shard := range shards {
		db, ok := seen[databaseOf(shard)]
		if !ok {
			if db, err = openPool(ctx, shard, maxOpen); err != nil {
				return nil, err
			}
			seen[databaseOf(shard)] = db
			m.databases = append(m.databases, db)
		}
		m.hosts = append(m.hosts, db)
	}
	m.gdb, err = gorm.Open(gormmysql.New(gormmysql.Config{Conn: primary}), &gorm.Config{
		SkipDefaultTransaction: true,
		TranslateError:         true,
		Logger:                 logger.Discard,
	})
	if err != nil {
		return nil, fmt.Errorf("gorm on mysql: %w", err)
	}
	return m, nil
}

// openPool opens one database, creating it first when it is missing.
func openPool(ctx context.Context, dsn string, maxOpen int) (*sql.DB, error) {
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
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, unavailable(fmt.Errorf("mysql %s/%s: %w", cfg.Addr, cfg.DBName, err))
	}
	return db, nil
}

// databaseOf identifies the database a DSN names, whatever its options.
func databaseOf(dsn string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return dsn
	}
	return cfg.Net + "(" + cfg.Addr + ")/" + cfg.DBName
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

// DB is the primary's pool, for tests.
func (m *MySQL) DB() *sql.DB { return m.db }

// Databases are the distinct databases of the primary and the order hosts,
// for migrations.
func (m *MySQL) Databases() []*sql.DB { return m.databases }

// Close closes every pool.
func (m *MySQL) Close() error {
	var errs []error
	for _, db := range m.databases {
		errs = append(errs, db.Close())
	}
	return errors.Join(errs...)
}

// Ping checks every host answers.
func (m *MySQL) Ping(ctx context.Context) error {
	for _, db := range m.databases {
		if err := db.PingContext(ctx); err != nil {
			return unavailable(err)
		}
	}
	return nil
}

type goodsRow struct {
	ID        int64
	Name      string
	Stock     int64
	Sale      int64
	StartAt   *time.Time
	EndAt     *time.Time
	CreatedAt time.Time
}

func (goodsRow) TableName() string { return "goods" }

func (r goodsRow) goods() service.Goods {
	return service.Goods{ID: r.ID, Name: r.Name, Stock: r.Stock, Sale: r.Sale,
		SaleWindow: service.SaleWindow{StartAt: r.StartAt, EndAt: r.EndAt}, CreatedAt: r.CreatedAt}
}

func (m *MySQL) CreateGoods(ctx context.Context, g service.NewGoods) (service.Goods, error) {
	row := goodsRow{Name: g.Name, Stock: g.Stock, StartAt: utcMillis(g.StartAt), EndAt: utcMillis(g.EndAt),
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := m.gdb.WithContext(ctx).Create(&row).Error; err != nil {
		return service.Goods{}, unavailable(err)
	}
	return row.goods(), nil
}

// utcMillis is t as a DATETIME(3) column holds it.
func utcMillis(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Millisecond)
	return &u
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
	sqlDecrement = "UPDATE goods SET stock = stock - ?, sale = sale + ? WHERE id = ? AND stock >= ?"
	sqlInsertLog = "INSERT INTO goods_stock_logs (goods_id, order_id, number) VALUES (?, ?, ?)"
)

// orderTables names every table that holds orders, by service.OrderTable's
// Table: orders, then order_1..order_16. Names come from this list only.
var orderTables = func() []string {
	names := []string{"orders"}
	for i := 1; i <= migrations.OrderTables; i++ {
		names = append(names, "order_"+strconv.Itoa(i))
	}
	return names
}()

// sqlInsertOrder holds the insert statement of each order table.
var sqlInsertOrder = func() []string {
	stmts := make([]string, len(orderTables))
	for i, t := range orderTables {
		stmts[i] = "INSERT INTO " + t + " (id, user_id, goods_id, number) VALUES (?, ?, ?, ?)"
	}
	return stmts
}()

func (m *MySQL) SellInTx(ctx context.Context, o service.Order, gate func() error) error {
	return m.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlDecrement, o.Number, o.Number, o.GoodsID, o.Number)
		if err != nil {
			return unavailable(err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return service.ErrSoldOut
		}
		if _, err := tx.ExecContext(ctx, sqlInsertOrder[0], o.ID, o.UserID, o.GoodsID, o.Number); err != nil {
			return unavailable(err)
		}
		if _, err := tx.ExecContext(ctx, sqlInsertLog, o.GoodsID, o.ID, o.Number); err != nil {
			return unavailable(err)
		}
		return gate()
	})
}

func (m *MySQL) InsertOrder(ctx context.Context, o service.Order, at service.OrderTable) error {
	if at.Host < 0 || at.Host >= len(m.hosts) || at.Table < 0 || at.Table >= len(orderTables) {
		return fmt.Errorf("order table %+v: no such host or table", at)
	}
	_, err := m.hosts[at.Host].ExecContext(ctx, sqlInsertOrder[at.Table], o.ID, o.UserID, o.GoodsID, o.Number)
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

// ScanOrders looks at every order table of every database: each one's
// first limit rows hold the first limit rows of all of them together.
func (m *MySQL) ScanOrders(ctx context.Context, afterID, beforeID int64, limit int) ([]service.StockMessage, error) {
	var out []service.StockMessage
	for db, table := range m.orderTables() {
		rows, err := db.QueryContext(ctx,
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
	slices.SortFunc(out, func(a, b service.StockMessage) int { return cmp.Compare(a.OrderID, b.OrderID) })
	return out[:min(len(out), limit)], nil
}

func (m *MySQL) ApplyStockBatch(ctx context.Context, msgs []service.StockMessage) error {
	var logs strings.Builder
	logs.WriteString("INSERT INTO goods_stock_logs (goods_id, order_id, number) VALUES ")
	args := make([]any, 0, 3*len(msgs))
	perGoods := map[int64]int64{}
	for i, msg := range msgs {
		if i > 0 {
			logs.WriteString(",")
		}
		logs.WriteString("(?,?,?)")
		args = append(args, msg.GoodsID, msg.OrderID, msg.Number)
		perGoods[msg.GoodsID] += msg.Number
	}
	// Rows are locked in goods id order, so concurrent batches cannot deadlock.
	goodsIDs := slices.Sorted(maps.Keys(perGoods))
	return m.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, logs.String(), args...); err != nil {
			if isDuplicate(err) {
				return service.ErrAlreadyApplied
			}
			return unavailable(err)
		}
		for _, id := range goodsIDs {
			n := perGoods[id]
			res, err := tx.ExecContext(ctx, sqlDecrement, n, n, id, n)
			if err != nil {
				return unavailable(err)
			}
			if rows, err := res.RowsAffected(); err != nil || rows == 0 {
				return service.ErrSoldOut
			}
		}
		return nil
	})
}

// CountOrder says in how many order tables, over every database, the order
// with this id is found: 1 for an accepted order, never more.
func (m *MySQL) CountOrder(ctx context.Context, id int64) (int, error) {
	total := 0
	for db, table := range m.orderTables() {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE id = ?", id).Scan(&n); err != nil {
			return 0, unavailable(err)
		}
		total += n
	}
	return total, nil
}

// orderTables yields each order table of each distinct database once.
func (m *MySQL) orderTables() iter.Seq2[*sql.DB, string] {
	return func(yield func(*sql.DB, string) bool) {
		for _, db := range m.databases {
			for _, t := range orderTables {
				if !yield(db, t) {
					return
				}
			}
		}
	}
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
	for db, table := range m.orderTables() {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE goods_id = ?", goodsID).Scan(&n); err != nil {
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
