package harness

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/store"
)

// Snapshot is one goods as MySQL and Redis hold it, read directly: the
// goods row, every order table of every database, the stock logs, the dead
// letters and the Redis hash.
type Snapshot struct {
	GoodsID     int64
	Stock, Sale int64 // the goods row
	Adds        int64 // units added by admins (admin_stock_ops)

	Orders map[int64]int   // order id -> rows over every order table of every database
	Users  map[int64]int64 // order id -> user id
	Status map[int64]int   // order id -> status (service.StatusPaid, ...)
	Number map[int64]int64 // order id -> units
	Units  int64           // units of every order row

	Sales       map[int64]int // order id -> sale rows (goods_stock_logs op 0)
	SaleUnits   int64
	Returns     map[int64]int // order id -> return rows (op 1)
	ReturnUnits int64

	// Voids counts the void rows that fenced order writes of unknown
	// outcome: no orders, and left out of everything above.
	Voids int

	DeadLetters  int64          // every row of dead_letters
	DeadLettered map[int64]bool // orders of the goods with a dead letter

	// Redis is the goods hash's stock, with what a split goods (V14) holds
	// in its buckets and allotments in flight; nil when Redis holds none.
	Redis *int64
	// Pending is the units of requests accepted asynchronously (V13) whose
	// orders are not written yet.
	Pending int64
}

// Snapshot reads goodsID from every database and from Redis.
func (s *Servers) Snapshot(ctx context.Context, goodsID int64) (Snapshot, error) {
	snap := Snapshot{GoodsID: goodsID,
		Orders: map[int64]int{}, Users: map[int64]int64{}, Status: map[int64]int{}, Number: map[int64]int64{},
		Sales: map[int64]int{}, Returns: map[int64]int{}, DeadLettered: map[int64]bool{}}
	primary := s.DB(0)
	if err := primary.QueryRowContext(ctx, "SELECT stock, sale FROM goods WHERE id = ?", goodsID).Scan(&snap.Stock, &snap.Sale); err != nil {
		return snap, fmt.Errorf("goods %d: %w", goodsID, err)
	}
	if err := primary.QueryRowContext(ctx, "SELECT COALESCE(SUM(delta), 0) FROM admin_stock_ops WHERE goods_id = ?", goodsID).Scan(&snap.Adds); err != nil {
		return snap, err
	}
	tables, err := s.orderTables(ctx)
	if err != nil {
		return snap, err
	}
	for _, t := range tables {
		err := scanInts(ctx, t.DB, "SELECT id, user_id, number, status FROM "+t.Name+" WHERE goods_id = ?", goodsID, func(r []int64) {
			if r[3] == service.StatusVoid {
				snap.Voids++
				return
			}
			snap.Orders[r[0]]++
			snap.Users[r[0]] = r[1]
			snap.Number[r[0]] = r[2]
			snap.Status[r[0]] = int(r[3])
			snap.Units += r[2]
		})
		if err != nil {
			return snap, fmt.Errorf("%s: %w", t.Name, err)
		}
	}
	err = scanInts(ctx, primary, "SELECT order_id, op, number FROM goods_stock_logs WHERE goods_id = ?", goodsID, func(r []int64) {
		if r[1] == 0 {
			snap.Sales[r[0]]++
			snap.SaleUnits += r[2]
		} else {
			snap.Returns[r[0]]++
			snap.ReturnUnits += r[2]
		}
	})
	if err != nil {
		return snap, err
	}
	if err := primary.QueryRowContext(ctx, "SELECT COUNT(*) FROM dead_letters").Scan(&snap.DeadLetters); err != nil {
		return snap, err
	}
	err = scanInts(ctx, primary, "SELECT order_id FROM dead_letters WHERE goods_id = ? AND order_id IS NOT NULL", goodsID, func(r []int64) {
		snap.DeadLettered[r[0]] = true
	})
	if err != nil {
		return snap, err
	}
	rdb := s.Redis()
	if rdb == nil {
		return snap, errors.New("no Redis to read: no instance of the standalone mode has started")
	}
	f, err := rdb.HMGet(ctx, s.GoodsKey(goodsID), GoodsHashFields...).Result()
	if err != nil {
		return snap, err
	}
	if snap.Redis, snap.Pending, err = ReadGoodsHash(f); err != nil || snap.Redis == nil {
		return snap, err
	}
	// A split goods' units in its buckets (and allotments in flight) are
	// Redis's too.
	split, err := store.SplitHeld(ctx, rdb, s.Prefix, goodsID)
	if err != nil {
		return snap, err
	}
	*snap.Redis += split
	return snap, nil
}

// GoodsHashFields are the fields of a goods' Redis hash that the checks
// read, in the order ReadGoodsHash takes their values.
var GoodsHashFields = []string{"stock", "accepted"}

// ReadGoodsHash reads the values of GoodsHashFields: the stock (nil when
// Redis holds none) and the units accepted asynchronously whose orders
// are not written yet.
func ReadGoodsHash(f []any) (stock *int64, pending int64, err error) {
	if v, ok := f[0].(string); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, 0, err
		}
		stock = &n
	}
	if v, ok := f[1].(string); ok {
		if pending, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, 0, err
		}
	}
	return stock, pending, nil
}

// Table is one table of one database.
type Table struct {
	DB   *sql.DB
	Name string
}

// orderTables are the order tables of V1 to V6 on every database, and
// those of V7's logical databases on the host the primary's shard map
// names for each: during a move the copy on the other host is not read.
func (s *Servers) orderTables(ctx context.Context) ([]Table, error) {
	var out []Table
	for i, db := range s.dbs {
		if i > 0 && slices.Index(s.ids, s.ids[i]) < i {
			continue
		}
		for _, name := range service.TableNames() {
			out = append(out, Table{db, name})
		}
	}
	logical, err := s.logicalTables(ctx, service.LogicalTableName)
	return append(out, logical...), err
}

// CouponTables are the coupon tables of every logical database that has
// tables, each on the host the primary's shard map names: during a move
// the copy on the other host is not read.
func (s *Servers) CouponTables(ctx context.Context) ([]Table, error) {
	return s.logicalTables(ctx, service.LogicalCouponTableName)
}

// logicalTables are the tables name(l, 1..16) of each logical database l
// in the primary's shard map, on the host it names.
func (s *Servers) logicalTables(ctx context.Context, name func(l, t int) string) ([]Table, error) {
	var out []Table
	rows, err := s.DB(0).QueryContext(ctx, "SELECT logical_db, host FROM shard_map ORDER BY logical_db")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var l int
		var host string
		if err := rows.Scan(&l, &host); err != nil {
			return nil, err
		}
		db := s.HostDB(host)
		if db == nil {
			return nil, fmt.Errorf("the shard map puts logical database %d on %s, which the test does not read", l, host)
		}
		for t := 1; t <= service.LogicalTables; t++ {
			out = append(out, Table{db, name(l, t)})
		}
	}
	return out, rows.Err()
}

// scanInts calls f with the integer columns of each row.
func scanInts(ctx context.Context, db *sql.DB, query string, arg int64, f func([]int64)) error {
	rows, err := db.QueryContext(ctx, query, arg)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	r := make([]int64, len(cols))
	ptrs := make([]any, len(cols))
	for i := range r {
		ptrs[i] = &r[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		f(r)
	}
	return rows.Err()
}

// Settled says the queues have drained for the goods: every order's sale is
// applied (or dead-lettered), every cancelled order's units are back, and
// Redis holds MySQL's stock.
func (s Snapshot) Settled() bool {
	for id := range s.Orders {
		if s.Sales[id] == 0 && !s.DeadLettered[id] {
			return false
		}
		if s.Status[id] == service.StatusCancelled && s.Returns[id] == 0 {
			return false
		}
	}
	return s.Sale == s.SaleUnits-s.ReturnUnits && s.Redis != nil && *s.Redis == s.Stock && s.Pending == 0
}

// Count is how many stored orders have status.
func (s Snapshot) Count(status int) int {
	n := 0
	for id := range s.Orders {
		if s.Status[id] == status {
			n++
		}
	}
	return n
}

func (s Snapshot) String() string {
	r := "missing"
	if s.Redis != nil {
		r = fmt.Sprint(*s.Redis)
	}
	return fmt.Sprintf("goods %d: mysql stock=%d sale=%d added=%d, orders=%d (units %d, paid %d, cancelled %d, refused %d; %d void), sales=%d (units %d), returns=%d (units %d), dead letters=%d, redis stock=%s",
		s.GoodsID, s.Stock, s.Sale, s.Adds, len(s.Orders), s.Units, s.Count(service.StatusPaid), s.Count(service.StatusCancelled),
		s.Count(service.StatusRefused), s.Voids, len(s.Sales), s.SaleUnits, len(s.Returns), s.ReturnUnits, s.DeadLetters, r)
}

// Sale is what a test knows of one goods' sale.
type Sale struct {
	Initial  int64   // the stock the goods was created with; additions are read from the database
	Accepted []int64 // the orders answered 2xx: each must be stored exactly once
	// AllowUnanswered lets orders be stored that no client was told of (a
	// kill, a cut connection, a load that did not keep the ids). Without
	// it, the stored orders are exactly Accepted.
	AllowUnanswered bool
	DeadLetters     int64         // rows of dead_letters expected
	Within          time.Duration // how long the drain may take; 0 is a minute
}

// Violations lists the sale's broken invariants in s, read once the queues
// have drained: nothing oversold, every accepted order stored exactly once,
// every stored order applied exactly once and every cancelled one returned
// once, the units adding up, and Redis holding MySQL's stock.
func (s Snapshot) Violations(want Sale) []string {
	var out []string
	fail := func(f string, a ...any) { out = append(out, fmt.Sprintf(f, a...)) }
	total := want.Initial + s.Adds
	live := int64(0)
	for id := range s.Orders {
		if s.Status[id] != service.StatusCancelled && !s.DeadLettered[id] {
			live += s.Number[id]
		}
	}
	if s.Stock < 0 || s.Sale > total || live > total {
		fail("oversold: %d units in live orders and a sale of %d for %d units in all (%d + %d added); mysql stock %d",
			live, s.Sale, total, want.Initial, s.Adds, s.Stock)
	}

	if s.Pending != 0 {
		fail("%d units of accepted requests were never written as orders nor given back", s.Pending)
	}
	for _, id := range sortedKeys(s.Orders) {
		if n := s.Orders[id]; n > 1 {
			fail("order %d is stored %d times", id, n)
		}
	}
	accepted := map[int64]bool{}
	missing, twice := 0, 0
	for _, id := range want.Accepted {
		accepted[id] = true
		switch n := s.Orders[id]; {
		case n == 0:
			missing++
		case n > 1:
			twice++
		}
	}
	if len(accepted) < len(want.Accepted) {
		fail("%d order ids were answered 2xx more than once", len(want.Accepted)-len(accepted))
	}
	if missing > 0 || twice > 0 {
		fail("of %d accepted orders, %d are missing from every order table and %d are stored more than once",
			len(want.Accepted), missing, twice)
	}
	if !want.AllowUnanswered {
		unanswered := 0
		for id := range s.Orders {
			if !accepted[id] {
				unanswered++
			}
		}
		if unanswered > 0 {
			fail("%d orders are stored that no client was told about", unanswered)
		}
	}

	unapplied, orphans, unreturned, strayReturns := 0, 0, 0, 0
	appliedUnits := int64(0)
	for _, id := range sortedKeys(s.Orders) {
		switch n := s.Sales[id]; {
		case n == 0 && !s.DeadLettered[id]:
			unapplied++
		case n > 1:
			fail("order %d has %d sale rows in goods_stock_logs: its stock was applied more than once", id, n)
		}
		if s.Sales[id] > 0 {
			appliedUnits += s.Number[id]
		}
		if s.Status[id] == service.StatusCancelled && s.Sales[id] > 0 && s.Returns[id] != 1 {
			unreturned++
		}
	}
	for id := range s.Sales {
		if s.Orders[id] == 0 {
			orphans++
		}
	}
	for id := range s.Returns {
		if s.Orders[id] == 0 || s.Status[id] != service.StatusCancelled || s.Sales[id] == 0 {
			strayReturns++
		}
	}
	if unapplied > 0 || orphans > 0 || appliedUnits != s.SaleUnits {
		fail("stock not applied exactly once per order: %d orders without a sale row, %d sale rows without an order, %d units in sale rows for %d in the applied orders",
			unapplied, orphans, s.SaleUnits, appliedUnits)
	}
	if unreturned > 0 || strayReturns > 0 {
		fail("units not returned exactly once per cancelled order: %d cancelled orders without one return, %d returns of orders not cancelled or not applied",
			unreturned, strayReturns)
	}
	if s.Stock+s.Sale != total || s.Sale != s.SaleUnits-s.ReturnUnits {
		fail("units do not add up: mysql stock %d + sale %d != %d created + %d added, or the sale differs from the stock logs (%d sold - %d returned)",
			s.Stock, s.Sale, want.Initial, s.Adds, s.SaleUnits, s.ReturnUnits)
	}
	if s.Redis == nil || *s.Redis != s.Stock {
		fail("redis and mysql disagree: %s", s)
	}
	if s.DeadLetters != want.DeadLetters {
		fail("%d dead letters, want %d", s.DeadLetters, want.DeadLetters)
	}
	return out
}

func sortedKeys[V any](m map[int64]V) []int64 { return slices.Sorted(maps.Keys(m)) }

// AwaitSettled reads goodsID until it is settled, and fails the test (not
// fatally) if that takes longer than within. It returns the last snapshot.
func (s *Servers) AwaitSettled(tb testing.TB, goodsID int64, within time.Duration) Snapshot {
	tb.Helper()
	var snap Snapshot
	var err error
	settled := WaitFor(within, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		snap, err = s.Snapshot(ctx, goodsID)
		return err == nil && snap.Settled()
	})
	if !settled {
		tb.Errorf("not settled within %v: %s (last error: %v)", within, snap, err)
	}
	return snap
}

// CheckInvariants waits for goodsID's queues to drain, then checks the
// sale's invariants on MySQL and Redis directly and reports each broken one.
// It returns what it read.
func (s *Servers) CheckInvariants(tb testing.TB, goodsID int64, want Sale) Snapshot {
	tb.Helper()
	within := want.Within
	if within == 0 {
		within = time.Minute
	}
	snap := s.AwaitSettled(tb, goodsID, within)
	if v := snap.Violations(want); len(v) > 0 {
		tb.Errorf("goods %d broke the sale's invariants:\n  %s\n(%s)", goodsID, strings.Join(v, "\n  "), snap)
	}
	return snap
}
