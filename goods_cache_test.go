package main_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/store"
)

// goodsCacheEnv starts two instances whose goods caches keep everything
// for ten minutes: only the "goods changed" broadcast can make a change
// seen by the instance that did not make it.
func goodsCacheEnv(t *testing.T) (*harness.Env, *harness.Instance, *harness.Instance) {
	e := harness.NewEnv(t)
	for k, v := range map[string]string{
		"SECKILL_GOODS_CACHE_TTL": "10m", "SECKILL_GOODS_CACHE_STOCK_TTL": "10m", "SECKILL_GOODS_CACHE_ABSENT_TTL": "10m",
	} {
		e.Settings[k] = v
	}
	e.Settings["SECKILL_SNOWFLAKE_NODE"] = "1"
	a := e.Start(t)
	e.Settings["SECKILL_SNOWFLAKE_NODE"] = "2"
	return e, a, e.Start(t)
}

// shown is GET /goods/:id: the status and the goods.
func shown(t *testing.T, in *harness.Instance, id int64) (int, service.Goods) {
	t.Helper()
	var g service.Goods
	code := in.Call(t, "GET", fmt.Sprintf("/goods/%d", id), nil, &g)
	return code, g
}

// An id read as unknown on one instance, then created on the other, is
// seen there by the broadcast (the absent entry would live ten minutes);
// an edit and an addition of stock made on one instance are seen on the
// other the same way; V9 sells exactly the stock on both.
func TestGoodsCacheFollowsAdminWritesOnEveryInstance(t *testing.T) {
	t.Parallel()
	e, a, b := goodsCacheEnv(t)
	// The database is fresh: the first goods will be id 1.
	if code, _ := shown(t, b, 1); code != http.StatusNotFound {
		t.Fatalf("unknown id: %d, want 404", code)
	}
	if code, o := b.Order(t, "V9", 1, 1, 1); code != http.StatusNotFound || o.Error != "not_found" {
		t.Fatalf("V9 order of an unknown id: %d %q, want 404 not_found", code, o.Error)
	}
	g := a.CreateGoods(t, 10)
	if g.ID != 1 {
		t.Fatalf("first goods has id %d", g.ID)
	}
	harness.Eventually(t, 10*time.Second, func() bool { code, _ := shown(t, b, 1); return code == http.StatusOK },
		"the goods created on another instance stays unknown here")

	code, seen := shown(t, b, g.ID)
	if code != http.StatusOK || seen.Name != "phone" || seen.Stock != 10 || seen.Price != g.Price {
		t.Fatalf("created goods: %d %+v", code, seen)
	}
	if code, body := a.Raw(t, "PATCH", fmt.Sprintf("/admin/goods/%d", g.ID), "application/json", `{"name":"phone 2","end_at":null}`,
		"Authorization", "Bearer "+a.Token); code != http.StatusOK {
		t.Fatalf("edit: %d %s", code, body)
	}
	harness.Eventually(t, 10*time.Second, func() bool { _, s := shown(t, b, g.ID); return s.Name == "phone 2" },
		"the rename made on another instance is not seen")
	if code, _ := a.AddStock(t, g.ID, 5, ""); code != http.StatusOK {
		t.Fatalf("add stock: %d", code)
	}
	harness.Eventually(t, 10*time.Second, func() bool { _, s := shown(t, b, g.ID); return s.Stock == 15 },
		"the stock added on another instance is not seen")
	var list struct{ Goods []service.Goods }
	if code := b.Call(t, "GET", "/goods", nil, &list); code != http.StatusOK || len(list.Goods) != 1 || list.Goods[0].Stock != 15 {
		t.Fatalf("GET /goods: %d %+v", code, list)
	}

	var sold []int64
	for u := int64(1); u <= 20; u++ {
		code, o := []*harness.Instance{a, b}[u%2].Order(t, "V9", u, g.ID, 1)
		switch code {
		case http.StatusCreated:
			sold = append(sold, o.ID)
		case http.StatusConflict:
		default:
			t.Fatalf("V9 order: %d %q", code, o.Error)
		}
	}
	if len(sold) != 15 {
		t.Errorf("V9 sold %d units of 15", len(sold))
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: sold})
}

// statements sums the database statements the instance made for route.
func statements(t *testing.T, in *harness.Instance, route string) float64 {
	t.Helper()
	var n float64
	for _, m := range in.Scrape(t)["seckill_dependency_statements_by_route_total"].GetMetric() {
		if harness.Labels(m)["route"] == route {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

// A read load (GET /goods/:id of known and unknown ids, GET /goods) makes
// no database statement; an order does, which shows the count is real.
// The memory level answers most reads.
func TestReadLoadMakesNoDatabaseStatement(t *testing.T) {
	t.Parallel()
	_, a, _ := goodsCacheEnv(t)
	g := a.CreateGoods(t, 100)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 250 {
				switch i % 3 {
				case 0:
					shown(t, a, g.ID)
				case 1:
					a.Raw(t, "GET", fmt.Sprintf("/goods/%d", 1000+w), "", "")
				default:
					a.Call(t, "GET", "/goods", nil, nil)
				}
			}
		}()
	}
	wg.Wait()
	for _, route := range []string{"/goods/:id", "/goods"} {
		if n := statements(t, a, route); n != 0 {
			t.Errorf("%s made %v database statements under a read load, want none", route, n)
		}
	}
	if code, o := a.Order(t, "V1", 1, g.ID, 1); code != http.StatusCreated {
		t.Fatalf("V1 order: %d %q", code, o.Error)
	}
	if statements(t, a, "/orderV1") == 0 {
		t.Error("a V1 order counted no database statement: the count sees nothing")
	}
	hits := map[string]float64{}
	for _, m := range a.Scrape(t)["seckill_goods_cache_lookups_total"].GetMetric() {
		l := harness.Labels(m)
		hits[l["level"]+" "+l["result"]] = m.GetCounter().GetValue()
	}
	if hits["memory hit"] < 1000 || hits["redis hit"] < 1 {
		t.Errorf("goods cache lookups: %v, want most reads answered from memory", hits)
	}
}

// Redis loses the goods, its index and the catalog marker (a flush of this
// deployment's keys): an instance that held the goods in memory answers
// from there, one that did not answers 503 stock_not_loaded, and the
// rebuild path restores the goods (stock and details) from the database,
// after which both read them from Redis again; V9 sells exactly what is
// left.
func TestGoodsCacheAfterRedisLostTheGoods(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.ShortWriteBudget() // so that the rebuild may wait only a little longer
	// A write starved of CPU past the short budget answers 503 and leaves
	// Redis a unit short until reconciliation repairs it: soon, here.
	e.Settings["SECKILL_RECONCILE_INTERVAL"] = "300ms"
	e.Settings["SECKILL_GOODS_CACHE_STOCK_TTL"] = "100ms"
	e.Settings["SECKILL_SNOWFLAKE_NODE"] = "1"
	a := e.Start(t)
	e.Settings["SECKILL_SNOWFLAKE_NODE"] = "2"
	b := e.Start(t)
	g := a.CreateGoods(t, 50)
	var sold []int64
	for u := int64(1); u <= 5; u++ {
		if code, o := a.Order(t, "V9", u, g.ID, 1); code == http.StatusCreated {
			sold = append(sold, o.ID)
		}
	}
	harness.Eventually(t, 10*time.Second, func() bool { code, s := shown(t, a, g.ID); return code == http.StatusOK && s.Stock == 45 },
		"the stock shown does not follow the sales")
	ctx := context.Background()
	if err := e.Redis().Del(ctx, e.GoodsKey(g.ID), store.GoodsIndexKey(e.Prefix), store.GoodsCatalogKey(e.Prefix)).Err(); err != nil {
		t.Fatal(err)
	}
	if code, s := shown(t, a, g.ID); code != http.StatusOK || s.Name != "phone" {
		t.Errorf("an instance holding the goods in memory: %d %+v, want its copy", code, s)
	}
	// b never read the goods: it has nothing to answer from until the
	// rebuild (after its grace) puts them back.
	if code, errCode := b.Raw(t, "GET", fmt.Sprintf("/goods/%d", g.ID), "", ""); code == http.StatusOK {
		t.Log("the rebuild was already done")
	} else if code != http.StatusServiceUnavailable || errCode != "stock_not_loaded" {
		t.Errorf("an instance without the goods while Redis lost them: %d %q, want 503 stock_not_loaded", code, errCode)
	}
	harness.Eventually(t, 20*time.Second, func() bool {
		code, s := shown(t, b, g.ID)
		return code == http.StatusOK && s.Stock == 45 && s.Name == "phone"
	}, "the goods were not rebuilt into Redis")
	if n, err := e.Redis().Exists(ctx, store.GoodsCatalogKey(e.Prefix)).Result(); err != nil || n != 1 {
		t.Errorf("catalog marker after the rebuild: %d %v", n, err)
	}
	byStatus, ids := stampede(t, b, g.ID, 200, "V9")
	if unavailable := byStatus[http.StatusServiceUnavailable]; unavailable > 0 {
		t.Logf("%d orders answered 503 under the short write budget", unavailable)
		delete(byStatus, http.StatusServiceUnavailable)
	}
	if byStatus[http.StatusCreated] > 45 {
		t.Errorf("V9 sold %d units after the rebuild, 45 were left", byStatus[http.StatusCreated])
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 50, Accepted: append(sold, ids...)})
}
