package ledger

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/internal/fakes"
)

// fakeCache is the cache's ports (Redis: Gate, Moves, Mends) whose methods are func fields.
type fakeCache struct {
	ReserveFn      func(ctx context.Context, goodsID, userID, n int64, now time.Time) error
	ReleaseFn      func(ctx context.Context, goodsID, userID, n int64) error
	ReturnFn       func(ctx context.Context, orderID, goodsID, userID, n int64) error
	AddFn          func(ctx context.Context, goodsID, n int64, opID string) error
	ForgetFn       func(ctx context.Context, goodsID int64, ops []string, returns []int64) error
	MarkersFn      func(ctx context.Context, goodsID int64, each func(ops []string, returns []int64) error) error
	PutFn          func(ctx context.Context, g service.Goods) error
	RestoreFn      func(ctx context.Context, g service.Goods, st service.RestoredStock) (bool, error)
	RepairFn       func(ctx context.Context, goodsID, expected, delta int64, ops []string, returns []int64) (bool, error)
	StockFn        func(ctx context.Context, goodsID int64) (int64, bool, error)
	BuyerDriftsFn  func(ctx context.Context, goodsID int64, units func(each func(userID, units int64) error) error, each func(service.BuyerUnits) error) error
	RepairBuyersFn func(ctx context.Context, goodsID int64, fixes []service.BuyerUnits, unreturned map[int64][]int64) ([]int64, error)
	Rec            *fakes.Recorder
}

var (
	_ Gate  = (*fakeCache)(nil)
	_ Moves = (*fakeCache)(nil)
	_ Mends = (*fakeCache)(nil)
)

func (f *fakeCache) Reserve(ctx context.Context, goodsID, userID, n int64, now time.Time) error {
	f.Rec.Record("Cache.Reserve", goodsID, userID, n)
	if f.ReserveFn == nil {
		fakes.Unexpected("Cache.Reserve")
	}
	return f.ReserveFn(ctx, goodsID, userID, n, now)
}

func (f *fakeCache) Release(ctx context.Context, goodsID, userID, n int64) error {
	f.Rec.Record("Cache.Release", goodsID, userID, n)
	if f.ReleaseFn == nil {
		fakes.Unexpected("Cache.Release")
	}
	return f.ReleaseFn(ctx, goodsID, userID, n)
}

func (f *fakeCache) Return(ctx context.Context, orderID, goodsID, userID, n int64) error {
	f.Rec.Record("Cache.Return", orderID, goodsID, userID, n)
	if f.ReturnFn == nil {
		fakes.Unexpected("Cache.Return")
	}
	return f.ReturnFn(ctx, orderID, goodsID, userID, n)
}

func (f *fakeCache) Add(ctx context.Context, goodsID, n int64, opID string) error {
	f.Rec.Record("Cache.Add", goodsID, n, opID)
	if f.AddFn == nil {
		fakes.Unexpected("Cache.Add")
	}
	return f.AddFn(ctx, goodsID, n, opID)
}

func (f *fakeCache) Forget(ctx context.Context, goodsID int64, ops []string, returns []int64) error {
	f.Rec.Record("Cache.Forget", goodsID, slices.Clone(ops), slices.Clone(returns))
	if f.ForgetFn == nil {
		fakes.Unexpected("Cache.Forget")
	}
	return f.ForgetFn(ctx, goodsID, ops, returns)
}

func (f *fakeCache) Markers(ctx context.Context, goodsID int64, each func(ops []string, returns []int64) error) error {
	f.Rec.Record("Cache.Markers", goodsID)
	if f.MarkersFn == nil {
		fakes.Unexpected("Cache.Markers")
	}
	return f.MarkersFn(ctx, goodsID, each)
}

func (f *fakeCache) Put(ctx context.Context, g service.Goods) error {
	f.Rec.Record("Cache.Put", g)
	if f.PutFn == nil {
		fakes.Unexpected("Cache.Put")
	}
	return f.PutFn(ctx, g)
}

func (f *fakeCache) Restore(ctx context.Context, g service.Goods, st service.RestoredStock) (bool, error) {
	f.Rec.Record("Cache.Restore", g, st)
	if f.RestoreFn == nil {
		fakes.Unexpected("Cache.Restore")
	}
	return f.RestoreFn(ctx, g, st)
}

func (f *fakeCache) Repair(ctx context.Context, goodsID, expected, delta int64, ops []string, returns []int64) (bool, error) {
	f.Rec.Record("Cache.Repair", goodsID, expected, delta, slices.Clone(ops), slices.Clone(returns))
	if f.RepairFn == nil {
		fakes.Unexpected("Cache.Repair")
	}
	return f.RepairFn(ctx, goodsID, expected, delta, ops, returns)
}

func (f *fakeCache) Stock(ctx context.Context, goodsID int64) (int64, bool, error) {
	f.Rec.Record("Cache.Stock", goodsID)
	if f.StockFn == nil {
		fakes.Unexpected("Cache.Stock")
	}
	return f.StockFn(ctx, goodsID)
}

func (f *fakeCache) BuyerDrifts(ctx context.Context, goodsID int64, units func(each func(userID, units int64) error) error, each func(service.BuyerUnits) error) error {
	f.Rec.Record("Cache.BuyerDrifts", goodsID)
	if f.BuyerDriftsFn == nil {
		fakes.Unexpected("Cache.BuyerDrifts")
	}
	return f.BuyerDriftsFn(ctx, goodsID, units, each)
}

func (f *fakeCache) RepairBuyers(ctx context.Context, goodsID int64, fixes []service.BuyerUnits, unreturned map[int64][]int64) ([]int64, error) {
	f.Rec.Record("Cache.RepairBuyers", goodsID, slices.Clone(fixes), unreturned)
	if f.RepairBuyersFn == nil {
		fakes.Unexpected("Cache.RepairBuyers")
	}
	return f.RepairBuyersFn(ctx, goodsID, fixes, unreturned)
}

// fakeLocker is a Locker whose method is a func field.
type fakeLocker struct {
	LockFn func(ctx context.Context, name string, ttl time.Duration) (func(), bool, error)
	Rec    *fakes.Recorder
}

var _ Locker = (*fakeLocker)(nil)

func (f *fakeLocker) Lock(ctx context.Context, name string, ttl time.Duration) (func(), bool, error) {
	f.Rec.Record("Locker.Lock", name, ttl)
	if f.LockFn == nil {
		fakes.Unexpected("Locker.Lock")
	}
	return f.LockFn(ctx, name, ttl)
}

// fakeSales is a Sales whose methods are func fields.
type fakeSales struct {
	SellInTxFn   func(ctx context.Context, o service.Order, gate func() error) error
	ApplySaleFn  func(ctx context.Context, m service.StockMessage) error
	ApplySalesFn func(ctx context.Context, ms []service.StockMessage) error
	AppliedFn    func(ctx context.Context, ids []int64) (map[int64]bool, error)
	Rec          *fakes.Recorder
}

var _ Sales = (*fakeSales)(nil)

func (f *fakeSales) SellInTx(ctx context.Context, o service.Order, gate func() error) error {
	f.Rec.Record("Sales.SellInTx", o)
	if f.SellInTxFn == nil {
		fakes.Unexpected("Sales.SellInTx")
	}
	return f.SellInTxFn(ctx, o, gate)
}

func (f *fakeSales) ApplySale(ctx context.Context, m service.StockMessage) error {
	f.Rec.Record("Sales.ApplySale", m)
	if f.ApplySaleFn == nil {
		fakes.Unexpected("Sales.ApplySale")
	}
	return f.ApplySaleFn(ctx, m)
}

func (f *fakeSales) ApplySales(ctx context.Context, ms []service.StockMessage) error {
	f.Rec.Record("Sales.ApplySales", append([]service.StockMessage(nil), ms...))
	if f.ApplySalesFn == nil {
		fakes.Unexpected("Sales.ApplySales")
	}
	return f.ApplySalesFn(ctx, ms)
}

func (f *fakeSales) Applied(ctx context.Context, ids []int64) (map[int64]bool, error) {
	f.Rec.Record("Sales.Applied", append([]int64(nil), ids...))
	if f.AppliedFn == nil {
		fakes.Unexpected("Sales.Applied")
	}
	return f.AppliedFn(ctx, ids)
}

// fakeStock is a Stock whose methods are func fields.
type fakeStock struct {
	GoodsFn               func(ctx context.Context, id int64) (service.Goods, error)
	AddStockFn            func(ctx context.Context, goodsID, n int64, opID string) error
	ReturnSaleFn          func(ctx context.Context, m service.StockMessage) error
	CacheAdditionFn       func(ctx context.Context, opID string, step func(goodsID, delta int64) error) (bool, error)
	CacheReturnFn         func(ctx context.Context, orderID int64, step func() error) (bool, error)
	PendingMovementsFn    func(ctx context.Context, goodsID int64) ([]string, []int64, error)
	MarkCachedFn          func(ctx context.Context, goodsID int64, ops []string, returns []int64) ([]string, []int64, error)
	TruthFn               func(ctx context.Context, goodsID int64) (int64, error)
	UserUnitsFn           func(ctx context.Context, goodsID int64, each func(userID, units int64) error) error
	CancelledUnreturnedFn func(ctx context.Context, goodsID int64, users []int64) (map[int64][]int64, error)
	ListGoodsFn           func(ctx context.Context) ([]service.Goods, error)
	Rec                   *fakes.Recorder
}

var (
	_ Records = (*fakeStock)(nil)
	_ Truths  = (*fakeStock)(nil)
)

func (f *fakeStock) Goods(ctx context.Context, id int64) (service.Goods, error) {
	f.Rec.Record("Stock.Goods", id)
	if f.GoodsFn == nil {
		fakes.Unexpected("Stock.Goods")
	}
	return f.GoodsFn(ctx, id)
}

func (f *fakeStock) AddStock(ctx context.Context, goodsID, n int64, opID string) error {
	f.Rec.Record("Stock.AddStock", goodsID, n, opID)
	if f.AddStockFn == nil {
		fakes.Unexpected("Stock.AddStock")
	}
	return f.AddStockFn(ctx, goodsID, n, opID)
}

func (f *fakeStock) ReturnSale(ctx context.Context, m service.StockMessage) error {
	f.Rec.Record("Stock.ReturnSale", m)
	if f.ReturnSaleFn == nil {
		fakes.Unexpected("Stock.ReturnSale")
	}
	return f.ReturnSaleFn(ctx, m)
}

func (f *fakeStock) CacheAddition(ctx context.Context, opID string, step func(goodsID, delta int64) error) (bool, error) {
	f.Rec.Record("Stock.CacheAddition", opID)
	if f.CacheAdditionFn == nil {
		fakes.Unexpected("Stock.CacheAddition")
	}
	return f.CacheAdditionFn(ctx, opID, step)
}

func (f *fakeStock) CacheReturn(ctx context.Context, orderID int64, step func() error) (bool, error) {
	f.Rec.Record("Stock.CacheReturn", orderID)
	if f.CacheReturnFn == nil {
		fakes.Unexpected("Stock.CacheReturn")
	}
	return f.CacheReturnFn(ctx, orderID, step)
}

func (f *fakeStock) PendingMovements(ctx context.Context, goodsID int64) ([]string, []int64, error) {
	f.Rec.Record("Stock.PendingMovements", goodsID)
	if f.PendingMovementsFn == nil {
		fakes.Unexpected("Stock.PendingMovements")
	}
	return f.PendingMovementsFn(ctx, goodsID)
}

func (f *fakeStock) MarkCached(ctx context.Context, goodsID int64, ops []string, returns []int64) ([]string, []int64, error) {
	f.Rec.Record("Stock.MarkCached", goodsID, slices.Clone(ops), slices.Clone(returns))
	if f.MarkCachedFn == nil {
		fakes.Unexpected("Stock.MarkCached")
	}
	return f.MarkCachedFn(ctx, goodsID, ops, returns)
}

// TruthOfEach reads each goods' truth through TruthFn, recorded as
// Stock.Truth of that goods.
func (f *fakeStock) TruthOfEach(ctx context.Context, goodsIDs []int64) ([]int64, error) {
	truths := make([]int64, len(goodsIDs))
	for i, id := range goodsIDs {
		f.Rec.Record("Stock.Truth", id)
		if f.TruthFn == nil {
			fakes.Unexpected("Stock.Truth")
		}
		var err error
		if truths[i], err = f.TruthFn(ctx, id); err != nil {
			return nil, err
		}
	}
	return truths, nil
}

func (f *fakeStock) UserUnits(ctx context.Context, goodsID int64, each func(userID, units int64) error) error {
	f.Rec.Record("Stock.UserUnits", goodsID)
	if f.UserUnitsFn == nil {
		fakes.Unexpected("Stock.UserUnits")
	}
	return f.UserUnitsFn(ctx, goodsID, each)
}

func (f *fakeStock) CancelledUnreturned(ctx context.Context, goodsID int64, users []int64) (map[int64][]int64, error) {
	f.Rec.Record("Stock.CancelledUnreturned", goodsID, slices.Clone(users))
	if f.CancelledUnreturnedFn == nil {
		fakes.Unexpected("Stock.CancelledUnreturned")
	}
	return f.CancelledUnreturnedFn(ctx, goodsID, users)
}

func (f *fakeStock) ListGoods(ctx context.Context) ([]service.Goods, error) {
	f.Rec.Record("Stock.ListGoods")
	if f.ListGoodsFn == nil {
		fakes.Unexpected("Stock.ListGoods")
	}
	return f.ListGoodsFn(ctx)
}

// fakeOrders is an Orders whose methods are func fields.
type fakeOrders struct {
	VoidOrderFn   func(ctx context.Context, at service.OrderTable, o service.Order) (bool, int, error)
	OrderRowsFn   func(ctx context.Context, ms []service.StockMessage) (map[service.OrderRef]service.OrderRow, error)
	MarkRefusedFn func(ctx context.Context, m service.StockMessage) error
	Rec           *fakes.Recorder
}

var _ Orders = (*fakeOrders)(nil)

func (f *fakeOrders) VoidOrder(ctx context.Context, at service.OrderTable, o service.Order) (bool, int, error) {
	f.Rec.Record("Orders.VoidOrder", at, o)
	if f.VoidOrderFn == nil {
		fakes.Unexpected("Orders.VoidOrder")
	}
	return f.VoidOrderFn(ctx, at, o)
}

func (f *fakeOrders) OrderRows(ctx context.Context, ms []service.StockMessage) (map[service.OrderRef]service.OrderRow, error) {
	f.Rec.Record("Orders.OrderRows", slices.Clone(ms))
	if f.OrderRowsFn == nil {
		fakes.Unexpected("Orders.OrderRows")
	}
	return f.OrderRowsFn(ctx, ms)
}

func (f *fakeOrders) MarkRefused(ctx context.Context, m service.StockMessage) error {
	f.Rec.Record("Orders.MarkRefused", m)
	if f.MarkRefusedFn == nil {
		fakes.Unexpected("Orders.MarkRefused")
	}
	return f.MarkRefusedFn(ctx, m)
}

// rowOf is the row of the order m names, as m describes it: unpaid, where m
// says it is.
func rowOf(m service.StockMessage) service.OrderRow {
	return service.OrderRow{ID: m.OrderID, GoodsID: m.GoodsID, UserID: m.UserID, Number: m.Number,
		Status: service.StatusUnpaid, At: m.At()}
}

// placedOrders answers OrderRows as a database holding every order as its
// message describes it.
func placedOrders(_ context.Context, ms []service.StockMessage) (map[service.OrderRef]service.OrderRow, error) {
	rows := map[service.OrderRef]service.OrderRow{}
	for _, m := range ms {
		rows[m.Ref()] = rowOf(m)
	}
	return rows, nil
}

// fakeAnnouncer is an Announcer whose method is a func field.
type fakeAnnouncer struct {
	AnnounceStockBackFn func(ctx context.Context, goodsID int64) error
	Rec                 *fakes.Recorder
}

var _ Announcer = (*fakeAnnouncer)(nil)

func (f *fakeAnnouncer) AnnounceStockBack(ctx context.Context, goodsID int64) error {
	f.Rec.Record("Announce", goodsID)
	if f.AnnounceStockBackFn == nil {
		fakes.Unexpected("Announce")
	}
	return f.AnnounceStockBackFn(ctx, goodsID)
}

// world is a ledger on fakes sharing one record of calls; the hooks of
// Options are recorded as "Applied" and "StockBack". Only the announcer
// answers by default, and the order rows, which hold every order as its
// message describes it; a test sets what the case calls.
type world struct {
	rec      *fakes.Recorder
	cache    *fakeCache
	locker   *fakeLocker
	sales    *fakeSales
	stock    *fakeStock
	orders   *fakeOrders
	announce *fakeAnnouncer
	opts     Options
}

// testGrace is the rebuild grace of the tests: short, but long enough to
// tell a wait from none.
const testGrace = 20 * time.Millisecond

// testV1Timeout bounds V1's transaction in the tests.
const testV1Timeout = 10 * time.Second

func newWorld() *world {
	rec := &fakes.Recorder{}
	w := &world{
		rec:    rec,
		cache:  &fakeCache{Rec: rec},
		locker: &fakeLocker{Rec: rec},
		sales:  &fakeSales{Rec: rec},
		stock:  &fakeStock{Rec: rec},
		orders: &fakeOrders{Rec: rec, OrderRowsFn: placedOrders},
		announce: &fakeAnnouncer{Rec: rec,
			AnnounceStockBackFn: func(context.Context, int64) error { return nil },
		},
	}
	w.opts = Options{
		WriteBudget:  time.Minute,
		V1Timeout:    testV1Timeout,
		RebuildGrace: testGrace,
		Applied: func(_ context.Context, ms ...service.StockMessage) {
			for _, m := range ms {
				rec.Record("Applied", m)
			}
		},
		StockBack: func(goodsID int64) { rec.Record("StockBack", goodsID) },
	}
	return w
}

// ledger wires the world's ledger, closed when the test ends.
func (w *world) ledger(t *testing.T) *Ledger {
	t.Helper()
	l := New(Stores{Gate: w.cache, Moves: w.cache, Mends: w.cache, Locker: w.locker, Sales: w.sales,
		Records: w.stock, Truths: w.stock, Orders: w.orders, Announcer: w.announce}, w.opts, fakes.Log())
	t.Cleanup(l.Close)
	return l
}

// The order of the tests: 2 units of goods 3 for user 159.
var order = service.Order{ID: 11, UserID: 159, GoodsID: 3, Number: 2, Version: "V6",
	PayDeadline: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}

// The calls that move stock back and say so.
var giveBackCalls = []string{"Cache.Release", "StockBack", "Announce"}
