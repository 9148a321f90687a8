package goodscache

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
)

// fakeStore is Redis as the cache sees it: goods by id, a lost set, and a
// gate that holds every read until it is closed.
type fakeStore struct {
	mu    sync.Mutex
	goods map[int64]service.Goods
	lost  bool
	down  bool
	reads atomic.Int64
	gate  chan struct{}
}

func (f *fakeStore) ShownGoods(_ context.Context, id int64) (service.Goods, bool, error) {
	f.reads.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.down:
		return service.Goods{}, false, service.ErrUnavailable
	case f.lost:
		return service.Goods{}, false, service.ErrStockNotLoaded
	}
	g, ok := f.goods[id]
	return g, ok, nil
}

func (f *fakeStore) GoodsIDs(context.Context) ([]int64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []int64
	if f.lost { // the index went with the rest
		return nil, false, nil
	}
	for id := range f.goods {
		ids = append(ids, id)
	}
	return ids, !f.lost, nil
}

func (f *fakeStore) set(fn func()) { f.mu.Lock(); fn(); f.mu.Unlock() }

func newCache(f *fakeStore, recatalog func(context.Context) error, o Options) *Cache {
	return New(f, recatalog, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestConcurrentMissesShareOneRead(t *testing.T) {
	f := &fakeStore{goods: map[int64]service.Goods{1: {ID: 1, Name: "phone", Stock: 5}}, gate: make(chan struct{})}
	c := newCache(f, nil, Options{StockTTL: time.Hour})
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if g, err := c.Goods(context.Background(), 1); err != nil || g.Name != "phone" {
				t.Errorf("read: %+v %v", g, err)
			}
		}()
	}
	for f.reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(f.gate)
	wg.Wait()
	if n := f.reads.Load(); n != 1 {
		t.Errorf("50 concurrent misses read Redis %d times, want once", n)
	}
}

func TestUnknownIDIsRememberedUntilChanged(t *testing.T) {
	f := &fakeStore{goods: map[int64]service.Goods{}}
	c := newCache(f, nil, Options{AbsentTTL: time.Hour, StockTTL: time.Hour})
	for range 3 {
		if _, err := c.Goods(context.Background(), 7); !errors.Is(err, service.ErrNotFound) {
			t.Fatalf("unknown id: %v, want not found", err)
		}
	}
	if n := f.reads.Load(); n != 1 {
		t.Errorf("three reads of an unknown id read Redis %d times, want once", n)
	}
	f.set(func() { f.goods[7] = service.Goods{ID: 7, Name: "new"} })
	if _, err := c.Goods(context.Background(), 7); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("before the change is announced: %v, want the absent entry", err)
	}
	c.Changed(7)
	if g, err := c.Goods(context.Background(), 7); err != nil || g.Name != "new" {
		t.Errorf("after the announcement: %+v %v", g, err)
	}
}

func TestLostGoodsStartOneRecatalogAndHeldOnesAnswerFromMemory(t *testing.T) {
	f := &fakeStore{goods: map[int64]service.Goods{1: {ID: 1, Name: "held"}, 2: {ID: 2, Name: "cold"}}}
	var runs atomic.Int64
	release := make(chan struct{})
	c := newCache(f, func(context.Context) error { runs.Add(1); <-release; return nil }, Options{StockTTL: time.Hour})
	ctx := context.Background()
	if _, err := c.Goods(ctx, 1); err != nil {
		t.Fatal(err)
	}
	f.set(func() { f.lost = true })
	if _, err := c.Goods(ctx, 2); !errors.Is(err, service.ErrStockNotLoaded) {
		t.Fatalf("goods redis lost, not in memory: %v, want stock not loaded", err)
	}
	c.Changed(2)
	for runs.Load() == 0 { // the recatalog starts in the background
		time.Sleep(time.Millisecond)
	}
	for range 5 {
		if _, err := c.Goods(ctx, 2); !errors.Is(err, service.ErrStockNotLoaded) {
			t.Fatalf("goods redis lost, not in memory: %v, want stock not loaded", err)
		}
		c.Changed(2) // each read goes to Redis
	}
	if g, err := c.Goods(ctx, 1); err != nil || g.Name != "held" {
		t.Errorf("goods held in memory: %+v %v", g, err)
	}
	if _, err := c.List(ctx); !errors.Is(err, service.ErrStockNotLoaded) {
		t.Errorf("list while redis lost the index: %v", err)
	}
	close(release)
	if n := runs.Load(); n != 1 {
		t.Errorf("recatalog ran %d times while one ran, want 1", n)
	}
}

func TestStockFollowsRedisAfterStockTTL(t *testing.T) {
	f := &fakeStore{goods: map[int64]service.Goods{1: {ID: 1, Stock: 10}}}
	c := newCache(f, nil, Options{StockTTL: 10 * time.Millisecond})
	ctx := context.Background()
	if g, _ := c.Goods(ctx, 1); g.Stock != 10 {
		t.Fatalf("stock %d", g.Stock)
	}
	f.set(func() { f.goods[1] = service.Goods{ID: 1, Stock: 4} })
	// Reads after StockTTL answer the held value and reload it behind.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if g, _ := c.Goods(ctx, 1); g.Stock == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stock shown never followed Redis")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A reload that fails keeps the value held: Redis down.
	f.set(func() { f.down = true; f.goods[1] = service.Goods{ID: 1, Stock: 1} })
	time.Sleep(20 * time.Millisecond)
	for range 5 {
		if g, err := c.Goods(ctx, 1); err != nil || g.Stock != 4 {
			t.Fatalf("redis down: %+v %v, want the held goods", g, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
