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
		if _, err := w.payments.Pay(ctx, ids[0], ids[1], 0); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("order %d, user %d: %v, want invalid", ids[0], ids[1], err)
		}
		if calls := w.rec.Names(); len(calls) != 0 {
			t.Errorf("calls %v, want none", calls)
		}
	}
}

// foundAt answers OrderStatus with status and owner for the order at at,
// and not found anywhere else.
func foundAt(at service.OrderTable, status int, owner int64) func(context.Context, service.OrderTable, int64) (int, int64, error) {
	return func(_ context.Context, where service.OrderTable, _ int64) (int, int64, error) {
		if where != at {
			return 0, 0, fmt.Errorf("order: %w", service.ErrNotFound)
		}
		return status, owner, nil
	}
}

func applied(context.Context, int64) (bool, error) { return true, nil }

// Pay looks for the order over the user's tables in the order of the
// versions, and pays it where it is found unpaid with its sale applied.
func TestPayLooksAtEveryTableOfTheUserInOrder(t *testing.T) {
	t.Parallel()
	tables := service.TablesOf(user, testLayout)
	if len(tables) < 3 {
		t.Fatalf("user %d has tables %v, want at least 3 for this test", user, tables)
	}
	for k, at := range tables {
		w := newWorld()
		before := time.Now()
		w.orders.OrderStatusFn = foundAt(at, service.StatusUnpaid, user)
		w.orders.SaleAppliedFn = applied
		w.orders.PayOrderFn = func(_ context.Context, where service.OrderTable, _, _ int64, now time.Time, _, _ int64) (bool, error) {
			if now.Before(before) || now.After(time.Now()) {
				t.Errorf("paid at %v, want now", now)
			}
			return where == at, nil
		}
		if _, err := w.payments.Pay(ctx, orderID, user, 0); err != nil {
			t.Errorf("order at %+v: %v", at, err)
		}
		if got := tablesOf(w, "Orders.OrderDetail"); !slices.Equal(got, tables[:k+1]) {
			t.Errorf("order at %+v: looked at %v, want %v", at, got, tables[:k+1])
		}
		if got := tablesOf(w, "Orders.PayOrder"); !slices.Equal(got, []service.OrderTable{at}) {
			t.Errorf("order at %+v: paid at %v, want where it is", at, got)
		}
		for _, args := range w.rec.Of("Orders.PayOrder") {
			if args[1] != orderID || args[2] != user {
				t.Errorf("paid order %v of user %v, want %d of %d", args[1], args[2], orderID, user)
			}
		}
		if s := w.rec.Of("Orders.SaleApplied"); len(s) != 1 || s[0][0] != orderID {
			t.Errorf("order at %+v: asked whether %v are applied, want order %d once", at, s, orderID)
		}
		want := []string{"Orders.SaleApplied", "Orders.PayOrder"}
		if got := w.rec.Only("Orders.SaleApplied", "Orders.PayOrder"); !slices.Equal(got, want) {
			t.Errorf("order at %+v: calls %v, want %v", at, got, want)
		}
	}
}

// An order found in any status but unpaid is answered by its status,
// without a payment: paid is fine, cancelled and refused are refused, a
// void row or another user's order is no order.
func TestPayAnswersTheStatusOfTheOrder(t *testing.T) {
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
		{"refused", service.StatusRefused, user, true, nil, service.ErrOrderRefused},
		{"void", service.StatusVoid, user, true, nil, service.ErrNotFound},
		{"nowhere", 0, 0, false, nil, service.ErrNotFound},
		{"read fails", 0, 0, true, errDown, errDown},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			w.orders.OrderStatusFn = func(_ context.Context, at service.OrderTable, _ int64) (int, int64, error) {
				if !c.found || at != last {
					return 0, 0, fmt.Errorf("order: %w", service.ErrNotFound)
				}
				return c.status, c.owner, c.err
			}
			if _, err := w.payments.Pay(ctx, orderID, user, 0); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("got %v, want %v", err, c.want)
			}
			if got := tablesOf(w, "Orders.OrderDetail"); !slices.Equal(got, tables) {
				t.Errorf("read the status at %v, want %v", got, tables)
			}
			if got := w.rec.Only("Orders.SaleApplied", "Orders.PayOrder"); len(got) != 0 {
				t.Errorf("calls %v, want no payment", got)
			}
		})
	}
}

// An unpaid order that did not pay: its status, read again where it is,
// says why.
func TestPayOfAnUnpaidOrderThatDidNotPay(t *testing.T) {
	t.Parallel()
	tables := service.TablesOf(user, testLayout)
	last := tables[len(tables)-1]
	for _, c := range []struct {
		name string
		now  int // the status read after the payment failed
		want error
	}{
		{"past its deadline", service.StatusUnpaid, service.ErrOrderExpired},
		{"paid meanwhile", service.StatusPaid, nil},
		{"cancelled meanwhile", service.StatusCancelled, service.ErrOrderCancelled},
		{"refused meanwhile", service.StatusRefused, service.ErrOrderRefused},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			reads := 0
			w.orders.OrderStatusFn = func(_ context.Context, at service.OrderTable, _ int64) (int, int64, error) {
				if at != last {
					return 0, 0, fmt.Errorf("order: %w", service.ErrNotFound)
				}
				if reads++; reads == 1 {
					return service.StatusUnpaid, user, nil
				}
				return c.now, user, nil
			}
			w.orders.SaleAppliedFn = applied
			w.orders.PayOrderFn = func(context.Context, service.OrderTable, int64, int64, time.Time, int64, int64) (bool, error) {
				return false, nil
			}
			if _, err := w.payments.Pay(ctx, orderID, user, 0); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("got %v, want %v", err, c.want)
			}
			if got, want := tablesOf(w, "Orders.OrderDetail"), append(slices.Clone(tables), last); !slices.Equal(got, want) {
				t.Errorf("read the status at %v, want %v", got, want)
			}
			if got := tablesOf(w, "Orders.PayOrder"); !slices.Equal(got, []service.OrderTable{last}) {
				t.Errorf("paid at %v, want %v", got, last)
			}
		})
	}
}

// A failed read or payment write stops the search.
func TestPayStopsOnAFailure(t *testing.T) {
	t.Parallel()
	first := service.TablesOf(user, testLayout)[0]
	w := newWorld()
	w.orders.OrderStatusFn = foundAt(first, service.StatusUnpaid, user)
	w.orders.SaleAppliedFn = applied
	w.orders.PayOrderFn = func(context.Context, service.OrderTable, int64, int64, time.Time, int64, int64) (bool, error) {
		return false, service.ErrUnavailable
	}
	if _, err := w.payments.Pay(ctx, orderID, user, 0); err != service.ErrUnavailable {
		t.Errorf("got %v, want unavailable", err)
	}
	if got := w.rec.Names(); !slices.Equal(got, []string{"Orders.OrderDetail", "Orders.SaleApplied", "Orders.PayOrder"}) {
		t.Errorf("calls %v, want the one failed write", got)
	}

	w = newWorld()
	w.orders.OrderStatusFn = foundAt(first, service.StatusUnpaid, user)
	w.orders.SaleAppliedFn = func(context.Context, int64) (bool, error) { return false, service.ErrUnavailable }
	if _, err := w.payments.Pay(ctx, orderID, user, 0); err != service.ErrUnavailable {
		t.Errorf("sale applied read fails: %v, want unavailable", err)
	}
	if n := w.rec.Count("Orders.PayOrder"); n != 0 {
		t.Errorf("sale applied read fails: %d payments", n)
	}
}

// An unpaid order whose sale the database has not applied yet is paid once
// it is, after a short wait.
func TestPayWaitsForTheSaleToBeApplied(t *testing.T) {
	t.Parallel()
	at := service.TablesOf(user, testLayout)[0]
	w := newWorld()
	w.orders.OrderStatusFn = foundAt(at, service.StatusUnpaid, user)
	asked := 0
	w.orders.SaleAppliedFn = func(context.Context, int64) (bool, error) {
		asked++
		return asked == 2, nil // applied by the second look
	}
	w.orders.PayOrderFn = func(context.Context, service.OrderTable, int64, int64, time.Time, int64, int64) (bool, error) {
		return true, nil
	}
	start := time.Now()
	if _, err := w.payments.Pay(ctx, orderID, user, 0); err != nil {
		t.Fatalf("got %v, want paid", err)
	}
	if waited := time.Since(start); waited < confirmWait[0] {
		t.Errorf("paid after %v, want a wait of %v for the sale", waited, confirmWait[0])
	}
	want := []string{"Orders.SaleApplied", "Orders.SaleApplied", "Orders.PayOrder"}
	if got := w.rec.Only("Orders.SaleApplied", "Orders.PayOrder"); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}

// An unpaid order whose sale is still not applied when the wait ends (here
// the caller's deadline) is pending, and is not paid.
func TestPayOfAPendingOrder(t *testing.T) {
	t.Parallel()
	at := service.TablesOf(user, testLayout)[0]
	w := newWorld()
	w.orders.OrderStatusFn = foundAt(at, service.StatusUnpaid, user)
	w.orders.SaleAppliedFn = func(context.Context, int64) (bool, error) { return false, nil }
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := w.payments.Pay(short, orderID, user, 0); err != service.ErrOrderPending {
		t.Errorf("got %v, want pending", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("answered after %v, past the caller's deadline", waited)
	}
	if n := w.rec.Count("Orders.PayOrder"); n != 0 {
		t.Errorf("%d payments of an order whose sale is not applied", n)
	}
	if n := w.rec.Count("Orders.SaleApplied"); n < 1 {
		t.Error("the sale was never looked at")
	}
}

func TestCancelUnpaid(t *testing.T) {
	t.Parallel()
	m := service.StockMessage{OrderID: orderID, GoodsID: 3, UserID: user, Number: 2, Host: 2, Table: 16, Deadline: 1}
	errNotFound := fmt.Errorf("order: %w", service.ErrNotFound)
	const (
		unpaid    = service.StatusUnpaid
		paid      = service.StatusPaid
		cancelled = service.StatusCancelled
	)
	for _, c := range []struct {
		name       string
		statuses   []int   // what each status read says
		statusErrs []error // and its error
		notApplied bool
		appliedErr error
		cancelled  bool
		cancelErr  error
		returnErr  error
		releaseErr error
		want       error // matched with errors.Is
		stray      bool
		calls      []string
	}{
		{name: "cancelled now", statuses: []int{unpaid}, cancelled: true,
			calls: []string{"Orders.OrderStatus", "Orders.SaleApplied", "Orders.CancelOrder", "Ledger.ReturnOrder", "Coupons.ReleaseOrder"}},
		{name: "cancelled, its coupon's release fails", statuses: []int{unpaid}, cancelled: true, releaseErr: service.ErrUnavailable, want: service.ErrUnavailable,
			calls: []string{"Orders.OrderStatus", "Orders.SaleApplied", "Orders.CancelOrder", "Ledger.ReturnOrder", "Coupons.ReleaseOrder"}},
		{name: "sale not applied yet", statuses: []int{unpaid}, notApplied: true, want: service.ErrNotYet,
			calls: []string{"Orders.OrderStatus", "Orders.SaleApplied"}},
		{name: "cancelled, return fails", statuses: []int{unpaid}, cancelled: true, returnErr: service.ErrUnavailable, want: service.ErrUnavailable,
			calls: []string{"Orders.OrderStatus", "Orders.SaleApplied", "Orders.CancelOrder", "Ledger.ReturnOrder"}},
		{name: "paid before", statuses: []int{paid}, calls: []string{"Orders.OrderStatus"}},
		{name: "payment won", statuses: []int{unpaid, paid},
			calls: []string{"Orders.OrderStatus", "Orders.SaleApplied", "Orders.CancelOrder", "Orders.OrderStatus"}},
		{name: "deadline ahead", statuses: []int{unpaid, unpaid}, want: service.ErrNotYet,
			calls: []string{"Orders.OrderStatus", "Orders.SaleApplied", "Orders.CancelOrder", "Orders.OrderStatus"}},
		{name: "cancelled before", statuses: []int{cancelled}, calls: []string{"Orders.OrderStatus", "Ledger.ReturnOrder", "Coupons.ReleaseOrder"}},
		{name: "cancelled meanwhile", statuses: []int{unpaid, cancelled},
			calls: []string{"Orders.OrderStatus", "Orders.SaleApplied", "Orders.CancelOrder", "Orders.OrderStatus", "Ledger.ReturnOrder", "Coupons.ReleaseOrder"}},
		{name: "void", statuses: []int{service.StatusVoid}, calls: []string{"Orders.OrderStatus"}},
		{name: "refused", statuses: []int{service.StatusRefused}, calls: []string{"Orders.OrderStatus"}},
		{name: "no such order", statuses: []int{0}, statusErrs: []error{errNotFound}, want: service.ErrInvalid, stray: true,
			calls: []string{"Orders.OrderStatus"}},
		{name: "status read fails", statuses: []int{0}, statusErrs: []error{service.ErrUnavailable}, want: service.ErrUnavailable,
			calls: []string{"Orders.OrderStatus"}},
		{name: "sale read fails", statuses: []int{unpaid}, appliedErr: service.ErrUnavailable, want: service.ErrUnavailable,
			calls: []string{"Orders.OrderStatus", "Orders.SaleApplied"}},
		{name: "cancel fails", statuses: []int{unpaid}, cancelErr: service.ErrUnavailable, want: service.ErrUnavailable,
			calls: []string{"Orders.OrderStatus", "Orders.SaleApplied", "Orders.CancelOrder"}},
		{name: "status read after the cancel fails", statuses: []int{unpaid, 0}, statusErrs: []error{nil, service.ErrUnavailable}, want: service.ErrUnavailable,
			calls: []string{"Orders.OrderStatus", "Orders.SaleApplied", "Orders.CancelOrder", "Orders.OrderStatus"}},
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
			reads := 0
			w.orders.OrderStatusFn = func(context.Context, service.OrderTable, int64) (int, int64, error) {
				i := reads
				reads++
				var err error
				if i < len(c.statusErrs) {
					err = c.statusErrs[i]
				}
				return c.statuses[i], user, err
			}
			w.orders.SaleAppliedFn = func(context.Context, int64) (bool, error) { return !c.notApplied, c.appliedErr }
			w.ledger.ReturnOrderFn = func(context.Context, service.StockMessage) error { return c.returnErr }
			w.coupons.ReleaseOrderFn = func(context.Context, int64, int64) error { return c.releaseErr }
			err := w.payments.CancelUnpaid(ctx, m)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) || c.stray && !errors.Is(err, service.ErrStray) {
				t.Errorf("got %v, want %v (stray %v)", err, c.want, c.stray)
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
			if s := w.rec.Of("Orders.SaleApplied"); len(s) == 1 && s[0][0] != m.OrderID {
				t.Errorf("asked whether order %v is applied, want %d", s[0][0], m.OrderID)
			}
			if r := w.rec.Of("Ledger.ReturnOrder"); len(r) == 1 && r[0][0] != m {
				t.Errorf("returned %v, want %+v", r[0][0], m)
			}
			if r := w.rec.Of("Coupons.ReleaseOrder"); len(r) == 1 && (r[0][0] != m.UserID || r[0][1] != m.OrderID) {
				t.Errorf("released the coupons of user %v's order %v, want %d's %d", r[0][0], r[0][1], m.UserID, m.OrderID)
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
	read := map[int64]bool{}
	w.orders.OrderStatusFn = func(_ context.Context, _ service.OrderTable, id int64) (int, int64, error) {
		if read[id] { // read again after the cancel failed: order 5 was paid meanwhile
			return service.StatusPaid, 5, nil
		}
		read[id] = true
		return service.StatusUnpaid, 5, nil
	}
	w.orders.SaleAppliedFn = applied
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
