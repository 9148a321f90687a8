package catalog

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
)

var ctx = context.Background()

func TestCreateGoodsValidates(t *testing.T) {
	t.Parallel()
	start := time.Date(2030, 1, 1, 10, 0, 0, 0, time.UTC)
	end, before := start.Add(time.Hour), start.Add(-time.Second)
	for _, c := range []struct {
		name string
		g    service.NewGoods
	}{
		{"empty name", service.NewGoods{Name: "", Stock: 1}},
		{"blank name", service.NewGoods{Name: " \t ", Stock: 1}},
		{"name too long", service.NewGoods{Name: strings.Repeat("é", MaxNameLen+1), Stock: 1}},
		{"negative stock", service.NewGoods{Name: "phone", Stock: -1}},
		{"negative limit", service.NewGoods{Name: "phone", Stock: 1, PerUserLimit: -1}},
		{"ends as it starts", service.NewGoods{Name: "phone", SaleWindow: service.SaleWindow{StartAt: &start, EndAt: &start}}},
		{"ends before it starts", service.NewGoods{Name: "phone", SaleWindow: service.SaleWindow{StartAt: &start, EndAt: &before}}},
	} {
		w := newWorld()
		if _, err := w.catalog.CreateGoods(ctx, c.g); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("%s: %v, want invalid", c.name, err)
		}
		if calls := w.rec.Names(); len(calls) != 0 {
			t.Errorf("%s: calls %v, want none", c.name, calls)
		}
	}
	for _, g := range []service.NewGoods{
		{Name: strings.Repeat("é", MaxNameLen)},
		{Name: "phone", SaleWindow: service.SaleWindow{StartAt: &start, EndAt: &end}},
		{Name: "phone", SaleWindow: service.SaleWindow{StartAt: &start}},
		{Name: "phone", SaleWindow: service.SaleWindow{EndAt: &before}},
	} {
		w := newWorld()
		w.goods.CreateGoodsFn = func(context.Context, service.NewGoods) (service.Goods, error) { return service.Goods{ID: 1}, nil }
		w.ledger.PutFn = func(context.Context, service.Goods) error { return nil }
		if _, err := w.catalog.CreateGoods(ctx, g); err != nil {
			t.Errorf("%+v: %v", g, err)
		}
	}
}

// New goods go into MySQL, then into Redis as MySQL made them.
func TestCreateGoodsPutsIntoRedisAfterMySQL(t *testing.T) {
	t.Parallel()
	w := newWorld()
	made := service.Goods{ID: 42, Name: "phone", Stock: 100, PerUserLimit: 2}
	w.goods.CreateGoodsFn = func(context.Context, service.NewGoods) (service.Goods, error) { return made, nil }
	w.ledger.PutFn = func(context.Context, service.Goods) error { return nil }
	g, err := w.catalog.CreateGoods(ctx, service.NewGoods{Name: "  phone ", Stock: 100, PerUserLimit: 2})
	if err != nil || g != made {
		t.Fatalf("got %+v, %v, want %+v", g, err, made)
	}
	if got := w.rec.Names(); !slices.Equal(got, []string{"Goods.CreateGoods", "Ledger.Put"}) {
		t.Errorf("calls %v, want MySQL then Redis", got)
	}
	if ng := w.rec.Of("Goods.CreateGoods")[0][0].(service.NewGoods); ng.Name != "phone" || ng.Stock != 100 || ng.PerUserLimit != 2 {
		t.Errorf("created %+v, want the name trimmed", ng)
	}
	if put := w.rec.Of("Ledger.Put")[0][0]; put != made {
		t.Errorf("put %+v, want %+v", put, made)
	}
}

func TestCreateGoodsFailures(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.goods.CreateGoodsFn = func(context.Context, service.NewGoods) (service.Goods, error) {
		return service.Goods{}, service.ErrUnavailable
	}
	if _, err := w.catalog.CreateGoods(ctx, service.NewGoods{Name: "phone"}); err != service.ErrUnavailable {
		t.Errorf("mysql fails: %v", err)
	}
	if n := w.rec.Count("Ledger.Put"); n != 0 {
		t.Errorf("mysql fails: %d puts into redis", n)
	}

	w = newWorld()
	errRedis := errors.New("redis down")
	w.goods.CreateGoodsFn = func(context.Context, service.NewGoods) (service.Goods, error) { return service.Goods{ID: 42}, nil }
	w.ledger.PutFn = func(context.Context, service.Goods) error { return errRedis }
	_, err := w.catalog.CreateGoods(ctx, service.NewGoods{Name: "phone"})
	if !errors.Is(err, errRedis) || !strings.Contains(err.Error(), "goods 42") {
		t.Errorf("redis fails: %v, want the error naming goods 42", err)
	}
}

func TestAddStock(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		goods int64
		n     int64
		opID  string
	}{
		{"goods 0", 0, 1, "op"},
		{"no units", 3, 0, "op"},
		{"fewer units", 3, -5, "op"},
		{"op id too long", 3, 1, strings.Repeat("o", 65)},
	} {
		w := newWorld()
		if _, _, err := w.catalog.AddStock(ctx, c.goods, c.n, c.opID); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("%s: %v, want invalid", c.name, err)
		}
		if calls := w.rec.Names(); len(calls) != 0 {
			t.Errorf("%s: calls %v, want none", c.name, calls)
		}
	}

	for _, c := range []struct {
		opID, want string
		replayed   bool
	}{
		{"", "auto-1", false},
		{"restock-7", "restock-7", true},
		{strings.Repeat("o", 64), strings.Repeat("o", 64), false},
	} {
		w := newWorld()
		w.ledger.AddStockFn = func(context.Context, int64, int64, string) (bool, error) { return c.replayed, nil }
		w.goods.GoodsFn = func(_ context.Context, id int64) (service.Goods, error) {
			return service.Goods{ID: id, Stock: 150}, nil
		}
		g, replayed, err := w.catalog.AddStock(ctx, 3, 50, c.opID)
		if err != nil || replayed != c.replayed || g.ID != 3 || g.Stock != 150 {
			t.Errorf("op %q: %+v, %v, %v", c.opID, g, replayed, err)
		}
		if add := w.rec.Of("Ledger.AddStock"); len(add) != 1 || !slices.Equal(add[0], []any{int64(3), int64(50), c.want}) {
			t.Errorf("op %q: added %v, want goods 3, 50 units, op %q", c.opID, add, c.want)
		}
		if got, want := w.rec.Count("IDs.NewID"), map[bool]int{true: 1, false: 0}[c.opID == ""]; got != want {
			t.Errorf("op %q: %d ids made, want %d", c.opID, got, want)
		}
	}

	w := newWorld()
	w.ledger.AddStockFn = func(context.Context, int64, int64, string) (bool, error) { return true, service.ErrUnavailable }
	if _, replayed, err := w.catalog.AddStock(ctx, 3, 50, "op"); err != service.ErrUnavailable || !replayed {
		t.Errorf("ledger fails: %v, %v, want the error and replayed", replayed, err)
	}
	if n := w.rec.Count("Goods.Goods"); n != 0 {
		t.Errorf("ledger fails: %d reads of the goods", n)
	}
}

// Shoppers see the stock Redis still offers wherever it holds the goods.
func TestShopperGoodsOverlaysRedisStock(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.goods.ListGoodsFn = func(context.Context) ([]service.Goods, error) {
		return []service.Goods{{ID: 1, Stock: 100}, {ID: 2, Stock: 50}, {ID: 3, Stock: 10}}, nil
	}
	w.stocks.StocksFn = func(context.Context, []int64) (map[int64]int64, error) { return map[int64]int64{1: 7, 3: 0}, nil }
	gs, err := w.catalog.ShopperGoods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var stocks []int64
	for _, g := range gs {
		stocks = append(stocks, g.Stock)
	}
	if !slices.Equal(stocks, []int64{7, 50, 0}) {
		t.Errorf("stocks %v, want 7 (redis), 50 (mysql), 0 (redis)", stocks)
	}
	if s := w.rec.Of("Stocks"); len(s) != 1 || !slices.Equal(s[0][0].([]int64), []int64{1, 2, 3}) {
		t.Errorf("asked redis %v, want once for 1 2 3", s)
	}

	w.stocks.StocksFn = func(context.Context, []int64) (map[int64]int64, error) { return nil, service.ErrUnavailable }
	if _, err := w.catalog.ShopperGoods(ctx); err != service.ErrUnavailable {
		t.Errorf("redis fails: %v", err)
	}
}

// One goods: Redis's stock while it holds it; MySQL's otherwise.
func TestGoodsOverlaysRedisStock(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		stock int64
		ok    bool
		err   error
		want  int64
	}{
		{"redis holds it", 7, true, nil, 7},
		{"redis holds none", 0, false, nil, 100},
		{"redis fails", 0, false, service.ErrUnavailable, 100},
	} {
		w := newWorld()
		w.goods.GoodsFn = func(_ context.Context, id int64) (service.Goods, error) {
			return service.Goods{ID: id, Stock: 100}, nil
		}
		w.ledger.StockFn = func(context.Context, int64) (int64, bool, error) { return c.stock, c.ok, c.err }
		if g, err := w.catalog.Goods(ctx, 3); err != nil || g.Stock != c.want || g.ID != 3 {
			t.Errorf("%s: %+v, %v, want stock %d", c.name, g, err, c.want)
		}
	}
	w := newWorld()
	w.goods.GoodsFn = func(context.Context, int64) (service.Goods, error) { return service.Goods{}, service.ErrNotFound }
	if _, err := w.catalog.Goods(ctx, 3); err != service.ErrNotFound {
		t.Errorf("no goods: %v", err)
	}
	if n := w.rec.Count("Ledger.Stock"); n != 0 {
		t.Errorf("no goods: %d reads of redis", n)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		ok    bool
		err   error
		redis *int64
	}{
		{"redis holds it", true, nil, new(int64(7))},
		{"redis holds none", false, nil, nil},
	} {
		w := newWorld()
		w.goods.StatsFn = func(_ context.Context, id int64) (service.Stats, error) {
			return service.Stats{GoodsID: id, MySQLStock: 9, Orders: 4}, nil
		}
		w.ledger.StockFn = func(context.Context, int64) (int64, bool, error) { return 7, c.ok, c.err }
		st, err := w.catalog.Stats(ctx, 3)
		if err != nil || st.GoodsID != 3 || st.MySQLStock != 9 || st.Orders != 4 || (st.RedisStock == nil) != (c.redis == nil) ||
			c.redis != nil && *st.RedisStock != *c.redis {
			t.Errorf("%s: %+v, %v", c.name, st, err)
		}
	}
	w := newWorld()
	w.goods.StatsFn = func(context.Context, int64) (service.Stats, error) { return service.Stats{}, nil }
	w.ledger.StockFn = func(context.Context, int64) (int64, bool, error) { return 0, false, service.ErrUnavailable }
	if _, err := w.catalog.Stats(ctx, 3); err != service.ErrUnavailable {
		t.Errorf("redis fails: %v, want the error: stats show both sides", err)
	}
}

func TestListGoodsIsMySQLs(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.goods.ListGoodsFn = func(context.Context) ([]service.Goods, error) { return []service.Goods{{ID: 1, Stock: 100}}, nil }
	gs, err := w.catalog.ListGoods(ctx)
	if err != nil || len(gs) != 1 || gs[0].Stock != 100 {
		t.Errorf("%+v, %v", gs, err)
	}
	if got := w.rec.Names(); !slices.Equal(got, []string{"Goods.ListGoods"}) {
		t.Errorf("calls %v, want MySQL alone", got)
	}
}

// An edit puts the new window in Redis from inside the database's
// transaction, so that a refusal there leaves the row as it was; bad edits
// reach neither store.
func TestEditGoods(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	end := start.Add(time.Hour)
	w := newWorld()
	var applyErr error
	w.goods.EditGoodsFn = func(_ context.Context, id int64, name string, win service.SaleWindow, apply func(service.Goods) error) (service.Goods, error) {
		g := service.Goods{ID: id, Name: name, SaleWindow: win}
		if err := apply(g); err != nil {
			return service.Goods{}, err
		}
		return g, nil
	}
	w.windows.SetWindowFn = func(context.Context, int64, string, service.SaleWindow) error { return applyErr }
	g, err := w.catalog.EditGoods(ctx, 7, "  phone  ", service.SaleWindow{StartAt: &start, EndAt: &end})
	if err != nil || g.Name != "phone" {
		t.Fatalf("got %+v, %v", g, err)
	}
	if set := w.rec.Of("Windows.SetNameAndWindow"); len(set) != 1 || set[0][0] != int64(7) {
		t.Errorf("windows set %v, want goods 7's once", set)
	}
	applyErr = service.ErrStockNotLoaded
	if _, err := w.catalog.EditGoods(ctx, 7, "phone", service.SaleWindow{}); !errors.Is(err, service.ErrStockNotLoaded) {
		t.Errorf("redis without the goods: %v, want stock not loaded", err)
	}
	w = newWorld()
	for _, bad := range []struct {
		id   int64
		name string
		win  service.SaleWindow
	}{{0, "x", service.SaleWindow{}}, {1, " ", service.SaleWindow{}}, {1, "x", service.SaleWindow{StartAt: &end, EndAt: &start}}} {
		if _, err := w.catalog.EditGoods(ctx, bad.id, bad.name, bad.win); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("%+v: %v, want invalid", bad, err)
		}
	}
	if calls := w.rec.Names(); len(calls) != 0 {
		t.Errorf("bad edits made calls %v", calls)
	}
}
