package ordering

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/internal/fakes"
	"github.com/go-seckill/seckill/service/soldout"
)

// fakeLedger is a Ledger whose methods are func fields. AfterReserve, when
// its field is nil, detaches the context from the client as the ledger
// does; WriteWithin, when its field is nil, derives a context that ends
// with its caller's.
type fakeLedger struct {
	ReserveFn              func(ctx context.Context, o service.Order) error
	SellInOneTransactionFn func(ctx context.Context, o service.Order) error
	SettleFailedWriteFn    func(ctx context.Context, o service.Order, at service.OrderTable, err error) error
	GiveBackFn             func(ctx context.Context, o service.Order)
	AfterReserveFn         func(ctx context.Context) (context.Context, context.CancelFunc)
	WriteWithinFn          func(ctx context.Context) (context.Context, context.CancelFunc)
	Rec                    *fakes.Recorder
}

var _ Ledger = (*fakeLedger)(nil)

func (f *fakeLedger) Reserve(ctx context.Context, o service.Order) error {
	f.Rec.Record("Ledger.Reserve", o)
	if f.ReserveFn == nil {
		fakes.Unexpected("Ledger.Reserve")
	}
	return f.ReserveFn(ctx, o)
}

func (f *fakeLedger) SellInOneTransaction(ctx context.Context, o service.Order) error {
	f.Rec.Record("Ledger.SellInOneTransaction", o)
	if f.SellInOneTransactionFn == nil {
		fakes.Unexpected("Ledger.SellInOneTransaction")
	}
	return f.SellInOneTransactionFn(ctx, o)
}

func (f *fakeLedger) SettleFailedWrite(ctx context.Context, o service.Order, at service.OrderTable, err error) error {
	f.Rec.Record("Ledger.SettleFailedWrite", o, at, err)
	if f.SettleFailedWriteFn == nil {
		fakes.Unexpected("Ledger.SettleFailedWrite")
	}
	return f.SettleFailedWriteFn(ctx, o, at, err)
}

func (f *fakeLedger) GiveBack(ctx context.Context, o service.Order) {
	f.Rec.Record("Ledger.GiveBack", o)
	if f.GiveBackFn == nil {
		fakes.Unexpected("Ledger.GiveBack")
	}
	f.GiveBackFn(ctx, o)
}

func (f *fakeLedger) AfterReserve(ctx context.Context) (context.Context, context.CancelFunc) {
	f.Rec.Record("Ledger.AfterReserve")
	if f.AfterReserveFn != nil {
		return f.AfterReserveFn(ctx)
	}
	return context.WithCancel(context.WithoutCancel(ctx))
}

func (f *fakeLedger) WriteWithin(ctx context.Context) (context.Context, context.CancelFunc) {
	f.Rec.Record("Ledger.WriteWithin")
	if f.WriteWithinFn != nil {
		return f.WriteWithinFn(ctx)
	}
	return context.WithCancel(ctx)
}

// fakeOrders is an Orders whose methods are func fields.
type fakeOrders struct {
	InsertOrderFn func(ctx context.Context, o service.Order, at service.OrderTable) error
	VoidOrderFn   func(ctx context.Context, at service.OrderTable, o service.Order) (bool, int, error)
	OrderByKeyFn  func(ctx context.Context, at service.OrderTable, userID int64, key string) (service.Order, error)
	Rec           *fakes.Recorder
}

var _ Orders = (*fakeOrders)(nil)

func (f *fakeOrders) InsertOrder(ctx context.Context, o service.Order, at service.OrderTable) error {
	f.Rec.Record("Orders.InsertOrder", o, at)
	if f.InsertOrderFn == nil {
		fakes.Unexpected("Orders.InsertOrder")
	}
	return f.InsertOrderFn(ctx, o, at)
}

func (f *fakeOrders) VoidOrder(ctx context.Context, at service.OrderTable, o service.Order) (bool, int, error) {
	f.Rec.Record("Orders.VoidOrder", at, o)
	if f.VoidOrderFn == nil {
		fakes.Unexpected("Orders.VoidOrder")
	}
	return f.VoidOrderFn(ctx, at, o)
}

func (f *fakeOrders) OrderByKey(ctx context.Context, at service.OrderTable, userID int64, key string) (service.Order, error) {
	f.Rec.Record("Orders.OrderByKey", at, userID, key)
	if f.OrderByKeyFn == nil {
		fakes.Unexpected("Orders.OrderByKey")
	}
	return f.OrderByKeyFn(ctx, at, userID, key)
}

// fakeOutcomes is an Outcomes whose methods are func fields;
// memOutcomes fills them with a map, as Redis keeps the keys.
type fakeOutcomes struct {
	ClaimFn   func(ctx context.Context, key string, pending []byte) ([]byte, bool, error)
	ReclaimFn func(ctx context.Context, key string, prev, pending []byte) (bool, error)
	SettleFn  func(ctx context.Context, key string, outcome []byte) error
	ForgetFn  func(ctx context.Context, key string) error
	Rec       *fakes.Recorder

	mu     sync.Mutex
	stored map[string][]byte
}

var _ Outcomes = (*fakeOutcomes)(nil)

func (f *fakeOutcomes) Claim(ctx context.Context, key string, pending []byte) ([]byte, bool, error) {
	f.Rec.Record("Outcomes.Claim", key, string(pending))
	if f.ClaimFn == nil {
		fakes.Unexpected("Outcomes.Claim")
	}
	return f.ClaimFn(ctx, key, pending)
}

func (f *fakeOutcomes) Reclaim(ctx context.Context, key string, prev, pending []byte) (bool, error) {
	f.Rec.Record("Outcomes.Reclaim", key, string(prev), string(pending))
	if f.ReclaimFn == nil {
		fakes.Unexpected("Outcomes.Reclaim")
	}
	return f.ReclaimFn(ctx, key, prev, pending)
}

func (f *fakeOutcomes) Settle(ctx context.Context, key string, outcome []byte) error {
	f.Rec.Record("Outcomes.Settle", key, string(outcome))
	if f.SettleFn == nil {
		fakes.Unexpected("Outcomes.Settle")
	}
	return f.SettleFn(ctx, key, outcome)
}

func (f *fakeOutcomes) Get(ctx context.Context, key string) ([]byte, error) {
	f.Rec.Record("Outcomes.Get", key)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stored[key], nil
}

func (f *fakeOutcomes) Forget(ctx context.Context, key string) error {
	f.Rec.Record("Outcomes.Forget", key)
	if f.ForgetFn == nil {
		fakes.Unexpected("Outcomes.Forget")
	}
	return f.ForgetFn(ctx, key)
}

// memOutcomes keeps outcomes in memory, as Redis does: a claim stores its
// pending value unless the key is there, and returns what it holds; a
// reclaim stores its pending value only if the key still holds prev.
func memOutcomes(rec *fakes.Recorder) *fakeOutcomes {
	f := &fakeOutcomes{Rec: rec, stored: map[string][]byte{}}
	f.ClaimFn = func(_ context.Context, key string, pending []byte) ([]byte, bool, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if prev, ok := f.stored[key]; ok {
			return prev, false, nil
		}
		f.stored[key] = slices.Clone(pending)
		return nil, true, nil
	}
	f.ReclaimFn = func(_ context.Context, key string, prev, pending []byte) (bool, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if held, ok := f.stored[key]; !ok || !bytes.Equal(held, prev) {
			return false, nil
		}
		f.stored[key] = slices.Clone(pending)
		return true, nil
	}
	f.SettleFn = func(_ context.Context, key string, outcome []byte) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.stored[key] = slices.Clone(outcome)
		return nil
	}
	f.ForgetFn = func(_ context.Context, key string) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.stored, key)
		return nil
	}
	return f
}

// Stored is what key holds: ok false when it is not there.
func (f *fakeOutcomes) Stored(key string) (outcome []byte, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	outcome, ok = f.stored[key]
	return outcome, ok
}

// Store sets what key holds, as another request would have.
func (f *fakeOutcomes) Store(key string, outcome []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stored[key] = slices.Clone(outcome)
}

// The layout and options of the tests: the seed's 16 tables on 2 hosts.
var (
	testLayout = service.Layout{Tables: 16, Hosts: 2}
	testOpts   = Options{MaxNumber: 5, Layout: testLayout, PayTimeout: 15 * time.Minute}
)

// world is a placer on fakes that all succeed, sharing one record of calls.
type world struct {
	rec      *fakes.Recorder
	ledger   *fakeLedger
	orders   *fakeOrders
	pub      *fakes.Publisher
	ids      *fakes.IDs
	outcomes *fakeOutcomes
	flags    *soldout.Flags
	prices   fakePrices
	placer   *Placer
}

// fakePrices prices every goods at its id times 100 cents, and knows no
// goods numbered 404. It records nothing: the price is read from memory.
type fakePrices struct{}

func (fakePrices) Price(_ context.Context, goodsID int64) (int64, error) {
	if goodsID == 404 {
		return 0, service.ErrNotFound
	}
	return goodsID * 100, nil
}

func newWorld(t *testing.T) *world { return newWorldWith(t, testOpts) }

func newWorldWith(t *testing.T, opts Options) *world {
	t.Helper()
	rec := &fakes.Recorder{}
	w := &world{
		rec: rec,
		ledger: &fakeLedger{Rec: rec,
			ReserveFn:              func(context.Context, service.Order) error { return nil },
			SellInOneTransactionFn: func(context.Context, service.Order) error { return nil },
		},
		orders: &fakeOrders{Rec: rec,
			InsertOrderFn: func(context.Context, service.Order, service.OrderTable) error { return nil },
		},
		pub: &fakes.Publisher{Rec: rec,
			PublishFn: func(context.Context, service.StockMessage, int64) error { return nil },
		},
		ids:      &fakes.IDs{Rec: rec},
		outcomes: memOutcomes(rec),
		flags:    soldout.New(time.Hour),
	}
	w.placer = New(w.ledger, w.orders, w.prices, w.pub, w.ids, w.outcomes, w.flags, opts, fakes.Log())
	w.placer.EnableReservations(admission(func(int64, int64) error { return nil }))
	return w
}

// admission is a reservation sale's answer to each order.
type admission func(goodsID, userID int64) error

func (a admission) Admit(_ context.Context, goodsID, userID int64) error { return a(goodsID, userID) }

// The calls that sell: the ledger's, the order rows' and the queue's.
var sellCalls = []string{"Ledger.Reserve", "Ledger.SellInOneTransaction", "Ledger.SettleFailedWrite", "Orders.InsertOrder", "Publish"}

// sameOrder compares orders field by field, the deadline as an instant.
func sameOrder(a, b service.Order) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.GoodsID == b.GoodsID && a.Number == b.Number && a.Amount == b.Amount &&
		a.Version == b.Version && a.PayDeadline.Equal(b.PayDeadline)
}
