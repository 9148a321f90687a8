package ledger

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/go-seckill/seckill/service"
)

// Stock comes in: MySQL first, then Redis under the movement's record, then
// the news that it is back. The Redis step adds what the record holds.
func TestAddStock(t *testing.T) {
	t.Parallel()
	errMySQL := errors.New("mysql down")
	errRedis := errors.New("redis down")
	for _, c := range []struct {
		name         string
		mysql, redis error
		replayed     bool
		wantErr      error // matched with errors.Is
		calls        []string
	}{
		{"added", nil, nil, false, nil, []string{"Stock.AddStock", "Stock.CacheAddition", "Cache.Add", "Cache.Forget", "StockBack", "Announce"}},
		{"replayed finishes redis", service.ErrDuplicate, nil, true, nil, []string{"Stock.AddStock", "Stock.CacheAddition", "Cache.Add", "Cache.Forget", "StockBack", "Announce"}},
		{"mysql fails", errMySQL, nil, false, errMySQL, []string{"Stock.AddStock"}},
		{"redis fails", nil, errRedis, false, errRedis, []string{"Stock.AddStock", "Stock.CacheAddition", "Cache.Add"}},
		{"replayed, redis fails", service.ErrDuplicate, errRedis, true, errRedis, []string{"Stock.AddStock", "Stock.CacheAddition", "Cache.Add"}},
		{"redis holds no stock", nil, service.ErrStockNotLoaded, false, nil, []string{"Stock.AddStock", "Stock.CacheAddition", "Cache.Add", "StockBack", "Announce"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			w.stock.AddStockFn = func(context.Context, int64, int64, string) error { return c.mysql }
			w.stock.CacheAdditionFn = func(_ context.Context, _ string, step func(int64, int64) error) (bool, error) {
				if err := step(3, 50); err != nil { // what the record holds
					return false, err
				}
				return true, nil
			}
			w.cache.AddFn = func(context.Context, int64, int64, string) error { return c.redis }
			w.cache.ForgetFn = func(context.Context, int64, []string, []int64) error { return nil }
			replayed, err := w.ledger(t).AddStock(ctx, 3, 50, "restock-1")
			if replayed != c.replayed || !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
				t.Errorf("got %v, %v, want %v, %v", replayed, err, c.replayed, c.wantErr)
			}
			if c.redis != nil && c.wantErr == c.redis && !strings.Contains(err.Error(), `"restock-1"`) {
				t.Errorf("error %q does not name the op_id to repeat", err)
			}
			if got := w.rec.Names(); !slices.Equal(got, c.calls) {
				t.Errorf("calls %v, want %v", got, c.calls)
			}
			for _, name := range []string{"Stock.AddStock", "Cache.Add"} {
				if args := w.rec.Of(name); len(args) == 1 && (args[0][0] != int64(3) || args[0][1] != int64(50) || args[0][2] != "restock-1") {
					t.Errorf("%s%v, want goods 3, 50 units, restock-1", name, args[0])
				}
			}
			if args := w.rec.Of("Stock.CacheAddition"); len(args) == 1 && args[0][0] != "restock-1" {
				t.Errorf("Redis step of %v, want restock-1", args[0][0])
			}
			if f := w.rec.Of("Cache.Forget"); len(f) == 1 && (f[0][0] != int64(3) || !slices.Equal(f[0][1].([]string), []string{"restock-1"}) || len(f[0][2].([]int64)) != 0) {
				t.Errorf("forgot %v, want the marker of restock-1 of goods 3", f[0])
			}
		})
	}
}

// A cancelled order's units go back to MySQL, then Redis, each once.
func TestReturnOrder(t *testing.T) {
	t.Parallel()
	m := msg(21)
	for _, c := range []struct {
		name         string
		mysql, redis error
		want         error
		calls        []string
	}{
		{"returned", nil, nil, nil, []string{"Stock.ReturnSale", "Stock.CacheReturn", "Cache.Return", "Cache.Forget", "StockBack", "Announce"}},
		{"mysql done before", service.ErrAlreadyApplied, nil, nil, []string{"Stock.ReturnSale", "Stock.CacheReturn", "Cache.Return", "Cache.Forget", "StockBack", "Announce"}},
		{"sale not applied yet", service.ErrNotYet, nil, service.ErrNotYet, []string{"Stock.ReturnSale"}},
		{"mysql fails", service.ErrUnavailable, nil, service.ErrUnavailable, []string{"Stock.ReturnSale"}},
		{"redis fails", nil, service.ErrUnavailable, service.ErrUnavailable, []string{"Stock.ReturnSale", "Stock.CacheReturn", "Cache.Return"}},
		{"redis holds no stock", nil, service.ErrStockNotLoaded, nil, []string{"Stock.ReturnSale", "Stock.CacheReturn", "Cache.Return", "StockBack", "Announce"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld()
			w.stock.ReturnSaleFn = func(context.Context, service.StockMessage) error { return c.mysql }
			w.stock.CacheReturnFn = func(_ context.Context, _ int64, step func() error) (bool, error) {
				if err := step(); err != nil {
					return false, err
				}
				return true, nil
			}
			w.cache.ReturnFn = func(context.Context, int64, int64, int64, int64) error { return c.redis }
			w.cache.ForgetFn = func(context.Context, int64, []string, []int64) error { return nil }
			if err := w.ledger(t).ReturnOrder(ctx, m); err != c.want {
				t.Errorf("got %v, want %v", err, c.want)
			}
			if got := w.rec.Names(); !slices.Equal(got, c.calls) {
				t.Errorf("calls %v, want %v", got, c.calls)
			}
			if r := w.rec.Of("Stock.ReturnSale"); r[0][0] != m {
				t.Errorf("returned %v in mysql, want %+v", r[0][0], m)
			}
			if r := w.rec.Of("Stock.CacheReturn"); len(r) == 1 && r[0][0] != m.OrderID {
				t.Errorf("Redis step of order %v, want %d", r[0][0], m.OrderID)
			}
			if r := w.rec.Of("Cache.Return"); len(r) == 1 && !slices.Equal(r[0], []any{m.OrderID, m.GoodsID, m.UserID, m.Number}) {
				t.Errorf("returned %v in redis, want order %d, goods %d, user %d, %d units", r[0], m.OrderID, m.GoodsID, m.UserID, m.Number)
			}
			if f := w.rec.Of("Cache.Forget"); len(f) == 1 && (f[0][0] != m.GoodsID || len(f[0][1].([]string)) != 0 || !slices.Equal(f[0][2].([]int64), []int64{m.OrderID})) {
				t.Errorf("forgot %v, want the marker of order %d's return", f[0], m.OrderID)
			}
		})
	}
}
