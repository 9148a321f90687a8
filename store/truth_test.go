package store

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
)

// truthHorizon is the horizon the mark tests give Truth: ids made before
// it are old enough to be counted settled for good.
const truthHorizon = time.Minute

// marked is a database whose Truth keeps its marks, with the helpers the
// tests write orders through.
type marked struct {
	db *Database
	g  service.Goods
}

func newMarked(t *testing.T, db *Database, stock int64) *marked {
	t.Helper()
	db.SettleTruthAfter(truthHorizon)
	g, err := db.CreateGoods(context.Background(), service.NewGoods{Name: "g", Stock: stock})
	if err != nil {
		t.Fatal(err)
	}
	return &marked{db: db, g: g}
}

// order writes a live order of n units with id into table (0: orders),
// its payment deadline passed.
func (m *marked) order(t *testing.T, id int64, table int, n int64) service.StockMessage {
	t.Helper()
	o := service.Order{ID: id, UserID: id % 1000, GoodsID: m.g.ID, Number: n, PayDeadline: time.Now().Add(-time.Second)}
	at := service.OrderTable{Table: table}
	if err := m.db.InsertOrder(context.Background(), o, at); err != nil {
		t.Fatal(err)
	}
	return service.MessageOf(o, at)
}

func (m *marked) apply(t *testing.T, msg service.StockMessage) {
	t.Helper()
	if err := m.db.ApplySale(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

// check runs Truth with its marks and says it is want, and what Truth
// reading the whole history says; it returns the mark after the call.
func (m *marked) check(t *testing.T, step string, want int64) int64 {
	t.Helper()
	ctx := context.Background()
	got, err := truthOf(ctx, m.db, m.g.ID)
	if err != nil {
		t.Fatal(err)
	}
	m.db.SettleTruthAfter(0)
	whole, err := truthOf(ctx, m.db, m.g.ID)
	m.db.SettleTruthAfter(truthHorizon)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || whole != want {
		t.Errorf("%s: truth %d from the mark, %d from the whole history, want %d", step, got, whole, want)
	}
	return m.mark(t)
}

func (m *marked) mark(t *testing.T) int64 {
	t.Helper()
	var mark int64
	err := m.db.db.QueryRow("SELECT settled_below FROM goods_truth_marks WHERE goods_id = ?", m.g.ID).Scan(&mark)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return mark
}

// The truth read from the goods' mark is the truth read from the whole
// history, whatever orders sit on either side of the mark: applied ones
// below it, the first unapplied one at it (a consumer that is down), a
// write that commits late within the horizon, orders cancelled and
// returned or refused below it, a cancelled order whose sale is not
// applied yet.
func TestTruthStaysExactAcrossItsMark(t *testing.T) {
	for _, c := range []struct {
		name string
		open func(tb testing.TB) *Database
	}{
		{"mariadb", openTestDatabase},
		{"sqlite", openSQLiteDatabase},
	} {
		t.Run(c.name, func(t *testing.T) { truthAcrossItsMark(t, c.open(t)) })
	}
}

func truthAcrossItsMark(t *testing.T, db *Database) {
	ctx := context.Background()
	m := newMarked(t, db, 1000)
	old := firstIDAt(time.Now().Add(-10 * truthHorizon)) // made long before the horizon
	recent := firstIDAt(time.Now().Add(-truthHorizon / 2))

	// Old orders across two tables: the first two applied, the third not
	// (the consumer is down), then one refused, one applied.
	a := m.order(t, old+1, 0, 1)
	b := m.order(t, old+2, 3, 2)
	stuck := m.order(t, old+3, 0, 4)
	refused := m.order(t, old+4, 3, 8)
	d := m.order(t, old+5, 0, 16)
	fresh := m.order(t, recent, 3, 32) // within the horizon, not applied
	for _, o := range []service.StockMessage{a, b, d} {
		m.apply(t, o)
	}
	if err := db.MarkRefused(ctx, refused); err != nil {
		t.Fatal(err)
	}
	stock := int64(1000 - 1 - 2 - 16)
	if mark := m.check(t, "the consumer is down", stock-4-32); mark != stuck.OrderID {
		t.Errorf("mark %d, want the first unapplied order %d", mark, stuck.OrderID)
	}
	// Again: the mark holds at the unapplied order, which still counts.
	if mark := m.check(t, "read again from the mark", stock-4-32); mark != stuck.OrderID {
		t.Errorf("mark %d, want %d", mark, stuck.OrderID)
	}

	// The consumer is back: the mark moves past every old order, up to the
	// horizon, never past the fresh order.
	m.apply(t, stuck)
	stock -= 4
	mark := m.check(t, "the consumer caught up", stock-32)
	if mark <= d.OrderID || mark > fresh.OrderID {
		t.Errorf("mark %d, want past %d and at most the fresh order %d", mark, d.OrderID, fresh.OrderID)
	}

	// A write that commits late, within the horizon, just after the mark.
	late := m.order(t, mark, 0, 64)
	m.check(t, "a late write at the mark", stock-32-64)
	m.apply(t, late)
	stock -= 64
	m.check(t, "the late write applied", stock-32)

	// An applied order below the mark is cancelled and its units return:
	// the stock holds them, and the order takes nothing off.
	if ok, err := db.CancelOrder(ctx, a.At(), a.OrderID, time.Now()); err != nil || !ok {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	m.check(t, "cancelled below the mark, not returned yet", stock-32)
	if err := db.ReturnSale(ctx, a); err != nil {
		t.Fatal(err)
	}
	stock++
	m.check(t, "cancelled below the mark and returned", stock-32)

	// A cancelled order whose sale is not applied yet still counts (its
	// sale, then its return, are to come) and holds the mark.
	gone := m.order(t, recent+1, 0, 128)
	if ok, err := db.CancelOrder(ctx, gone.At(), gone.OrderID, time.Now()); err != nil || !ok {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	m.check(t, "cancelled before its sale", stock-32-128)
	m.apply(t, gone)
	m.check(t, "cancelled, applied", stock-128-32)
	if err := db.ReturnSale(ctx, gone); err != nil {
		t.Fatal(err)
	}
	m.check(t, "cancelled, applied and returned", stock-32)

	// Another goods' mark is its own, and moves only past orders it read.
	other := newMarked(t, db, 10)
	o := other.order(t, old+100, 0, 3)
	if mark := other.check(t, "another goods", 7); mark != 0 {
		t.Errorf("the other goods' mark %d, want none: no order read is below its unapplied one", mark)
	}
	other.apply(t, o)
	o2 := other.order(t, old+101, 3, 2)
	if mark := other.check(t, "another goods, one applied", 5); mark != o2.OrderID {
		t.Errorf("the other goods' mark %d, want its unapplied order %d", mark, o2.OrderID)
	}
}

// A mark moves only if V7's logical databases stayed where the map the
// reads went by put them: after a move, orders may have been read on a
// host that no longer had them.
func TestTruthMarkStaysWhenALogicalDatabaseMoved(t *testing.T) {
	ctx := context.Background()
	db := openTestDatabase(t)
	if err := db.OpenLogicalHosts(ctx, []string{testenv.MySQL(t), testenv.MySQL(t)}, 2); err != nil {
		t.Fatal(err)
	}
	hosts := db.LogicalHostIDs()
	if _, err := db.db.Exec("INSERT INTO shard_map (logical_db, host, epoch) VALUES (0, ?, 1)", hosts[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RefreshShardMap(ctx); err != nil {
		t.Fatal(err)
	}
	m := newMarked(t, db, 10)
	places := db.movablePlaces()
	if places == nil {
		t.Fatal("two logical hosts, yet the logical databases cannot move")
	}
	if err := db.moveTruthMarks(ctx, []truthMove{{m.g.ID, 100}}, places); err != nil {
		t.Fatal(err)
	}
	if mark := m.mark(t); mark != 100 {
		t.Fatalf("mark %d with the map unchanged, want 100", mark)
	}
	if _, err := db.db.Exec("UPDATE shard_map SET host = ?, target = ?, epoch = 2 WHERE logical_db = 0", hosts[1], hosts[0]); err != nil {
		t.Fatal(err)
	}
	if err := db.moveTruthMarks(ctx, []truthMove{{m.g.ID, 200}}, places); err != nil {
		t.Fatal(err)
	}
	if mark := m.mark(t); mark != 100 {
		t.Errorf("mark %d after the logical database moved, want it left at 100", mark)
	}
}

// truthBook writes goods' order histories straight into the tables, and
// keeps what each goods' truth must then be.
type truthBook struct {
	db    *Database
	truth map[int64]int64
	// The ids of the old orders are from old on, those of the recent ones
	// from recent on.
	old, recent int64
}

// orders writes n orders of goods of units each into at, ids from first
// on by step, with status; their sales are applied (the stock log, the
// stock) when applied.
func (b *truthBook) orders(t *testing.T, goodsID int64, at service.OrderTable, first, step int64, n int, units int64, status int, applied bool) {
	t.Helper()
	var rows, logs [][]any
	for i := range int64(n) {
		id := first + i*step
		rows = append(rows, []any{id, id % 1000, goodsID, units, status})
		if applied {
			logs = append(logs, []any{goodsID, id, service.OpSale, units})
		}
	}
	insertRows(t, b.db, at.Name(), "id, user_id, goods_id, number, status", rows)
	live := slices.Contains(service.LiveStatuses, status)
	switch {
	case applied:
		insertRows(t, b.db, "goods_stock_logs", "goods_id, order_id, op, number", logs)
		b.stockOff(t, goodsID, int64(n)*units)
		b.truth[goodsID] -= int64(n) * units
	case live:
		b.truth[goodsID] -= int64(n) * units
	}
}

// apply applies the sale of the orders of goods with ids from first on by
// step, written unapplied: the truth stays.
func (b *truthBook) apply(t *testing.T, goodsID, first, step int64, n int, units int64) {
	t.Helper()
	var logs [][]any
	for i := range int64(n) {
		logs = append(logs, []any{goodsID, first + i*step, service.OpSale, units})
	}
	insertRows(t, b.db, "goods_stock_logs", "goods_id, order_id, op, number", logs)
	b.stockOff(t, goodsID, int64(n)*units)
}

func (b *truthBook) stockOff(t *testing.T, goodsID, n int64) {
	t.Helper()
	if _, err := b.db.db.Exec("UPDATE goods SET stock = stock - ? WHERE id = ?", n, goodsID); err != nil {
		t.Fatal(err)
	}
}

// marks are the goods' truth marks.
func (b *truthBook) marks(t *testing.T) map[int64]int64 {
	t.Helper()
	marks := map[int64]int64{}
	err := queryEach(context.Background(), b.db.db, "SELECT goods_id, settled_below FROM goods_truth_marks", nil, func(rows *sql.Rows) error {
		var g, m int64
		err := rows.Scan(&g, &m)
		marks[g] = m
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return marks
}

// horizonMarks are the goods' truth marks, those at a call's horizon
// (past every old order the tests write, before the recent ones) as -1:
// each call has its own.
func (b *truthBook) horizonMarks(t *testing.T) map[int64]int64 {
	t.Helper()
	marks := b.marks(t)
	for g, m := range marks {
		if m > b.old+1_000_000 && m < b.recent {
			marks[g] = -1
		}
	}
	return marks
}

// want says each of truths, read as how, is the book's truth of goods at
// its place.
func (b *truthBook) want(t *testing.T, step, how string, goods, truths []int64) {
	t.Helper()
	for i, g := range goods {
		if truths[i] != b.truth[g] {
			t.Errorf("%s: goods %d's truth %s %d, want %d", step, g, how, truths[i], b.truth[g])
		}
	}
}

// check reads the truths of goods (in that order, with repeats) together,
// and says each is the book's; then, from the marks as they were before,
// that each goods' Truth alone says the same and moves the marks alike,
// and that the truths read from the whole history are the same too.
func (b *truthBook) check(t *testing.T, step string, goods []int64) {
	t.Helper()
	ctx := context.Background()
	before := b.marks(t)
	truths, err := b.db.TruthOfEach(ctx, goods)
	if err != nil {
		t.Fatal(err)
	}
	b.want(t, step, "read together", goods, truths)
	together := b.horizonMarks(t)

	if _, err := b.db.db.Exec("DELETE FROM goods_truth_marks"); err != nil {
		t.Fatal(err)
	}
	for g, m := range before {
		if err := b.db.raiseTruthMark(ctx, g, m); err != nil {
			t.Fatal(err)
		}
	}
	alone := make([]int64, len(goods))
	for i, g := range goods {
		if alone[i], err = truthOf(ctx, b.db, g); err != nil {
			t.Fatal(err)
		}
	}
	b.want(t, step, "read alone", goods, alone)
	aloneMarks := b.horizonMarks(t)
	if !maps.Equal(aloneMarks, together) {
		t.Errorf("%s: marks moved by the truths read together %v, by each read alone %v", step, together, aloneMarks)
	}

	b.db.SettleTruthAfter(0)
	defer b.db.SettleTruthAfter(truthHorizon)
	whole, err := b.db.TruthOfEach(ctx, goods)
	if err != nil {
		t.Fatal(err)
	}
	b.want(t, step, "from the whole history", goods, whole)
	if after := b.horizonMarks(t); !maps.Equal(after, aloneMarks) {
		t.Errorf("%s: the whole history's read moved the marks: %v, were %v", step, after, aloneMarks)
	}
}

// The truths of many goods read together are each goods' truth read
// alone, with V7's logical tables: orders spread over tables and goods
// interleaved in a table, applied, unapplied, refused, more of a goods in
// a table than a chunk, before and after the marks, marks set at the
// horizon and at a stuck order, and moved again.
func TestTruthOfEachIsEachGoodsTruth(t *testing.T) {
	ctx := context.Background()
	db := openTestDatabase(t)
	if err := db.ClaimAll(ctx); err != nil {
		t.Fatal(err)
	}
	db.SettleTruthAfter(truthHorizon)
	old := firstIDAt(time.Now().Add(-10 * truthHorizon)) // made long before the horizon
	recent := firstIDAt(time.Now().Add(-truthHorizon / 2))
	b := &truthBook{db: db, truth: map[int64]int64{}, old: old, recent: recent}
	var g []int64
	for range 6 {
		gd, err := db.CreateGoods(ctx, service.NewGoods{Name: "g", Stock: 100_000})
		if err != nil {
			t.Fatal(err)
		}
		g = append(g, gd.ID)
		b.truth[gd.ID] = gd.Stock
	}
	orders, order3, l0, l7 := service.OrderTable{}, service.OrderTable{Table: 3}, service.OrderTable{DB: 1, Table: 1}, service.OrderTable{DB: 8, Table: 16}

	// g0: more than a chunk of old applied orders in order_3, a few in
	// l0_order_1, two recent unapplied ones.
	b.orders(t, g[0], order3, old, 2, 2*truthChunk+500, 1, service.StatusPaid, true)
	b.orders(t, g[0], l0, old+10_000, 1, 3, 2, service.StatusPaid, true)
	b.orders(t, g[0], orders, recent, 1, 2, 5, service.StatusUnpaid, false)
	// g1: old orders in three tables, one stuck unapplied, one refused,
	// recent applied ones.
	b.orders(t, g[1], orders, old+20_000, 1, 5, 1, service.StatusPaid, true)
	b.orders(t, g[1], l7, old+20_010, 1, 1, 7, service.StatusUnpaid, false) // stuck
	b.orders(t, g[1], order3, old+20_020, 1, 1, 9, service.StatusRefused, false)
	b.orders(t, g[1], l0, old+20_030, 1, 4, 1, service.StatusCancelled, true)
	b.orders(t, g[1], orders, recent+100, 1, 3, 2, service.StatusPaid, true)
	// g2: none. g3: more than a chunk of recent unapplied orders in one
	// logical table.
	b.orders(t, g[3], l7, recent+1_000, 1, truthChunk+300, 1, service.StatusUnpaid, false)
	// g4: old orders interleaved with g0's in order_3, every other one
	// applied.
	b.orders(t, g[4], order3, old+1, 4, 300, 1, service.StatusPaid, true)
	b.orders(t, g[4], order3, old+3, 4, 300, 2, service.StatusPaid, false)
	// g5: old unapplied orders in two tables.
	b.orders(t, g[5], orders, old+30_000, 1, 2, 3, service.StatusUnpaid, false)
	b.orders(t, g[5], l0, old+30_010, 1, 2, 4, service.StatusPaid, false)

	all := []int64{g[4], g[0], g[2], g[1], g[5], g[3], g[0]}
	b.check(t, "first read", all)
	// g0's mark at the horizon, g1's and g4's at their first unapplied
	// order; g5's first order read is its first unapplied, and g2 and g3
	// have no order below the horizon: no mark.
	if marks, want := b.horizonMarks(t), map[int64]int64{g[0]: -1, g[1]: old + 20_010, g[4]: old + 3}; !maps.Equal(marks, want) {
		t.Errorf("marks %v, want %v", marks, want)
	}

	// The consumer catches up on most old orders, new ones come: more than
	// a chunk of g0's past its mark, g2's first ones, old and recent.
	b.apply(t, g[1], old+20_010, 1, 1, 7)
	b.apply(t, g[4], old+3, 4, 300, 2)
	b.apply(t, g[5], old+30_000, 1, 2, 3)
	b.orders(t, g[0], order3, recent+10_000, 3, truthChunk+200, 1, service.StatusUnpaid, false)
	b.orders(t, g[2], l0, old+40_000, 1, 2, 6, service.StatusPaid, true)
	b.orders(t, g[2], orders, recent+50_000, 1, 1, 8, service.StatusUnpaid, false)
	b.check(t, "after the catch-up", all)
	if marks, want := b.horizonMarks(t), map[int64]int64{g[0]: -1, g[1]: -1, g[2]: -1, g[4]: -1, g[5]: old + 30_010}; !maps.Equal(marks, want) {
		t.Errorf("marks %v, want %v: g5's at its orders still unapplied, the others' with old orders at the horizon", marks, want)
	}
	b.check(t, "again from the moved marks", all)
	b.check(t, "a few of them", []int64{g[3], g[1]})
}

// truthOf is TruthOfEach of one goods.
func truthOf(ctx context.Context, d *Database, goodsID int64) (int64, error) {
	truths, err := d.TruthOfEach(ctx, []int64{goodsID})
	if err != nil {
		return 0, err
	}
	return truths[0], nil
}
