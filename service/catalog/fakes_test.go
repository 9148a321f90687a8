package catalog

import (
	"context"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/internal/fakes"
)

// fakeGoods is a Goods (the goods table) whose methods are func fields.
type fakeGoods struct {
	CreateGoodsFn func(ctx context.Context, g service.NewGoods) (service.Goods, error)
	GoodsFn       func(ctx context.Context, id int64) (service.Goods, error)
	ListGoodsFn   func(ctx context.Context) ([]service.Goods, error)
	StatsFn       func(ctx context.Context, goodsID int64) (service.Stats, error)
	EditGoodsFn   func(ctx context.Context, id int64, name string, w service.SaleWindow, apply func(service.Goods) error) (service.Goods, error)
	Rec           *fakes.Recorder
}

var _ Goods = (*fakeGoods)(nil)

func (f *fakeGoods) CreateGoods(ctx context.Context, g service.NewGoods) (service.Goods, error) {
	f.Rec.Record("Goods.CreateGoods", g)
	if f.CreateGoodsFn == nil {
		fakes.Unexpected("Goods.CreateGoods")
	}
	return f.CreateGoodsFn(ctx, g)
}

func (f *fakeGoods) Goods(ctx context.Context, id int64) (service.Goods, error) {
	f.Rec.Record("Goods.Goods", id)
	if f.GoodsFn == nil {
		fakes.Unexpected("Goods.Goods")
	}
	return f.GoodsFn(ctx, id)
}

func (f *fakeGoods) ListGoods(ctx context.Context) ([]service.Goods, error) {
	f.Rec.Record("Goods.ListGoods")
	if f.ListGoodsFn == nil {
		fakes.Unexpected("Goods.ListGoods")
	}
	return f.ListGoodsFn(ctx)
}

func (f *fakeGoods) EditGoods(ctx context.Context, id int64, name string, w service.SaleWindow, apply func(service.Goods) error) (service.Goods, error) {
	f.Rec.Record("Goods.EditGoods", id, name, w)
	if f.EditGoodsFn == nil {
		fakes.Unexpected("Goods.EditGoods")
	}
	return f.EditGoodsFn(ctx, id, name, w, apply)
}

// fakeWindows is a Windows whose method is a func field.
type fakeWindows struct {
	SetWindowFn func(ctx context.Context, goodsID int64, name string, w service.SaleWindow) error
	Rec         *fakes.Recorder
}

func (f *fakeWindows) SetNameAndWindow(ctx context.Context, goodsID int64, name string, w service.SaleWindow) error {
	f.Rec.Record("Windows.SetNameAndWindow", goodsID, w)
	if f.SetWindowFn == nil {
		fakes.Unexpected("Windows.SetNameAndWindow")
	}
	return f.SetWindowFn(ctx, goodsID, name, w)
}

func (f *fakeGoods) Stats(ctx context.Context, goodsID int64) (service.Stats, error) {
	f.Rec.Record("Goods.Stats", goodsID)
	if f.StatsFn == nil {
		fakes.Unexpected("Goods.Stats")
	}
	return f.StatsFn(ctx, goodsID)
}

// fakeLedger is a Ledger whose methods are func fields.
type fakeLedger struct {
	PutFn      func(ctx context.Context, g service.Goods) error
	AddStockFn func(ctx context.Context, goodsID, n int64, opID string) (bool, error)
	StockFn    func(ctx context.Context, goodsID int64) (int64, bool, error)
	// BucketsFn nil: no goods is split.
	BucketsFn func(ctx context.Context, goodsID int64) ([]service.Bucket, error)
	Rec       *fakes.Recorder
}

var _ Ledger = (*fakeLedger)(nil)

func (f *fakeLedger) Put(ctx context.Context, g service.Goods) error {
	f.Rec.Record("Ledger.Put", g)
	if f.PutFn == nil {
		fakes.Unexpected("Ledger.Put")
	}
	return f.PutFn(ctx, g)
}

func (f *fakeLedger) AddStock(ctx context.Context, goodsID, n int64, opID string) (bool, error) {
	f.Rec.Record("Ledger.AddStock", goodsID, n, opID)
	if f.AddStockFn == nil {
		fakes.Unexpected("Ledger.AddStock")
	}
	return f.AddStockFn(ctx, goodsID, n, opID)
}

func (f *fakeLedger) Stock(ctx context.Context, goodsID int64) (int64, bool, error) {
	f.Rec.Record("Ledger.Stock", goodsID)
	if f.StockFn == nil {
		fakes.Unexpected("Ledger.Stock")
	}
	return f.StockFn(ctx, goodsID)
}

func (f *fakeLedger) Buckets(ctx context.Context, goodsID int64) ([]service.Bucket, error) {
	if f.BucketsFn == nil {
		return nil, nil
	}
	f.Rec.Record("Ledger.Buckets", goodsID)
	return f.BucketsFn(ctx, goodsID)
}

// fakeStocks is a Stocks whose method is a func field.
type fakeStocks struct {
	StocksFn func(ctx context.Context, goodsIDs []int64) (map[int64]int64, error)
	Rec      *fakes.Recorder
}

var _ Stocks = (*fakeStocks)(nil)

func (f *fakeStocks) Stocks(ctx context.Context, goodsIDs []int64) (map[int64]int64, error) {
	f.Rec.Record("Stocks", append([]int64(nil), goodsIDs...))
	if f.StocksFn == nil {
		fakes.Unexpected("Stocks")
	}
	return f.StocksFn(ctx, goodsIDs)
}

type world struct {
	rec     *fakes.Recorder
	goods   *fakeGoods
	ledger  *fakeLedger
	stocks  *fakeStocks
	windows *fakeWindows
	ids     *fakes.IDs
	catalog *Catalog
}

func newWorld() *world {
	rec := &fakes.Recorder{}
	w := &world{rec: rec, goods: &fakeGoods{Rec: rec}, ledger: &fakeLedger{Rec: rec}, stocks: &fakeStocks{Rec: rec},
		windows: &fakeWindows{Rec: rec}, ids: &fakes.IDs{Rec: rec}}
	w.catalog = New(w.goods, w.ledger, w.stocks, w.windows, w.ids)
	return w
}
