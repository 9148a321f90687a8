package payment

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

const (
	user    = int64(159)
	orderID = int64(1001)
)

// tablesOf lists the tables a call named name was made on.
func tablesOf(w *world, name string) []service.OrderTable {
	var ats []service.OrderTable
	for _, args := range w.rec.Of(name) {
		ats = append(ats, args[0].(service.OrderTable))
	}
	return ats
}

func TestPayRefusesInvalidIDs(t *testing.T) {
	t.Parallel()
	for _, ids := range [][2]int64{{0, user}, {orderID, 0}, {-1, user}} {
		w := newWorld()
		if err := w.payments.Pay(ctx, ids[0], ids[1]); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("order %d, user %d: %v, want invalid", ids[0], ids[1], err)
		}
		if calls := w.rec.Names(); len(calls) != 0 {
			t.Errorf("calls %v, want none", calls)
		}
	}
}

// Pay tries the user's tables in the order of the versions until one pays.
func TestPayLooksAtEveryTableOfTheUserInOrder(t *testing.T) {
	t.Parallel()
	tables := service.TablesOf(user, testLayout)
	if len(tables) < 3 {
		t.Fatalf("user %d has tables %v, want at least 3 for this test", user, tables)
	}
	for k, at := range tables {
		w := newWorld()
		before := time.Now()
		w.orders.PayOrderFn = func(_ context.Context, where service.OrderTable, _, _ int64, now time.Time) (bool, error) {
			if now.Before(before) || now.After(time.Now()) {
				t.Errorf("paid at %v, want now", now)
			}
			return where == at, nil
		}
		if err := w.payments.Pay(ctx, orderID, user); err != nil {
			t.Errorf("order at %+v: %v", at, err)
		}
		if got := tablesOf(w, "Orders.PayOrder"); !slices.Equal(got, tables[:k+1]) {
			t.Errorf("order at %+v: tried %v, want %v", at, got, tables[:k+1])
		}
		for _, args := range w.rec.Of("Orders.PayOrder") {
			if args[1] != orderID || args[2] != user {
				t.Errorf("paid order %v of user %v, want %d of %d", args[1], args[2], orderID, user)
			}
		}
		if n := w.rec.Count("Orders.OrderStatus"); n != 0 {
			t.Errorf("order at %+v: %d status reads after it was paid", at, n)
		}
	}
}

// Not paid now: the status of the order where it is found says why.
func TestPayOfAnOrderThatDidNotPay(t *testing.T) {
	t.Parallel()
	tables := service.TablesOf(user, testLayout)
	last := tables[len(tables)-1]
	errDown := fmt.Errorf("read: %w", service.ErrUnavailable)
	for _, c := range []struct {
		name   string
		status int
		owner  int64
		found  bool
		err    error // OrderStatus's error where the order is
		want   error
	}{
		{"paid before", service.StatusPaid, user, true, nil, nil},
		{"another user's", service.StatusUnpaid, user + 1, true, nil, service.ErrNotFound},
		{"another user's, paid", service.StatusPaid, user + 1, true, nil, service.ErrNotFound},
		{"cancelled", service.StatusCancelled, user, true, nil, service.ErrOrderCancelled},
		{"unpaid past its deadline", service.StatusUnpaid, user, true, nil, service.ErrOrderExpired},
		{"nowhere", 0, 0, false, nil, service.ErrNotFound},
		{"read fails", 0, 0, true, errDown, errDown},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			w.orders.PayOrderFn = func(context.Context, service.OrderTable, int64, int64, time.Time) (bool, error) { return false, nil }
			w.orders.OrderStatusFn = func(_ context.Context, at service.OrderTable, _ int64) (int, int64, error) {
				if !c.found || at != last {
					return 0, 0, fmt.Errorf("order: %w", service.ErrNotFound)
				}
				return c.status, c.owner, c.err
			}
			if err := w.payments.Pay(ctx, orderID, user); err != c.want {
				t.Errorf("got %v, want %v", err, c.want)
			}
			if got := tablesOf(w, "Orders.PayOrder"); !slices.Equal(got, tables) {
				t.Errorf("tried to pay at %v, want %v", got, tables)
			}
			if got := tablesOf(w, "Orders.OrderStatus"); !slices.Equal(got, tables) {
				t.Errorf("read the status at %v, want %v", got, tables)
			}
		})
	}
}

// A failed payment write stops the search.
func TestPayStopsOnAFailedWrite(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.orders.PayOrderFn = func(context.Context, service.OrderTable, int64, int64, time.Time) (bool, error) {
		return false, service.ErrUnavailable
	}
	if err := w.payments.Pay(ctx, orderID, user); err != service.ErrUnavailable {
		t.Errorf("got %v, want unavailable", err)
	}
	if got := w.rec.Names(); !slices.Equal(got, []string{"Orders.PayOrder"}) {
		t.Errorf("calls %v, want the one failed write", got)
	}
}

func TestCancelUnpaid(t *testing.T) {
	t.Parallel()
	m := service.StockMessage{OrderID: orderID, GoodsID: 3, UserID: user, Number: 2, Host: 2, Table: 16, Deadline: 1}
	for _, c := range []struct {
		name      string
		cancelled bool
		cancelErr error
		status    int
		statusErr error
		returnErr error
		want      error
		calls     []string
	}{
		{name: "cancelled now", cancelled: true, calls: []string{"Orders.CancelOrder", "Ledger.ReturnOrder"}},
		{name: "cancelled, sale not applied yet", cancelled: true, returnErr: service.ErrNotYet, want: service.ErrNotYet,
			calls: []string{"Orders.CancelOrder", "Ledger.ReturnOrder"}},
		{name: "payment won", status: service.StatusPaid, calls: []string{"Orders.CancelOrder", "Orders.OrderStatus"}},
		{name: "deadline ahead", status: service.StatusUnpaid, want: service.ErrNotYet, calls: []string{"Orders.CancelOrder", "Orders.OrderStatus"}},
		{name: "cancelled before", status: service.StatusCancelled,
			calls: []string{"Orders.CancelOrder", "Orders.OrderStatus", "Ledger.ReturnOrder"}},
		{name: "cancel fails", cancelErr: service.ErrUnavailable, want: service.ErrUnavailable, calls: []string{"Orders.CancelOrder"}},
		{name: "status read fails", statusErr: service.ErrUnavailable, want: service.ErrUnavailable,
			calls: []string{"Orders.CancelOrder", "Orders.OrderStatus"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			before := time.Now()
			w.orders.CancelOrderFn = func(_ context.Context, _ service.OrderTable, _ int64, now time.Time) (bool, error) {
				if now.Before(before) || now.After(time.Now()) {
					t.Errorf("cancelled at %v, want now", now)
				}
				return c.cancelled, c.cancelErr
			}
			w.orders.OrderStatusFn = func(context.Context, service.OrderTable, int64) (int, int64, error) {
				return c.status, user, c.statusErr
			}
			w.ledger.ReturnOrderFn = func(context.Context, service.StockMessage) error { return c.returnErr }
			if err := w.payments.CancelUnpaid(ctx, m); err != c.want {
				t.Errorf("got %v, want %v", err, c.want)
			}
			if got := w.rec.Names(); !slices.Equal(got, c.calls) {
				t.Errorf("calls %v, want %v", got, c.calls)
			}
			for _, name := range []string{"Orders.CancelOrder", "Orders.OrderStatus"} {
				for _, args := range w.rec.Of(name) {
					if args[0] != m.At() || args[1] != m.OrderID {
						t.Errorf("%s of order %v at %v, want %d at %+v", name, args[1], args[0], m.OrderID, m.At())
					}
				}
			}
			if r := w.rec.Of("Ledger.ReturnOrder"); len(r) == 1 && r[0][0] != m {
				t.Errorf("returned %v, want %+v", r[0][0], m)
			}
		})
	}
}

func TestCancelUnpaidRefusesInvalidMessages(t *testing.T) {
	t.Parallel()
	w := newWorld()
	if err := w.payments.CancelUnpaid(ctx, service.StockMessage{OrderID: orderID, GoodsID: 3}); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("got %v, want invalid", err)
	}
	if calls := w.rec.Names(); len(calls) != 0 {
		t.Errorf("calls %v, want none", calls)
	}
}

// The sweep cancels what is past its deadline by the grace and counts what
// it cancelled, nothing else.
func TestSweepExpired(t *testing.T) {
	t.Parallel()
	w := newWorld()
	expired := []service.StockMessage{
		{OrderID: 1, GoodsID: 3, UserID: 5, Number: 1},
		{OrderID: 2, GoodsID: 3, UserID: 5, Number: 1},
		{OrderID: 3, GoodsID: 3, UserID: 5, Number: 1},
		{OrderID: 4, GoodsID: 3, UserID: 5, Number: 1},
		{OrderID: 5, GoodsID: 3, UserID: 5, Number: 1},
		{OrderID: 6},
	}
	const grace = time.Minute
	before := time.Now()
	w.orders.ExpiredOrdersFn = func(context.Context, time.Time, int) ([]service.StockMessage, error) { return expired, nil }
	w.orders.CancelOrderFn = func(_ context.Context, _ service.OrderTable, id int64, _ time.Time) (bool, error) {
		return id != 5, nil
	}
	w.orders.OrderStatusFn = func(context.Context, service.OrderTable, int64) (int, int64, error) {
		return service.StatusPaid, 5, nil
	}
	w.ledger.ReturnOrderFn = func(_ context.Context, m service.StockMessage) error {
		return map[int64]error{2: service.ErrNotYet, 3: service.ErrUnavailable}[m.OrderID]
	}
	done, err := w.payments.SweepExpired(ctx, grace)
	if err != nil || done != 3 {
		t.Errorf("got %d, %v, want 3: orders 1 and 4 cancelled, 5 paid meanwhile", done, err)
	}
	q := w.rec.Of("Orders.ExpiredOrders")
	if len(q) != 1 || q[0][1] != expiredBatch {
		t.Fatalf("asked %v, want one batch of %d", q, expiredBatch)
	}
	if at := q[0][0].(time.Time); at.Before(before.Add(-grace)) || at.After(time.Now().Add(-grace)) {
		t.Errorf("asked for deadlines before %v, want now - %v", at, grace)
	}
	if n := w.rec.Count("Orders.CancelOrder"); n != 5 {
		t.Errorf("%d cancels, want 5: the invalid one is not tried", n)
	}
}

func TestSweepExpiredWhenTheReadFails(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.orders.ExpiredOrdersFn = func(context.Context, time.Time, int) ([]service.StockMessage, error) {
		return nil, service.ErrUnavailable
	}
	if done, err := w.payments.SweepExpired(ctx, time.Minute); done != 0 || err != service.ErrUnavailable {
		t.Errorf("got %d, %v, want 0, unavailable", done, err)
	}
}
