package payment

import (
	"context"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/internal/fakes"
)

// fakeOrders is an Orders whose methods are func fields.
type fakeOrders struct {
	PayOrderFn      func(ctx context.Context, at service.OrderTable, id, userID int64, now time.Time) (bool, error)
	CancelOrderFn   func(ctx context.Context, at service.OrderTable, id int64, now time.Time) (bool, error)
	OrderStatusFn   func(ctx context.Context, at service.OrderTable, id int64) (int, int64, error)
	ExpiredOrdersFn func(ctx context.Context, before time.Time, limit int) ([]service.StockMessage, error)
	SaleAppliedFn   func(ctx context.Context, orderID int64) (bool, error)
	Rec             *fakes.Recorder
}

var _ Orders = (*fakeOrders)(nil)

func (f *fakeOrders) PayOrder(ctx context.Context, at service.OrderTable, id, userID int64, now time.Time) (bool, error) {
	f.Rec.Record("Orders.PayOrder", at, id, userID, now)
	if f.PayOrderFn == nil {
		fakes.Unexpected("Orders.PayOrder")
	}
	return f.PayOrderFn(ctx, at, id, userID, now)
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
	DeferTimeoutFn func(ctx context.Context, m service.StockMessage, delay time.Duration) error
	Rec            *fakes.Recorder
}

var _ TimeoutPublisher = (*fakeTimeouts)(nil)

func (f *fakeTimeouts) DeferTimeout(ctx context.Context, m service.StockMessage, delay time.Duration) error {
	f.Rec.Record("DeferTimeout", m, delay)
	if f.DeferTimeoutFn == nil {
		fakes.Unexpected("DeferTimeout")
	}
	return f.DeferTimeoutFn(ctx, m, delay)
}

// The seed's layout: 16 tables on 2 hosts.
var testLayout = service.Layout{Tables: 16, Hosts: 2}

type world struct {
	rec      *fakes.Recorder
	orders   *fakeOrders
	ledger   *fakeLedger
	payments *Payments
}

func newWorld() *world {
	rec := &fakes.Recorder{}
	w := &world{rec: rec, orders: &fakeOrders{Rec: rec}, ledger: &fakeLedger{Rec: rec}}
	w.payments = New(w.orders, w.ledger, testLayout, fakes.Log())
	return w
}
