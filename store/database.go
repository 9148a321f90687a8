// Package store is the storage side of the service: MySQL (or SQLite in
// the standalone mode), Redis scripts, NSQ producers and the snowflake ids.
// It implements the ports the service's units declare, one file per table
// family, and translates driver errors into the service's errors.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"golang.org/x/sync/singleflight"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/go-seckill/seckill/migrations"
	"github.com/go-seckill/seckill/service"
)

// Database is the primary (goods, the V1/V2 orders, stock logs, dead
// letters and admin stock ops) and the order hosts of V4 and later, each a
// MySQL/MariaDB database or, in the standalone mode, an SQLite file. The
// statements are written to run on both; the differences stay in dialect.go.
//
// Every statement runs through database/sql with the helpers below, on the
// order path and off it: a single-row insert measured 15.5k rows/s through
// GORM against 19.5k through database/sql (both with interpolateParams,
// 64 connections, 2 cores). GORM maps the goods entity, whose create and
// reads are admin and page traffic.
type Database struct {
	gdb *gorm.DB
	db  *sql.DB // the primary
	// hosts[0] is the primary, then one per mysql.shards entry; an entry
	// naming the primary's database shares its pool.
	hosts []*sql.DB
	// pools are the distinct databases among hosts, each counted once.
	pools []pool
	// limits caches each goods' per-user limit, which never changes.
	limits sync.Map
	// obs times the statements of every pool, those opened later too.
	obs Observer
	// prices caches each goods' price, which never changes either.
	prices sync.Map
	// priceReads shares one read among the orders that miss prices at once.
	priceReads singleflight.Group
	// lhosts are the hosts V7's logical databases may live on (the primary
	// when empty); smap is this instance's copy of the map of them.
	lhosts []lhost
	smap   atomic.Pointer[ShardMap]
	shardMapState
	// truthHorizon is how old an order id must be before Truth may count
	// its order settled for good (SettleTruthAfter); 0: never.
	truthHorizon time.Duration
	// scanPerTable is how many rows of each order table ScanOrders reads
	// first, learnt from its last full page; 0 before the first.
	scanPerTable atomic.Int64
}

// OpenDatabase connects to the primary at dsn and to the order hosts at
// shards, creating their databases when they are missing. A DSN starting
// with sqlite: names an SQLite file instead of a MySQL database. An
// observer, if given, times every statement.
func OpenDatabase(ctx context.Context, dsn string, shards []string, maxOpen int, obs ...Observer) (*Database, error) {
	var o Observer
	if len(obs) > 0 {
		o = obs[0]
	}
	primary, err := openPool(ctx, dsn, maxOpen, o)
	if err != nil {
		return nil, err
	}
	d := &Database{db: primary.db, hosts: []*sql.DB{primary.db}, pools: []pool{primary}, obs: o}
	if err := d.openShards(ctx, shards, maxOpen, o); err != nil {
		d.Close()
		return nil, err
	}
	var dialector gorm.Dialector = gormmysql.New(gormmysql.Config{Conn: primary.db})
	if primary.sqlite {
		dialector = &sqlite.Dialector{Conn: primary.db}
	}
	d.gdb, err = gorm.Open(dialector, &gorm.Config{SkipDefaultTransaction: true, TranslateError: true, Logger: logger.Discard})
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("gorm: %w", err)
	}
	return d, nil
}

func (d *Database) openShards(ctx context.Context, shards []string, maxOpen int, obs Observer) error {
	for _, shard := range shards {
		p, ok := d.pool(shard)
		if !ok {
			var err error
			if p, err = openPool(ctx, shard, maxOpen, obs); err != nil {
				return err
			}
			d.pools = append(d.pools, p)
		}
		d.hosts = append(d.hosts, p.db)
	}
	return nil
}

// pool finds an open pool on the database dsn names.
func (d *Database) pool(dsn string) (pool, bool) {
	for _, p := range d.pools {
		if p.id == databaseID(dsn) {
			return p, true
		}
	}
	return pool{}, false
}

// Migrate applies the migrations on every database and says on how many.
func (d *Database) Migrate(ctx context.Context) (int, error) {
	for _, p := range d.pools {
		if err := migrations.Up(ctx, p.db, p.sqlite); err != nil {
			return 0, fmt.Errorf("migrate %s: %w", p.id, err)
		}
	}
	return len(d.pools), nil
}

// Pools are the distinct databases by name (host and database, or file),
// for their pool statistics.
func (d *Database) Pools() map[string]*sql.DB {
	out := make(map[string]*sql.DB, len(d.pools))
	for _, p := range d.pools {
		out[p.id] = p.db
	}
	return out
}

// Close closes every pool.
func (d *Database) Close() error {
	var errs []error
	for _, p := range d.pools {
		errs = append(errs, p.db.Close())
	}
	return errors.Join(errs...)
}

// Ping checks every database answers.
func (d *Database) Ping(ctx context.Context) error {
	for _, p := range d.pools {
		if err := p.db.PingContext(ctx); err != nil {
			return unavailable(err)
		}
	}
	return nil
}

// table checks at and returns the pool and table name it names. A table
// of a logical database that has no tables yet is ErrNotFound: it holds
// no orders.
func (d *Database) table(ctx context.Context, at service.OrderTable) (*sql.DB, string, error) {
	if at.Logical() {
		if err := logicalTable(at); err != nil {
			return nil, "", err
		}
		p, ok := d.logicalPool(at.DB - 1)
		if !ok {
			// Another instance may have made it since this one's map was read.
			if _, err := d.RefreshShardMap(ctx); err != nil {
				return nil, "", err
			}
			p, ok = d.logicalPool(at.DB - 1)
		}
		if !ok {
			return nil, "", fmt.Errorf("%w: logical database %d holds no orders yet", service.ErrNotFound, at.DB-1)
		}
		return p.db, at.Name(), nil
	}
	if at.Host < 0 || at.Host >= len(d.hosts) || at.Table < 0 || at.Table > service.MaxOrderTables {
		return nil, "", fmt.Errorf("%w: order table %+v: no such host or table", service.ErrInvalid, at)
	}
	return d.hosts[at.Host], at.Name(), nil
}

// orderTables yields each order table of each distinct database once, with
// the first host index that reaches it, then each table of each logical
// database of V7 on the host the map says holds it.
func (d *Database) orderTables() iter.Seq2[*sql.DB, service.OrderTable] {
	return func(yield func(*sql.DB, service.OrderTable) bool) {
		for host, db := range d.hosts {
			if slices.Index(d.hosts, db) != host {
				continue // the same database under another host index
			}
			for table := range service.MaxOrderTables + 1 {
				if !yield(db, service.OrderTable{Host: host, Table: table}) {
					return
				}
			}
		}
		d.logicalTables(yield)
	}
}

// orderTablesByDB yields each distinct database once with its order
// tables, in the order orderTables yields them.
func (d *Database) orderTablesByDB() iter.Seq2[*sql.DB, []service.OrderTable] {
	var dbs []*sql.DB
	tables := map[*sql.DB][]service.OrderTable{}
	for db, at := range d.orderTables() {
		if _, ok := tables[db]; !ok {
			dbs = append(dbs, db)
		}
		tables[db] = append(tables[db], at)
	}
	return func(yield func(*sql.DB, []service.OrderTable) bool) {
		for _, db := range dbs {
			if !yield(db, tables[db]) {
				return
			}
		}
	}
}

// eachOrderTable runs fn on each order table of each distinct database.
func (d *Database) eachOrderTable(fn func(db *sql.DB, at service.OrderTable) error) error {
	for db, at := range d.orderTables() {
		if err := fn(db, at); err != nil {
			return err
		}
	}
	return nil
}

// querier runs a query: the pool or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryEach runs query and calls scan on each row; errors are classified.
func queryEach(ctx context.Context, q querier, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return classify(err)
		}
	}
	return classify(rows.Err())
}

// inTx runs fn in a transaction it owns: commit when fn returns nil, else
// roll back and return fn's error.
func (d *Database) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return rolledBackAtDeadline(ctx, err)
	}
	return rolledBackAtDeadline(ctx, writeFailed(tx.Commit()))
}

// rolledBackAtDeadline names what sql.ErrTxDone means once the
// transaction's context has ended: database/sql rolled the transaction back
// at the deadline, before any COMMIT was sent, so nothing of it was written
// and the dependency was too slow (503 unavailable), not an internal fault.
func rolledBackAtDeadline(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, sql.ErrTxDone) {
		return unavailable(fmt.Errorf("transaction rolled back at its deadline: %w", ctx.Err()))
	}
	return err
}
