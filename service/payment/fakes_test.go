package payment

import (
	"context"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/internal/fakes"
)

// fakeOrders is an Orders whose methods are func fields.
type fakeOrders struct {
	PayOrderFn    func(ctx context.Context, at service.OrderTable, id, userID int64, now time.Time, discount, couponID int64) (bool, error)
	CancelOrderFn func(ctx context.Context, at service.OrderTable, id int64, now time.Time) (bool, error)
	OrderStatusFn func(ctx context.Context, at service.OrderTable, id int64) (int, int64, error)
	// OrderDetailFn, when nil, reads the row from OrderStatusFn: an order
	// of that status and buyer, due in an hour.
	OrderDetailFn   func(ctx context.Context, at service.OrderTable, id int64) (service.OrderDetail, error)
	UserOrdersFn    func(ctx context.Context, at service.OrderTable, userID int64, limit int) ([]service.OrderDetail, error)
	ExpiredOrdersFn func(ctx context.Context, before time.Time, limit int) ([]service.StockMessage, error)
	SaleAppliedFn   func(ctx context.Context, orderID int64) (bool, error)
	Rec             *fakes.Recorder
}

var _ Orders = (*fakeOrders)(nil)

func (f *fakeOrders) PayOrder(ctx context.Context, at service.OrderTable, id, userID int64, now time.Time, discount, couponID int64) (bool, error) {
	f.Rec.Record("Orders.PayOrder", at, id, userID, now, discount, couponID)
	if f.PayOrderFn == nil {
		fakes.Unexpected("Orders.PayOrder")
	}
	return f.PayOrderFn(ctx, at, id, userID, now, discount, couponID)
}

func (f *fakeOrders) OrderDetail(ctx context.Context, at service.OrderTable, id int64) (service.OrderDetail, error) {
	f.Rec.Record("Orders.OrderDetail", at, id)
	if f.OrderDetailFn != nil {
		return f.OrderDetailFn(ctx, at, id)
	}
	if f.OrderStatusFn == nil {
		fakes.Unexpected("Orders.OrderDetail")
	}
	status, owner, err := f.OrderStatusFn(ctx, at, id)
	return service.OrderDetail{ID: id, UserID: owner, Code: status, PayDeadline: time.Now().Add(time.Hour)}, err
}

func (f *fakeOrders) UserOrders(ctx context.Context, at service.OrderTable, userID int64, limit int) ([]service.OrderDetail, error) {
	f.Rec.Record("Orders.UserOrders", at, userID, limit)
	if f.UserOrdersFn == nil {
		fakes.Unexpected("Orders.UserOrders")
	}
	return f.UserOrdersFn(ctx, at, userID, limit)
}

func (f *fakeOrders) CancelOrder(ctx context.Context, at service.OrderTable, id int64, now time.Time) (bool, error) {
	f.Rec.Record("Orders.CancelOrder", at, id, now)
	if f.CancelOrderFn == nil {
		fakes.Unexpected("Orders.CancelOrder")
	}
	return f.CancelOrderFn(ctx, at, id, now)
}

func (f *fakeOrders) OrderStatus(ctx context.Context, at service.OrderTable, id int64) (int, int64, error) {
	f.Rec.Record("Orders.OrderStatus", at, id)
	if f.OrderStatusFn == nil {
		fakes.Unexpected("Orders.OrderStatus")
	}
	return f.OrderStatusFn(ctx, at, id)
}

func (f *fakeOrders) ExpiredOrders(ctx context.Context, before time.Time, limit int) ([]service.StockMessage, error) {
	f.Rec.Record("Orders.ExpiredOrders", before, limit)
	if f.ExpiredOrdersFn == nil {
		fakes.Unexpected("Orders.ExpiredOrders")
	}
	return f.ExpiredOrdersFn(ctx, before, limit)
}

func (f *fakeOrders) SaleApplied(ctx context.Context, orderID int64) (bool, error) {
	f.Rec.Record("Orders.SaleApplied", orderID)
	if f.SaleAppliedFn == nil {
		fakes.Unexpected("Orders.SaleApplied")
	}
	return f.SaleAppliedFn(ctx, orderID)
}

// fakeLedger is a Ledger whose method is a func field.
type fakeLedger struct {
	ReturnOrderFn func(ctx context.Context, m service.StockMessage) error
	Rec           *fakes.Recorder
}

var _ Ledger = (*fakeLedger)(nil)

func (f *fakeLedger) ReturnOrder(ctx context.Context, m service.StockMessage) error {
	f.Rec.Record("Ledger.ReturnOrder", m)
	if f.ReturnOrderFn == nil {
		fakes.Unexpected("Ledger.ReturnOrder")
	}
	return f.ReturnOrderFn(ctx, m)
}

// fakeTimeouts is a TimeoutPublisher whose method is a func field.
type fakeTimeouts struct {
	DeferTimeoutFn func(ctx context.Context, clocks []service.StockMessage, delay time.Duration) error
	Rec            *fakes.Recorder
}

var _ TimeoutPublisher = (*fakeTimeouts)(nil)

// DeferTimeouts records one "DeferTimeouts" call (with its groups' sizes)
// and one "DeferTimeout" per group, and answers each with DeferTimeoutFn.
func (f *fakeTimeouts) DeferTimeouts(ctx context.Context, groups [][]service.StockMessage, delays []time.Duration) []error {
	sizes := make([]int, len(groups))
	for i, g := range groups {
		sizes[i] = len(g)
	}
	f.Rec.Record("DeferTimeouts", sizes)
	if f.DeferTimeoutFn == nil {
		fakes.Unexpected("DeferTimeout")
	}
	errs := make([]error, len(groups))
	for i, g := range groups {
		f.Rec.Record("DeferTimeout", g, delays[i])
		errs[i] = f.DeferTimeoutFn(ctx, g, delays[i])
	}
	return errs
}

// The seed's layout: 16 tables on 2 hosts.
var testLayout = service.Layout{Tables: 16, Hosts: 2}

// fakeCoupons is a Coupons whose methods are func fields.
type fakeCoupons struct {
	RedeemFn  func(ctx context.Context, couponID, userID, orderID, amount int64) (int64, error)
	ReleaseFn func(ctx context.Context, couponID, userID, orderID int64) error
	// ReleaseOrderFn defaults to releasing nothing: most orders hold no coupon.
	ReleaseOrderFn func(ctx context.Context, userID, orderID int64) error
	Rec            *fakes.Recorder
}

var _ Coupons = (*fakeCoupons)(nil)

func (f *fakeCoupons) Redeem(ctx context.Context, couponID, userID, orderID, amount int64) (int64, error) {
	f.Rec.Record("Coupons.Redeem", couponID, userID, orderID, amount)
	if f.RedeemFn == nil {
		fakes.Unexpected("Coupons.Redeem")
	}
	return f.RedeemFn(ctx, couponID, userID, orderID, amount)
}

func (f *fakeCoupons) Release(ctx context.Context, couponID, userID, orderID int64) error {
	f.Rec.Record("Coupons.Release", couponID, userID, orderID)
	if f.ReleaseFn == nil {
		fakes.Unexpected("Coupons.Release")
	}
	return f.ReleaseFn(ctx, couponID, userID, orderID)
}

func (f *fakeCoupons) ReleaseOrder(ctx context.Context, userID, orderID int64) error {
	f.Rec.Record("Coupons.ReleaseOrder", userID, orderID)
	if f.ReleaseOrderFn == nil {
		return nil
	}
	return f.ReleaseOrderFn(ctx, userID, orderID)
}

type world struct {
	rec      *fakes.Recorder
	orders   *fakeOrders
	ledger   *fakeLedger
	coupons  *fakeCoupons
	payments *Payments
}

func newWorld() *world {
	rec := &fakes.Recorder{}
	w := &world{rec: rec, orders: &fakeOrders{Rec: rec}, ledger: &fakeLedger{Rec: rec}, coupons: &fakeCoupons{Rec: rec}}
	w.payments = New(w.orders, w.ledger, w.coupons, testLayout, fakes.Log())
	return w
}
