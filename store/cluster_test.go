package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/recovery"
)

// openClusterRedis is the store on the package's shared Redis Cluster,
// under a key prefix of the test's own.
func openClusterRedis(tb testing.TB) *Redis {
	tb.Helper()
	c, prefix := testenv.SharedRedisCluster(tb)
	r, err := OpenRedis(context.Background(), RedisOptions{ClusterAddrs: c.Addrs(), PoolSize: 16, KeyPrefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// keysUnder lists the keys under r's prefix, on every master of a cluster.
func keysUnder(ctx context.Context, r *Redis) ([]string, error) {
	var mu sync.Mutex
	var keys []string
	scan := func(ctx context.Context, c *redis.Client) error {
		ks, err := c.Keys(ctx, r.prefix+"*").Result()
		mu.Lock()
		keys = append(keys, ks...)
		mu.Unlock()
		return err
	}
	if cc, ok := r.c.(*redis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, scan)
		return keys, err
	}
	return keys, scan(ctx, r.c.(*redis.Client))
}

// goodsOnEveryMaster picks goods ids whose keys land on each master.
func goodsOnEveryMaster(t *testing.T, r *Redis) []int64 {
	t.Helper()
	masters, err := ClusterMasters(context.Background(), r.c.(*redis.ClusterClient))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	seen := map[int]bool{}
	for id := int64(1); len(seen) < len(masters); id++ {
		slot := KeySlot(GoodsKey(r.prefix, id))
		for i, m := range masters {
			if m.Owns(slot) && !seen[i] {
				seen[i] = true
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// Every goods script, and Put's transaction, on goods of each master of a
// real cluster: no CROSSSLOT, and the same answers as on one server.
func TestGoodsScriptsOnCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := openClusterRedis(t)
	for _, id := range goodsOnEveryMaster(t, r) {
		t.Run(fmt.Sprint(id), func(t *testing.T) {
			if err := r.Reserve(ctx, id, 7, 1, time.Now()); !errors.Is(err, service.ErrStockNotLoaded) {
				t.Fatalf("reserve on a missing key: %v", err)
			}
			if err := r.Put(ctx, service.Goods{ID: id, Stock: 30, PerUserLimit: 4}); err != nil {
				t.Fatal(err)
			}
			var taken atomic.Int64
			var wg sync.WaitGroup
			for u := range int64(16) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						err := r.Reserve(ctx, id, u, 1, time.Now())
						if errors.Is(err, service.ErrSoldOut) || errors.Is(err, service.ErrLimitExceeded) {
							return
						}
						if err != nil {
							t.Error(err)
							return
						}
						taken.Add(1)
					}
				}()
			}
			wg.Wait()
			if n, _, _ := r.Stock(ctx, id); taken.Load() != 30 || n != 0 {
				t.Fatalf("took %d of 30, %d left", taken.Load(), n)
			}
			// A return counts once; an addition under one op id counts once.
			for range 2 {
				if err := r.Return(ctx, 99, id, 3, 1); err != nil {
					t.Fatal(err)
				}
				if err := r.Add(ctx, id, 5, "restock"); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Release(ctx, id, 4, 1); err != nil {
				t.Fatal(err)
			}
			if n, _, _ := r.Stock(ctx, id); n != 7 {
				t.Errorf("stock %d after a return, an addition and a release, want 7", n)
			}
			var ops []string
			var rets []int64
			if err := r.Markers(ctx, id, func(o []string, rs []int64) error { ops, rets = o, rs; return nil }); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ops, []string{"restock"}) || !slices.Equal(rets, []int64{99}) {
				t.Errorf("markers %v %v", ops, rets)
			}
			if err := r.Forget(ctx, id, ops, rets); err != nil {
				t.Fatal(err)
			}
			if ok, err := r.Repair(ctx, id, 7, 2, []string{"late"}, []int64{100}); !ok || err != nil {
				t.Fatalf("repair: %v %v", ok, err)
			}
			if ok, _ := r.Adjust(ctx, id, 7, 1); ok {
				t.Error("adjusted a stock that is not the expected one")
			}
			// The buyers' counts against a truth, and their repair.
			truth := map[int64]int64{1: 2, 2: 2, 50: 1}
			var drifts []service.BuyerUnits
			err := r.BuyerDrifts(ctx, id, func(each func(userID, units int64) error) error {
				for u, n := range truth {
					if err := each(u, n); err != nil {
						return err
					}
				}
				return nil
			}, func(b service.BuyerUnits) error { drifts = append(drifts, b); return nil })
			if err != nil || len(drifts) == 0 {
				t.Fatalf("drifts %v: %v", drifts, err)
			}
			users, err := r.RepairBuyers(ctx, id, drifts, map[int64][]int64{50: {101}})
			if err != nil || len(users) != len(drifts) {
				t.Fatalf("repaired %v of %v: %v", users, drifts, err)
			}
			got, err := r.c.HGetAll(ctx, BuyersKey(r.prefix, id)).Result()
			for u, n := range got {
				if n == "0" {
					delete(got, u) // a count given back to nothing
				}
			}
			if err != nil || len(got) != 3 || got["1"] != "2" || got["2"] != "2" || got["50"] != "1" {
				t.Errorf("buyers after the repair: %v (%v)", got, err)
			}
			// Lost, then rebuilt whole from staging keys of the same slot.
			if err := r.c.Del(ctx, GoodsKey(r.prefix, id), BuyersKey(r.prefix, id)).Err(); err != nil {
				t.Fatal(err)
			}
			restored, err := r.Restore(ctx, service.Goods{ID: id, PerUserLimit: 4}, service.RestoredStock{Stock: 9,
				PendingReturns: []int64{102},
				UserUnits:      func(each func(userID, units int64) error) error { return each(1, 4) }})
			if err != nil || !restored {
				t.Fatalf("restore: %v %v", restored, err)
			}
			if err := r.Reserve(ctx, id, 1, 1, time.Now()); !errors.Is(err, service.ErrLimitExceeded) {
				t.Errorf("user 1 after the restore: %v, want limit exceeded", err)
			}
			if n, _, _ := r.Stock(ctx, id); n != 9 {
				t.Errorf("stock %d after the restore, want 9", n)
			}
		})
	}
	if stocks, err := r.Stocks(ctx, goodsOnEveryMaster(t, r)); err != nil || len(stocks) != 3 {
		t.Errorf("stocks over every master: %v, %v", stocks, err)
	}
}

// Locks, idempotency outcomes and node leases, on a cluster.
func TestSingleKeyStateOnCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := openClusterRedis(t)
	unlock, ok, err := r.Lock(ctx, "reconcile:1", time.Minute)
	if !ok || err != nil {
		t.Fatalf("lock: %v %v", ok, err)
	}
	if _, ok, _ := r.Lock(ctx, "reconcile:1", time.Minute); ok {
		t.Error("a held lock was taken again")
	}
	unlock()
	if _, ok, _ := r.Lock(ctx, "reconcile:1", time.Minute); !ok {
		t.Error("a released lock was not free")
	}
	o := r.Outcomes(time.Minute, time.Hour)
	if _, claimed, err := o.Claim(ctx, "u1:k", []byte("pending")); !claimed || err != nil {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	if prev, claimed, _ := o.Claim(ctx, "u1:k", []byte("pending2")); claimed || string(prev) != "pending" {
		t.Errorf("second claim: %v %q", claimed, prev)
	}
	if ok, err := o.Reclaim(ctx, "u1:k", []byte("pending"), []byte("mine")); !ok || err != nil {
		t.Errorf("reclaim: %v %v", ok, err)
	}
	if err := o.Settle(ctx, "u1:k", []byte("done")); err != nil {
		t.Fatal(err)
	}
	if err := o.Forget(ctx, "u1:k"); err != nil {
		t.Fatal(err)
	}
	l, err := r.LeaseNode(ctx, -1, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.LeaseNode(ctx, l.Node(), time.Second); err == nil {
		t.Error("a leased node was leased again")
	}
	time.Sleep(time.Second) // renewals keep it
	if _, err := r.LeaseNode(ctx, l.Node(), time.Second); err == nil {
		t.Error("a renewed lease was taken")
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// The ledger's movements and the reconciliation on a cluster: sales,
// a cancellation, a loss of the goods' keys and their rebuild.
func TestLedgerOnCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newRigOn(t, openTestDatabase(t), openClusterRedis(t))
	gd := g.goods(t, 10, 2)
	m := g.sell(t, gd.ID, 7, 2)
	g.sell(t, gd.ID, 8, 1)
	g.cancel(t, m)
	if err := g.l.ReturnOrder(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, want := g.redisStock(t, gd.ID), g.truth(t, gd.ID); got != want || got != 9 {
		t.Fatalf("redis %d, truth %d, want 9", got, want)
	}
	if err := g.r.c.Del(ctx, GoodsKey(g.r.prefix, gd.ID), BuyersKey(g.r.prefix, gd.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	if restored, err := g.l.Repairs().RestoreMissing(ctx); err != nil || len(restored) != 1 {
		t.Fatalf("restored %v: %v", restored, err)
	}
	if got := g.redisStock(t, gd.ID); got != 9 {
		t.Errorf("redis %d after the rebuild, want 9", got)
	}
	if n := g.buyerUnits(t, gd.ID, 8); n != 1 {
		t.Errorf("user 8 holds %d after the rebuild, want 1", n)
	}
	if d := g.passes(t, gd.ID, recovery.RepairAfter); d.Drift != 0 || d.UsersDrift != 0 {
		t.Errorf("drift after the rebuild: %+v", d)
	}
}

// SpreadTags puts tag i on master i % masters, as the servers map slots;
// KeySlot agrees with CLUSTER KEYSLOT; one server takes base.0..n-1.
func TestSpreadTags(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := testenv.SharedRedisCluster(t)
	cl := c.Client()
	for _, key := range []string{"", "a", "goods_{42}", "x{}y", "{a}{b}", "p:coupon_{c.17}_left", "123456789"} {
		slot, err := cl.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if int(slot) != KeySlot(key) {
			t.Errorf("slot of %q: server %d, KeySlot %d", key, slot, KeySlot(key))
		}
	}
	masters, err := ClusterMasters(ctx, cl)
	if err != nil || len(masters) != len(c.Addrs()) {
		t.Fatalf("masters %v: %v", masters, err)
	}
	for i, m := range masters {
		if m.Addr != c.Addrs()[i] {
			t.Errorf("master %d is %s, want %s (the order of creation)", i, m.Addr, c.Addrs()[i])
		}
	}
	tags, err := SpreadTags(ctx, cl, 10, "coupon7")
	if err != nil || len(tags) != 10 {
		t.Fatalf("tags %v: %v", tags, err)
	}
	seen := map[string]bool{}
	for i, tag := range tags {
		key := "p:coupon_{" + tag + "}_left"
		slot, err := cl.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !masters[i%len(masters)].Owns(int(slot)) || c.MasterOf(key) != i%len(masters) {
			t.Errorf("tag %d (%s) is on master %d, want %d", i, tag, c.MasterOf(key), i%len(masters))
		}
		if seen[tag] {
			t.Errorf("tag %s twice", tag)
		}
		seen[tag] = true
	}
	if again, _ := SpreadTags(ctx, cl, 10, "coupon7"); !slices.Equal(again, tags) {
		t.Errorf("a second call gave %v, the first %v", again, tags)
	}
	if _, err := SpreadTags(ctx, cl, 2, "bad}"); err == nil {
		t.Error("a base with } was taken")
	}

	single := openTestRedis(t)
	tags, err = SpreadTags(ctx, single.c, 3, "coupon7")
	if err != nil || !slices.Equal(tags, []string{"coupon7.0", "coupon7.1", "coupon7.2"}) {
		t.Errorf("on one server: %v, %v", tags, err)
	}
}
