package localshare

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-seckill/seckill/service"
)

// fakeRedis is the remaining stock and the live instances, as Redis would
// tell them, with the reads counted.
type fakeRedis struct {
	mu     sync.Mutex
	stock  map[int64]int64
	live   int
	err    error
	reads  atomic.Int64
	counts atomic.Int64
}

func (f *fakeRedis) Stocks(_ context.Context, ids []int64) (map[int64]int64, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := map[int64]int64{}
	for _, id := range ids {
		if n, ok := f.stock[id]; ok {
			out[id] = n
		}
	}
	return out, nil
}

func (f *fakeRedis) LiveInstances(context.Context) (int, error) {
	f.counts.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live, f.err
}

func (f *fakeRedis) set(goodsID, stock int64, live int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stock[goodsID] = stock
	f.live = live
}

func newShares(stock int64, live int, opts Options) (*Shares, *fakeRedis) {
	f := &fakeRedis{stock: map[int64]int64{1: stock}, live: live}
	return New(f, f, opts), f
}

var ok = func() error { return nil }

// The share is the even part rounded up plus the buffer (a fraction of
// the even part, at least the floor), never more than the stock left.
func TestShareSize(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		remaining int64
		live      int
		opts      Options
		want      int64
	}{
		{300, 3, Options{Buffer: 0.5, MinBuffer: 10}, 150}, // 100 + 50
		{300, 3, Options{Buffer: 0.1, MinBuffer: 20}, 120}, // the floor wins over 10
		{301, 3, Options{}, 101},                           // rounded up: no unit falls between shares
		{5, 3, Options{Buffer: 0.5, MinBuffer: 10}, 5},     // never more than is left
		{0, 3, Options{Buffer: 0.5, MinBuffer: 10}, 0},
		{-2, 3, Options{MinBuffer: 10}, 0},
		{300, 1, Options{Buffer: 0.5, MinBuffer: 10}, 300},
		{300, 0, Options{}, 300}, // no lease counted: this instance alone
	} {
		s := New(nil, nil, c.opts)
		if got := s.size(c.remaining, c.live); got != c.want {
			t.Errorf("size(%d left, %d live, %+v) = %d, want %d", c.remaining, c.live, c.opts, got, c.want)
		}
	}
}

// A stampede on one instance: exactly its share goes on to Redis, each
// unit once; everyone else is answered sold out in memory.
func TestStampedeTakesExactlyTheShare(t *testing.T) {
	t.Parallel()
	s, f := newShares(300, 3, Options{Buffer: 0.5, MinBuffer: 10})
	var sold, refused atomic.Int64
	var wg sync.WaitGroup
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Sell(context.Background(), 1, 1, func() error { sold.Add(1); return nil })
			switch {
			case err == nil:
			case errors.Is(err, ErrShareSold) && errors.Is(err, service.ErrSoldOut):
				refused.Add(1)
			default:
				t.Errorf("sell: %v", err)
			}
		}()
	}
	wg.Wait()
	if sold.Load() != 150 || refused.Load() != 850 {
		t.Errorf("%d sold, %d refused; want 150 and 850", sold.Load(), refused.Load())
	}
	if n := f.reads.Load(); n != 1 {
		t.Errorf("the first buyers read Redis's stock %d times, want once", n)
	}
	if c := s.Counts(); c.Taken != 150 || c.Refused != 850 || c.Returned != 0 || c.Live != 3 {
		t.Errorf("counts %+v", c)
	}
}

// A sale that fails after its local unit was taken gives it back: failures
// never spend the share, and the successes still stop at the share.
func TestFailedSalesGiveTheUnitBack(t *testing.T) {
	t.Parallel()
	s, _ := newShares(20, 1, Options{})
	boom := errors.New("redis said no")
	var sold atomic.Int64
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Sell(context.Background(), 1, 1, func() error {
				if i%2 == 0 {
					return boom
				}
				sold.Add(1)
				return nil
			})
			if err != nil && !errors.Is(err, boom) && !errors.Is(err, ErrShareSold) {
				t.Errorf("sell: %v", err)
			}
		}()
	}
	wg.Wait()
	if sold.Load() != 20 {
		t.Errorf("%d sold of a share of 20", sold.Load())
	}
	if left, _ := s.Left(1); left != 0 {
		t.Errorf("%d left", left)
	}
	if err := s.Sell(context.Background(), 1, 1, func() error { t.Error("sold past the share"); return nil }); !errors.Is(err, ErrShareSold) {
		t.Errorf("past the share: %v", err)
	}
}

// An order of several units needs them all in the share.
func TestOrderLargerThanTheShareLeftIsRefused(t *testing.T) {
	t.Parallel()
	s, _ := newShares(5, 1, Options{})
	if err := s.Sell(context.Background(), 1, 4, ok); err != nil {
		t.Fatal(err)
	}
	if err := s.Sell(context.Background(), 1, 2, ok); !errors.Is(err, ErrShareSold) {
		t.Errorf("2 units of 1 left: %v", err)
	}
	if err := s.Sell(context.Background(), 1, 1, ok); err != nil {
		t.Errorf("1 unit of 1 left: %v", err)
	}
}

// A recompute derives the share from the stock left and the instances now:
// the part of an instance that left comes back to the others; a unit
// taken before the recompute and given back after it is not counted twice.
func TestRecomputeFollowsStockAndInstances(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, f := newShares(90, 3, Options{})
	if err := s.Sell(ctx, 1, 1, ok); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.Left(1); left != 29 {
		t.Fatalf("%d left of a share of 30", left)
	}
	f.set(1, 60, 2) // the others sold 29 units, and one instance died
	if err := s.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.Left(1); left != 30 {
		t.Errorf("after the recompute: %d left, want 60/2", left)
	}
	// Taken before the next recompute, given back after it.
	err := s.Sell(ctx, 1, 1, func() error {
		f.set(1, 60, 1)
		if err := s.Recompute(ctx); err != nil {
			t.Fatal(err)
		}
		return errors.New("sold out in redis")
	})
	if err == nil {
		t.Fatal("the failing sale succeeded")
	}
	if left, _ := s.Left(1); left != 60 {
		t.Errorf("%d left, want 60: the unit given back from before the recompute was counted again", left)
	}
	if c := s.Counts(); c.Live != 1 {
		t.Errorf("live %d, want 1", c.Live)
	}
}

// A failed recompute keeps the shares as they were.
func TestFailedRecomputeKeepsTheShares(t *testing.T) {
	t.Parallel()
	s, f := newShares(10, 1, Options{})
	if err := s.Sell(context.Background(), 1, 3, ok); err != nil {
		t.Fatal(err)
	}
	f.err = errors.New("redis down")
	if err := s.Recompute(context.Background()); err == nil {
		t.Error("the recompute hid the error")
	}
	if left, _ := s.Left(1); left != 7 {
		t.Errorf("%d left, want 7", left)
	}
}

// Stock back forgets the share: the next buyer derives it from Redis at
// once, without waiting for the next recompute.
func TestStockBackDerivesTheShareAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, f := newShares(1, 1, Options{})
	if err := s.Sell(ctx, 1, 1, ok); err != nil {
		t.Fatal(err)
	}
	if err := s.Sell(ctx, 1, 1, ok); !errors.Is(err, ErrShareSold) {
		t.Fatalf("sold out: %v", err)
	}
	f.set(1, 3, 1)
	s.StockBack(1)
	if err := s.Sell(ctx, 1, 1, ok); err != nil {
		t.Errorf("after stock back: %v", err)
	}
	if left, _ := s.Left(1); left != 2 {
		t.Errorf("%d left, want 2", left)
	}
}

// Goods whose stock Redis does not hold, or whose read failed, have an
// open share: Redis alone answers their buyers, and the next recompute
// sizes the share.
func TestUnknownStockLeavesTheShareOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, f := newShares(5, 1, Options{})
	f.err = errors.New("redis down")
	calls := 0
	for range 10 {
		if err := s.Sell(ctx, 1, 1, func() error { calls++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 10 {
		t.Errorf("%d of 10 sales reached Redis with the share unknown", calls)
	}
	f.err = nil
	if err := s.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	if left, known := s.Left(1); !known || left != 5 {
		t.Errorf("after the recompute: %d left (known %v), want 5", left, known)
	}
	if err := s.Sell(ctx, 2, 1, ok); err != nil { // goods 2: no stock in Redis
		t.Errorf("goods without stock in redis: %v", err)
	}
	if _, known := s.Left(2); known {
		t.Error("a share was sized for goods Redis holds no stock of")
	}
}

// Goods not sold here for forgetAfter recomputes leave memory.
func TestIdleGoodsAreForgotten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, f := newShares(5, 1, Options{})
	f.set(2, 5, 1)
	for _, g := range []int64{1, 2} {
		if err := s.Sell(ctx, g, 1, ok); err != nil {
			t.Fatal(err)
		}
	}
	for range forgetAfter {
		if err := s.Recompute(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Sell(ctx, 2, 1, func() error { return errors.New("no") }); err == nil {
			t.Fatal("the failing sale succeeded")
		}
	}
	if err := s.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	if _, known := s.Left(1); known {
		t.Error("goods 1, idle, is still held")
	}
	if _, known := s.Left(2); !known {
		t.Error("goods 2, sold every round, was forgotten")
	}
}

// An instance that sells nothing through a share asks Redis nothing.
func TestRecomputeWithoutSharesAsksNothing(t *testing.T) {
	t.Parallel()
	s, f := newShares(5, 1, Options{})
	if err := s.Recompute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.reads.Load()+f.counts.Load() != 0 {
		t.Errorf("%d stock reads and %d instance counts for no share", f.reads.Load(), f.counts.Load())
	}
}
