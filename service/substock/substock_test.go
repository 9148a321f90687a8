package substock

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

type buckets struct {
	mu     sync.Mutex
	levels map[string]int64
	down   map[string]bool
	calls  map[string]int
}

func newBuckets(levels map[string]int64) *buckets {
	return &buckets{levels: levels, down: map[string]bool{}, calls: map[string]int{}}
}

func (b *buckets) Take(_ context.Context, key string, n int64) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls[key]++
	if b.down[key] {
		return false, errors.New("down")
	}
	if b.levels[key] < n {
		return false, nil
	}
	b.levels[key] -= n
	return true, nil
}

func TestTakesSpreadOverTheSubStocksAndNeverPassThem(t *testing.T) {
	b := newBuckets(map[string]int64{"a": 100, "b": 100, "c": 100, "d": 100})
	p := New(b, time.Minute)
	subs := []string{"a", "b", "c", "d"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	took := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, err := p.Take(context.Background(), subs, 1)
				if errors.Is(err, ErrEmpty) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				took++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if took != 400 {
		t.Errorf("took %d units of 400", took)
	}
	for k, l := range b.levels {
		if l != 0 {
			t.Errorf("sub-stock %s left at %d", k, l)
		}
	}
}

// Once every sub-stock was seen empty, a take asks each once more rather
// than refusing from memory, and then the empties are skipped.
func TestEmptySubStocksAreSkippedButNeverTrustedBlindly(t *testing.T) {
	b := newBuckets(map[string]int64{"a": 0, "b": 1})
	p := New(b, time.Minute)
	subs := []string{"a", "b"}
	if i, err := p.Take(context.Background(), subs, 1); err != nil || subs[i] != "b" {
		t.Fatalf("take = %d %v", i, err)
	}
	if _, err := p.Take(context.Background(), subs, 1); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty: %v", err)
	}
	b.levels["a"] = 1 // given back elsewhere: the memory is stale
	if i, err := p.Take(context.Background(), subs, 1); err != nil || subs[i] != "a" {
		t.Errorf("take after a give-back elsewhere = %d %v", i, err)
	}
}

func TestAFailedSubStockIsSkippedAndReported(t *testing.T) {
	b := newBuckets(map[string]int64{"a": 5, "b": 0})
	b.down["a"] = true
	p := New(b, time.Minute)
	if _, err := p.Take(context.Background(), []string{"a", "b"}, 1); err == nil || errors.Is(err, ErrEmpty) {
		t.Fatalf("with the only stock on a failed master: %v, want its error", err)
	}
	b.levels["b"] = 5
	p.Forget("b") // stock added to b
	for range 5 {
		if _, err := p.Take(context.Background(), []string{"a", "b"}, 1); err != nil {
			t.Fatal(err)
		}
	}
	if b.calls["a"] != 1 {
		t.Errorf("the failed master was asked %d times while another sub-stock could give, want once", b.calls["a"])
	}
}

func TestSpread(t *testing.T) {
	if got := Spread(10, 4); !slices.Equal(got, []int64{3, 3, 2, 2}) {
		t.Errorf("Spread(10, 4) = %v", got)
	}
	if got := Spread(2, 4); !slices.Equal(got, []int64{1, 1, 0, 0}) {
		t.Errorf("Spread(2, 4) = %v", got)
	}
}
