package store

import (
	"context"
	"database/sql"
	"errors"
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
	got, err := m.db.Truth(ctx, m.g.ID)
	if err != nil {
		t.Fatal(err)
	}
	m.db.SettleTruthAfter(0)
	whole, err := m.db.Truth(ctx, m.g.ID)
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
	if err := db.moveTruthMark(ctx, m.g.ID, 100, places); err != nil {
		t.Fatal(err)
	}
	if mark := m.mark(t); mark != 100 {
		t.Fatalf("mark %d with the map unchanged, want 100", mark)
	}
	if _, err := db.db.Exec("UPDATE shard_map SET host = ?, target = ?, epoch = 2 WHERE logical_db = 0", hosts[1], hosts[0]); err != nil {
		t.Fatal(err)
	}
	if err := db.moveTruthMark(ctx, m.g.ID, 200, places); err != nil {
		t.Fatal(err)
	}
	if mark := m.mark(t); mark != 100 {
		t.Errorf("mark %d after the logical database moved, want it left at 100", mark)
	}
}
