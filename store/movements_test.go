package store

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/ledger"
	"github.com/go-seckill/seckill/service/recovery"
)

// These tests run the ledger and the reconciliation on the real stores,
// with a Redis that refuses some writes on demand.

// flakyRedis refuses the next failAdd additions and failReturn returns, as
// a Redis refusing writes for a moment would.
type flakyRedis struct {
	*Redis
	failAdd, failReturn atomic.Int32
}

var errRefused = errors.New("READONLY You can't write against a read only replica")

func (f *flakyRedis) Add(ctx context.Context, goodsID, n int64, opID string) error {
	if f.failAdd.Add(-1) >= 0 {
		return unavailable(errRefused)
	}
	return f.Redis.Add(ctx, goodsID, n, opID)
}

func (f *flakyRedis) Return(ctx context.Context, orderID, goodsID, userID, n int64) error {
	if f.failReturn.Add(-1) >= 0 {
		return unavailable(errRefused)
	}
	return f.Redis.Return(ctx, orderID, goodsID, userID, n)
}

type noAnnouncer struct{}

func (noAnnouncer) AnnounceStockBack(context.Context, int64) error { return nil }

// rig is a ledger and a reconciler on a test database and Redis prefix.
type rig struct {
	db    *Database
	r     *Redis
	cache *flakyRedis
	l     *ledger.Ledger
	rec   *recovery.Reconciler
	log   *slog.Logger
}

func openTestDatabase(tb testing.TB) *Database {
	tb.Helper()
	ctx := context.Background()
	db, err := OpenDatabase(ctx, testenv.MySQL(tb), nil, 16)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

func newRig(tb testing.TB) *rig {
	return newRigOn(tb, openTestDatabase(tb), openTestRedis(tb))
}

func newRigOn(tb testing.TB, db *Database, r *Redis) *rig {
	tb.Helper()
	g := &rig{db: db, r: r, cache: &flakyRedis{Redis: r}, log: slog.New(slog.NewTextHandler(testenv.LogWriter(tb), nil))}
	g.l = ledger.New(ledgerStores(g.cache, r, db, db, noAnnouncer{}), ledger.Options{
		WriteBudget: 5 * time.Second, V1Timeout: 5 * time.Second, RebuildGrace: 50 * time.Millisecond,
	}, g.log)
	tb.Cleanup(g.l.Close)
	g.rec = recovery.NewReconciler(db, g.l.Repairs(), g.log)
	return g
}

func (g *rig) goods(tb testing.TB, stock, limit int64) service.Goods {
	tb.Helper()
	gd, err := g.db.CreateGoods(context.Background(), service.NewGoods{Name: "g", Stock: stock, PerUserLimit: limit})
	if err != nil {
		tb.Fatal(err)
	}
	if err := g.l.Put(context.Background(), gd); err != nil {
		tb.Fatal(err)
	}
	return gd
}

var lastOrderID atomic.Int64

func init() { lastOrderID.Store(time.Now().UnixNano()) }

// sell places an order of n units for user (reserved in Redis, written,
// its sale applied), already past its payment deadline.
func (g *rig) sell(tb testing.TB, goodsID, userID, n int64) service.StockMessage {
	tb.Helper()
	ctx := context.Background()
	o := service.Order{ID: lastOrderID.Add(1), UserID: userID, GoodsID: goodsID, Number: n, PayDeadline: time.Now().Add(-time.Second)}
	if err := g.r.Reserve(ctx, goodsID, userID, n, time.Now()); err != nil {
		tb.Fatal(err)
	}
	if err := g.db.InsertOrder(ctx, o, service.OrderTable{}); err != nil {
		tb.Fatal(err)
	}
	m := service.MessageOf(o, service.OrderTable{})
	if err := g.db.ApplySale(ctx, m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// cancel cancels an order in the database, as the payment timeout does
// before it returns the units.
func (g *rig) cancel(tb testing.TB, m service.StockMessage) {
	tb.Helper()
	if ok, err := g.db.CancelOrder(context.Background(), m.At(), m.OrderID, time.Now()); err != nil || !ok {
		tb.Fatalf("cancel order %d: %v %v", m.OrderID, ok, err)
	}
}

func (g *rig) redisStock(tb testing.TB, goodsID int64) int64 {
	tb.Helper()
	n, ok, err := g.r.Stock(context.Background(), goodsID)
	if err != nil || !ok {
		tb.Fatalf("redis stock of goods %d: %v (loaded %v)", goodsID, err, ok)
	}
	return n
}

func (g *rig) truth(tb testing.TB, goodsID int64) int64 {
	tb.Helper()
	n, err := truthOf(context.Background(), g.db, goodsID)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// passes runs n reconciliation passes and returns the goods' last report.
func (g *rig) passes(tb testing.TB, goodsID int64, n int) recovery.Drift {
	tb.Helper()
	var last recovery.Drift
	for range n {
		report, err := g.rec.Reconcile(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		for _, d := range report {
			if d.GoodsID == goodsID {
				last = d
			}
		}
	}
	return last
}

// markers lists the op: and ret: fields of a goods hash.
func (g *rig) markers(tb testing.TB, goodsID int64) []string {
	tb.Helper()
	fields, err := g.r.c.HKeys(context.Background(), GoodsKey(g.r.prefix, goodsID)).Result()
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, f := range fields {
		if strings.HasPrefix(f, "op:") || strings.HasPrefix(f, "ret:") {
			out = append(out, f)
		}
	}
	return out
}

// An addition reached MySQL, Redis refused it, the reconciliation raised
// Redis to the truth, and the admin repeated the op_id as told: the units
// count once.
func TestRepairedAdditionIsNotAddedAgainByItsRetry(t *testing.T) {
	ctx := context.Background()
	g := newRig(t)
	gd := g.goods(t, 10, 0)
	g.cache.failAdd.Store(1)
	if _, err := g.l.AddStock(ctx, gd.ID, 5, "restock-1"); err == nil {
		t.Fatal("addition with redis refusing writes: no error")
	}
	if d := g.passes(t, gd.ID, recovery.RepairAfter); !d.Repaired || g.redisStock(t, gd.ID) != 15 {
		t.Fatalf("after %d passes: %+v, redis %d; want repaired to 15", recovery.RepairAfter, d, g.redisStock(t, gd.ID))
	}
	replayed, err := g.l.AddStock(ctx, gd.ID, 5, "restock-1")
	if err != nil || !replayed {
		t.Fatalf("retry: replayed %v, %v", replayed, err)
	}
	if got, truth := g.redisStock(t, gd.ID), g.truth(t, gd.ID); got != 15 || truth != 15 {
		t.Errorf("after the retry: redis %d, truth %d; want 15 and 15", got, truth)
	}
}

// A cancelled order's return reached MySQL, Redis refused it, the
// reconciliation raised Redis to the truth, and the timeout consumer
// retried: the units come back once.
func TestRepairedReturnIsNotReturnedAgainByItsRetry(t *testing.T) {
	ctx := context.Background()
	g := newRig(t)
	gd := g.goods(t, 10, 0)
	m := g.sell(t, gd.ID, 1, 2)
	g.sell(t, gd.ID, 2, 3)
	g.cancel(t, m)
	g.cache.failReturn.Store(1)
	if err := g.l.ReturnOrder(ctx, m); err == nil {
		t.Fatal("return with redis refusing writes: no error")
	}
	if d := g.passes(t, gd.ID, recovery.RepairAfter); !d.Repaired || g.redisStock(t, gd.ID) != 7 {
		t.Fatalf("after %d passes: %+v, redis %d; want repaired to 7", recovery.RepairAfter, d, g.redisStock(t, gd.ID))
	}
	if err := g.l.ReturnOrder(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, truth := g.redisStock(t, gd.ID), g.truth(t, gd.ID); got != 7 || truth != 7 {
		t.Errorf("after the retry: redis %d, truth %d; want 7 and 7", got, truth)
	}
}

// Two instances repair the same drift at once: one repair goes through,
// and the retry after both adds nothing.
func TestTwoReconcilersRepairOnce(t *testing.T) {
	ctx := context.Background()
	g := newRig(t)
	other := recovery.NewReconciler(g.db, g.l.Repairs(), g.log)
	gd := g.goods(t, 10, 0)
	g.cache.failAdd.Store(1)
	if _, err := g.l.AddStock(ctx, gd.ID, 5, "restock-2"); err == nil {
		t.Fatal("no error")
	}
	for _, rec := range []*recovery.Reconciler{g.rec, other} {
		for range recovery.RepairAfter - 1 {
			if _, err := rec.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	var repaired atomic.Int32
	var wg sync.WaitGroup
	for _, rec := range []*recovery.Reconciler{g.rec, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			report, err := rec.Reconcile(ctx)
			if err != nil {
				t.Error(err)
			}
			for _, d := range report {
				if d.GoodsID == gd.ID && d.Repaired {
					repaired.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if repaired.Load() != 1 {
		t.Errorf("%d repairs, want exactly 1", repaired.Load())
	}
	if _, err := g.l.AddStock(ctx, gd.ID, 5, "restock-2"); err != nil {
		t.Fatal(err)
	}
	if got := g.redisStock(t, gd.ID); got != 15 {
		t.Errorf("redis %d after both repairs and the retry, want 15", got)
	}
}

// Copies of one movement running at once (the timeout message and the
// expiry sweep, an admin's double submit) count once.
func TestConcurrentCopiesOfAMovementCountOnce(t *testing.T) {
	ctx := context.Background()
	g := newRig(t)
	gd := g.goods(t, 100, 0)
	m := g.sell(t, gd.ID, 1, 4)
	g.cancel(t, m)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := g.l.ReturnOrder(ctx, m); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := g.l.AddStock(ctx, gd.ID, 7, "double-submit"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := g.redisStock(t, gd.ID); got != 107 {
		t.Errorf("redis %d, want 107 (100 - 4 + 4 + 7)", got)
	}
}

// Markers live while their movement is in flight, not for ever: after
// many additions and returns the goods hash holds none.
func TestMarkersDoNotOutliveTheirMovements(t *testing.T) {
	ctx := context.Background()
	g := newRig(t)
	gd := g.goods(t, 1000, 0)
	for i := range int64(40) {
		if _, err := g.l.AddStock(ctx, gd.ID, 1, "op-"+string(rune('a'+i%26))+string(rune('a'+i/26))); err != nil {
			t.Fatal(err)
		}
		m := g.sell(t, gd.ID, i+1, 1)
		g.cancel(t, m)
		if err := g.l.ReturnOrder(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if got := g.redisStock(t, gd.ID); got != 1040 {
		t.Errorf("redis %d, want 1040", got)
	}
	if ms := g.markers(t, gd.ID); len(ms) != 0 {
		t.Errorf("%d markers left in the goods hash, e.g. %v", len(ms), ms[:min(len(ms), 3)])
	}
}

// racingLedger runs before ahead of every repair: what happens between a
// pass's reads and its repair.
type racingLedger struct {
	*ledger.Repairs
	before func()
}

func (r racingLedger) Repair(ctx context.Context, goodsID, expected, delta int64, ops []string, returns []int64) (bool, error) {
	r.before()
	return r.Repairs.Repair(ctx, goodsID, expected, delta, ops, returns)
}

// The retry of a movement runs after the pass read Redis and the truth and
// before its repair: the repair no longer applies, and the units count once.
func TestRetryBetweenAPassAndItsRepair(t *testing.T) {
	ctx := context.Background()
	g := newRig(t)
	gd := g.goods(t, 10, 0)
	g.cache.failAdd.Store(1)
	if _, err := g.l.AddStock(ctx, gd.ID, 5, "restock-3"); err == nil {
		t.Fatal("no error")
	}
	rec := recovery.NewReconciler(g.db, racingLedger{g.l.Repairs(), func() {
		if _, err := g.l.AddStock(ctx, gd.ID, 5, "restock-3"); err != nil {
			t.Error(err)
		}
	}}, g.log)
	for range recovery.RepairAfter {
		report, err := rec.Reconcile(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if report[0].Repaired {
			t.Error("the repair applied although the retry changed redis after the pass read it")
		}
	}
	if got := g.redisStock(t, gd.ID); got != 15 {
		t.Errorf("redis %d, want 15", got)
	}
	if d := g.passes(t, gd.ID, 1); d.Drift != 0 {
		t.Errorf("after the retry: %+v", d)
	}
}

// lateMovement records an addition in MySQL right after the truth is read,
// as an admin call between its MySQL and Redis steps would.
type lateMovement struct {
	*Database
	after func()
}

func (l *lateMovement) TruthOfEach(ctx context.Context, goodsIDs []int64) ([]int64, error) {
	n, err := l.Database.TruthOfEach(ctx, goodsIDs)
	if l.after != nil {
		l.after()
		l.after = nil
	}
	return n, err
}

// A movement recorded while a pass reads the truth may or may not be in
// it: the repair waits rather than mark it (which would make its own step
// add nothing although the truth lacks it) or leave it unmarked (which
// would count it twice).
func TestMovementRecordedWhileTheTruthIsReadIsNeverCountedWrong(t *testing.T) {
	ctx := context.Background()
	g := newRig(t)
	late := &lateMovement{Database: g.db}
	l := ledger.New(ledgerStores(g.r, g.r, g.db, late, noAnnouncer{}), ledger.Options{WriteBudget: time.Second, V1Timeout: time.Second}, g.log)
	defer l.Close()
	rec := recovery.NewReconciler(g.db, l.Repairs(), g.log)
	gd := g.goods(t, 10, 0)
	if ok, err := g.r.Adjust(ctx, gd.ID, 10, -2); err != nil || !ok { // two units Redis lost
		t.Fatal(ok, err)
	}
	pass := func() recovery.Drift {
		report, err := rec.Reconcile(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return report[0]
	}
	for range recovery.RepairAfter - 1 {
		pass()
	}
	late.after = func() {
		if err := g.db.AddStock(ctx, gd.ID, 5, "late"); err != nil {
			t.Error(err)
		}
	}
	if d := pass(); d.Repaired {
		t.Errorf("repaired with a movement recorded during the pass: %+v", d)
	}
	// The addition's Redis step, then the next pass.
	if _, err := l.AddStock(ctx, gd.ID, 5, "late"); err != nil {
		t.Fatal(err)
	}
	if d := pass(); !d.Repaired {
		t.Errorf("the next pass did not repair: %+v", d)
	}
	if got, truth := g.redisStock(t, gd.ID), g.truth(t, gd.ID); got != 15 || truth != 15 {
		t.Errorf("redis %d, truth %d; want 15 and 15", got, truth)
	}
}

// A movement whose Redis step ran but whose record could not say so keeps
// its marker; the next pass settles it, and its retry adds nothing. Stale
// markers of movements settled before go too.
func TestAPassSettlesMarkersLeftBehind(t *testing.T) {
	ctx := context.Background()
	g := newRig(t)
	gd := g.goods(t, 10, 0)
	if err := g.db.AddStock(ctx, gd.ID, 5, "half-done"); err != nil {
		t.Fatal(err)
	}
	if err := g.r.Add(ctx, gd.ID, 5, "half-done"); err != nil { // the record update is lost
		t.Fatal(err)
	}
	if _, err := g.l.AddStock(ctx, gd.ID, 3, "done"); err != nil {
		t.Fatal(err)
	}
	if err := g.r.c.HSet(ctx, GoodsKey(g.r.prefix, gd.ID), "op:done", 3).Err(); err != nil { // left behind by a failed delete
		t.Fatal(err)
	}
	if d := g.passes(t, gd.ID, 1); d.Drift != 0 {
		t.Errorf("%+v", d)
	}
	if ms := g.markers(t, gd.ID); len(ms) != 0 {
		t.Errorf("markers after a pass: %v", ms)
	}
	for _, op := range []string{"half-done", "done"} {
		if _, err := g.l.AddStock(ctx, gd.ID, 5, op); err != nil {
			t.Fatal(err)
		}
	}
	if got := g.redisStock(t, gd.ID); got != 18 {
		t.Errorf("redis %d after the retries, want 18", got)
	}
}

// A movement that found Redis without the goods is held by the rebuild;
// its retry then adds nothing, and no marker stays.
func TestMovementDuringARedisLossCountsOnce(t *testing.T) {
	ctx := context.Background()
	g := newRig(t)
	gd := g.goods(t, 10, 0)
	m := g.sell(t, gd.ID, 1, 2)
	g.cancel(t, m)
	if err := g.r.c.Del(ctx, GoodsKey(g.r.prefix, gd.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.l.AddStock(ctx, gd.ID, 5, "during-loss"); err != nil {
		t.Fatal(err)
	}
	if err := g.l.ReturnOrder(ctx, m); err != nil {
		t.Fatal(err)
	}
	if restored, err := g.l.Repairs().RestoreMissing(ctx); err != nil || len(restored) != 1 {
		t.Fatalf("restored %v: %v", restored, err)
	}
	if _, err := g.l.AddStock(ctx, gd.ID, 5, "during-loss"); err != nil {
		t.Fatal(err)
	}
	if err := g.l.ReturnOrder(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, truth := g.redisStock(t, gd.ID), g.truth(t, gd.ID); got != 15 || truth != 15 {
		t.Errorf("redis %d, truth %d; want 15 and 15", got, truth)
	}
	if ms := g.markers(t, gd.ID); len(ms) != 0 {
		t.Errorf("markers after the rebuild: %v", ms)
	}
}
