package recovery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/go-seckill/seckill/service"
)

// recLedger is a ledger whose readings each test sets before a pass.
type recLedger struct {
	stock   int64
	loaded  bool
	truth   int64
	ops     []string
	returns []int64
	exact   bool
	tidyErr error
	buyers  []service.BuyerUnits // what a buyers comparison finds

	repairs      [][]any // the arguments of every Repair
	buyerRepairs [][]service.BuyerUnits
	buyerChecks  int
}

func (l *recLedger) Stock(context.Context, int64) (int64, bool, error) { return l.stock, l.loaded, nil }

func (l *recLedger) TruthsAndPending(_ context.Context, goodsIDs []int64) ([]service.TruthReading, error) {
	readings := make([]service.TruthReading, len(goodsIDs))
	for i := range readings {
		readings[i] = service.TruthReading{Truth: l.truth, Ops: l.ops, Returns: l.returns, Exact: l.exact}
	}
	return readings, nil
}

func (l *recLedger) Repair(_ context.Context, goodsID, expected, delta int64, ops []string, returns []int64) (bool, error) {
	l.repairs = append(l.repairs, []any{expected, delta, ops, returns})
	return true, nil
}

func (l *recLedger) Tidy(context.Context, int64) error { return l.tidyErr }

func (l *recLedger) LockGoods(context.Context, int64) (func(), bool, error) {
	return func() {}, true, nil
}

func (l *recLedger) BuyerDrifts(_ context.Context, _ int64, each func(service.BuyerUnits) error) error {
	l.buyerChecks++
	for _, b := range l.buyers {
		if err := each(b); err != nil {
			return err
		}
	}
	return nil
}

func (l *recLedger) RepairBuyers(_ context.Context, _ int64, fixes []service.BuyerUnits) (int, error) {
	l.buyerRepairs = append(l.buyerRepairs, fixes)
	return len(fixes), nil
}

type recGoods []service.Goods

func (g recGoods) ListGoods(context.Context) ([]service.Goods, error) { return g, nil }

func newRec(l *recLedger, limit int64) *Reconciler {
	return NewReconciler(recGoods{{ID: 1, PerUserLimit: limit}}, l, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func pass(t *testing.T, r *Reconciler) Drift {
	t.Helper()
	report, err := r.Reconcile(context.Background())
	if err != nil || len(report) != 1 {
		t.Fatal(report, err)
	}
	return report[0]
}

// The repair passes the movements the truth holds and Redis does not, and
// waits a pass when one was recorded while the truth was read.
func TestRepairMarksThePendingMovementsOfItsTruth(t *testing.T) {
	t.Parallel()
	l := &recLedger{stock: 8, loaded: true, truth: 13, ops: []string{"a"}, returns: []int64{7}, exact: true}
	r := newRec(l, 0)
	for range RepairAfter - 1 {
		pass(t, r)
	}
	l.exact = false
	if d := pass(t, r); d.Repaired || len(l.repairs) != 0 {
		t.Fatalf("repaired while a movement was recorded during the read: %+v", d)
	}
	l.exact = true
	if d := pass(t, r); !d.Repaired || len(l.repairs) != 1 {
		t.Fatalf("not repaired on the next pass: %+v", d)
	}
	got := l.repairs[0]
	if got[0] != int64(8) || got[1] != int64(5) || got[2].([]string)[0] != "a" || got[3].([]int64)[0] != 7 {
		t.Errorf("repair %v, want expected 8, delta 5, op a, return 7", got)
	}
}

// A failed tidying does not stop the pass.
func TestPassGoesOnWhenTidyingFails(t *testing.T) {
	t.Parallel()
	l := &recLedger{stock: 8, loaded: true, truth: 8, exact: true, tidyErr: errors.New("redis down")}
	if d := pass(t, newRec(l, 0)); d.Drift != 0 {
		t.Errorf("%+v", d)
	}
}

// A buyer is repaired once RepairAfter passes in a row saw the same
// difference; a difference that changes starts over; buyers are compared
// only for goods with a limit that Redis holds.
func TestBuyersRepairedAfterTheSameDifferenceLasts(t *testing.T) {
	t.Parallel()
	l := &recLedger{stock: 8, loaded: true, truth: 8, exact: true}
	r := newRec(l, 1)
	steady := service.BuyerUnits{UserID: 1, Cached: 1, Truth: 0}
	for i := range int64(RepairAfter) {
		changing := service.BuyerUnits{UserID: 2, Cached: 1 + i, Truth: 0}
		l.buyers = []service.BuyerUnits{steady, changing, steady} // a scan may return a buyer twice
		d := pass(t, r)
		if d.UsersDrift != 2 {
			t.Errorf("pass %d: %d buyers drifting, want 2", i+1, d.UsersDrift)
		}
		if i < RepairAfter-1 && len(l.buyerRepairs) != 0 {
			t.Fatalf("pass %d repaired %v", i+1, l.buyerRepairs)
		}
	}
	if len(l.buyerRepairs) != 1 || len(l.buyerRepairs[0]) != 1 || l.buyerRepairs[0][0] != steady {
		t.Fatalf("repairs %v, want only %v", l.buyerRepairs, steady)
	}
	if d := pass(t, r); d.UsersRepaired != 0 || len(l.buyerRepairs) != 1 {
		t.Errorf("a repaired buyer is repaired again at once: %+v", d)
	}

	checks := l.buyerChecks
	pass(t, newRec(l, 0))
	l.loaded = false
	pass(t, r)
	if l.buyerChecks != checks {
		t.Errorf("buyers compared for goods without a limit or without Redis stock")
	}
}

// The buyers remembered between passes are bounded; those remembered keep
// their place, so a lasting difference is repaired once passing ones leave.
func TestTrackedBuyersAreBounded(t *testing.T) {
	t.Parallel()
	l := &recLedger{stock: 8, loaded: true, truth: 8, exact: true}
	r := newRec(l, 1)
	many := make([]service.BuyerUnits, MaxTrackedBuyers+10)
	for i := range many {
		many[i] = service.BuyerUnits{UserID: int64(i + 1), Cached: 1}
	}
	l.buyers = many
	if d := pass(t, r); d.UsersDrift != len(many) || len(r.buyers[1]) != MaxTrackedBuyers {
		t.Fatalf("%d drifting, %d tracked; want %d and %d", d.UsersDrift, len(r.buyers[1]), len(many), MaxTrackedBuyers)
	}
	// The last ten differ too and were not tracked; they wait while the
	// tracked ones last.
	last := many[len(many)-1]
	l.buyers = append([]service.BuyerUnits{last}, many[:MaxTrackedBuyers]...)
	pass(t, r)
	if _, ok := r.buyers[1][last.UserID]; ok || len(r.buyers[1]) != MaxTrackedBuyers {
		t.Fatalf("an untracked buyer took the place of a tracked one")
	}
	pass(t, r)
	if len(l.buyerRepairs) != 1 || len(l.buyerRepairs[0]) != MaxTrackedBuyers {
		t.Fatalf("repairs of %d batches", len(l.buyerRepairs))
	}
	// The repaired ones left: the waiting one is tracked now.
	l.buyers = []service.BuyerUnits{last}
	pass(t, r)
	if _, ok := r.buyers[1][last.UserID]; !ok {
		t.Errorf("the waiting buyer is still not tracked")
	}
}
