package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
)

func openTestRedis(tb testing.TB) *Redis {
	tb.Helper()
	addr, prefix := testenv.Redis(tb)
	r, err := OpenRedis(context.Background(), RedisOptions{Addr: addr, PoolSize: 128, KeyPrefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// The reserve script never takes more than there is, tells a missing key
// from an empty one, and release and add never create a missing key.
func TestReserveScript(t *testing.T) {
	ctx := context.Background()
	r := openTestRedis(t)
	if err := r.Reserve(ctx, 1, 7, 1, time.Now()); !errors.Is(err, service.ErrStockNotLoaded) {
		t.Fatalf("reserve on missing key: %v, want ErrStockNotLoaded", err)
	}
	for _, err := range []error{r.Release(ctx, 1, 7, 1), r.Add(ctx, 1, 5, "op")} {
		if !errors.Is(err, service.ErrStockNotLoaded) {
			t.Errorf("release/add on missing key: %v", err)
		}
	}
	if _, ok, _ := r.Stock(ctx, 1); ok {
		t.Fatal("release or add created the missing key")
	}
	if err := r.Put(ctx, service.Goods{ID: 1, Stock: 100}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := 0
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := r.Reserve(ctx, 1, 7, 3, time.Now())
				if errors.Is(err, service.ErrSoldOut) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				taken += 3
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if stock, _, _ := r.Stock(ctx, 1); taken != 99 || stock != 1 {
		t.Errorf("took %d, left %d; want 99 and 1", taken, stock)
	}
	if err := r.Add(ctx, 1, 10, "op-a"); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(ctx, 1, 10, "op-a"); err != nil {
		t.Fatal(err)
	}
	if stock, _, _ := r.Stock(ctx, 1); stock != 11 {
		t.Errorf("after adding 10 twice with one op id: %d, want 11", stock)
	}
}

// Lua check-and-decrement against the seed's HINCRBY with give-back, in
// stock and sold out. Run: go test ./store -run ^$ -bench Reserve
func BenchmarkReserve(b *testing.B) {
	ctx := context.Background()
	r := openTestRedis(b)
	c := r.c
	hincrby := func(key string) error {
		left, err := c.HIncrBy(ctx, key, "stock", -1).Result()
		if err == nil && left < 0 {
			c.HIncrBy(ctx, key, "stock", 1) // give it back
			return service.ErrSoldOut
		}
		return err
	}
	for _, phase := range []struct {
		name  string
		stock int64
	}{{"in-stock", 1 << 40}, {"sold-out", 0}} {
		b.Run("lua/"+phase.name, func(b *testing.B) {
			r.Put(ctx, service.Goods{ID: 1, Stock: phase.stock})
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := r.Reserve(ctx, 1, 7, 1, time.Now()); err != nil && !errors.Is(err, service.ErrSoldOut) {
						b.Error(err)
					}
				}
			})
		})
		b.Run("hincrby/"+phase.name, func(b *testing.B) {
			r.Put(ctx, service.Goods{ID: 2, Stock: phase.stock})
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := hincrby(GoodsKey(r.prefix, 2)); err != nil && !errors.Is(err, service.ErrSoldOut) {
						b.Error(err)
					}
				}
			})
		})
	}
}
