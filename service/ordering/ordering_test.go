package ordering

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
)

var ctx = context.Background()

// Every version sells through the path, table and route its data declares.
func TestEachVersionSellsAsItsDataSays(t *testing.T) {
	t.Parallel()
	for _, v := range service.Versions() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			for _, user := range []int64{1, 7, 10, 159, 165, 1 << 40} {
				w := newWorld(t)
				req := service.OrderRequest{UserID: user, GoodsID: 3, Number: 2}
				o, err := w.placer.PlaceOrder(ctx, v.Name, req)
				if err != nil {
					t.Fatalf("user %d: %v", user, err)
				}
				if o.ID != 1 || o.UserID != user || o.GoodsID != 3 || o.Number != 2 || o.Version != v.Name {
					t.Errorf("user %d: order %+v", user, o)
				}
				if v.Path == service.InOneTransaction {
					if got := w.rec.Only(sellCalls...); !slices.Equal(got, []string{"Ledger.SellInOneTransaction"}) {
						t.Fatalf("user %d: calls %v, want the one transaction alone", user, got)
					}
					if sold := w.rec.Of("Ledger.SellInOneTransaction")[0][0].(service.Order); !sameOrder(sold, o) {
						t.Errorf("user %d: sold %+v, answered %+v", user, sold, o)
					}
					continue
				}
				want := []string{"Ledger.Reserve", "Orders.InsertOrder", "Publish"}
				if got := w.rec.Only(sellCalls...); !slices.Equal(got, want) {
					t.Fatalf("user %d: calls %v, want %v", user, got, want)
				}
				if reserved := w.rec.Of("Ledger.Reserve")[0][0].(service.Order); !sameOrder(reserved, o) {
					t.Errorf("user %d: reserved %+v, answered %+v", user, reserved, o)
				}
				at := v.Place(user, testLayout)
				insert := w.rec.Of("Orders.InsertOrder")[0]
				if !sameOrder(insert[0].(service.Order), o) || insert[1] != at {
					t.Errorf("user %d: inserted %+v at %+v, want at %+v", user, insert[0], insert[1], at)
				}
				pub := w.rec.Of("Publish")[0]
				if pub[0] != service.MessageOf(o, at) || pub[1] != v.Route(user) {
					t.Errorf("user %d: published %+v on route %v, want %+v on route %d", user, pub[0], pub[1], service.MessageOf(o, at), v.Route(user))
				}
			}
		})
	}
}

// The seed's concrete tables and routes, whatever the data says.
func TestSeedTablesAndRoutes(t *testing.T) {
	t.Parallel()
	threeHosts := testOpts
	threeHosts.Layout = service.Layout{Tables: 16, Hosts: 3}
	for _, c := range []struct {
		version string
		user    int64
		opts    Options
		at      service.OrderTable
		table   string
		route   int64
	}{
		{"V2", 159, testOpts, service.OrderTable{}, "orders", 0},
		{"V3", 159, testOpts, service.OrderTable{Table: 16}, "order_16", 0},
		{"V3", 165, testOpts, service.OrderTable{Table: 1}, "order_1", 0},
		{"V4", 159, testOpts, service.OrderTable{Host: 159%2 + 1, Table: 16}, "order_16", 0},
		{"V4", 10, threeHosts, service.OrderTable{Host: 10%3 + 1, Table: 2}, "order_2", 0},
		{"V5", 159, testOpts, service.OrderTable{Host: 2, Table: 16}, "order_16", 159},
		{"V5", 10, threeHosts, service.OrderTable{Host: 2, Table: 2}, "order_2", 10},
		{"V6", 165, testOpts, service.OrderTable{Host: 2, Table: 1}, "order_1", 165},
	} {
		w := newWorldWith(t, c.opts)
		o, err := w.placer.PlaceOrder(ctx, c.version, service.OrderRequest{UserID: c.user, GoodsID: 1, Number: 1})
		if err != nil {
			t.Fatalf("%s user %d: %v", c.version, c.user, err)
		}
		at := w.rec.Of("Orders.InsertOrder")[0][1].(service.OrderTable)
		if at != c.at || at.Name() != c.table {
			t.Errorf("%s user %d: order in %s at %+v, want %s at %+v", c.version, c.user, at.Name(), at, c.table, c.at)
		}
		pub := w.rec.Of("Publish")[0]
		if pub[1] != c.route {
			t.Errorf("%s user %d: route %v, want %d", c.version, c.user, pub[1], c.route)
		}
		if m := pub[0].(service.StockMessage); m.At() != c.at || m.OrderID != o.ID {
			t.Errorf("%s user %d: message %+v does not point at the order", c.version, c.user, m)
		}
	}
}

// A request that fails validation takes nothing: no id, no claim, no stock.
func TestInvalidRequestsNeverReserve(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		version string
		req     service.OrderRequest
		want    error
	}{
		{"user 0", "V6", service.OrderRequest{UserID: 0, GoodsID: 1, Number: 1}, service.ErrInvalid},
		{"user -1", "V2", service.OrderRequest{UserID: -1, GoodsID: 1, Number: 1}, service.ErrInvalid},
		{"goods 0", "V6", service.OrderRequest{UserID: 1, GoodsID: 0, Number: 1}, service.ErrInvalid},
		{"number 0", "V1", service.OrderRequest{UserID: 1, GoodsID: 1, Number: 0}, service.ErrInvalid},
		{"number past max", "V6", service.OrderRequest{UserID: 1, GoodsID: 1, Number: testOpts.MaxNumber + 1}, service.ErrInvalid},
		{"unknown version", "V99", service.OrderRequest{UserID: 1, GoodsID: 1, Number: 1}, service.ErrNotFound},
	} {
		for _, key := range []string{"", "k"} {
			w := newWorld(t)
			_, err := w.placer.PlaceOrderOnce(ctx, c.version, c.req, key)
			if !errors.Is(err, c.want) {
				t.Errorf("%s (key %q): %v, want %v", c.name, key, err, c.want)
			}
			if calls := w.rec.Names(); len(calls) != 0 {
				t.Errorf("%s (key %q): calls %v, want none", c.name, key, calls)
			}
		}
	}
	w := newWorld(t)
	if _, err := w.placer.PlaceOrder(ctx, "V6", service.OrderRequest{UserID: 1, GoodsID: 1, Number: testOpts.MaxNumber}); err != nil {
		t.Errorf("number = MaxNumber: %v", err)
	}
}

// An order write that failed is settled by the ledger, whose answer is the
// order's: an error is returned, nil means the row is there after all.
func TestFailedInsertIsSettledByTheLedger(t *testing.T) {
	t.Parallel()
	errWrite := fmt.Errorf("insert: %w", service.ErrUnavailable)
	req := service.OrderRequest{UserID: 159, GoodsID: 4, Number: 1}
	at := service.OrderTable{Host: 2, Table: 16}

	t.Run("given back", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.orders.InsertOrderFn = func(context.Context, service.Order, service.OrderTable) error { return errWrite }
		w.ledger.SettleFailedWriteFn = func(_ context.Context, _ service.Order, _ service.OrderTable, err error) error { return err }
		_, err := w.placer.PlaceOrder(ctx, "V6", req)
		if err != errWrite {
			t.Errorf("got %v, want the write's error", err)
		}
		settle := w.rec.Of("Ledger.SettleFailedWrite")
		if len(settle) != 1 || settle[0][0].(service.Order).ID != 1 || settle[0][1] != at || settle[0][2] != errWrite {
			t.Errorf("SettleFailedWrite calls %v, want order 1 at %+v with the write's error", settle, at)
		}
		if n := w.rec.Count("Publish"); n != 0 {
			t.Errorf("published %d messages of an order that is not there", n)
		}
	})
	t.Run("written after all", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		errAmbiguous := fmt.Errorf("insert: %w", service.ErrAmbiguous)
		w.orders.InsertOrderFn = func(context.Context, service.Order, service.OrderTable) error { return errAmbiguous }
		w.ledger.SettleFailedWriteFn = func(context.Context, service.Order, service.OrderTable, error) error { return nil }
		o, err := w.placer.PlaceOrder(ctx, "V6", req)
		if err != nil || o.ID != 1 {
			t.Fatalf("got %+v, %v, want order 1", o, err)
		}
		if settle := w.rec.Of("Ledger.SettleFailedWrite"); len(settle) != 1 || settle[0][2] != errAmbiguous {
			t.Errorf("SettleFailedWrite calls %v", settle)
		}
		if pub := w.rec.Of("Publish"); len(pub) != 1 || pub[0][0] != service.MessageOf(o, at) {
			t.Errorf("published %v, want the order's message", pub)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		var unknown *service.UnknownOrder
		w.orders.InsertOrderFn = func(context.Context, service.Order, service.OrderTable) error { return service.ErrAmbiguous }
		w.ledger.SettleFailedWriteFn = func(_ context.Context, o service.Order, at service.OrderTable, err error) error {
			unknown = &service.UnknownOrder{Order: o, At: at, Err: err}
			return unknown
		}
		_, err := w.placer.PlaceOrder(ctx, "V5", req)
		if err != error(unknown) {
			t.Errorf("got %v, want the ledger's *UnknownOrder as is", err)
		}
		if n := w.rec.Count("Publish"); n != 0 {
			t.Errorf("published %d messages of an order that may not exist", n)
		}
	})
}

// The row is committed: a failed publish is the outbox sweep's to finish.
func TestPublishFailureStillAnswersTheOrder(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.pub.PublishFn = func(context.Context, service.StockMessage, int64) error { return service.ErrUnavailable }
	o, err := w.placer.PlaceOrder(ctx, "V5", service.OrderRequest{UserID: 8, GoodsID: 1, Number: 1})
	if err != nil || o.ID != 1 {
		t.Fatalf("got %+v, %v, want order 1", o, err)
	}
	if n := w.rec.Count("Ledger.SettleFailedWrite"); n != 0 {
		t.Errorf("a failed publish settled the reservation %d times", n)
	}
}

type ctxKey struct{}

// Once units are reserved, the client hanging up stops nothing: the insert
// and the publish run under the ledger's AfterReserve context, released
// last; the insert alone runs within the ledger's WriteWithin, released as
// soon as the insert returns.
func TestWorkAfterReserveOutlivesTheClient(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	client, hangUp := context.WithCancel(ctx)
	w.ledger.ReserveFn = func(context.Context, service.Order) error {
		hangUp()
		return nil
	}
	w.ledger.AfterReserveFn = func(ctx context.Context) (context.Context, context.CancelFunc) {
		after, cancel := context.WithCancel(context.WithValue(context.WithoutCancel(ctx), ctxKey{}, "after reserve"))
		return after, func() { w.rec.Record("AfterReserve.cancel"); cancel() }
	}
	type writeKey struct{}
	w.ledger.WriteWithinFn = func(ctx context.Context) (context.Context, context.CancelFunc) {
		if ctx.Value(ctxKey{}) != "after reserve" {
			t.Errorf("WriteWithin of %v, want of the AfterReserve context", ctx)
		}
		write, cancel := context.WithCancel(context.WithValue(ctx, writeKey{}, "write"))
		return write, func() { w.rec.Record("WriteWithin.cancel"); cancel() }
	}
	check := func(name string, ctx context.Context, write bool) {
		if ctx.Value(ctxKey{}) != "after reserve" || ctx.Err() != nil {
			t.Errorf("%s ran under %v (err %v), want the AfterReserve context", name, ctx, ctx.Err())
		}
		if (ctx.Value(writeKey{}) == "write") != write {
			t.Errorf("%s ran under %v, want WriteWithin's context: %v", name, ctx, write)
		}
	}
	w.orders.InsertOrderFn = func(ctx context.Context, _ service.Order, _ service.OrderTable) error {
		check("InsertOrder", ctx, true)
		return nil
	}
	w.pub.PublishFn = func(ctx context.Context, _ service.StockMessage, _ int64) error {
		check("Publish", ctx, false)
		return nil
	}
	if _, err := w.placer.PlaceOrder(client, "V6", service.OrderRequest{UserID: 3, GoodsID: 1, Number: 1}); err != nil {
		t.Fatal(err)
	}
	want := []string{"Ledger.Reserve", "Ledger.AfterReserve", "Ledger.WriteWithin", "Orders.InsertOrder", "WriteWithin.cancel", "Publish", "AfterReserve.cancel"}
	if got := w.rec.Only(want...); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}

// A failed write is settled after the write's own context is released:
// the settling has its own share of the budget, under AfterReserve's.
func TestFailedWriteIsSettledOutsideTheWriteContext(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var write context.Context
	w.ledger.WriteWithinFn = func(ctx context.Context) (context.Context, context.CancelFunc) {
		var cancel context.CancelFunc
		write, cancel = context.WithCancel(ctx)
		return write, func() { w.rec.Record("WriteWithin.cancel"); cancel() }
	}
	w.orders.InsertOrderFn = func(context.Context, service.Order, service.OrderTable) error { return service.ErrAmbiguous }
	w.ledger.SettleFailedWriteFn = func(ctx context.Context, _ service.Order, _ service.OrderTable, _ error) error {
		if ctx.Err() != nil {
			t.Errorf("settled under an ended context: %v", ctx.Err())
		}
		if write.Err() == nil {
			t.Error("settled while the write's context still ran")
		}
		return nil
	}
	if _, err := w.placer.PlaceOrder(ctx, "V6", service.OrderRequest{UserID: 3, GoodsID: 1, Number: 1}); err != nil {
		t.Fatal(err)
	}
	want := []string{"Orders.InsertOrder", "WriteWithin.cancel", "Ledger.SettleFailedWrite", "Publish"}
	if got := w.rec.Only(want...); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}

// V6 remembers a sold out from the ledger and refuses from memory until the
// flag is cleared; no other version sets or reads the flag.
func TestSoldOutFlag(t *testing.T) {
	t.Parallel()
	req := service.OrderRequest{UserID: 5, GoodsID: 1, Number: 1}
	other := service.OrderRequest{UserID: 5, GoodsID: 2, Number: 1}

	t.Run("V6", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		soldOut := true
		w.ledger.ReserveFn = func(_ context.Context, o service.Order) error {
			if soldOut && o.GoodsID == 1 {
				return fmt.Errorf("goods 1: %w", service.ErrSoldOut)
			}
			return nil
		}
		if _, err := w.placer.PlaceOrder(ctx, "V6", req); !errors.Is(err, service.ErrSoldOut) {
			t.Fatalf("first order: %v, want sold out from the ledger", err)
		}
		if _, err := w.placer.PlaceOrder(ctx, "V6", req); err != service.ErrSoldOut {
			t.Errorf("second order: %v, want sold out from the flag", err)
		}
		if n := w.rec.Count("Ledger.Reserve"); n != 1 {
			t.Errorf("the ledger was asked %d times, want once: the flag answers", n)
		}
		if _, err := w.placer.PlaceOrder(ctx, "V6", other); err != nil {
			t.Errorf("other goods: %v; the flag is per goods", err)
		}
		if _, err := w.placer.PlaceOrder(ctx, "V5", req); !errors.Is(err, service.ErrSoldOut) || w.rec.Count("Ledger.Reserve") != 3 {
			t.Errorf("V5 read the flag: %v, %d reservations", err, w.rec.Count("Ledger.Reserve"))
		}
		soldOut = false
		w.flags.Clear(1)
		if o, err := w.placer.PlaceOrder(ctx, "V6", req); err != nil || w.rec.Count("Ledger.Reserve") != 4 {
			t.Errorf("after a clear: %+v, %v, %d reservations; want the ledger asked", o, err, w.rec.Count("Ledger.Reserve"))
		}
	})
	t.Run("V6 other refusals", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.ledger.ReserveFn = func(context.Context, service.Order) error { return service.ErrNotStarted }
		for range 2 {
			if _, err := w.placer.PlaceOrder(ctx, "V6", req); err != service.ErrNotStarted {
				t.Errorf("got %v, want not started", err)
			}
		}
		if set, _ := w.flags.Check(1); set || w.rec.Count("Ledger.Reserve") != 2 {
			t.Errorf("a refusal other than sold out set the flag (%v, %d reservations)", set, w.rec.Count("Ledger.Reserve"))
		}
	})
	for _, v := range service.Versions() {
		if v.SoldOutFlag {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.ledger.ReserveFn = func(context.Context, service.Order) error { return service.ErrSoldOut }
			w.ledger.SellInOneTransactionFn = w.ledger.ReserveFn
			for range 2 {
				if _, err := w.placer.PlaceOrder(ctx, v.Name, req); err != service.ErrSoldOut {
					t.Errorf("got %v, want sold out", err)
				}
			}
			if set, _ := w.flags.Check(1); set {
				t.Error("the flag was set")
			}
			if n := w.rec.Count("Ledger.Reserve") + w.rec.Count("Ledger.SellInOneTransaction"); n != 2 {
				t.Errorf("the ledger was asked %d times, want every time", n)
			}
		})
	}
}

// PayDeadline is now + PayTimeout, in UTC, to the millisecond; the stock
// message carries it.
func TestPayDeadline(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"V1", "V6"} {
		w := newWorld(t)
		before := time.Now()
		o, err := w.placer.PlaceOrder(ctx, name, service.OrderRequest{UserID: 2, GoodsID: 1, Number: 1})
		after := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		d := o.PayDeadline
		if d.Location() != time.UTC || !d.Equal(d.Truncate(time.Millisecond)) {
			t.Errorf("%s: deadline %v is not UTC to the millisecond", name, d)
		}
		lo, hi := before.Add(testOpts.PayTimeout).Truncate(time.Millisecond), after.Add(testOpts.PayTimeout)
		if d.Before(lo) || d.After(hi) {
			t.Errorf("%s: deadline %v outside [%v, %v]", name, d, lo, hi)
		}
		if name == "V1" {
			continue
		}
		if m := w.rec.Of("Publish")[0][0].(service.StockMessage); m.Deadline != d.UnixMilli() {
			t.Errorf("%s: message deadline %d, want %d", name, m.Deadline, d.UnixMilli())
		}
	}
}

// Each order gets its own id.
func TestEachOrderGetsANewID(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for want := int64(1); want <= 3; want++ {
		o, err := w.placer.PlaceOrder(ctx, "V6", service.OrderRequest{UserID: 2, GoodsID: 1, Number: 1})
		if err != nil || o.ID != want {
			t.Errorf("order %+v, %v, want id %d", o, err, want)
		}
	}
}

// An order costs its goods' price times its units, and unknown goods are
// refused before anything is reserved.
func TestOrderAmountIsPriceTimesNumber(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	o, err := w.placer.PlaceOrder(context.Background(), "V2", service.OrderRequest{UserID: 1, GoodsID: 7, Number: 3})
	if err != nil || o.Amount != 2100 {
		t.Fatalf("got %+v, %v; want amount 3 x 700", o, err)
	}
	if _, err := w.placer.PlaceOrder(context.Background(), "V2", service.OrderRequest{UserID: 1, GoodsID: 404, Number: 1}); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("unknown goods: %v, want not found", err)
	}
	if n := w.rec.Count("Ledger.Reserve"); n != 1 {
		t.Errorf("%d reservations, want 1", n)
	}
}

// A reservation sale (V12) refuses anyone it does not admit before the
// stock is touched.
func TestAReservationSaleRefusesStrangersBeforeTheStock(t *testing.T) {
	w := newWorld(t)
	w.placer.EnableReservations(admission(func(goodsID, userID int64) error {
		if userID == 2 {
			return service.ErrNotReserved
		}
		return nil
	}))
	if _, err := w.placer.PlaceOrder(ctx, "V12", service.OrderRequest{UserID: 2, GoodsID: 3, Number: 1}); !errors.Is(err, service.ErrNotReserved) {
		t.Fatalf("a stranger's order: %v, want not reserved", err)
	}
	if n := w.rec.Count("Ledger.Reserve"); n != 0 {
		t.Errorf("%d reservations for a stranger, want none", n)
	}
	if _, err := w.placer.PlaceOrder(ctx, "V12", service.OrderRequest{UserID: 1, GoodsID: 3, Number: 1}); err != nil {
		t.Fatalf("an admitted reserver's order: %v", err)
	}
}

// cachedPrices is the goods cache as the order path sees it: it knows
// goods 1 only, at 700 cents.
type cachedPrices struct{}

func (cachedPrices) Price(_ context.Context, goodsID int64) (int64, error) {
	if goodsID != 1 {
		return 0, service.ErrNotFound
	}
	return 700, nil
}

// The versions that take their goods checks from the goods cache (V9) ask
// it, not the store's prices: an id the cache knows as absent is refused
// before any reservation; the others keep their own prices.
func TestCachedGoodsVersionsCheckTheCache(t *testing.T) {
	t.Parallel()
	opts := testOpts
	opts.CachedGoods = cachedPrices{}
	for _, v := range service.Versions() {
		w := newWorldWith(t, opts)
		o, err := w.placer.PlaceOrder(ctx, v.Name, service.OrderRequest{UserID: 1, GoodsID: 2, Number: 1})
		if v.CachedGoods {
			if !errors.Is(err, service.ErrNotFound) || len(w.rec.Names()) != 0 {
				t.Errorf("%s, goods the cache does not know: %v, calls %v; want not found and no call", v.Name, err, w.rec.Names())
			}
			if o, err = w.placer.PlaceOrder(ctx, v.Name, service.OrderRequest{UserID: 1, GoodsID: 1, Number: 2}); err != nil || o.Amount != 1400 {
				t.Errorf("%s, goods the cache knows: amount %d %v, want 1400 (its price)", v.Name, o.Amount, err)
			}
			continue
		}
		if err != nil || o.Amount != 200 {
			t.Errorf("%s: amount %d %v, want 200 from the store's prices", v.Name, o.Amount, err)
		}
	}
}
