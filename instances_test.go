package main_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/app"
	"github.com/go-seckill/seckill/internal/harness"
)

// threeInstances starts three instances sharing MySQL, Redis and both nsqd,
// each with its own snowflake node.
func threeInstances(t *testing.T, e *harness.Env) []*harness.Instance {
	var ins []*harness.Instance
	for node := range 3 {
		e.Settings["SECKILL_SNOWFLAKE_NODE"] = fmt.Sprint(node + 1)
		ins = append(ins, e.Start(t))
	}
	return ins
}

// sellsWithin waits until a V6 order through in succeeds, or fails the
// test; it returns the order's id.
func sellsWithin(t *testing.T, in *harness.Instance, goodsID, userID int64, d time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, a := in.Order(t, "V6", userID, goodsID, 1)
		if code == http.StatusCreated {
			return a.ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s still answers %d %v after stock came back", in.Base, code, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Sold out through V6 on three instances, stock added through one: every
// instance sells again within a second, by the broadcast alone (the flags'
// TTL is a minute in tests).
func TestStockAddedClearsTheSoldOutFlagOnEveryInstance(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	ins := threeInstances(t, e)
	g := ins[0].CreateGoods(t, 30)
	var sold []int64
	for u := int64(1); ; u++ {
		code, a := ins[u%3].Order(t, "V6", u, g.ID, 1)
		if code == http.StatusCreated {
			sold = append(sold, a.ID)
			continue
		}
		if code != http.StatusConflict {
			t.Fatalf("status %d", code)
		}
		break
	}
	for _, in := range ins { // every instance now holds the flag
		if code, a := in.Order(t, "V6", 999, g.ID, 1); code != http.StatusConflict || a.Error != "sold_out" {
			t.Fatalf("after selling out: %d %q", code, a.Error)
		}
	}
	if code, _ := ins[1].AddStock(t, g.ID, 3, ""); code != http.StatusOK {
		t.Fatalf("add stock: %d", code)
	}
	for i, in := range ins {
		sold = append(sold, sellsWithin(t, in, g.ID, int64(1000+i), time.Second))
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 30, Accepted: sold})
}

// An order whose insert fails after its reservation (here: the second order
// host lost its tables) gives the unit back, and no instance keeps refusing
// buyers with a sold-out flag set while the unit was briefly taken.
func TestFailedInsertReturnsStockAndClearsFlagsEverywhere(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	ins := threeInstances(t, e)
	g := ins[0].CreateGoods(t, 1)
	shard2 := e.DB(1)
	setOrderTables(t, shard2, "", "_off") // odd user ids go to this host

	// Odd users hammer every instance: each takes the unit, fails to write
	// the order and gives it back; meanwhile the others see "sold out".
	var wg sync.WaitGroup
	stop := time.Now().Add(1500 * time.Millisecond)
	for _, in := range ins {
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for u := int64(2*w + 1); time.Now().Before(stop); u += 8 {
					code, _ := in.Order(t, "V6", u, g.ID, 1)
					if code == http.StatusCreated {
						t.Errorf("an order was accepted while its host was down")
					}
				}
			}()
		}
	}
	wg.Wait()
	time.Sleep(time.Second) // the broadcasts' second

	if stock, err := e.Redis().HGet(context.Background(), e.GoodsKey(g.ID), "stock").Int64(); err != nil || stock != 1 {
		t.Fatalf("the unit was not given back: redis stock %d (%v)", stock, err)
	}
	for _, in := range ins {
		// 503: this instance went to Redis, took the unit and gave it back.
		// 409 would be a sold-out flag left standing while stock exists.
		if code, a := in.Order(t, "V6", 1, g.ID, 1); code != http.StatusServiceUnavailable {
			t.Errorf("instance %s: %d %q, want 503 (no stale sold-out flag)", in.Base, code, a.Error)
		}
	}

	setOrderTables(t, shard2, "_off", "")
	id := sellsWithin(t, ins[1], g.ID, 3, time.Second)
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 1, Accepted: []int64{id}})
}

// V4 writes orders to both hosts and V5 publishes to both nsqd.
func TestShardedVersionsUseEveryHostAndNSQD(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	g := in.CreateGoods(t, 1000)
	var ids []int64
	for u := int64(1); u <= 64; u++ {
		for _, v := range []string{"V4", "V5"} {
			code, a := in.Order(t, v, u, g.ID, 1)
			if code != http.StatusCreated {
				t.Fatalf("%s: %d", v, code)
			}
			ids = append(ids, a.ID)
		}
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 1000, Accepted: ids})
	for i := range e.DSNs {
		n := 0
		for table := 1; table <= 16; table++ {
			var c int
			if err := e.DB(i).QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM order_%d", table)).Scan(&c); err != nil {
				t.Fatal(err)
			}
			n += c
		}
		if n != 64 { // half of each version's 64 orders
			t.Errorf("order host %d holds %d orders, want 64", i+1, n)
		}
	}
	for _, n := range e.NSQDs {
		st, err := harness.NSQDStats(n.HTTPAddr(), in.Config.NSQ.Topic)
		if err != nil {
			t.Fatal(err)
		}
		if st.MessageCount < 32 {
			t.Errorf("nsqd %s carried %d stock messages, want at least V5's 32", n.TCPAddr(), st.MessageCount)
		}
	}
}

// setOrderTables renames order_N+from to order_N+to on one host.
func setOrderTables(t *testing.T, db *sql.DB, from, to string) {
	t.Helper()
	stmt := "RENAME TABLE "
	for i := 1; i <= 16; i++ {
		if i > 1 {
			stmt += ", "
		}
		stmt += fmt.Sprintf("order_%d%s TO order_%d%s", i, from, i, to)
	}
	if _, err := db.ExecContext(context.Background(), stmt); err != nil {
		t.Fatal(err)
	}
}

// Two instances started with the default configuration, selling at once,
// never make equal order ids: each leases its own snowflake node. (Equal
// ids read as "already applied" and the twin never reduces MySQL stock.)
func TestInstancesOnTheDefaultConfigurationNeverShareAnOrderID(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	delete(e.Settings, "SECKILL_SNOWFLAKE_NODE")
	a, b := e.Start(t), e.Start(t)
	g := a.CreateGoods(t, 5000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ids []int64
	for _, in := range []*harness.Instance{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, sold := stampede(t, in, g.ID, 800, "V3", "V4")
			mu.Lock()
			ids = append(ids, sold...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("order id %d was made twice", id)
		}
		seen[id] = true
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 5000, Accepted: ids})
}

// A snowflake node given explicitly that a live instance holds stops the
// start with an error that says so.
func TestAnExplicitNodeHeldByALiveInstanceStopsTheStart(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_SNOWFLAKE_NODE"] = "7"
	e.Start(t)
	a, err := app.Start(context.Background(), e.Config(t), harness.Logger(t))
	if err == nil {
		a.Shutdown()
		t.Fatal("a second instance started on node 7")
	}
	if !strings.Contains(err.Error(), "snowflake node 7 is held by another running instance") {
		t.Errorf("the failed start says %q", err)
	}
}
