package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
)

// orderWithKey posts an order with an Idempotency-Key header.
func (in *instance) orderWithKey(t *testing.T, version, key string, userID, goodsID int64) (int, orderAnswer) {
	t.Helper()
	body, _ := json.Marshal(map[string]int64{"user_id": userID, "goods_id": goodsID, "number": 1})
	req, _ := http.NewRequest("POST", in.base+"/order"+version, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a orderAnswer
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &a)
	return resp.StatusCode, a
}

// A client retrying with the same Idempotency-Key, even many times at once,
// gets one order and the same answer; another key or user is another order.
func TestIdempotencyKeyGivesOneOrderPerKey(t *testing.T) {
	e := newEnv(t)
	in := e.start()
	versions := service.Versions()
	g := in.createGoods(t, int64(len(versions)))
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			key := "retry-" + v
			var mu sync.Mutex
			ids := map[int64]int{}
			codes := map[int]int{}
			var wg sync.WaitGroup
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, a := in.orderWithKey(t, v, key, 7, g.ID)
					mu.Lock()
					defer mu.Unlock()
					codes[code]++
					if code == http.StatusCreated {
						ids[a.ID]++
					}
				}()
			}
			wg.Wait()
			// Concurrent twins see 409 request_in_progress; afterwards every
			// retry replays the order.
			code, a := in.orderWithKey(t, v, key, 7, g.ID)
			if code != http.StatusCreated || len(ids) > 1 || (len(ids) == 1 && ids[a.ID] == 0) {
				t.Errorf("answers %v, order ids %v, replay %d %d", codes, ids, code, a.ID)
			}
		})
	}
	// Each version's key took one unit; now sold out, a new key is refused,
	// and so is its retry, even once stock is added: the answer stands.
	for range 2 {
		if code, a := in.orderWithKey(t, "V6", "late", 7, g.ID); code != http.StatusConflict || a.Error != "sold_out" {
			t.Errorf("sold-out answer and its replay: %d %q", code, a.Error)
		}
		in.call(t, "POST", "/admin/goods", map[string]any{"id": g.ID, "add_stock": 1}, nil)
	}
	if code, _ := in.orderWithKey(t, "V6", "late", 8, g.ID); code != http.StatusCreated {
		t.Errorf("the same key for another user is another request: %d", code)
	}
	checkSettled(t, in.drained(t, g.ID), int64(len(versions))+2, int64(len(versions))+1)
}

// Redis losing its data mid-sale: orders answer 503 stock_not_loaded until
// one instance has rebuilt the stock from the database, under a lock and
// after the grace period; then the sale goes on and sells exactly the stock.
func TestRedisFlushedMidSaleIsRebuiltFromTheDatabase(t *testing.T) {
	e := newEnv(t)
	e.settings["SECKILL_REDIS_REBUILD_GRACE"] = "300ms"
	ins := threeInstances(t, e)
	g := ins[0].createGoods(t, 100)
	sold := 0
	for u := int64(1); u <= 40; u++ {
		if code, _ := ins[u%3].order(t, "V"+fmt.Sprint(u%6+1), u, g.ID, 1); code == http.StatusCreated {
			sold++
		}
	}
	if err := ins[0].redis.Client().Del(context.Background(), ins[0].redis.GoodsKey(g.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	notLoaded := 0
	deadline := time.Now().Add(10 * time.Second)
	for u := int64(1000); ; u++ {
		code, a := ins[u%3].order(t, "V"+fmt.Sprint(u%6+1), u, g.ID, 1)
		if code == http.StatusCreated {
			sold++
			break
		}
		if code != http.StatusServiceUnavailable || a.Error != "stock_not_loaded" {
			t.Fatalf("while Redis is empty: %d %q", code, a.Error)
		}
		notLoaded++
		if time.Now().After(deadline) {
			t.Fatal("stock was not rebuilt within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if notLoaded == 0 {
		t.Error("no order was refused while Redis had lost the stock")
	}
	byStatus, ids := stampede(t, ins[1], g.ID, 300, service.Versions()...)
	checkAccepted(t, byStatus, ids, 100-sold)
	checkSettled(t, ins[2].drained(t, g.ID), 100, 100)
}

// Past http.max_in_flight, order requests are shed at once with 503 busy
// and Retry-After, and shed requests reserve nothing.
func TestOverloadIsShedWithRetryAfter(t *testing.T) {
	e := newEnv(t)
	e.settings["SECKILL_HTTP_MAX_IN_FLIGHT"] = "4"
	in := e.start()
	g := in.createGoods(t, 100000)
	byStatus, ids := stampede(t, in, g.ID, 400, "V1")
	if byStatus[http.StatusServiceUnavailable] == 0 || byStatus[http.StatusCreated] == 0 {
		t.Errorf("answers %v: want some 201 and some 503 busy", byStatus)
	}
	st := in.drained(t, g.ID)
	checkSettled(t, st, 100000, int64(len(ids)))
}

type reconcileReport struct {
	Goods []service.Drift `json:"goods"`
}

// Reconciliation repairs a drift between Redis and the database only once
// it has been seen three passes in a row, in both directions: a reservation
// whose order was never written (Redis too low) and decrements Redis lost
// (Redis too high).
func TestReconciliationRepairsLastingDrift(t *testing.T) {
	e := newEnv(t)
	e.settings["SECKILL_RECONCILE_INTERVAL"] = "1h" // passes by hand here
	in := e.start()
	g := in.createGoods(t, 10)
	for u := range int64(2) {
		in.order(t, "V2", u+1, g.ID, 1)
	}
	in.drained(t, g.ID)
	ctx := context.Background()
	pass := func() service.Drift {
		var r reconcileReport
		if code := in.call(t, "POST", "/admin/reconcile", nil, &r); code != http.StatusOK || len(r.Goods) != 1 {
			t.Fatalf("reconcile: %d %+v", code, r)
		}
		return r.Goods[0]
	}
	for _, c := range []struct {
		name  string
		fault func()
		drift int64
	}{
		{"reservation without an order", func() { in.redis.Reserve(ctx, g.ID, 99, 1, time.Now()) }, -1},
		{"decrements lost by Redis", func() { in.redis.Adjust(ctx, g.ID, 8, 2) }, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.fault()
			for i := 1; i <= service.RepairAfter; i++ {
				d := pass()
				last := i == service.RepairAfter
				if d.Drift != c.drift || d.Repaired != last || (!last && d.Seen != i) {
					t.Errorf("pass %d: %+v, want drift %d seen %d, repaired only on pass %d", i, d, c.drift, i, service.RepairAfter)
				}
			}
			if d := pass(); d.Drift != 0 || *d.RedisStock != 8 {
				t.Errorf("after repair: %+v", d)
			}
		})
	}
	checkSettled(t, in.drained(t, g.ID), 10, 2)
}

// The background pass does the same on its own.
func TestReconciliationLoopRepairsAnOrphanReservation(t *testing.T) {
	e := newEnv(t)
	e.settings["SECKILL_RECONCILE_INTERVAL"] = "100ms"
	in := e.start()
	g := in.createGoods(t, 10)
	if err := in.redis.Reserve(context.Background(), g.ID, 99, 3, time.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if stock, _, _ := in.redis.Stock(context.Background(), g.ID); stock == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the orphan reservation was not given back within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// After Redis lost a goods and rebuilt it, replaying an admin addition (same
// op_id) or a cancelled order's return adds nothing a second time.
func TestReplaysAfterARebuildCountOnce(t *testing.T) {
	e := newEnv(t)
	e.settings["SECKILL_REDIS_REBUILD_GRACE"] = "100ms"
	in := e.start()
	g := in.createGoods(t, 10)
	if code := in.call(t, "POST", "/admin/goods", map[string]any{"id": g.ID, "add_stock": 5, "op_id": "before-loss"}, nil); code != http.StatusOK {
		t.Fatalf("add: %d", code)
	}
	ctx := context.Background()
	m := sellWithoutMessage(t, in, g.ID, 1)
	m.Deadline = time.Now().Add(-time.Second).UnixMilli()
	if err := in.svc.ApplyStock(ctx, m); err != nil {
		t.Fatal(err)
	}
	// Expire and cancel the order by hand: its unit goes back once.
	if _, err := in.database.DB().Exec("UPDATE orders SET pay_deadline = ? WHERE id = ?", time.Now().Add(-time.Second).UTC(), m.OrderID); err != nil {
		t.Fatal(err)
	}
	if err := in.svc.CancelUnpaid(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := in.redis.Client().Del(ctx, in.redis.GoodsKey(g.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _ := in.order(t, "V2", 99, g.ID, 1)
		if code == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stock not rebuilt")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The replays.
	if code := in.call(t, "POST", "/admin/goods", map[string]any{"id": g.ID, "add_stock": 5, "op_id": "before-loss"}, nil); code != http.StatusOK {
		t.Fatalf("replayed add: %d", code)
	}
	if err := in.svc.CancelUnpaid(ctx, m); err != nil {
		t.Fatal(err)
	}
	st := in.drained(t, g.ID)
	// 15 units, 2 orders, one of them cancelled: 14 left, sale 1.
	if st.MySQLStock != 14 || *st.RedisStock != 14 || st.MySQLSale != 1 || st.Returns != 1 {
		t.Errorf("after the replays: %+v redis=%d, want stock 14 in both, sale 1, one return", st, *st.RedisStock)
	}
}
