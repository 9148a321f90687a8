package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
)

// The split stock's scripts (V14) on one server and on a real cluster,
// whose buckets land on every master: takes never below zero, allotments
// and recalls once under copies and after a process died between their
// steps, the sale window and the off-line flag checked in a bucket.
func TestSplitStockScripts(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(testing.TB) *Redis{"server": openTestRedis, "cluster": openClusterRedis} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testSplitStockScripts(t, open(t))
		})
	}
}

func testSplitStockScripts(t *testing.T, r *Redis) {
	ctx := context.Background()
	b := r.GoodsBuckets()
	const id = 41
	total := func() int64 {
		t.Helper()
		hash, _, err := r.Stock(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		held, err := b.SplitHeld(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return hash + held
	}
	if _, _, err := b.Split(ctx, id, service.Split{Tags: []string{"x"}, BucketMax: 1}); !errors.Is(err, service.ErrStockNotLoaded) {
		t.Fatalf("split of goods Redis does not hold: %v", err)
	}
	if err := r.Put(ctx, service.Goods{ID: id, Stock: 100}); err != nil {
		t.Fatal(err)
	}
	masters, _ := b.Masters(ctx)
	tags, err := b.Spread(ctx, max(masters, 2), "g41")
	if err != nil {
		t.Fatal(err)
	}
	want := service.Split{Tags: tags, BucketMax: 30}
	s, fresh, err := b.Split(ctx, id, want)
	if err != nil || !fresh {
		t.Fatalf("split: %v, fresh %v", err, fresh)
	}
	// A second split, as another instance's, gets the first.
	if again, fresh, err := b.Split(ctx, id, service.Split{Tags: []string{"other"}, BucketMax: 5}); err != nil || fresh || fmt.Sprint(again) != fmt.Sprint(s) {
		t.Fatalf("second split: %v %v %v", again, fresh, err)
	}
	// Goods with a per-user limit are never split.
	if err := r.Put(ctx, service.Goods{ID: id + 1, Stock: 10, PerUserLimit: 2}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Split(ctx, id+1, want); !errors.Is(err, service.ErrLimitExceeded) {
		t.Fatalf("split of limited goods: %v", err)
	}

	// The hash, short and split, says so.
	if moved, left, err := b.Allot(ctx, id, tags[0], 30, true); err != nil || moved != 30 || left != 70 {
		t.Fatalf("allot: %d moved, %d left, %v", moved, left, err)
	}
	if err := r.Reserve(ctx, id, 1, 71, time.Now()); !errors.Is(err, service.ErrStockSplit) {
		t.Fatalf("reserve past the hash of split goods: %v", err)
	}

	// Concurrent takes never take a bucket below zero.
	var taken atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ok, err := b.Take(ctx, tags[0], 1)
				if err != nil {
					t.Error(err)
				}
				if !ok {
					return
				}
				taken.Add(1)
			}
		}()
	}
	wg.Wait()
	if lv, _ := b.Levels(ctx, tags[:1]); taken.Load() != 30 || *lv[0] != 0 {
		t.Fatalf("took %d of 30, %d left", taken.Load(), *lv[0])
	}
	if total() != 70 {
		t.Fatalf("total %d after 30 sold, want 70", total())
	}

	// A process dies after an allotment's first step: the units are
	// counted once, in flight; the completion adds them once, however
	// often it runs, alongside a copy.
	a, left, err := b.StartAllot(ctx, id, tags[1], 20)
	if err != nil || a.Units != 20 || left != 50 {
		t.Fatalf("start allot: %+v %d %v", a, left, err)
	}
	if total() != 70 {
		t.Fatalf("total %d with an allotment in flight, want 70", total())
	}
	if pending, _ := b.PendingAllots(ctx, id); len(pending) != 1 || pending[0] != a {
		t.Fatalf("pending %v, want %v", pending, a)
	}
	var done sync.WaitGroup
	for range 3 {
		done.Add(1)
		go func() {
			defer done.Done()
			if err := b.CompleteAllot(ctx, id, a, false); err != nil {
				t.Error(err)
			}
		}()
	}
	done.Wait()
	if moved, err := b.CompleteAllots(ctx, id); err != nil || moved != 0 {
		t.Fatalf("completed again: %d, %v", moved, err)
	}
	if lv, _ := b.Levels(ctx, tags[1:2]); *lv[0] != 20 || total() != 70 {
		t.Fatalf("bucket %d after the completions, total %d; want 20 and 70", *lv[0], total())
	}

	// The sale window is checked in the bucket; the hash tells why.
	future := time.Now().Add(time.Hour)
	if err := r.SetNameAndWindow(ctx, id, "g", service.SaleWindow{StartAt: &future}); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Take(ctx, tags[1], 1); ok || err != nil {
		t.Fatalf("take before the sale: %v %v", ok, err)
	}
	if err := r.SetNameAndWindow(ctx, id, "g", service.SaleWindow{}); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Take(ctx, tags[1], 1); !ok || err != nil {
		t.Fatalf("take in the sale: %v %v", ok, err)
	}

	// Off line: the bucket refuses and its units go back to the hash,
	// once; on line again, it takes allotments and sells.
	hash, _, _ := r.Stock(ctx, id)
	m, err := b.Recall(ctx, id, tags[1])
	if err != nil || m != 19 {
		t.Fatalf("recall: %d, %v", m, err)
	}
	if now, _, _ := r.Stock(ctx, id); now != hash+19 || total() != 69 {
		t.Fatalf("hash %d after the recall (was %d), total %d", now, hash, total())
	}
	if ok, _ := b.Take(ctx, tags[1], 1); ok {
		t.Fatal("an off-line bucket sold")
	}
	if err := b.CompleteRecalls(ctx, id, s); err != nil || total() != 69 {
		t.Fatalf("recalls completed again: total %d, %v", total(), err)
	}
	if err := b.Online(ctx, id, tags[1]); err != nil {
		t.Fatal(err)
	}
	if moved, _, err := b.Allot(ctx, id, tags[1], 5, false); err != nil || moved != 5 {
		t.Fatalf("allot on line: %d %v", moved, err)
	}
	if ok, _ := b.Take(ctx, tags[1], 1); !ok {
		t.Fatal("an on-line bucket refused")
	}
	states, err := b.States(ctx, s)
	if err != nil || !states[1].Online || *states[1].Stock != 4 {
		t.Fatalf("states %+v, %v", states, err)
	}

	// A bucket its master lost is recreated by its next allotment, with
	// the sale window.
	if err := r.c.Del(ctx, GoodsBucketKey(r.prefix, tags[1])).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.SetNameAndWindow(ctx, id, "g", service.SaleWindow{StartAt: &future}); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.c.Exists(ctx, GoodsBucketKey(r.prefix, tags[1])).Result(); n != 0 {
		t.Fatal("the window recreated a lost bucket")
	}
	if _, _, err := b.Allot(ctx, id, tags[1], 5, false); err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.Take(ctx, tags[1], 1); ok {
		t.Fatal("a recreated bucket sold before the sale")
	}
}

// The stocks read for the shoppers' pages and the local shares count a
// split goods' units in its buckets: with every unit allotted, its hash
// holds none, and the goods is not sold out.
func TestStocksCountTheBucketsOfSplitGoods(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(testing.TB) *Redis{"server": openTestRedis, "cluster": openClusterRedis} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := open(t)
			ctx := context.Background()
			b := r.GoodsBuckets()
			const split, plain = 51, 52
			for _, id := range []int64{split, plain} {
				if err := r.Put(ctx, service.Goods{ID: id, Stock: 90}); err != nil {
					t.Fatal(err)
				}
			}
			tags, err := b.Spread(ctx, 3, "g51")
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.Split(ctx, split, service.Split{Tags: tags, BucketMax: 100}); err != nil {
				t.Fatal(err)
			}
			for _, tag := range tags {
				if moved, _, err := b.Allot(ctx, split, tag, 30, true); err != nil || moved != 30 {
					t.Fatalf("allot to %s: %d, %v", tag, moved, err)
				}
			}
			if ok, err := b.Take(ctx, tags[0], 5); !ok || err != nil {
				t.Fatalf("take: %v, %v", ok, err)
			}
			got, err := r.Stocks(ctx, []int64{split, plain, 53})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[split] != 85 || got[plain] != 90 {
				t.Errorf("stocks %v, want split goods 85 (all in its buckets), plain 90, unknown left out", got)
			}
		})
	}
}
