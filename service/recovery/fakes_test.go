package recovery

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/internal/fakes"
)

// fakeOutboxOrders is an OutboxOrders whose methods are func fields;
// memOrders fills them with orders in memory.
type fakeOutboxOrders struct {
	ScanOrdersFn func(ctx context.Context, afterID, beforeID int64, limit int) ([]service.StockMessage, error)
	SettledFn    func(ctx context.Context, ids []int64) (map[int64]bool, error)
	Rec          *fakes.Recorder
}

var _ OutboxOrders = (*fakeOutboxOrders)(nil)

func (f *fakeOutboxOrders) ScanOrders(ctx context.Context, afterID, beforeID int64, limit int) ([]service.StockMessage, error) {
	f.Rec.Record("ScanOrders", afterID, beforeID, limit)
	if f.ScanOrdersFn == nil {
		fakes.Unexpected("ScanOrders")
	}
	return f.ScanOrdersFn(ctx, afterID, beforeID, limit)
}

func (f *fakeOutboxOrders) Settled(ctx context.Context, ids []int64) (map[int64]bool, error) {
	f.Rec.Record("Settled", append([]int64(nil), ids...))
	if f.SettledFn == nil {
		fakes.Unexpected("Settled")
	}
	return f.SettledFn(ctx, ids)
}

// memOrders are orders by id, some settled. A scan returns at most page
// orders, fewer than the sweep asks for, so that a pass reads several pages.
type memOrders struct {
	mu      sync.Mutex
	ids     []int64
	settled map[int64]bool
	page    int
}

func (m *memOrders) fake(rec *fakes.Recorder) *fakeOutboxOrders {
	return &fakeOutboxOrders{Rec: rec,
		ScanOrdersFn: func(_ context.Context, afterID, beforeID int64, limit int) ([]service.StockMessage, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			var out []service.StockMessage
			for _, id := range m.ids {
				if id > afterID && id < beforeID && len(out) < min(limit, m.page) {
					out = append(out, message(id))
				}
			}
			return out, nil
		},
		SettledFn: func(_ context.Context, ids []int64) (map[int64]bool, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			settled := map[int64]bool{}
			for _, id := range ids {
				if m.settled[id] {
					settled[id] = true
				}
			}
			return settled, nil
		},
	}
}

// add puts the order id among the orders, in order.
func (m *memOrders) add(id int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ids = append(m.ids, id)
	slices.Sort(m.ids)
}

func (m *memOrders) settle(id int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settled[id] = true
}

func message(id int64) service.StockMessage {
	return service.StockMessage{OrderID: id, GoodsID: 3, UserID: id % 7, Number: 1, Host: 1, Table: 2, Deadline: 1}
}

// fakeIDAt is an IDAt whose method is a func field.
type fakeIDAt struct {
	FirstIDAtFn func(t time.Time) int64
	Rec         *fakes.Recorder
}

var _ IDAt = (*fakeIDAt)(nil)

func (f *fakeIDAt) FirstIDAt(t time.Time) int64 {
	f.Rec.Record("FirstIDAt", t)
	if f.FirstIDAtFn == nil {
		fakes.Unexpected("FirstIDAt")
	}
	return f.FirstIDAtFn(t)
}

// fakeLedger is a Ledger whose methods are func fields.
type fakeLedger struct {
	StockFn           func(ctx context.Context, goodsID int64) (int64, bool, error)
	TruthAndPendingFn func(ctx context.Context, goodsID int64) (int64, []string, []int64, bool, error)
	RepairFn          func(ctx context.Context, goodsID, expected, delta int64, ops []string, returns []int64) (bool, error)
	TidyFn            func(ctx context.Context, goodsID int64) error
	BuyerDriftsFn     func(ctx context.Context, goodsID int64, each func(service.BuyerUnits) error) error
	RepairBuyersFn    func(ctx context.Context, goodsID int64, fixes []service.BuyerUnits) (int, error)
	// LockGoodsFn nil: every lock is free.
	LockGoodsFn func(ctx context.Context, goodsID int64) (func(), bool, error)
	Rec         *fakes.Recorder
}

func (f *fakeLedger) LockGoods(ctx context.Context, goodsID int64) (func(), bool, error) {
	if f.LockGoodsFn == nil {
		return func() {}, true, nil
	}
	f.Rec.Record("Ledger.LockGoods", goodsID)
	return f.LockGoodsFn(ctx, goodsID)
}

var _ Ledger = (*fakeLedger)(nil)

func (f *fakeLedger) Stock(ctx context.Context, goodsID int64) (int64, bool, error) {
	f.Rec.Record("Ledger.Stock", goodsID)
	if f.StockFn == nil {
		fakes.Unexpected("Ledger.Stock")
	}
	return f.StockFn(ctx, goodsID)
}

// TruthsAndPending reads each goods' through TruthAndPendingFn, recorded
// as Ledger.TruthAndPending of that goods.
func (f *fakeLedger) TruthsAndPending(ctx context.Context, goodsIDs []int64) ([]service.TruthReading, error) {
	readings := make([]service.TruthReading, len(goodsIDs))
	for i, id := range goodsIDs {
		f.Rec.Record("Ledger.TruthAndPending", id)
		if f.TruthAndPendingFn == nil {
			fakes.Unexpected("Ledger.TruthAndPending")
		}
		r := &readings[i]
		var err error
		if r.Truth, r.Ops, r.Returns, r.Exact, err = f.TruthAndPendingFn(ctx, id); err != nil {
			return nil, err
		}
	}
	return readings, nil
}

func (f *fakeLedger) Repair(ctx context.Context, goodsID, expected, delta int64, ops []string, returns []int64) (bool, error) {
	f.Rec.Record("Ledger.Repair", goodsID, expected, delta, slices.Clone(ops), slices.Clone(returns))
	if f.RepairFn == nil {
		fakes.Unexpected("Ledger.Repair")
	}
	return f.RepairFn(ctx, goodsID, expected, delta, ops, returns)
}

func (f *fakeLedger) Tidy(ctx context.Context, goodsID int64) error {
	f.Rec.Record("Ledger.Tidy", goodsID)
	if f.TidyFn == nil {
		fakes.Unexpected("Ledger.Tidy")
	}
	return f.TidyFn(ctx, goodsID)
}

func (f *fakeLedger) BuyerDrifts(ctx context.Context, goodsID int64, each func(service.BuyerUnits) error) error {
	f.Rec.Record("Ledger.BuyerDrifts", goodsID)
	if f.BuyerDriftsFn == nil {
		fakes.Unexpected("Ledger.BuyerDrifts")
	}
	return f.BuyerDriftsFn(ctx, goodsID, each)
}

func (f *fakeLedger) RepairBuyers(ctx context.Context, goodsID int64, fixes []service.BuyerUnits) (int, error) {
	f.Rec.Record("Ledger.RepairBuyers", goodsID, slices.Clone(fixes))
	if f.RepairBuyersFn == nil {
		fakes.Unexpected("Ledger.RepairBuyers")
	}
	return f.RepairBuyersFn(ctx, goodsID, fixes)
}

// fakeGoods is a GoodsLister whose method is a func field.
type fakeGoods struct {
	ListGoodsFn func(ctx context.Context) ([]service.Goods, error)
	Rec         *fakes.Recorder
}

var _ GoodsLister = (*fakeGoods)(nil)

func (f *fakeGoods) ListGoods(ctx context.Context) ([]service.Goods, error) {
	f.Rec.Record("ListGoods")
	if f.ListGoodsFn == nil {
		fakes.Unexpected("ListGoods")
	}
	return f.ListGoodsFn(ctx)
}
