package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/internal/fakes"
)

var ctx = context.Background()

// A failed write is settled: one the server refused never committed, and
// its units go back; one of unknown outcome is fenced with a void row, and
// the fence decides.
func TestSettleFailedWrite(t *testing.T) {
	t.Parallel()
	at := service.OrderTable{Host: 2, Table: 16}
	errWrite := errors.New("insert: table is full")
	errAmbiguous := fmt.Errorf("insert: %w", service.ErrAmbiguous)
	errDown := fmt.Errorf("fence: %w", service.ErrUnavailable)
	type fence struct {
		voided bool
		status int
		err    error
	}
	// unavailable: the order surely is not written, and the error says so
	// without the write's ambiguity.
	unavailable := func(err error) bool {
		return errors.Is(err, service.ErrUnavailable) && !errors.Is(err, service.ErrAmbiguous)
	}
	for _, c := range []struct {
		name     string
		err      error
		fence    fence
		fenced   bool                 // VoidOrder is called
		want     func(err error) bool // nil: nil
		unknown  bool                 // an *UnknownOrder, checked apart
		giveBack bool
	}{
		{name: "not ambiguous", err: errWrite, want: func(err error) bool { return err == errWrite }, giveBack: true},
		{name: "ambiguous, fenced now", err: errAmbiguous, fence: fence{true, service.StatusVoid, nil}, fenced: true,
			want: unavailable, giveBack: true},
		{name: "ambiguous, written unpaid", err: errAmbiguous, fence: fence{false, service.StatusUnpaid, nil}, fenced: true},
		{name: "ambiguous, written and paid", err: errAmbiguous, fence: fence{false, service.StatusPaid, nil}, fenced: true},
		{name: "ambiguous, written and cancelled", err: errAmbiguous, fence: fence{false, service.StatusCancelled, nil}, fenced: true},
		{name: "ambiguous, written and refused", err: errAmbiguous, fence: fence{false, service.StatusRefused, nil}, fenced: true},
		{name: "ambiguous, fenced by another", err: errAmbiguous, fence: fence{false, service.StatusVoid, nil}, fenced: true,
			want: unavailable},
		{name: "ambiguous, fence fails", err: errAmbiguous, fence: fence{false, 0, errDown}, fenced: true, unknown: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			w.orders.VoidOrderFn = func(context.Context, service.OrderTable, service.Order) (bool, int, error) {
				return c.fence.voided, c.fence.status, c.fence.err
			}
			w.cache.ReleaseFn = func(context.Context, int64, int64, int64) error { return nil }
			err := w.ledger(t).SettleFailedWrite(ctx, order, at, c.err)
			switch {
			case c.unknown:
				var unknown *service.UnknownOrder
				if !errors.As(err, &unknown) || unknown.Order != order || unknown.At != at || unknown.Err != c.err {
					t.Errorf("got %v, want *UnknownOrder of order %d at %+v with the write's error", err, order.ID, at)
				}
			case c.want == nil && err != nil, c.want != nil && !c.want(err):
				t.Errorf("got %v", err)
			}
			fences := w.rec.Of("Orders.VoidOrder")
			if c.fenced != (len(fences) == 1) || c.fenced && (fences[0][0] != at || fences[0][1] != order) {
				t.Errorf("fences %v, want %v for order %d at %+v", fences, c.fenced, order.ID, at)
			}
			got := w.rec.Only(giveBackCalls...)
			if !c.giveBack {
				if len(got) != 0 {
					t.Errorf("calls %v, want the units kept reserved", got)
				}
				return
			}
			if !slices.Equal(got, giveBackCalls) {
				t.Fatalf("calls %v, want %v", got, giveBackCalls)
			}
			if r := w.rec.Of("Cache.Release")[0]; r[0] != order.GoodsID || r[1] != order.UserID || r[2] != order.Number {
				t.Errorf("released %v, want goods %d, user %d, %d units", r, order.GoodsID, order.UserID, order.Number)
			}
			if w.rec.Of("StockBack")[0][0] != order.GoodsID || w.rec.Of("Announce")[0][0] != order.GoodsID {
				t.Errorf("stock back of %v, announced %v, want goods %d", w.rec.Of("StockBack"), w.rec.Of("Announce"), order.GoodsID)
			}
		})
	}
}

// The settling of a failed write has its own half of the write budget: the
// write may have used up its half, and the client may be gone.
func TestSettleFailedWriteHasItsOwnHalfOfTheBudget(t *testing.T) {
	t.Parallel()
	w := newWorld()
	half := w.opts.WriteBudget / 2
	var deadlines []time.Time
	check := func(name string, ctx context.Context) {
		d, ok := ctx.Deadline()
		if ctx.Err() != nil || !ok {
			t.Errorf("%s ran under a context ended (%v) or without a deadline (%v)", name, ctx.Err(), ok)
		}
		deadlines = append(deadlines, d)
	}
	w.orders.VoidOrderFn = func(ctx context.Context, _ service.OrderTable, _ service.Order) (bool, int, error) {
		check("VoidOrder", ctx)
		return true, service.StatusVoid, nil
	}
	w.cache.ReleaseFn = func(ctx context.Context, _, _, _ int64) error {
		check("Release", ctx)
		return nil
	}
	spent, cancel := context.WithCancel(ctx)
	cancel()
	start := time.Now()
	_ = w.ledger(t).SettleFailedWrite(spent, order, service.OrderTable{}, service.ErrAmbiguous)
	if len(deadlines) != 2 {
		t.Fatalf("%d calls under a checked context, want the fence and the release", len(deadlines))
	}
	for _, d := range deadlines {
		if d.Before(start.Add(half-half/2)) || d.After(time.Now().Add(half)) {
			t.Errorf("deadline %v from the start, want half the write budget, %v", d.Sub(start), half)
		}
	}
}

// A give back that fails leaves Redis short, and says nothing is back.
func TestGiveBackThatFailsAnnouncesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.cache.ReleaseFn = func(context.Context, int64, int64, int64) error { return service.ErrUnavailable }
	errWrite := errors.New("insert failed")
	if err := w.ledger(t).SettleFailedWrite(ctx, order, service.OrderTable{}, errWrite); err != errWrite {
		t.Errorf("got %v, want the write's error", err)
	}
	if got := w.rec.Only(giveBackCalls...); !slices.Equal(got, []string{"Cache.Release"}) {
		t.Errorf("calls %v, want the release alone", got)
	}
}

// A failed broadcast does not undo the give back: this instance's flag is
// cleared, the others' expire.
func TestGiveBackSurvivesAFailedBroadcast(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.cache.ReleaseFn = func(context.Context, int64, int64, int64) error { return nil }
	w.announce.AnnounceStockBackFn = func(context.Context, int64) error { return service.ErrUnavailable }
	w.ledger(t).GiveBack(ctx, order)
	if got := w.rec.Only(giveBackCalls...); !slices.Equal(got, giveBackCalls) {
		t.Errorf("calls %v, want %v", got, giveBackCalls)
	}
}

// Reserve takes the order's units from the gate and answers as it does.
func TestReserveAnswersAsTheGate(t *testing.T) {
	t.Parallel()
	for _, gate := range []error{nil, service.ErrSoldOut, service.ErrNotStarted, service.ErrEnded, service.ErrLimitExceeded, service.ErrUnavailable} {
		w := newWorld()
		before := time.Now()
		w.cache.ReserveFn = func(_ context.Context, _, _, _ int64, now time.Time) error {
			if now.Before(before) || now.After(time.Now()) {
				t.Errorf("reserved at %v, want now", now)
			}
			return gate
		}
		if err := w.ledger(t).Reserve(ctx, order); err != gate {
			t.Errorf("got %v, want %v", err, gate)
		}
		if r := w.rec.Of("Cache.Reserve"); len(r) != 1 || r[0][0] != order.GoodsID || r[0][1] != order.UserID || r[0][2] != order.Number {
			t.Errorf("reservations %v, want goods %d, user %d, %d units", r, order.GoodsID, order.UserID, order.Number)
		}
		if n := w.rec.Count("Stock.Goods"); n != 0 {
			t.Errorf("%v: goods looked up %d times", gate, n)
		}
	}
}

// A missing stock key of goods that do not exist is not found, and
// rebuilds nothing.
func TestReserveOfUnknownGoodsIsNotFound(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.cache.ReserveFn = func(context.Context, int64, int64, int64, time.Time) error { return service.ErrStockNotLoaded }
	errNotFound := fmt.Errorf("goods 3: %w", service.ErrNotFound)
	w.stock.GoodsFn = func(context.Context, int64) (service.Goods, error) { return service.Goods{}, errNotFound }
	l := w.ledger(t)
	if err := l.Reserve(ctx, order); err != errNotFound {
		t.Errorf("got %v, want not found", err)
	}
	l.Close() // waits for any rebuild
	if n := w.rec.Count("Locker.Lock"); n != 0 {
		t.Errorf("%d rebuilds of unknown goods", n)
	}
}

// Lost stock of known goods: every order is told so while one rebuild,
// under the lock and after the grace, restores it from the database, with
// the movements pending in the truth marked, then settled.
func TestLostStockIsRebuiltOnce(t *testing.T) {
	t.Parallel()
	for _, limit := range []int64{0, 2} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			g := service.Goods{ID: order.GoodsID, Name: "phone", Stock: 100, PerUserLimit: limit}
			w.cache.ReserveFn = func(context.Context, int64, int64, int64, time.Time) error { return service.ErrStockNotLoaded }
			w.stock.GoodsFn = func(context.Context, int64) (service.Goods, error) { return g, nil }
			w.stock.TruthFn = func(context.Context, int64) (int64, error) { return 40, nil }
			w.stock.PendingMovementsFn = func(context.Context, int64) ([]string, []int64, error) {
				return []string{"op-1"}, []int64{7}, nil
			}
			w.stock.UserUnitsFn = func(_ context.Context, _ int64, each func(int64, int64) error) error {
				if err := each(159, 1); err != nil {
					return err
				}
				return each(159, 1) // a user may come twice; the units add up
			}
			w.stock.MarkCachedFn = func(_ context.Context, _ int64, ops []string, returns []int64) ([]string, []int64, error) {
				return ops, returns, nil
			}
			w.cache.ForgetFn = func(context.Context, int64, []string, []int64) error { return nil }
			allIn := make(chan struct{})
			var locked time.Time
			w.locker.LockFn = func(context.Context, string, time.Duration) (func(), bool, error) {
				<-allIn // the rebuild is under way while every order comes in
				locked = time.Now()
				return func() { w.rec.Record("unlock") }, true, nil
			}
			restored := make(chan time.Time, 1)
			var units map[int64]int64 // what the restore streamed of the user units
			w.cache.RestoreFn = func(_ context.Context, _ service.Goods, st service.RestoredStock) (bool, error) {
				if st.UserUnits != nil && units == nil {
					units = map[int64]int64{}
					if err := st.UserUnits(func(user, n int64) error { units[user] += n; return nil }); err != nil {
						return false, err
					}
				}
				select {
				case restored <- time.Now():
				default: // a second restore: counted below
				}
				return true, nil
			}
			l := w.ledger(t)

			errs := make(chan error)
			const orders = 8
			for range orders {
				go func() { errs <- l.Reserve(ctx, order) }()
			}
			for range orders {
				if err := <-errs; err != service.ErrStockNotLoaded {
					t.Errorf("got %v, want stock not loaded", err)
				}
			}
			close(allIn)
			select {
			case at := <-restored:
				if waited := at.Sub(locked); waited < testGrace {
					t.Errorf("restored %v after taking the lock, want the grace %v first", waited, testGrace)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no restore")
			}
			l.Close()

			if lock := w.rec.Of("Locker.Lock"); len(lock) != 1 || lock[0][0] != "rebuild:3" || lock[0][1] != testGrace+30*time.Second {
				t.Errorf("locks %v, want one rebuild:3 for the grace and 30s", lock)
			}
			restore := w.rec.Of("Cache.Restore")
			if len(restore) != 1 {
				t.Fatalf("%d restores, want 1", len(restore))
			}
			st := restore[0][1].(service.RestoredStock)
			if restore[0][0] != g || st.Stock != 40 || !slices.Equal(st.PendingOps, []string{"op-1"}) || !slices.Equal(st.PendingReturns, []int64{7}) {
				t.Errorf("restored %+v with %+v, want %+v with its truth 40, op-1 and order 7 pending", restore[0][0], st, g)
			}
			if (st.UserUnits != nil) != (limit > 0) || limit > 0 && (len(units) != 1 || units[159] != 2) {
				t.Errorf("limit %d: user units %v (streamed %v), want user 159's 2 units only with a limit", limit, st.UserUnits != nil, units)
			}
			if n := w.rec.Count("Stock.UserUnits"); (n == 1) != (limit > 0) {
				t.Errorf("%d reads of user units with limit %d", n, limit)
			}
			mark := w.rec.Of("Stock.MarkCached")
			if len(mark) != 1 || !slices.Equal(mark[0][1].([]string), []string{"op-1"}) || !slices.Equal(mark[0][2].([]int64), []int64{7}) {
				t.Errorf("marked %v, want op-1 and order 7 cached", mark)
			}
			tail := []string{"Cache.Restore", "Stock.MarkCached", "Cache.Forget", "StockBack", "Announce", "unlock"}
			if got := w.rec.Only(tail...); !slices.Equal(got, tail) {
				t.Errorf("calls %v, want %v", got, tail)
			}
		})
	}
}

// A rebuild that does not get to restore ends, and the next order starts
// another: the lock held elsewhere, the lock failing, the truth failing,
// another instance restoring first.
func TestRebuildThatDoesNotRestore(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		lock     func() (bool, error)
		truth    error
		restored bool
		calls    []string
	}{
		{"locked elsewhere", func() (bool, error) { return false, nil }, nil, false, []string{"Locker.Lock"}},
		{"lock fails", func() (bool, error) { return false, service.ErrUnavailable }, nil, false, []string{"Locker.Lock"}},
		{"truth fails", func() (bool, error) { return true, nil }, service.ErrUnavailable, false, []string{"Locker.Lock", "Stock.PendingMovements", "Stock.Truth", "unlock"}},
		{"restored elsewhere", func() (bool, error) { return true, nil }, nil, false,
			[]string{"Locker.Lock", "Stock.PendingMovements", "Stock.Truth", "Stock.PendingMovements", "Cache.Restore", "unlock"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			w.cache.ReserveFn = func(context.Context, int64, int64, int64, time.Time) error { return service.ErrStockNotLoaded }
			w.stock.GoodsFn = func(context.Context, int64) (service.Goods, error) { return service.Goods{ID: 3}, nil }
			w.stock.TruthFn = func(context.Context, int64) (int64, error) { return 5, c.truth }
			w.stock.PendingMovementsFn = func(context.Context, int64) ([]string, []int64, error) { return nil, nil, nil }
			w.cache.RestoreFn = func(context.Context, service.Goods, service.RestoredStock) (bool, error) { return c.restored, nil }
			w.locker.LockFn = func(context.Context, string, time.Duration) (func(), bool, error) {
				ok, err := c.lock()
				return func() { w.rec.Record("unlock") }, ok, err
			}
			l := w.ledger(t)
			for range 2 {
				if err := l.Reserve(ctx, order); err != service.ErrStockNotLoaded {
					t.Errorf("got %v, want stock not loaded", err)
				}
				waitRebuildDone(t, l, order.GoodsID)
			}
			l.Close()
			want := append(slices.Clone(c.calls), c.calls...)
			if got := w.rec.Only("Locker.Lock", "Stock.PendingMovements", "Stock.Truth", "Cache.Restore", "Stock.MarkCached", "unlock", "StockBack", "Announce"); !slices.Equal(got, want) {
				t.Errorf("calls %v, want %v", got, want)
			}
		})
	}
}

// waitRebuildDone waits until no rebuild of goods runs.
func waitRebuildDone(t *testing.T, l *Ledger, goodsID int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, busy := l.rebuilds.Load(goodsID); !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the rebuild did not end")
		}
		time.Sleep(time.Millisecond)
	}
}

// Close stops a rebuild waiting out its grace, at once, and nothing is
// restored after it.
func TestCloseStopsARebuildInItsGrace(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.opts.RebuildGrace = time.Hour
	w.cache.ReserveFn = func(context.Context, int64, int64, int64, time.Time) error { return service.ErrStockNotLoaded }
	w.stock.GoodsFn = func(context.Context, int64) (service.Goods, error) { return service.Goods{ID: 3}, nil }
	locked := make(chan struct{})
	w.locker.LockFn = func(context.Context, string, time.Duration) (func(), bool, error) {
		close(locked)
		return func() { w.rec.Record("unlock") }, true, nil
	}
	// No Close at cleanup: if Close waited out the grace, the test would too.
	l := New(Stores{Gate: w.cache, Moves: w.cache, Mends: w.cache, Locker: w.locker, Sales: w.sales,
		Records: w.stock, Truths: w.stock, Orders: w.orders, Announcer: w.announce}, w.opts, fakes.Log())
	if err := l.Reserve(ctx, order); err != service.ErrStockNotLoaded {
		t.Fatalf("got %v, want stock not loaded", err)
	}
	<-locked
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the grace")
	}
	if got := w.rec.Only("Stock.Truth", "Cache.Restore", "StockBack", "unlock"); !slices.Equal(got, []string{"unlock"}) {
		t.Errorf("calls %v, want the lock released and nothing restored", got)
	}
}

// V1's one transaction passes the gate inside it, within V1's deadline;
// what happens after the gate took units decides whether they are given
// back.
func TestSellInOneTransaction(t *testing.T) {
	t.Parallel()
	errCommit := errors.New("commit failed")
	errAmbiguous := fmt.Errorf("commit: %w", service.ErrAmbiguous)
	primary := service.OrderTable{}
	type fence struct {
		voided bool
		status int
		err    error
	}
	unavailable := func(err error) bool {
		return errors.Is(err, service.ErrUnavailable) && !errors.Is(err, service.ErrAmbiguous)
	}
	for _, c := range []struct {
		name  string
		gate  error // the cache's answer
		tx    func(gate func() error) error
		goods error // Stock.Goods's answer
		fence fence // VoidOrder's answer
		want  func(error) bool
		calls []string
	}{
		{name: "sold", tx: func(gate func() error) error { return gate() },
			want:  func(err error) bool { return err == nil },
			calls: []string{"Sales.SellInTx", "Cache.Reserve", "Applied"}},
		{name: "no rows, goods known", tx: func(func() error) error { return service.ErrSoldOut },
			want:  func(err error) bool { return err == service.ErrSoldOut },
			calls: []string{"Sales.SellInTx", "Stock.Goods"}},
		{name: "no rows, goods unknown", tx: func(func() error) error { return service.ErrSoldOut }, goods: service.ErrNotFound,
			want:  func(err error) bool { return err == service.ErrNotFound },
			calls: []string{"Sales.SellInTx", "Stock.Goods"}},
		{name: "redis sold out", gate: service.ErrSoldOut, tx: func(gate func() error) error { return gate() },
			want:  func(err error) bool { return err == service.ErrSoldOut },
			calls: []string{"Sales.SellInTx", "Cache.Reserve", "Stock.Goods"}},
		{name: "redis not started", gate: service.ErrNotStarted, tx: func(gate func() error) error { return gate() },
			want:  func(err error) bool { return err == service.ErrNotStarted },
			calls: []string{"Sales.SellInTx", "Cache.Reserve"}},
		{name: "redis lost the goods, unknown", gate: service.ErrStockNotLoaded, tx: func(gate func() error) error { return gate() }, goods: service.ErrNotFound,
			want:  func(err error) bool { return err == service.ErrNotFound },
			calls: []string{"Sales.SellInTx", "Cache.Reserve", "Stock.Goods"}},
		{name: "fails after the gate", tx: func(gate func() error) error { _ = gate(); return errCommit },
			want:  func(err error) bool { return err == errCommit },
			calls: []string{"Sales.SellInTx", "Cache.Reserve", "Cache.Release", "StockBack", "Announce"}},
		{name: "sold out after the gate", tx: func(gate func() error) error { _ = gate(); return service.ErrSoldOut },
			want:  func(err error) bool { return err == service.ErrSoldOut },
			calls: []string{"Sales.SellInTx", "Cache.Reserve", "Cache.Release", "StockBack", "Announce", "Stock.Goods"}},
		{name: "ambiguous after the gate, committed", tx: func(gate func() error) error { _ = gate(); return errAmbiguous },
			fence: fence{false, service.StatusUnpaid, nil},
			want:  func(err error) bool { return err == nil },
			calls: []string{"Sales.SellInTx", "Cache.Reserve", "Orders.VoidOrder", "Applied"}},
		{name: "ambiguous after the gate, fenced", tx: func(gate func() error) error { _ = gate(); return errAmbiguous },
			fence: fence{true, service.StatusVoid, nil},
			want:  unavailable,
			calls: []string{"Sales.SellInTx", "Cache.Reserve", "Orders.VoidOrder", "Cache.Release", "StockBack", "Announce"}},
		{name: "ambiguous after the gate, fenced by another", tx: func(gate func() error) error { _ = gate(); return errAmbiguous },
			fence: fence{false, service.StatusVoid, nil},
			want:  unavailable,
			calls: []string{"Sales.SellInTx", "Cache.Reserve", "Orders.VoidOrder"}},
		{name: "ambiguous after the gate, unknown", tx: func(gate func() error) error { _ = gate(); return errAmbiguous },
			fence: fence{false, 0, service.ErrUnavailable},
			want: func(err error) bool {
				var u *service.UnknownOrder
				return errors.As(err, &u) && u.Order == order && u.At == primary && u.Err == errAmbiguous
			},
			calls: []string{"Sales.SellInTx", "Cache.Reserve", "Orders.VoidOrder"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			start := time.Now()
			w.sales.SellInTxFn = func(ctx context.Context, _ service.Order, gate func() error) error {
				if d, ok := ctx.Deadline(); !ok || d.Before(start) || d.After(time.Now().Add(testV1Timeout)) {
					t.Errorf("transaction deadline %v (%v), want V1's timeout %v from now", d, ok, testV1Timeout)
				}
				return c.tx(gate)
			}
			w.cache.ReserveFn = func(context.Context, int64, int64, int64, time.Time) error { return c.gate }
			w.cache.ReleaseFn = func(context.Context, int64, int64, int64) error { return nil }
			w.stock.GoodsFn = func(context.Context, int64) (service.Goods, error) { return service.Goods{ID: 3}, c.goods }
			w.orders.VoidOrderFn = func(context.Context, service.OrderTable, service.Order) (bool, int, error) {
				return c.fence.voided, c.fence.status, c.fence.err
			}
			err := w.ledger(t).SellInOneTransaction(ctx, order)
			if !c.want(err) {
				t.Errorf("got %v", err)
			}
			if got := w.rec.Names(); !slices.Equal(got, c.calls) {
				t.Errorf("calls %v, want %v", got, c.calls)
			}
			if fences := w.rec.Of("Orders.VoidOrder"); len(fences) > 0 && (fences[0][0] != primary || fences[0][1] != order) {
				t.Errorf("fenced %v, want order %d on the primary's orders", fences, order.ID)
			}
			if applied := w.rec.Of("Applied"); len(applied) > 0 && applied[0][0] != service.MessageOf(order, primary) {
				t.Errorf("applied %v, want %+v", applied[0][0], service.MessageOf(order, primary))
			}
		})
	}
}

// V1's transaction ends at V1's deadline, however long the caller waits.
func TestSellInOneTransactionEndsAtV1Timeout(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.opts.V1Timeout = 20 * time.Millisecond
	w.sales.SellInTxFn = func(ctx context.Context, _ service.Order, _ func() error) error {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", service.ErrUnavailable, ctx.Err())
		case <-time.After(5 * time.Second):
			return errors.New("the transaction outlived V1's deadline")
		}
	}
	if err := w.ledger(t).SellInOneTransaction(ctx, order); !errors.Is(err, service.ErrUnavailable) {
		t.Errorf("got %v, want the transaction ended by V1's deadline", err)
	}
}

// The work after a reservation outlives the client, for the write budget.
func TestAfterReserveOutlivesTheClient(t *testing.T) {
	t.Parallel()
	w := newWorld()
	client, hangUp := context.WithCancel(ctx)
	hangUp()
	after, cancel := w.ledger(t).AfterReserve(client)
	defer cancel()
	if after.Err() != nil {
		t.Errorf("the work after the reservation ended with the client: %v", after.Err())
	}
	deadline, ok := after.Deadline()
	if !ok || time.Until(deadline) > w.opts.WriteBudget || time.Until(deadline) < w.opts.WriteBudget-time.Minute/2 {
		t.Errorf("deadline %v (%v), want the write budget %v from now", deadline, ok, w.opts.WriteBudget)
	}
}

// The order write has half the write budget, and ends with its caller.
func TestWriteWithinIsHalfTheBudget(t *testing.T) {
	t.Parallel()
	w := newWorld()
	parent, cancel := context.WithCancel(ctx)
	start := time.Now()
	write, done := w.ledger(t).WriteWithin(parent)
	defer done()
	half := w.opts.WriteBudget / 2
	if d, ok := write.Deadline(); !ok || d.Before(start.Add(half-half/2)) || d.After(time.Now().Add(half)) {
		t.Errorf("deadline %v (%v), want half the write budget, %v, from now", d, ok, half)
	}
	cancel()
	if write.Err() == nil {
		t.Error("the write outlived its caller's context")
	}
}

func msg(id int64) service.StockMessage {
	return service.StockMessage{OrderID: id, GoodsID: 3, UserID: 159, Number: 1, Host: 2, Table: 16, Deadline: 1}
}

// applied lists the messages the Applied hook was called with.
func applied(w *world) []service.StockMessage {
	var ms []service.StockMessage
	for _, args := range w.rec.Of("Applied") {
		ms = append(ms, args[0].(service.StockMessage))
	}
	return ms
}

// batches lists the batches ApplySales was called with.
func batches(w *world) [][]service.StockMessage {
	var bs [][]service.StockMessage
	for _, args := range w.rec.Of("Sales.ApplySales") {
		bs = append(bs, args[0].([]service.StockMessage))
	}
	return bs
}

func TestApplySalesRefusesInvalidMessages(t *testing.T) {
	t.Parallel()
	w := newWorld()
	invalid := []service.StockMessage{
		{GoodsID: 3, Number: 1},
		{OrderID: 1, Number: 1},
		{OrderID: 1, GoodsID: 3},
		{OrderID: -1, GoodsID: 3, Number: 1},
	}
	for i, err := range w.ledger(t).ApplySales(ctx, invalid) {
		if !errors.Is(err, service.ErrInvalid) {
			t.Errorf("message %d: %v, want invalid", i, err)
		}
	}
	if calls := w.rec.Names(); len(calls) != 0 {
		t.Errorf("calls %v, want none", calls)
	}
}

func TestApplySalesInOneBatch(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.sales.ApplySalesFn = func(context.Context, []service.StockMessage) error { return nil }
	ms := []service.StockMessage{msg(1), {OrderID: 2}, msg(3), msg(4)}
	errs := w.ledger(t).ApplySales(ctx, ms)
	if errs[0] != nil || !errors.Is(errs[1], service.ErrInvalid) || errs[2] != nil || errs[3] != nil {
		t.Errorf("errors %v, want only the second invalid", errs)
	}
	valid := []service.StockMessage{msg(1), msg(3), msg(4)}
	if rows := w.rec.Of("Orders.OrderRows"); len(rows) != 1 || !slices.Equal(rows[0][0].([]service.StockMessage), valid) {
		t.Errorf("order rows read for %v, want once for the valid messages", rows)
	}
	if bs := batches(w); len(bs) != 1 || !slices.Equal(bs[0], valid) {
		t.Errorf("batches %v, want one of the valid messages", bs)
	}
	if got := w.rec.Only("Orders.OrderRows", "Sales.ApplySales"); !slices.Equal(got, []string{"Orders.OrderRows", "Sales.ApplySales"}) {
		t.Errorf("calls %v, want the orders checked before the sales", got)
	}
	if got := applied(w); !slices.Equal(got, valid) {
		t.Errorf("applied %v, want %v", got, valid)
	}
	if n := w.rec.Count("Sales.ApplySale"); n != 0 {
		t.Errorf("%d single applies", n)
	}
}

// One valid message is no batch.
func TestApplySalesOfOneMessage(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.sales.ApplySaleFn = func(context.Context, service.StockMessage) error { return nil }
	errs := w.ledger(t).ApplySales(ctx, []service.StockMessage{{}, msg(5)})
	if !errors.Is(errs[0], service.ErrInvalid) || errs[1] != nil {
		t.Errorf("errors %v", errs)
	}
	if got := w.rec.Names(); !slices.Equal(got, []string{"Orders.OrderRows", "Sales.ApplySale", "Applied"}) {
		t.Errorf("calls %v, want the order checked, then one ApplySale", got)
	}
}

// A batch holding copies or orders applied before is tried again without them.
func TestApplySalesDropsWhatIsApplied(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		ms      []service.StockMessage
		settled map[int64]bool
		retry   []service.StockMessage // the second batch, if any
		single  []service.StockMessage // applied one by one
	}{
		{"rest in a batch", []service.StockMessage{msg(1), msg(2), msg(1), msg(3), msg(4)}, map[int64]bool{2: true},
			[]service.StockMessage{msg(1), msg(3), msg(4)}, nil},
		{"one left", []service.StockMessage{msg(1), msg(2)}, map[int64]bool{1: true}, nil, []service.StockMessage{msg(2)}},
		{"none left", []service.StockMessage{msg(1), msg(1), msg(2)}, map[int64]bool{1: true, 2: true}, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			tries := 0
			w.sales.ApplySalesFn = func(context.Context, []service.StockMessage) error {
				if tries++; tries == 1 {
					return service.ErrAlreadyApplied
				}
				return nil
			}
			w.sales.AppliedFn = func(context.Context, []int64) (map[int64]bool, error) { return c.settled, nil }
			w.sales.ApplySaleFn = func(context.Context, service.StockMessage) error { return nil }
			errs := w.ledger(t).ApplySales(ctx, c.ms)
			for i, err := range errs {
				if err != nil {
					t.Errorf("message %d: %v", i, err)
				}
			}
			var ids []int64
			for _, m := range c.ms {
				ids = append(ids, m.OrderID)
			}
			if s := w.rec.Of("Sales.Applied"); len(s) != 1 || !slices.Equal(s[0][0].([]int64), ids) {
				t.Errorf("Applied asked %v, want once for %v", s, ids)
			}
			bs := batches(w)
			if !slices.Equal(bs[0], c.ms) || c.retry != nil && (len(bs) != 2 || !slices.Equal(bs[1], c.retry)) || c.retry == nil && len(bs) != 1 {
				t.Errorf("batches %v, want %v then %v", bs, c.ms, c.retry)
			}
			var single []service.StockMessage
			for _, args := range w.rec.Of("Sales.ApplySale") {
				single = append(single, args[0].(service.StockMessage))
			}
			if !slices.Equal(single, c.single) {
				t.Errorf("applied one by one %v, want %v", single, c.single)
			}
			if want := append(slices.Clone(c.retry), c.single...); !slices.Equal(applied(w), want) {
				t.Errorf("Applied %v, want %v", applied(w), want)
			}
		})
	}
}

// A batch that cannot commit whole: every message gets its own answer. A
// sale the database refuses marks its order refused and is dead-lettered.
func TestApplySalesOneByOneAfterABatchFails(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.sales.ApplySalesFn = func(context.Context, []service.StockMessage) error { return service.ErrSoldOut }
	w.orders.MarkRefusedFn = func(context.Context, service.StockMessage) error { return nil }
	answers := map[int64]error{
		1: nil,
		2: fmt.Errorf("order 2: %w", service.ErrSoldOut),
		3: service.ErrLimitExceeded,
		4: service.ErrAlreadyApplied,
		5: service.ErrUnavailable,
	}
	w.sales.ApplySaleFn = func(_ context.Context, m service.StockMessage) error { return answers[m.OrderID] }
	ms := []service.StockMessage{msg(1), msg(2), msg(3), msg(4), msg(5)}
	errs := w.ledger(t).ApplySales(ctx, ms)
	if errs[0] != nil {
		t.Errorf("applied: %v", errs[0])
	}
	for _, i := range []int{1, 2} {
		if !errors.Is(errs[i], service.ErrInvalid) || errors.Is(errs[i], service.ErrSoldOut) || errors.Is(errs[i], service.ErrLimitExceeded) {
			t.Errorf("message %d: %v, want invalid alone (a dead letter)", i+1, errs[i])
		}
	}
	if errs[3] != nil {
		t.Errorf("already applied: %v, want nil", errs[3])
	}
	if errs[4] != service.ErrUnavailable {
		t.Errorf("unavailable: %v, want it as is", errs[4])
	}
	var single []service.StockMessage
	for _, args := range w.rec.Of("Sales.ApplySale") {
		single = append(single, args[0].(service.StockMessage))
	}
	if !slices.Equal(single, ms) {
		t.Errorf("applied one by one %v, want every message in order", single)
	}
	if got := applied(w); !slices.Equal(got, []service.StockMessage{msg(1)}) {
		t.Errorf("Applied %v, want only order 1", got)
	}
	var refused []service.StockMessage
	for _, args := range w.rec.Of("Orders.MarkRefused") {
		refused = append(refused, args[0].(service.StockMessage))
	}
	if !slices.Equal(refused, []service.StockMessage{msg(2), msg(3)}) {
		t.Errorf("marked refused %v, want orders 2 and 3", refused)
	}
}

// A refusal is recorded before its message is given up on: when the order
// cannot be marked refused, the error is returned as is, so that the
// message is tried again, and nothing is applied.
func TestApplySaleRefusalIsRecordedFirst(t *testing.T) {
	t.Parallel()
	for _, refusal := range []error{service.ErrSoldOut, service.ErrLimitExceeded} {
		for _, mark := range []error{nil, service.ErrUnavailable} {
			w := newWorld()
			w.sales.ApplySaleFn = func(context.Context, service.StockMessage) error { return fmt.Errorf("order 5: %w", refusal) }
			w.orders.MarkRefusedFn = func(context.Context, service.StockMessage) error { return mark }
			err := w.ledger(t).ApplySales(ctx, []service.StockMessage{msg(5)})[0]
			switch {
			case mark == nil && (!errors.Is(err, service.ErrInvalid) || errors.Is(err, refusal)):
				t.Errorf("%v, marked: %v, want invalid alone (a dead letter)", refusal, err)
			case mark != nil && err != mark:
				t.Errorf("%v, marking fails: %v, want the marking's error as is", refusal, err)
			}
			if r := w.rec.Of("Orders.MarkRefused"); len(r) != 1 || r[0][0] != msg(5) {
				t.Errorf("%v: marked refused %v, want order 5 once", refusal, r)
			}
			if n := w.rec.Count("Applied"); n != 0 {
				t.Errorf("%v: a refused sale was applied", refusal)
			}
		}
	}
}

// A message whose order is not in the table it names, as it describes it,
// still holding its units, is a stray: it is dead-lettered as invalid and
// moves no stock; the others in its batch are applied.
func TestApplySalesStrayMessages(t *testing.T) {
	t.Parallel()
	m := msg(7)
	elsewhere := m
	elsewhere.Table = 15
	for _, c := range []struct {
		name string
		row  func(r *service.OrderRow) // nil: no row where the message says
		at   service.OrderTable        // where the row is, when not where the message says
	}{
		{name: "not found"},
		{name: "in another table", row: func(*service.OrderRow) {}, at: elsewhere.At()},
		{name: "another number", row: func(r *service.OrderRow) { r.Number = 2 }},
		{name: "another goods", row: func(r *service.OrderRow) { r.GoodsID = 4 }},
		{name: "another user", row: func(r *service.OrderRow) { r.UserID = 160 }},
		{name: "void", row: func(r *service.OrderRow) { r.Status, r.Number = service.StatusVoid, 0 }},
		{name: "void, number as described", row: func(r *service.OrderRow) { r.Status = service.StatusVoid }},
		{name: "refused", row: func(r *service.OrderRow) { r.Status = service.StatusRefused }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, others := range [][]service.StockMessage{nil, {msg(1)}, {msg(1), msg(2)}} {
				w := newWorld()
				// The database holds the others as described, and order 7 as
				// the case says, in the table the case says.
				db := map[service.OrderRef]service.OrderRow{}
				for _, o := range others {
					db[o.Ref()] = rowOf(o)
				}
				if c.row != nil {
					row := rowOf(m)
					c.row(&row)
					if c.at != (service.OrderTable{}) {
						row.At = c.at
					}
					db[service.OrderRef{ID: row.ID, At: row.At}] = row
				}
				w.orders.OrderRowsFn = func(_ context.Context, ms []service.StockMessage) (map[service.OrderRef]service.OrderRow, error) {
					rows := map[service.OrderRef]service.OrderRow{}
					for _, m := range ms {
						if row, ok := db[m.Ref()]; ok {
							rows[m.Ref()] = row
						}
					}
					return rows, nil
				}
				w.sales.ApplySaleFn = func(context.Context, service.StockMessage) error { return nil }
				w.sales.ApplySalesFn = func(context.Context, []service.StockMessage) error { return nil }
				ms := append([]service.StockMessage{m}, others...)
				errs := w.ledger(t).ApplySales(ctx, ms)
				if !errors.Is(errs[0], service.ErrInvalid) || !errors.Is(errs[0], service.ErrStray) {
					t.Errorf("with %d others: %v, want invalid and stray", len(others), errs[0])
				}
				for i, err := range errs[1:] {
					if err != nil {
						t.Errorf("with %d others: order %d: %v", len(others), others[i].OrderID, err)
					}
				}
				var moved []service.StockMessage
				for _, args := range w.rec.Of("Sales.ApplySale") {
					moved = append(moved, args[0].(service.StockMessage))
				}
				for _, b := range batches(w) {
					moved = append(moved, b...)
				}
				if slices.Contains(moved, m) || slices.Contains(applied(w), m) {
					t.Errorf("with %d others: the stray moved stock: %v", len(others), moved)
				}
				if !slices.Equal(applied(w), others) {
					t.Errorf("with %d others: applied %v, want %v", len(others), applied(w), others)
				}
				if n := w.rec.Count("Orders.MarkRefused"); n != 0 {
					t.Errorf("with %d others: a stray marked an order refused", len(others))
				}
			}
		})
	}
}

// When the orders cannot be read, no valid message is applied: each gets
// the error, to be tried again; invalid ones are still invalid.
func TestApplySalesWhenOrderRowsFails(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.orders.OrderRowsFn = func(context.Context, []service.StockMessage) (map[service.OrderRef]service.OrderRow, error) {
		return nil, service.ErrUnavailable
	}
	errs := w.ledger(t).ApplySales(ctx, []service.StockMessage{msg(1), {OrderID: 2}, msg(3)})
	if errs[0] != service.ErrUnavailable || !errors.Is(errs[1], service.ErrInvalid) || errs[2] != service.ErrUnavailable {
		t.Errorf("errors %v, want unavailable, invalid, unavailable", errs)
	}
	if got := w.rec.Names(); !slices.Equal(got, []string{"Orders.OrderRows"}) {
		t.Errorf("calls %v, want the read of the orders alone", got)
	}
}

// Settled failing: the messages are still each answered.
func TestApplySalesWhenSettledFails(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.sales.ApplySalesFn = func(context.Context, []service.StockMessage) error { return service.ErrAlreadyApplied }
	w.sales.AppliedFn = func(context.Context, []int64) (map[int64]bool, error) { return nil, service.ErrUnavailable }
	w.sales.ApplySaleFn = func(_ context.Context, m service.StockMessage) error {
		if m.OrderID == 1 {
			return service.ErrAlreadyApplied
		}
		return nil
	}
	errs := w.ledger(t).ApplySales(ctx, []service.StockMessage{msg(1), msg(2)})
	if errs[0] != nil || errs[1] != nil {
		t.Errorf("errors %v", errs)
	}
	if got := applied(w); !slices.Equal(got, []service.StockMessage{msg(2)}) {
		t.Errorf("Applied %v, want only order 2", got)
	}
}
