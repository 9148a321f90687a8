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

const couponID = int64(77)

// unpaidOrder is a world whose user's order (amount 3000 cents) is unpaid
// in the user's first table, its sale applied; after reads the row has
// status now, paid with paidWith.
func unpaidOrder(now int, paidWith int64) *world {
	w := newWorld()
	at := service.TablesOf(user, testLayout)[0]
	reads := 0
	w.orders.OrderDetailFn = func(_ context.Context, where service.OrderTable, id int64) (service.OrderDetail, error) {
		if where != at {
			return service.OrderDetail{}, fmt.Errorf("order: %w", service.ErrNotFound)
		}
		o := service.OrderDetail{ID: id, UserID: user, Amount: 3000, Code: service.StatusUnpaid, PayDeadline: time.Now().Add(time.Hour)}
		if reads++; reads > 1 {
			o.Code, o.CouponID = now, paidWith
		}
		return o, nil
	}
	w.orders.SaleAppliedFn = applied
	return w
}

// A coupon is redeemed against the order's amount before the payment, and
// the payment records its discount.
func TestPayWithACoupon(t *testing.T) {
	t.Parallel()
	w := unpaidOrder(service.StatusPaid, couponID)
	w.coupons.RedeemFn = func(context.Context, int64, int64, int64, int64) (int64, error) { return 500, nil }
	w.orders.PayOrderFn = func(context.Context, service.OrderTable, int64, int64, time.Time, int64, int64) (bool, error) {
		return true, nil
	}
	o, err := w.payments.Pay(ctx, orderID, user, couponID)
	if err != nil || o.Status != "paid" || o.Discount != 500 || o.ToPay != 2500 || o.CouponID != couponID {
		t.Fatalf("got %+v, %v; want paid 2500 after 500 off", o, err)
	}
	if got := w.rec.Only("Coupons.Redeem", "Orders.PayOrder", "Coupons.Release"); !slices.Equal(got, []string{"Coupons.Redeem", "Orders.PayOrder"}) {
		t.Errorf("calls %v, want the redemption then the payment", got)
	}
	if r := w.rec.Of("Coupons.Redeem")[0]; r[0] != couponID || r[1] != user || r[2] != orderID || r[3] != int64(3000) {
		t.Errorf("redeemed %v, want coupon %d of user %d for order %d of 3000", r, couponID, user, orderID)
	}
	if p := w.rec.Of("Orders.PayOrder")[0]; p[4] != int64(500) || p[5] != couponID {
		t.Errorf("paid with discount %v and coupon %v", p[4], p[5])
	}
}

// A refused redemption leaves the order unpaid.
func TestPayWithARefusedCoupon(t *testing.T) {
	t.Parallel()
	for _, refusal := range []error{service.ErrThresholdNotMet, service.ErrCouponUsed, service.ErrCouponExpired, service.ErrNotFound} {
		w := unpaidOrder(service.StatusUnpaid, 0)
		w.coupons.RedeemFn = func(context.Context, int64, int64, int64, int64) (int64, error) { return 0, refusal }
		if _, err := w.payments.Pay(ctx, orderID, user, couponID); !errors.Is(err, refusal) {
			t.Errorf("got %v, want %v", err, refusal)
		}
		if n := w.rec.Count("Orders.PayOrder"); n != 0 {
			t.Errorf("%v: %d payments, want the order left unpaid", refusal, n)
		}
	}
}

// A payment that fails after the redemption releases the coupon, unless
// the order was paid meanwhile with that very coupon; a payment write of
// unknown outcome keeps it bound to the order, for the retry.
func TestPayThatFailsAfterTheRedemption(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		now      int
		paidWith int64
		payErr   error
		want     error
		released bool
	}{
		{"past its deadline", service.StatusUnpaid, 0, nil, service.ErrOrderExpired, true},
		{"cancelled meanwhile", service.StatusCancelled, 0, nil, service.ErrOrderCancelled, true},
		{"paid meanwhile without it", service.StatusPaid, 0, nil, nil, true},
		{"paid meanwhile with another", service.StatusPaid, couponID + 1, nil, nil, true},
		{"paid meanwhile with it", service.StatusPaid, couponID, nil, nil, false},
		{"write outcome unknown", service.StatusUnpaid, 0, service.ErrAmbiguous, service.ErrAmbiguous, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := unpaidOrder(c.now, c.paidWith)
			w.coupons.RedeemFn = func(context.Context, int64, int64, int64, int64) (int64, error) { return 500, nil }
			w.coupons.ReleaseFn = func(context.Context, int64, int64, int64) error { return nil }
			w.orders.PayOrderFn = func(context.Context, service.OrderTable, int64, int64, time.Time, int64, int64) (bool, error) {
				return false, c.payErr
			}
			if _, err := w.payments.Pay(ctx, orderID, user, couponID); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Errorf("got %v, want %v", err, c.want)
			}
			if got := w.rec.Count("Coupons.Release") == 1; got != c.released {
				t.Errorf("released %v, want %v", got, c.released)
			}
		})
	}
}

// A paid order paid again answers its first payment and redeems nothing.
func TestPayAgainWithACoupon(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.orders.OrderDetailFn = func(_ context.Context, _ service.OrderTable, id int64) (service.OrderDetail, error) {
		return service.OrderDetail{ID: id, UserID: user, Amount: 3000, Discount: 300, CouponID: 5, Code: service.StatusPaid}, nil
	}
	o, err := w.payments.Pay(ctx, orderID, user, couponID)
	if err != nil || o.ToPay != 2700 || o.CouponID != 5 {
		t.Errorf("got %+v, %v; want the first payment", o, err)
	}
	if got := w.rec.Only("Coupons.Redeem", "Orders.PayOrder"); len(got) != 0 {
		t.Errorf("calls %v, want none", got)
	}
}

// A user's orders come from every table the versions place them in,
// newest first.
func TestUserOrdersLookEverywhere(t *testing.T) {
	t.Parallel()
	w := newWorld()
	tables := service.TablesOf(user, testLayout)
	w.orders.UserOrdersFn = func(_ context.Context, at service.OrderTable, _ int64, _ int) ([]service.OrderDetail, error) {
		i := int64(slices.Index(tables, at))
		return []service.OrderDetail{{ID: 10 + i, UserID: user, Code: service.StatusPaid}}, nil
	}
	os, err := w.payments.UserOrders(ctx, user)
	if err != nil || len(os) != len(tables) {
		t.Fatalf("got %d orders, %v; want one per table", len(os), err)
	}
	for i, o := range os {
		if want := 10 + int64(len(tables)-1-i); o.ID != want || o.Status != "paid" {
			t.Errorf("order %d: %+v, want id %d paid", i, o, want)
		}
	}
	if got := tablesOf(w, "Orders.UserOrders"); !slices.Equal(got, tables) {
		t.Errorf("looked at %v, want %v", got, tables)
	}
}
