package main_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/store"
)

// splitEnv is an env whose goods split into three buckets of at most max
// units.
func splitEnv(t *testing.T, bucketMax int) *harness.Env {
	e := harness.NewEnv(t)
	e.Settings["SECKILL_STOCK_SUB_STOCKS"] = "3"
	e.Settings["SECKILL_STOCK_BUCKET_MAX"] = strconv.Itoa(bucketMax)
	return e
}

// adminBuckets posts to a bucket route and decodes the buckets.
func adminBuckets(t *testing.T, in *harness.Instance, path string) (int, []bucketAnswer) {
	t.Helper()
	var a struct {
		Buckets []bucketAnswer `json:"buckets"`
	}
	code := in.Call(t, "POST", path, nil, &a)
	return code, a.Buckets
}

type bucketAnswer struct {
	Index  int    `json:"index"`
	Tag    string `json:"tag"`
	Stock  *int64 `json:"stock"`
	Online bool   `json:"online"`
}

// 2,000 buyers at once on 300 units over three buckets on the three
// masters of a real Redis Cluster, through V14 and V6 at once: buckets of
// at most 50 units are refilled from the goods hash while the sale runs;
// exactly the stock is sold, each order stored once, and once the queue
// drains the cluster (hash and buckets) and MySQL agree.
func TestSplitStampedeOnRedisCluster(t *testing.T) {
	t.Parallel()
	c, _ := testenv.SharedRedisCluster(t)
	e := splitEnv(t, 50)
	e.UseRedisCluster(t, c)
	in := e.Start(t)
	g := in.CreateGoods(t, 300)
	byStatus, ids := stampede(t, in, g.ID, 2000, "V14", "V6")
	checkAccepted(t, byStatus, ids, 300)
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 300, Accepted: ids})
	e.CheckSoldThroughBuckets(t, g.ID)
	b, _ := e.Buckets(t, g.ID)
	masters := map[int]bool{}
	for _, tag := range b.Split.Tags {
		masters[c.MasterOf(store.GoodsBucketKey(e.Prefix, tag))] = true
	}
	if len(masters) != 3 {
		t.Errorf("the buckets %v are on masters %v, want one on each of 3", b.Split.Tags, masters)
	}
	_, given := b.Sum()
	t.Logf("the stampede's buckets were given %d units", given)
	// In the stampede the hash may sell its half before any refill lands;
	// one buyer after another, buckets found short are refilled from it.
	h := in.CreateGoods(t, 300)
	sold := sellInTurn(t, in, "V14", h.ID, 1, 300)
	e.CheckInvariants(t, h.ID, harness.Sale{Initial: 300, Accepted: sold})
	if b, _ := e.Buckets(t, h.ID); len(sold) != 300 {
		t.Errorf("%d of 300 sold one at a time", len(sold))
	} else if _, given := b.Sum(); given <= 150 {
		t.Errorf("the buckets were given %d units: no refill beyond their first 3 × 50", given)
	}
}

// A bucket taken off line mid-stampede: its units go back to the goods
// hash and still sell, to the last; on line again, it is refilled and
// sells what is added.
func TestSplitBucketOfflineMidStampede(t *testing.T) {
	t.Parallel()
	e := splitEnv(t, 40)
	in := e.Start(t)
	g := in.CreateGoods(t, 300)
	if code, bs := adminBuckets(t, in, "/admin/goods/"+strconv.FormatInt(g.ID, 10)+"/buckets"); code != http.StatusOK || len(bs) != 3 {
		t.Fatalf("split: %d %+v", code, bs)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var byStatus map[int]int
	var ids []int64
	go func() {
		defer wg.Done()
		byStatus, ids = stampede(t, in, g.ID, 1500, "V14", "V6", "V11")
	}()
	code, bs := adminBuckets(t, in, "/admin/goods/"+strconv.FormatInt(g.ID, 10)+"/buckets/1/offline")
	wg.Wait()
	if code != http.StatusOK || bs[1].Online || *bs[1].Stock != 0 {
		t.Fatalf("offline: %d %+v", code, bs)
	}
	checkAccepted(t, byStatus, ids, 300)
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 300, Accepted: ids})
	// The recall's marker in the hash holds the units it took back.
	hash, err := e.Redis().HGetAll(context.Background(), e.GoodsKey(g.ID)).Result()
	if err != nil {
		t.Fatal(err)
	}
	var back int64
	for k, v := range hash {
		if strings.HasPrefix(k, "back:") {
			n, _ := strconv.ParseInt(v, 10, 64)
			back += n
		}
	}
	// Whether the recall still found units depends on how fast the
	// stampede emptied bucket 1 (refills race it too): the sale's
	// invariants above hold either way, and the recall's steps are
	// checked one by one in store's tests.
	t.Logf("bucket 1 went off line giving %d units back to the hash", back)
	if b, _ := e.Buckets(t, g.ID); b.Online[1] || b.Levels[1] != 0 {
		t.Errorf("bucket 1 after the sale: %+v", b)
	}

	// Stock added, bucket 1 on line again: it is filled and sells.
	if code, _ := in.AddStock(t, g.ID, 30, "more"); code != http.StatusOK {
		t.Fatalf("add stock: %d", code)
	}
	code, bs = adminBuckets(t, in, "/admin/goods/"+strconv.FormatInt(g.ID, 10)+"/buckets/1/online")
	if code != http.StatusOK || !bs[1].Online || bs[1].Stock == nil || *bs[1].Stock == 0 {
		t.Fatalf("online: %d %+v", code, bs)
	}
	more, moreIDs := stampede(t, in, g.ID, 200, "V14")
	checkAccepted(t, more, moreIDs, 30)
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 300, Accepted: append(ids, moreIDs...)})
	if b, _ := e.Buckets(t, g.ID); b.Levels[1] != 0 {
		t.Errorf("bucket 1 did not sell what it was given: %+v", b)
	}
}

// The reconciliation counts the buckets: a bucket its master lost shows
// as Redis below the truth and is repaired into the hash after the
// passes; an allotment a process left half-done is completed, and its
// units counted once.
func TestSplitReconcile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := splitEnv(t, 20)
	in := e.Start(t)
	g := in.CreateGoods(t, 100)
	path := "/admin/goods/" + strconv.FormatInt(g.ID, 10) + "/buckets"
	if code, _ := adminBuckets(t, in, path); code != http.StatusOK {
		t.Fatalf("split: %d", code)
	}
	b, _ := e.Buckets(t, g.ID)
	rdb := e.Redis()
	// Bucket 0's master lost it, with its 20 units.
	if err := rdb.Del(ctx, store.GoodsBucketKey(e.Prefix, b.Split.Tags[0])).Err(); err != nil {
		t.Fatal(err)
	}
	for pass := 1; pass <= 3; pass++ {
		d := driftOf(t, in, g.ID)
		if d.Drift != -20 || d.Repaired != (pass == 3) {
			t.Fatalf("pass %d: %+v, want drift -20, repaired on the third", pass, d)
		}
	}
	if d := driftOf(t, in, g.ID); d.Drift != 0 {
		t.Fatalf("after the repair: %+v", d)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 100})

	// An allotment's first step only, as a process that died after it:
	// 5 units off the hash, recorded for bucket 1.
	key := e.GoodsKey(g.ID)
	if err := rdb.HIncrBy(ctx, key, "stock", -5).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, key, "allot:dead", b.Split.Tags[1]+":5").Err(); err != nil {
		t.Fatal(err)
	}
	if d := driftOf(t, in, g.ID); d.Drift != 0 {
		t.Fatalf("with an allotment half-done: %+v", d)
	}
	after, _ := e.Buckets(t, g.ID)
	if after.Levels[1] != b.Levels[1]+5 {
		t.Errorf("bucket 1 holds %d, want %d + the 5 allotted", after.Levels[1], b.Levels[1])
	}
	if n, _ := rdb.HExists(ctx, key, "allot:dead").Result(); n {
		t.Error("the allotment's record is still in the hash")
	}
	if d := driftOf(t, in, g.ID); d.Drift != 0 {
		t.Fatalf("a second pass: %+v", d)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 100})
}

type goodsDrift struct {
	Drift    int64 `json:"drift"`
	Repaired bool  `json:"repaired"`
}

func driftOf(t *testing.T, in *harness.Instance, goodsID int64) goodsDrift {
	t.Helper()
	var r struct {
		Goods []struct {
			GoodsID int64 `json:"goods_id"`
			goodsDrift
		} `json:"goods"`
	}
	if code := in.Call(t, "POST", "/admin/reconcile", nil, &r); code != http.StatusOK {
		t.Fatalf("reconcile: %d", code)
	}
	for _, g := range r.Goods {
		if g.GoodsID == goodsID {
			return g.goodsDrift
		}
	}
	t.Fatalf("goods %d not reconciled", goodsID)
	return goodsDrift{}
}

// The bucket routes answer bad input with its status and code.
func TestSplitAdminRoutesRefuseBadInput(t *testing.T) {
	t.Parallel()
	e := splitEnv(t, 20)
	in := e.Start(t)
	plain := in.CreateGoods(t, 10)
	var limited struct {
		ID int64 `json:"id"`
	}
	if code := in.Call(t, "POST", "/admin/goods", map[string]any{"name": "limited", "stock": 10, "per_user_limit": 1}, &limited); code != http.StatusCreated {
		t.Fatalf("create limited goods: %d", code)
	}
	split := in.CreateGoods(t, 10)
	if code, _ := adminBuckets(t, in, "/admin/goods/"+strconv.FormatInt(split.ID, 10)+"/buckets"); code != http.StatusOK {
		t.Fatalf("split: %d", code)
	}
	id := func(n int64) string { return strconv.FormatInt(n, 10) }
	auth := []string{"Authorization", "Bearer " + harness.AdminToken}
	for _, c := range []struct {
		path   string
		status int
		code   string
		admin  bool
	}{
		{"/admin/goods/" + id(split.ID) + "/buckets", http.StatusUnauthorized, "unauthorized", false},
		{"/admin/goods/abc/buckets", http.StatusBadRequest, "invalid_request", true},
		{"/admin/goods/0/buckets", http.StatusBadRequest, "invalid_request", true},
		{"/admin/goods/999999999/buckets", http.StatusNotFound, "not_found", true},
		{"/admin/goods/" + id(limited.ID) + "/buckets", http.StatusConflict, "not_splittable", true},
		{"/admin/goods/" + id(split.ID) + "/buckets/x/offline", http.StatusBadRequest, "invalid_request", true},
		{"/admin/goods/" + id(split.ID) + "/buckets/-1/online", http.StatusBadRequest, "invalid_request", true},
		{"/admin/goods/" + id(split.ID) + "/buckets/3/offline", http.StatusNotFound, "not_found", true},
		{"/admin/goods/999999999/buckets/0/offline", http.StatusNotFound, "not_found", true},
		{"/admin/goods/" + id(plain.ID) + "/buckets/0/offline", http.StatusConflict, "not_split", true},
		{"/admin/goods/" + id(limited.ID) + "/buckets/0/online", http.StatusConflict, "not_split", true},
	} {
		var header []string
		if c.admin {
			header = auth
		}
		if status, code := in.Raw(t, "POST", c.path, "", "", header...); status != c.status || code != c.code {
			t.Errorf("POST %s: %d %q, want %d %q", c.path, status, code, c.status, c.code)
		}
	}
	// Splitting again answers the same buckets; the stats show them.
	_, first := adminBuckets(t, in, "/admin/goods/"+id(split.ID)+"/buckets")
	_, again := adminBuckets(t, in, "/admin/goods/"+id(split.ID)+"/buckets")
	if len(first) != 3 || first[0].Tag != again[0].Tag {
		t.Errorf("split twice: %+v then %+v", first, again)
	}
	st := in.Stats(t, split.ID)
	if len(st.Buckets) != 3 || st.RedisStock == nil || *st.RedisStock != 10 {
		t.Errorf("stats of split goods: %+v", st)
	}
}

// A rebuild of a split goods' lost hash leaves out what the buckets still
// hold and names them again: the rest of the sale sells exactly the stock.
func TestSplitRebuildCountsTheBuckets(t *testing.T) {
	t.Parallel()
	e := splitEnv(t, 20)
	e.ShortWriteBudget()
	in := e.Start(t)
	g := in.CreateGoods(t, 100)
	sold := sellInTurn(t, in, "V14", g.ID, 1, 10)
	if len(sold) != 10 {
		t.Fatalf("%d of 10 sold before the loss", len(sold))
	}
	e.CheckSoldThroughBuckets(t, g.ID)
	if err := e.Redis().Del(context.Background(), e.GoodsKey(g.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for u := int64(1000); ; u++ {
		code, a := in.Order(t, "V6", u, g.ID, 1)
		if code == http.StatusCreated {
			sold = append(sold, a.ID)
			break
		}
		if code != http.StatusServiceUnavailable || a.Error != "stock_not_loaded" {
			t.Fatalf("while the hash is lost: %d %q", code, a.Error)
		}
		if time.Now().After(deadline) {
			t.Fatal("the hash was not rebuilt within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok := e.Buckets(t, g.ID); !ok {
		h, _ := e.Redis().HGetAll(context.Background(), e.GoodsKey(g.ID)).Result()
		t.Fatalf("the rebuilt hash does not name its buckets: %v", h)
	}
	byStatus, ids := stampede(t, in, g.ID, 500, "V14", "V6", "V2")
	checkAccepted(t, byStatus, ids, 100-len(sold))
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 100, Accepted: append(sold, ids...)})
}

// Every version sells a split goods whose units are all in its buckets:
// the hash, short, says the goods is split, and the order takes from the
// buckets; none answers sold out while they hold units.
func TestSplitGoodsSellThroughEveryVersion(t *testing.T) {
	t.Parallel()
	e := splitEnv(t, 100)
	in := e.Start(t)
	for _, v := range service.VersionNames() {
		t.Run(v, func(t *testing.T) {
			g := in.CreateGoods(t, 60)
			if code, _ := adminBuckets(t, in, "/admin/goods/"+strconv.FormatInt(g.ID, 10)+"/buckets"); code != http.StatusOK {
				t.Fatalf("split: %d", code)
			}
			if st := in.Stats(t, g.ID); len(st.Buckets) != 3 || *st.RedisStock != 60 {
				t.Fatalf("after the split: %+v", st)
			}
			byStatus, ids := stampede(t, in, g.ID, 300, v)
			checkAccepted(t, byStatus, ids, 60)
			e.CheckInvariants(t, g.ID, harness.Sale{Initial: 60, Accepted: ids})
			e.CheckSoldThroughBuckets(t, g.ID)
		})
	}
}

// Redis above the truth on a split goods (decrements a bucket lost): the
// repair takes the excess off the hash after moving the buckets' units
// back into it, so the hash never goes below zero while buckets sell the
// excess; the sale then sells exactly the stock.
func TestSplitRepairTakesExcessOffThroughTheHash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := splitEnv(t, 20)
	in := e.Start(t)
	g := in.CreateGoods(t, 100)
	if code, _ := adminBuckets(t, in, "/admin/goods/"+strconv.FormatInt(g.ID, 10)+"/buckets"); code != http.StatusOK {
		t.Fatalf("split: %d", code)
	}
	b, _ := e.Buckets(t, g.ID)
	if err := e.Redis().HIncrBy(ctx, store.GoodsBucketKey(e.Prefix, b.Split.Tags[2]), "stock", 50).Err(); err != nil {
		t.Fatal(err)
	}
	for pass := 1; pass <= 3; pass++ {
		if d := driftOf(t, in, g.ID); d.Drift != 50 || d.Repaired != (pass == 3) {
			t.Fatalf("pass %d: %+v, want drift 50, repaired on the third", pass, d)
		}
	}
	if d := driftOf(t, in, g.ID); d.Drift != 0 {
		t.Fatalf("after the repair: %+v", d)
	}
	if hash, _ := e.Redis().HGet(ctx, e.GoodsKey(g.ID), "stock").Int64(); hash < 0 {
		t.Fatalf("the hash went below zero: %d", hash)
	}
	byStatus, ids := stampede(t, in, g.ID, 400, "V14", "V6")
	checkAccepted(t, byStatus, ids, 100)
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 100, Accepted: ids})
}
