package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/internal/fakes"
)

// splitStore is a goods hash and its buckets in memory: the Gate's
// reservation (wired into the world's cache) and Buckets, with the
// database's record of the split.
type splitStore struct {
	mu     sync.Mutex
	hash   int64 // the goods hash's stock
	split  *service.Split
	saved  *service.Split // the database's record
	levels map[string]int64
	taken  int64 // units taken from buckets
}

func newSplitStore(hash int64) *splitStore {
	return &splitStore{hash: hash, levels: map[string]int64{}}
}

// reserve is the hash's script: -6 (ErrStockSplit) when short and split.
func (s *splitStore) reserve(_ context.Context, _, _, n int64, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.hash >= n:
		s.hash -= n
		return nil
	case s.split != nil:
		return service.ErrStockSplit
	}
	return service.ErrSoldOut
}

func (s *splitStore) Take(_ context.Context, tag string, n int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.levels[tag] < n {
		return false, nil
	}
	s.levels[tag] -= n
	s.taken += n
	return true, nil
}

func (s *splitStore) Masters(context.Context) (int, error) { return 1, nil }

func (s *splitStore) Spread(_ context.Context, n int, base string) ([]string, error) {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf("%s.%d", base, i)
	}
	return tags, nil
}

func (s *splitStore) Split(_ context.Context, _ int64, sp service.Split) (service.Split, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.split != nil {
		return *s.split, false, nil
	}
	s.split = &sp
	return sp, true, nil
}

func (s *splitStore) SplitOf(context.Context, int64) (service.Split, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.split == nil {
		return service.Split{}, false, nil
	}
	return *s.split, true, nil
}

func (s *splitStore) Allot(_ context.Context, _ int64, tag string, want int64, _ bool) (int64, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := min(want, s.hash)
	s.hash -= m
	s.levels[tag] += m
	return m, s.hash, nil
}

func (s *splitStore) CompleteAllots(context.Context, int64) (int64, error) { return 0, nil }

func (s *splitStore) Recall(_ context.Context, _ int64, tag string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.levels[tag]
	s.levels[tag], s.hash = 0, s.hash+m
	return m, nil
}

func (s *splitStore) CompleteRecalls(context.Context, int64, service.Split) error { return nil }
func (s *splitStore) Online(context.Context, int64, string) error                 { return nil }

func (s *splitStore) States(ctx context.Context, sp service.Split) ([]service.Bucket, error) {
	levels, _ := s.Levels(ctx, sp.Tags)
	out := make([]service.Bucket, len(sp.Tags))
	for i, tag := range sp.Tags {
		out[i] = service.Bucket{Index: i, Tag: tag, Stock: levels[i], Online: true}
	}
	return out, nil
}

func (s *splitStore) Levels(_ context.Context, tags []string) ([]*int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*int64, len(tags))
	for i, tag := range tags {
		n := s.levels[tag]
		out[i] = &n
	}
	return out, nil
}

func (s *splitStore) SplitHeld(context.Context, int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var held int64
	for _, n := range s.levels {
		held += n
	}
	return held, nil
}

func (s *splitStore) SaveSplit(_ context.Context, _ int64, sp service.Split) (service.Split, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saved == nil {
		s.saved = &sp
	}
	return *s.saved, nil
}

func (s *splitStore) total() int64 {
	held, _ := s.SplitHeld(ctx, 0)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hash + held
}

// splitWorld is a world whose goods 3 (limit: its per-user limit) sells
// from st, split into 3 buckets of at most 5 units.
func splitWorld(t *testing.T, st *splitStore, limit int64) (*world, *Ledger) {
	w := newWorld()
	w.cache.ReserveFn = st.reserve
	w.cache.StockFn = func(context.Context, int64) (int64, bool, error) {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.hash, true, nil
	}
	w.stock.GoodsFn = func(_ context.Context, id int64) (service.Goods, error) {
		return service.Goods{ID: id, PerUserLimit: limit}, nil
	}
	w.opts.Split = SplitOptions{SubStocks: 3, BucketMax: 5}
	l := New(Stores{Gate: w.cache, Moves: w.cache, Mends: w.cache, Locker: w.locker, Sales: w.sales,
		Records: w.stock, Truths: w.stock, Orders: w.orders, Announcer: w.announce, Buckets: st, Splits: st}, w.opts, fakes.Log())
	t.Cleanup(l.Close)
	return w, l
}

var splitOrder = service.Order{ID: 12, UserID: 160, GoodsID: 3, Number: 1, Version: "V14"}

// V14's first order splits the goods, fills each bucket with its share up
// to the maximum, and takes from a bucket, not from the hash; buckets
// found short are refilled from the hash; the units always add up.
func TestV14SplitsOnItsFirstOrderAndSellsFromBuckets(t *testing.T) {
	t.Parallel()
	st := newSplitStore(30)
	w, l := splitWorld(t, st, 0)
	if err := l.Reserve(ctx, splitOrder); err != nil {
		t.Fatal(err)
	}
	if st.split == nil || len(st.split.Tags) != 3 || st.saved == nil {
		t.Fatalf("split %+v, saved %+v", st.split, st.saved)
	}
	if n := w.rec.Count("Cache.Reserve"); n != 0 || st.taken != 1 || st.hash != 15 {
		t.Fatalf("%d hash reservations, %d taken from buckets, hash %d; want 0, 1, 15", n, st.taken, st.hash)
	}
	for range 28 {
		if err := l.Reserve(ctx, splitOrder); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // refills run in the background
	}
	l.Close()
	if got := st.total(); got != 1 {
		t.Fatalf("%d units left of 30 after 29 sold", got)
	}
	if st.taken <= 15 {
		t.Errorf("buckets sold %d units: none refilled beyond the first 15", st.taken)
	}
}

// Every other version asks the hash first; a split goods' hash that is
// short sends the order to the buckets, and sold out comes only when they
// are empty too, after the picker's memory of empty ones is forgotten.
func TestOtherVersionsSellSplitGoodsFromTheBuckets(t *testing.T) {
	t.Parallel()
	st := newSplitStore(0)
	st.split = &service.Split{Tags: []string{"a", "b"}, BucketMax: 5}
	st.levels["a"], st.levels["b"] = 1, 1
	w, l := splitWorld(t, st, 0)
	o := splitOrder
	o.Version = "V6"
	for i := range 2 {
		if err := l.Reserve(ctx, o); err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
	}
	if err := l.Reserve(ctx, o); !errors.Is(err, service.ErrSoldOut) {
		t.Fatalf("with every bucket empty: %v", err)
	}
	if n := w.rec.Count("Cache.Reserve"); n != 3 {
		t.Errorf("%d hash reservations, want one per order", n)
	}
}

// Goods with a per-user limit are never split: V14 sells them from the
// hash, which holds the limit.
func TestGoodsWithALimitAreNotSplit(t *testing.T) {
	t.Parallel()
	st := newSplitStore(10)
	w, l := splitWorld(t, st, 1)
	for range 2 {
		if err := l.Reserve(ctx, splitOrder); err != nil {
			t.Fatal(err)
		}
	}
	if st.split != nil || st.saved != nil || w.rec.Count("Cache.Reserve") != 2 {
		t.Errorf("split %+v, saved %+v, %d hash reservations", st.split, st.saved, w.rec.Count("Cache.Reserve"))
	}
	if n := w.rec.Count("Stock.Goods"); n != 1 {
		t.Errorf("goods read %d times: the answer is remembered", n)
	}
	if _, err := l.SplitGoods(ctx, 3); !errors.Is(err, service.ErrNotSplittable) {
		t.Errorf("an admin's split: %v", err)
	}
}
