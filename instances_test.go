package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// threeInstances starts three instances sharing MySQL, Redis and both nsqd,
// each with its own snowflake node.
func threeInstances(t *testing.T, e *env) []*instance {
	var ins []*instance
	for node := range 3 {
		e.settings["SECKILL_SNOWFLAKE_NODE"] = fmt.Sprint(node + 1)
		ins = append(ins, e.start())
	}
	return ins
}

// sellsWithin waits until a V6 order through in succeeds, or fails the test.
func sellsWithin(t *testing.T, in *instance, goodsID, userID int64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, _ := in.order(t, "V6", userID, goodsID, 1)
		if code == http.StatusCreated {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s still answers %d %v after stock came back", in.base, code, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Sold out through V6 on three instances, stock added through one: every
// instance sells again within a second, by the broadcast alone (the flags'
// TTL is a minute in tests).
func TestStockAddedClearsTheSoldOutFlagOnEveryInstance(t *testing.T) {
	e := newEnv(t)
	ins := threeInstances(t, e)
	g := ins[0].createGoods(t, 30)
	sold := 0
	for u := int64(1); ; u++ {
		code, _ := ins[u%3].order(t, "V6", u, g.ID, 1)
		if code == http.StatusCreated {
			sold++
			continue
		}
		if code != http.StatusConflict {
			t.Fatalf("status %d", code)
		}
		break
	}
	for _, in := range ins { // every instance now holds the flag
		if code, a := in.order(t, "V6", 999, g.ID, 1); code != http.StatusConflict || a.Error != "sold_out" {
			t.Fatalf("after selling out: %d %q", code, a.Error)
		}
	}
	if code := ins[1].call(t, "POST", "/admin/goods", map[string]any{"id": g.ID, "add_stock": 3}, nil); code != http.StatusOK {
		t.Fatalf("add stock: %d", code)
	}
	for i, in := range ins {
		sellsWithin(t, in, g.ID, int64(1000+i), time.Second)
	}
	checkSettled(t, ins[2].drained(t, g.ID), 33, int64(sold+3))
}

// An order whose insert fails after its reservation (here: the second order
// host lost its tables) gives the unit back, and no instance keeps refusing
// buyers with a sold-out flag set while the unit was briefly taken.
func TestFailedInsertReturnsStockAndClearsFlagsEverywhere(t *testing.T) {
	e := newEnv(t)
	ins := threeInstances(t, e)
	g := ins[0].createGoods(t, 1)
	shard2 := openDSN(t, e.settings["SECKILL_MYSQL_SHARDS"][len(e.settings["SECKILL_MYSQL_DSN"])+1:])
	setOrderTables(t, shard2, "", "_off") // odd user ids go to this host

	// Odd users hammer every instance: each takes the unit, fails to write
	// the order and gives it back; meanwhile the others see "sold out".
	var wg sync.WaitGroup
	statuses := make([]map[int]int, len(ins))
	stop := time.Now().Add(1500 * time.Millisecond)
	for i, in := range ins {
		statuses[i] = map[int]int{}
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for u := int64(2*w + 1); time.Now().Before(stop); u += 8 {
					code, _ := in.order(t, "V6", u, g.ID, 1)
					if code == http.StatusCreated {
						t.Errorf("an order was accepted while its host was down")
					}
				}
			}()
		}
	}
	wg.Wait()
	time.Sleep(time.Second) // the broadcasts' second

	if stock, _, err := ins[0].redis.Stock(context.Background(), g.ID); err != nil || stock != 1 {
		t.Fatalf("the unit was not given back: redis stock %d (%v)", stock, err)
	}
	for _, in := range ins {
		// 503: this instance went to Redis, took the unit and gave it back.
		// 409 would be a sold-out flag left standing while stock exists.
		if code, a := in.order(t, "V6", 1, g.ID, 1); code != http.StatusServiceUnavailable {
			t.Errorf("instance %s: %d %q, want 503 (no stale sold-out flag)", in.base, code, a.Error)
		}
	}

	setOrderTables(t, shard2, "_off", "")
	sellsWithin(t, ins[1], g.ID, 3, time.Second)
	checkSettled(t, ins[0].drained(t, g.ID), 1, 1)
}

// V4 writes orders to both hosts and V5 publishes to both nsqd.
func TestShardedVersionsUseEveryHostAndNSQD(t *testing.T) {
	e := newEnv(t)
	in := e.start()
	g := in.createGoods(t, 1000)
	for u := int64(1); u <= 64; u++ {
		for _, v := range []string{"V4", "V5"} {
			if code, _ := in.order(t, v, u, g.ID, 1); code != http.StatusCreated {
				t.Fatalf("%s: %d", v, code)
			}
		}
	}
	checkSettled(t, in.drained(t, g.ID), 1000, 128)
	for i, db := range in.database.Databases() {
		n := 0
		for table := 1; table <= 16; table++ {
			var c int
			if err := db.QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM order_%d", table)).Scan(&c); err != nil {
				t.Fatal(err)
			}
			n += c
		}
		if n != 64 { // half of each version's 64 orders
			t.Errorf("order host %d holds %d orders, want 64", i+1, n)
		}
	}
	for _, n := range e.nsqds {
		if got := n.MessageCount(in.cfg.NSQ.Topic); got < 32 {
			t.Errorf("nsqd %s carried %d stock messages, want at least V5's 32", n.TCPAddr(), got)
		}
	}
}

func openDSN(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	if _, err := mysql.ParseDSN(dsn); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
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
