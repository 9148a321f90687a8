package recovery

import (
	"context"
	"slices"
	"testing"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/internal/fakes"
)

// reading is one goods' Redis stock (ok false: none) and truth in a pass.
type reading struct {
	stock int64
	ok    bool
	truth int64
}

type reconcileWorld struct {
	rec      *fakes.Recorder
	ledger   *fakeLedger
	goods    *fakeGoods
	r        *Reconciler
	readings map[int64]reading
}

// newReconciler reconciles goods 1 (and any other the readings name), none
// with a per-user limit, each read as readings says at the time of the
// pass, with no movement pending; every repair applies.
func newReconciler() *reconcileWorld {
	rec := &fakes.Recorder{}
	w := &reconcileWorld{rec: rec, readings: map[int64]reading{}}
	w.goods = &fakeGoods{Rec: rec, ListGoodsFn: func(context.Context) ([]service.Goods, error) {
		var gs []service.Goods
		for id := range int64(3) {
			if _, ok := w.readings[id+1]; ok {
				gs = append(gs, service.Goods{ID: id + 1})
			}
		}
		return gs, nil
	}}
	w.ledger = &fakeLedger{Rec: rec,
		StockFn: func(_ context.Context, id int64) (int64, bool, error) {
			return w.readings[id].stock, w.readings[id].ok, nil
		},
		TruthAndPendingFn: func(_ context.Context, id int64) (int64, []string, []int64, bool, error) {
			return w.readings[id].truth, nil, nil, true, nil
		},
		RepairFn: func(context.Context, int64, int64, int64, []string, []int64) (bool, error) { return true, nil },
		TidyFn:   func(context.Context, int64) error { return nil },
	}
	w.r = NewReconciler(w.goods, w.ledger, fakes.Log())
	return w
}

// pass runs one reconciliation with goods 1 read as r and returns its drift.
func (w *reconcileWorld) pass(t *testing.T, r reading) Drift {
	t.Helper()
	w.readings[1] = r
	report, err := w.r.Reconcile(ctx)
	if err != nil || len(report) != 1 {
		t.Fatalf("pass: %+v, %v", report, err)
	}
	return report[0]
}

func (w *reconcileWorld) repairs() [][]any { return w.rec.Of("Ledger.Repair") }

// A drift is repaired on the third pass in a row that sees it, from the
// Redis stock read in that pass, by the opposite of the drift.
func TestDriftRepairedOnTheThirdEqualPass(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name         string
		r            reading
		drift, delta int64
	}{
		{"redis above", reading{10, true, 7}, 3, -3},
		{"redis below", reading{5, true, 8}, -3, 3},
	} {
		w := newReconciler()
		for pass := 1; pass < RepairAfter; pass++ {
			d := w.pass(t, c.r)
			if d.Drift != c.drift || d.Seen != pass || d.Repaired || d.RedisStock == nil || *d.RedisStock != c.r.stock || d.Truth != c.r.truth {
				t.Errorf("%s, pass %d: %+v", c.name, pass, d)
			}
		}
		if n := len(w.repairs()); n != 0 {
			t.Fatalf("%s: repaired before pass %d", c.name, RepairAfter)
		}
		d := w.pass(t, c.r)
		if !d.Repaired || d.Seen != 0 || d.Drift != c.drift {
			t.Errorf("%s, pass %d: %+v, want repaired", c.name, RepairAfter, d)
		}
		if rs := w.repairs(); len(rs) != 1 || !slices.Equal(rs[0][:3], []any{int64(1), c.r.stock, c.delta}) {
			t.Errorf("%s: repairs %v, want goods 1 from %d by %d", c.name, rs, c.r.stock, c.delta)
		}
	}
}

// A drift that changes, or goes away, starts its count again.
func TestChangedDriftRestartsTheCount(t *testing.T) {
	t.Parallel()
	w := newReconciler()
	var seen []int
	for _, stock := range []int64{10, 10, 11, 11, 7, 10, 10} { // truth 7: drifts 3 3 4 4 0 3 3
		seen = append(seen, w.pass(t, reading{stock, true, 7}).Seen)
	}
	if !slices.Equal(seen, []int{1, 2, 1, 2, 0, 1, 2}) {
		t.Errorf("seen %v, want 1 2 1 2 0 1 2", seen)
	}
	if n := len(w.repairs()); n != 0 {
		t.Errorf("%d repairs of drifts never seen %d times in a row", n, RepairAfter)
	}
	if d := w.pass(t, reading{10, true, 7}); !d.Repaired {
		t.Errorf("third pass of drift 3: %+v", d)
	}
}

// A repair Redis refused (the stock moved) is tried again on the next pass.
func TestRefusedRepairIsTriedAgain(t *testing.T) {
	t.Parallel()
	w := newReconciler()
	w.ledger.RepairFn = func(context.Context, int64, int64, int64, []string, []int64) (bool, error) { return false, nil }
	r := reading{10, true, 7}
	for range RepairAfter {
		w.pass(t, r)
	}
	d := w.pass(t, r)
	if d.Repaired || d.Seen != RepairAfter+1 || len(w.repairs()) != 2 {
		t.Errorf("%+v after %d repairs, want a repair tried on every pass from the third", d, len(w.repairs()))
	}
}

// Goods Redis holds no stock for are the rebuild's, never repaired; goods
// without drift are left alone.
func TestNothingToRepair(t *testing.T) {
	t.Parallel()
	for _, r := range []reading{{0, false, 7}, {7, true, 7}} {
		w := newReconciler()
		for range 2 * RepairAfter {
			d := w.pass(t, r)
			if d.Drift != 0 || d.Seen != 0 || d.Repaired || (d.RedisStock == nil) == r.ok {
				t.Errorf("%+v: %+v", r, d)
			}
		}
		if n := len(w.repairs()); n != 0 {
			t.Errorf("%+v: %d repairs", r, n)
		}
	}
}

// Each goods has its own count.
func TestDriftIsCountedPerGoods(t *testing.T) {
	t.Parallel()
	w := newReconciler()
	w.readings[2] = reading{4, true, 7}
	w.readings[1] = reading{10, true, 7}
	w.r.Reconcile(ctx)
	w.readings[2] = reading{5, true, 7}
	w.r.Reconcile(ctx)
	report, err := w.r.Reconcile(ctx)
	if err != nil || len(report) != 2 {
		t.Fatalf("%+v, %v", report, err)
	}
	if !report[0].Repaired || report[1].Repaired || report[1].Seen != 2 {
		t.Errorf("report %+v, want goods 1 repaired and goods 2 seen twice", report)
	}
	if rs := w.repairs(); len(rs) != 1 || rs[0][0] != int64(1) {
		t.Errorf("repairs %v, want goods 1 alone", rs)
	}
}

func TestReconcileFailures(t *testing.T) {
	t.Parallel()
	w := newReconciler()
	w.goods.ListGoodsFn = func(context.Context) ([]service.Goods, error) { return nil, service.ErrUnavailable }
	if report, err := w.r.Reconcile(ctx); err != service.ErrUnavailable || report != nil {
		t.Errorf("list fails: %+v, %v", report, err)
	}

	w = newReconciler()
	w.readings[1], w.readings[2] = reading{10, true, 7}, reading{1, true, 1}
	w.ledger.TruthAndPendingFn = func(_ context.Context, id int64) (int64, []string, []int64, bool, error) {
		if id == 2 {
			return 0, nil, nil, false, service.ErrUnavailable
		}
		return 7, nil, nil, true, nil
	}
	// The goods' truths are read together: goods 1's fails with goods 2's.
	if report, err := w.r.Reconcile(ctx); err != service.ErrUnavailable || len(report) != 0 {
		t.Errorf("truth fails: %+v, %v, want no finding and the error", report, err)
	}

	w = newReconciler()
	w.ledger.RepairFn = func(context.Context, int64, int64, int64, []string, []int64) (bool, error) {
		return false, service.ErrUnavailable
	}
	for range RepairAfter - 1 {
		w.pass(t, reading{10, true, 7})
	}
	w.readings[1] = reading{10, true, 7}
	if _, err := w.r.Reconcile(ctx); err != service.ErrUnavailable {
		t.Errorf("repair fails: %v", err)
	}
}

// A goods another instance is reconciling is left to it: nothing is read
// or repaired here, and its count of equal drifts stays as it was, so that
// two instances never both repair one drift.
func TestAGoodsAnotherInstanceReconcilesIsLeftToIt(t *testing.T) {
	t.Parallel()
	w := newReconciler()
	r := reading{10, true, 7}
	for pass := 1; pass < RepairAfter; pass++ {
		w.pass(t, r)
	}
	held := true
	unlocked := 0
	w.ledger.LockGoodsFn = func(context.Context, int64) (func(), bool, error) {
		return func() { unlocked++ }, !held, nil
	}
	w.readings[1] = r
	report, err := w.r.Reconcile(ctx)
	if err != nil || len(report) != 0 || len(w.repairs()) != 0 {
		t.Fatalf("with the lock held elsewhere: report %+v, %v, %d repairs; want the goods left alone", report, err, len(w.repairs()))
	}
	held = false
	if d := w.pass(t, r); !d.Repaired || len(w.repairs()) != 1 || unlocked != 1 {
		t.Errorf("once the lock is free: %+v, %d repairs, %d unlocks; want the third equal drift repaired once, the lock let go", d, len(w.repairs()), unlocked)
	}
}

// Between full passes a goods found in line is skipped while both its
// stocks read as then: the truth is not read, even when it moved (a full
// pass finds that); a move of either stock has it read again.
func TestPassesBetweenFullOnesSkipGoodsWhoseStocksDidNotMove(t *testing.T) {
	t.Parallel()
	w := newReconciler()
	w.r.SetFullEvery(4)
	var dbStock int64 = 50
	w.goods.ListGoodsFn = func(context.Context) ([]service.Goods, error) {
		return []service.Goods{{ID: 1, Stock: dbStock}}, nil
	}
	truths := func() int { return len(w.rec.Of("Ledger.TruthAndPending")) }

	if d := w.pass(t, reading{10, true, 10}); d.Unchanged || truths() != 1 {
		t.Fatalf("first pass %+v, %d truths read: want a full one", d, truths())
	}
	// Only the truth moved: skipped, with the last finding.
	if d := w.pass(t, reading{10, true, 7}); !d.Unchanged || d.Drift != 0 || *d.RedisStock != 10 || truths() != 1 {
		t.Fatalf("quiet pass %+v, %d truths read: want skipped", d, truths())
	}
	// The database's stock moved: read, and the drift seen.
	dbStock = 49
	if d := w.pass(t, reading{10, true, 7}); d.Unchanged || d.Drift != 3 || d.Seen != 1 || truths() != 2 {
		t.Fatalf("pass after the database moved %+v, %d truths read", d, truths())
	}
	// A drift keeps its goods read on every pass until it is repaired.
	if d := w.pass(t, reading{10, true, 7}); d.Unchanged || d.Seen != 2 {
		t.Fatalf("pass with a drift seen before %+v: want read", d)
	}
	if d := w.pass(t, reading{10, true, 7}); !d.Repaired {
		t.Fatalf("third pass with the drift %+v: want repaired", d)
	}
	// In line again after the repair: read once more, then quiet until
	// Redis's stock moves.
	w.pass(t, reading{7, true, 7})
	before := truths()
	if d := w.pass(t, reading{7, true, 7}); !d.Unchanged || truths() != before {
		t.Fatalf("quiet pass %+v: want skipped", d)
	}
	if d := w.pass(t, reading{6, true, 6}); d.Unchanged || truths() != before+1 {
		t.Fatalf("pass after Redis moved %+v: want read", d)
	}
}

// One pass in fullEvery reads every goods, quiet or not; ReconcileAll
// always does.
func TestFullPassesReadEveryGoods(t *testing.T) {
	t.Parallel()
	w := newReconciler()
	w.r.SetFullEvery(3)
	truths := func() int { return len(w.rec.Of("Ledger.TruthAndPending")) }
	for pass, wantRead := range []bool{true, false, false, true, false} {
		before := truths()
		d := w.pass(t, reading{5, true, 5})
		if read := truths() > before; read != wantRead || d.Unchanged == wantRead {
			t.Errorf("pass %d: truth read %v (%+v), want %v", pass, read, d, wantRead)
		}
	}
	before := truths()
	if report, err := w.r.ReconcileAll(ctx); err != nil || len(report) != 1 || report[0].Unchanged || truths() != before+1 {
		t.Errorf("ReconcileAll: %+v, %v: want goods 1 read", report, err)
	}
	// The cadence counts from the last full pass, whatever made it full.
	for pass, wantRead := range []bool{false, false, true} {
		before := truths()
		w.pass(t, reading{5, true, 5})
		if read := truths() > before; read != wantRead {
			t.Errorf("pass %d after ReconcileAll: truth read %v, want %v", pass, read, wantRead)
		}
	}
}
