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

func TestSettleFailedWrite(t *testing.T) {
	t.Parallel()
	at := service.OrderTable{Host: 2, Table: 16}
	errWrite := errors.New("insert: table is full")
	errAmbiguous := fmt.Errorf("insert: %w", service.ErrAmbiguous)
	errDown := fmt.Errorf("lookup: %w", service.ErrUnavailable)
	for _, c := range []struct {
		name     string
		err      error
		lookup   error // nil: the order is there; ignored when not looked up
		lookedUp bool
		want     error // nil: nil; an *UnknownOrder is checked apart
		unknown  bool
		giveBack bool
	}{
		{name: "not ambiguous", err: errWrite, want: errWrite, giveBack: true},
		{name: "ambiguous, found", err: errAmbiguous, lookedUp: true},
		{name: "ambiguous, not found", err: errAmbiguous, lookup: service.ErrNotFound, lookedUp: true, want: errAmbiguous, giveBack: true},
		{name: "ambiguous, lookup fails", err: errAmbiguous, lookup: errDown, lookedUp: true, unknown: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			w.orders.OrderStatusFn = func(context.Context, service.OrderTable, int64) (int, int64, error) {
				return service.StatusUnpaid, order.UserID, c.lookup
			}
			w.cache.ReleaseFn = func(context.Context, int64, int64, int64) error { return nil }
			err := w.ledger(t).SettleFailedWrite(ctx, order, at, c.err)
			if c.unknown {
				var unknown *service.UnknownOrder
				if !errors.As(err, &unknown) || unknown.Order != order || unknown.At != at || unknown.Err != c.err {
					t.Errorf("got %v, want *UnknownOrder of order %d at %+v with the write's error", err, order.ID, at)
				}
			} else if err != c.want {
				t.Errorf("got %v, want %v", err, c.want)
			}
			look := w.rec.Of("Orders.OrderStatus")
			if c.lookedUp != (len(look) == 1) || c.lookedUp && (look[0][0] != at || look[0][1] != order.ID) {
				t.Errorf("lookups %v, want %v for order %d at %+v", look, c.lookedUp, order.ID, at)
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
// under the lock and after the grace, restores it from the database.
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
			w.stock.AppliedChangesFn = func(context.Context, int64) ([]string, []int64, error) {
				return []string{"op-1"}, []int64{7}, nil
			}
			w.stock.UserUnitsFn = func(context.Context, int64) (map[int64]int64, error) { return map[int64]int64{159: 2}, nil }
			allIn := make(chan struct{})
			var locked time.Time
			w.locker.LockFn = func(context.Context, string, time.Duration) (func(), bool, error) {
				<-allIn // the rebuild is under way while every order comes in
				locked = time.Now()
				return func() { w.rec.Record("unlock") }, true, nil
			}
			restored := make(chan time.Time, 1)
			w.cache.RestoreFn = func(context.Context, service.Goods, service.RestoredStock) (bool, error) {
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
			want := service.RestoredStock{Stock: 40, AppliedOps: []string{"op-1"}, ReturnedOrders: []int64{7}}
			if limit > 0 {
				want.UserUnits = map[int64]int64{159: 2}
			}
			restore := w.rec.Of("Cache.Restore")
			if len(restore) != 1 {
				t.Fatalf("%d restores, want 1", len(restore))
			}
			if restore[0][0] != g || !sameRestored(restore[0][1].(service.RestoredStock), want) {
				t.Errorf("restored %+v with %+v, want %+v with %+v", restore[0][0], restore[0][1], g, want)
			}
			if n := w.rec.Count("Stock.UserUnits"); (n == 1) != (limit > 0) {
				t.Errorf("%d reads of user units with limit %d", n, limit)
			}
			tail := []string{"Cache.Restore", "StockBack", "Announce", "unlock"}
			if got := w.rec.Only(tail...); !slices.Equal(got, tail) {
				t.Errorf("calls %v, want %v", got, tail)
			}
		})
	}
}

func sameRestored(a, b service.RestoredStock) bool {
	if a.Stock != b.Stock || !slices.Equal(a.AppliedOps, b.AppliedOps) || !slices.Equal(a.ReturnedOrders, b.ReturnedOrders) ||
		(a.UserUnits == nil) != (b.UserUnits == nil) || len(a.UserUnits) != len(b.UserUnits) {
		return false
	}
	for k, v := range a.UserUnits {
		if b.UserUnits[k] != v {
			return false
		}
	}
	return true
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
		{"truth fails", func() (bool, error) { return true, nil }, service.ErrUnavailable, false, []string{"Locker.Lock", "Stock.Truth", "unlock"}},
		{"restored elsewhere", func() (bool, error) { return true, nil }, nil, false, []string{"Locker.Lock", "Stock.Truth", "Stock.AppliedChanges", "Cache.Restore", "unlock"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			w.cache.ReserveFn = func(context.Context, int64, int64, int64, time.Time) error { return service.ErrStockNotLoaded }
			w.stock.GoodsFn = func(context.Context, int64) (service.Goods, error) { return service.Goods{ID: 3}, nil }
			w.stock.TruthFn = func(context.Context, int64) (int64, error) { return 5, c.truth }
			w.stock.AppliedChangesFn = func(context.Context, int64) ([]string, []int64, error) { return nil, nil, nil }
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
			if got := w.rec.Only("Locker.Lock", "Stock.Truth", "Stock.AppliedChanges", "Cache.Restore", "unlock", "StockBack", "Announce"); !slices.Equal(got, want) {
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
	l := New(w.cache, w.locker, w.sales, w.stock, w.orders, w.announce, w.opts, fakes.Log())
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

// V1's one transaction passes the gate inside it; what happens after the
// gate took units decides whether they are given back.
func TestSellInOneTransaction(t *testing.T) {
	t.Parallel()
	errCommit := errors.New("commit failed")
	errAmbiguous := fmt.Errorf("commit: %w", service.ErrAmbiguous)
	primary := service.OrderTable{}
	for _, c := range []struct {
		name   string
		gate   error // the cache's answer
		tx     func(gate func() error) error
		goods  error // Stock.Goods's answer
		lookup error // OrderStatus's answer
		want   func(error) bool
		calls  []string
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
			want:  func(err error) bool { return err == nil },
			calls: []string{"Sales.SellInTx", "Cache.Reserve", "Orders.OrderStatus", "Applied"}},
		{name: "ambiguous after the gate, not committed", tx: func(gate func() error) error { _ = gate(); return errAmbiguous }, lookup: service.ErrNotFound,
			want:  func(err error) bool { return err == errAmbiguous },
			calls: []string{"Sales.SellInTx", "Cache.Reserve", "Orders.OrderStatus", "Cache.Release", "StockBack", "Announce"}},
		{name: "ambiguous after the gate, unknown", tx: func(gate func() error) error { _ = gate(); return errAmbiguous }, lookup: service.ErrUnavailable,
			want: func(err error) bool {
				var u *service.UnknownOrder
				return errors.As(err, &u) && u.Order == order && u.At == primary && u.Err == errAmbiguous
			},
			calls: []string{"Sales.SellInTx", "Cache.Reserve", "Orders.OrderStatus"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			w.sales.SellInTxFn = func(_ context.Context, _ service.Order, gate func() error) error { return c.tx(gate) }
			w.cache.ReserveFn = func(context.Context, int64, int64, int64, time.Time) error { return c.gate }
			w.cache.ReleaseFn = func(context.Context, int64, int64, int64) error { return nil }
			w.stock.GoodsFn = func(context.Context, int64) (service.Goods, error) { return service.Goods{ID: 3}, c.goods }
			w.orders.OrderStatusFn = func(context.Context, service.OrderTable, int64) (int, int64, error) {
				return service.StatusUnpaid, order.UserID, c.lookup
			}
			err := w.ledger(t).SellInOneTransaction(ctx, order)
			if !c.want(err) {
				t.Errorf("got %v", err)
			}
			if got := w.rec.Names(); !slices.Equal(got, c.calls) {
				t.Errorf("calls %v, want %v", got, c.calls)
			}
			if look := w.rec.Of("Orders.OrderStatus"); len(look) > 0 && (look[0][0] != primary || look[0][1] != order.ID) {
				t.Errorf("looked up %v, want order %d on the primary's orders", look, order.ID)
			}
			if applied := w.rec.Of("Applied"); len(applied) > 0 && applied[0][0] != service.MessageOf(order, primary) {
				t.Errorf("applied %v, want %+v", applied[0][0], service.MessageOf(order, primary))
			}
		})
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
	if bs := batches(w); len(bs) != 1 || !slices.Equal(bs[0], valid) {
		t.Errorf("batches %v, want one of the valid messages", bs)
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
	if got := w.rec.Names(); !slices.Equal(got, []string{"Sales.ApplySale", "Applied"}) {
		t.Errorf("calls %v, want one ApplySale", got)
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
			w.sales.SettledFn = func(context.Context, []int64) (map[int64]bool, error) { return c.settled, nil }
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
			if s := w.rec.Of("Sales.Settled"); len(s) != 1 || !slices.Equal(s[0][0].([]int64), ids) {
				t.Errorf("Settled asked %v, want once for %v", s, ids)
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

// A batch that cannot commit whole: every message gets its own answer.
func TestApplySalesOneByOneAfterABatchFails(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.sales.ApplySalesFn = func(context.Context, []service.StockMessage) error { return service.ErrSoldOut }
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
}

// Settled failing: the messages are still each answered.
func TestApplySalesWhenSettledFails(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.sales.ApplySalesFn = func(context.Context, []service.StockMessage) error { return service.ErrAlreadyApplied }
	w.sales.SettledFn = func(context.Context, []int64) (map[int64]bool, error) { return nil, service.ErrUnavailable }
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

func TestDeadLetter(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.sales.DeadLetterFn = func(context.Context, service.StockMessage, []byte, string) error { return nil }
	if err := w.ledger(t).DeadLetter(ctx, msg(1), []byte(`{"order_id":1}`), "sold out in mysql"); err != nil {
		t.Fatal(err)
	}
	if d := w.rec.Of("Sales.DeadLetter"); len(d) != 1 || d[0][0] != msg(1) || d[0][1] != `{"order_id":1}` || d[0][2] != "sold out in mysql" {
		t.Errorf("dead letters %v", d)
	}
}
