package recovery

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/internal/fakes"
)

var ctx = context.Background()

// before is the first id younger than the grace, as the fake IDAt says.
const before = 1000

type outboxWorld struct {
	rec    *fakes.Recorder
	orders *memOrders
	scan   *fakeOutboxOrders
	pub    *fakes.Publisher
	ids    *fakeIDAt
	outbox *Outbox
}

// newOutbox sweeps ids, some settled, with a horizon of four graces. Its
// FirstIDAt answers before for any time: no late commit is looked for.
func newOutbox(grace time.Duration, ids []int64, settled ...int64) *outboxWorld {
	rec := &fakes.Recorder{}
	w := &outboxWorld{rec: rec, orders: &memOrders{ids: ids, settled: map[int64]bool{}, page: 2}}
	for _, id := range settled {
		w.orders.settled[id] = true
	}
	w.scan = w.orders.fake(rec)
	w.pub = &fakes.Publisher{Rec: rec, PublishFn: func(context.Context, service.StockMessage, int64) error { return nil }}
	w.ids = &fakeIDAt{Rec: rec, FirstIDAtFn: func(time.Time) int64 { return before }}
	w.outbox = NewOutbox(w.scan, w.pub, w.ids, grace, 4*grace)
	return w
}

// published lists the ids of the messages published since the call n.
func (w *outboxWorld) published(since int) []int64 {
	var ids []int64
	for _, args := range w.rec.Of("Publish")[since:] {
		ids = append(ids, args[0].(service.StockMessage).OrderID)
	}
	return ids
}

// afterIDs lists the afterID of each scan from the call n on.
func (w *outboxWorld) afterIDs(since int) []int64 {
	var ids []int64
	for _, args := range w.rec.Of("ScanOrders")[since:] {
		ids = append(ids, args[0].(int64))
	}
	return ids
}

func (w *outboxWorld) sweep(t *testing.T, want int) {
	t.Helper()
	if n, err := w.outbox.Sweep(ctx); err != nil || n != want {
		t.Fatalf("sweep: %d, %v, want %d republished", n, err, want)
	}
}

// Orders settled are skipped; the others are republished, each with its
// own message on the route of its id, over every page of the window.
func TestOutboxRepublishesPendingOrders(t *testing.T) {
	t.Parallel()
	const grace = time.Hour
	w := newOutbox(grace, []int64{10, 11, 12, 13, 14, 15, before, before + 1}, 11, 13)
	start := time.Now()
	w.sweep(t, 4)
	if got := w.published(0); !slices.Equal(got, []int64{10, 12, 14, 15}) {
		t.Errorf("republished %v, want 10 12 14 15", got)
	}
	for _, args := range w.rec.Of("Publish") {
		if m := args[0].(service.StockMessage); m != message(m.OrderID) || args[1] != m.OrderID {
			t.Errorf("published %+v on route %v, want the order's message on route %d", m, args[1], m.OrderID)
		}
	}
	if got := w.afterIDs(0); !slices.Equal(got, []int64{0, 11, 13, 15}) {
		t.Errorf("scanned after %v, want page after page: 0 11 13 15", got)
	}
	for _, args := range w.rec.Of("ScanOrders") {
		if args[1] != int64(before) || args[2] != sweepBatch {
			t.Errorf("scanned before %v, %v at a time, want before %d, %d at a time", args[1], args[2], before, sweepBatch)
		}
	}
	at := w.rec.Of("FirstIDAt")[0][0].(time.Time)
	if at.Before(start.Add(-grace)) || at.After(time.Now().Add(-grace)) {
		t.Errorf("window ends at %v, want now - %v", at, grace)
	}
}

// A pending order is republished once per grace, not on every pass.
func TestOutboxRepublishesOncePerGrace(t *testing.T) {
	t.Parallel()
	w := newOutbox(time.Hour, []int64{10, 11})
	w.sweep(t, 2)
	w.sweep(t, 0)

	const grace = 30 * time.Millisecond
	w = newOutbox(grace, []int64{10, 11})
	w.sweep(t, 2)
	time.Sleep(grace + 10*time.Millisecond)
	w.sweep(t, 2)
	if got := w.published(0); !slices.Equal(got, []int64{10, 11, 10, 11}) {
		t.Errorf("republished %v, want 10 11 twice", got)
	}
}

// The watermark never passes the first pending order, and passes the whole
// window when none is pending.
func TestOutboxWatermark(t *testing.T) {
	t.Parallel()
	w := newOutbox(time.Hour, []int64{10, 11, 12, 13, 14}, 10, 11, 13)
	w.sweep(t, 2) // 12 and 14
	scans := w.rec.Count("ScanOrders")
	w.sweep(t, 0) // both sent within the grace
	if got := w.afterIDs(scans); got[0] != 11 {
		t.Errorf("second pass scanned after %v, want after 11: order 12 is pending", got)
	}

	w.orders.settle(12)
	scans = w.rec.Count("ScanOrders")
	w.sweep(t, 0)
	if got := w.afterIDs(scans); got[0] != 11 {
		t.Errorf("third pass scanned after %v, want after 11", got)
	}
	scans = w.rec.Count("ScanOrders")
	w.sweep(t, 0)
	if got := w.afterIDs(scans); got[0] != 13 {
		t.Errorf("fourth pass scanned after %v, want after 13: order 14 is pending", got)
	}

	w.orders.settle(14)
	w.sweep(t, 0)
	scans = w.rec.Count("ScanOrders")
	w.sweep(t, 0)
	if got := w.afterIDs(scans); !slices.Equal(got, []int64{before - 1}) {
		t.Errorf("with nothing pending the next pass scanned after %v, want after %d", got, before-1)
	}
}

// A pass that fails moves no watermark, and an order whose publish failed
// is republished on the next pass, grace or not.
func TestOutboxFailures(t *testing.T) {
	t.Parallel()
	t.Run("publish", func(t *testing.T) {
		t.Parallel()
		w := newOutbox(time.Hour, []int64{10, 11, 12}, 10)
		w.pub.PublishFn = func(_ context.Context, m service.StockMessage, _ int64) error {
			if m.OrderID == 12 {
				return service.ErrUnavailable
			}
			return nil
		}
		if n, err := w.outbox.Sweep(ctx); n != 1 || err != service.ErrUnavailable {
			t.Fatalf("got %d, %v, want 1, unavailable", n, err)
		}
		w.pub.PublishFn = func(context.Context, service.StockMessage, int64) error { return nil }
		scans, pubs := w.rec.Count("ScanOrders"), w.rec.Count("Publish")
		w.sweep(t, 1)
		if got := w.afterIDs(scans); got[0] != 0 {
			t.Errorf("after a failed pass scanned after %v, want after 0", got)
		}
		if got := w.published(pubs); !slices.Equal(got, []int64{12}) {
			t.Errorf("republished %v, want 12 alone", got)
		}
	})
	// A failure on the second page of a pass whose first page was all
	// settled: the pass knows no pending order, and must not take that for
	// none.
	for _, c := range []struct {
		name string
		fail func(w *outboxWorld)
	}{
		{"scan", func(w *outboxWorld) {
			scan, calls := w.scan.ScanOrdersFn, 0
			w.scan.ScanOrdersFn = func(ctx context.Context, after, before int64, limit int) ([]service.StockMessage, error) {
				if calls++; calls == 2 {
					return nil, service.ErrUnavailable
				}
				return scan(ctx, after, before, limit)
			}
		}},
		{"settled", func(w *outboxWorld) {
			settled, calls := w.scan.SettledFn, 0
			w.scan.SettledFn = func(ctx context.Context, ids []int64) (map[int64]bool, error) {
				if calls++; calls == 2 {
					return nil, service.ErrUnavailable
				}
				return settled(ctx, ids)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newOutbox(time.Hour, []int64{10, 11, 12, 13})
			w.sweep(t, 4) // the watermark stays before 10
			w.orders.settle(10)
			w.orders.settle(11)
			good := *w.scan
			c.fail(w)
			if _, err := w.outbox.Sweep(ctx); err != service.ErrUnavailable {
				t.Fatalf("got %v, want unavailable", err)
			}
			*w.scan = good
			scans := w.rec.Count("ScanOrders")
			w.sweep(t, 0)
			if got := w.afterIDs(scans); got[0] != 9 {
				t.Errorf("after a failed pass scanned after %v, want after 9", got)
			}
		})
	}
}

// An order row may commit after the watermark passed its id: every quarter
// of the horizon a pass looks again at the orders of the last horizon,
// behind the watermark, and republishes those pending; the watermark stays.
func TestOutboxLooksAgainAtLateCommits(t *testing.T) {
	t.Parallel()
	const grace = time.Hour
	const horizon = 4 * grace // newOutbox's
	const lateFrom = 5        // the first id made a horizon ago
	w := newOutbox(grace, []int64{10, 11, 12}, 10, 11, 12)
	w.ids.FirstIDAtFn = func(at time.Time) int64 {
		if time.Since(at) > (grace+horizon)/2 {
			return lateFrom
		}
		return before
	}
	// quarterPassed makes the last look at the horizon a quarter of it ago.
	quarterPassed := func() {
		w.outbox.mu.Lock()
		defer w.outbox.mu.Unlock()
		w.outbox.lateScan = w.outbox.lateScan.Add(-horizon / 4)
	}

	w.sweep(t, 0) // everything settled: the watermark passes the window
	if n := w.rec.Count("FirstIDAt"); n != 2 {
		t.Errorf("%d ids asked on the first pass, want the grace's and the horizon's", n)
	}
	w.orders.add(20) // committed late, behind the watermark
	scans := w.rec.Count("ScanOrders")
	w.sweep(t, 0)
	if got := w.afterIDs(scans); !slices.Equal(got, []int64{before - 1}) {
		t.Errorf("within a quarter of the horizon scanned after %v, want after the watermark %d alone", got, before-1)
	}

	quarterPassed()
	scans = w.rec.Count("ScanOrders")
	w.sweep(t, 1)
	if got := w.published(0); !slices.Equal(got, []int64{20}) {
		t.Errorf("republished %v, want the late order 20", got)
	}
	if got := w.afterIDs(scans); !slices.Equal(got, []int64{lateFrom - 1, 11, 20, before - 1}) {
		t.Errorf("scanned after %v, want the horizon from %d page by page, then after the watermark", got, lateFrom)
	}
	for _, args := range w.rec.Of("ScanOrders")[scans : scans+3] {
		if args[1] != int64(before) {
			t.Errorf("the horizon's scan ends before %v, want past the watermark, %d", args[1], before)
		}
	}
	scans = w.rec.Count("ScanOrders")
	w.sweep(t, 0)
	if got := w.afterIDs(scans); !slices.Equal(got, []int64{before - 1}) {
		t.Errorf("the next pass scanned after %v, want the watermark %d unmoved", got, before-1)
	}

	// A failed look at the horizon is tried again on the next pass.
	quarterPassed()
	scan := w.scan.ScanOrdersFn
	w.scan.ScanOrdersFn = func(ctx context.Context, after, before int64, limit int) ([]service.StockMessage, error) {
		if after == lateFrom-1 {
			return nil, service.ErrUnavailable
		}
		return scan(ctx, after, before, limit)
	}
	if _, err := w.outbox.Sweep(ctx); err != service.ErrUnavailable {
		t.Fatalf("got %v, want unavailable", err)
	}
	w.scan.ScanOrdersFn = scan
	w.orders.settle(20)
	scans = w.rec.Count("ScanOrders")
	w.sweep(t, 0)
	if got := w.afterIDs(scans); !slices.Equal(got, []int64{lateFrom - 1, 11, 20, before - 1}) {
		t.Errorf("after a failed look at the horizon scanned after %v, want it again", got)
	}
}
