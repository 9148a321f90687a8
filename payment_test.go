package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
)

func (in *instance) pay(t *testing.T, orderID, userID int64) (int, string) {
	t.Helper()
	return in.raw(t, "POST", fmt.Sprintf("/orders/%d/pay", orderID), "application/json", fmt.Sprintf(`{"user_id":%d}`, userID))
}

// statusCounts counts orders of goods by status over every order table.
func (in *instance) statusCounts(t *testing.T, goodsID int64) map[int]int {
	t.Helper()
	counts := map[int]int{}
	for _, db := range in.database.Databases() {
		for table := 0; table <= 16; table++ {
			name := "orders"
			if table > 0 {
				name = fmt.Sprintf("order_%d", table)
			}
			rows, err := db.Query("SELECT status, COUNT(*) FROM "+name+" WHERE goods_id = ? GROUP BY status", goodsID)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var status, n int
				if err := rows.Scan(&status, &n); err != nil {
					t.Fatal(err)
				}
				counts[status] += n
			}
			rows.Close()
		}
	}
	return counts
}

// settledWithCancels waits until every order's sale is applied and every
// cancelled order's units are back, then checks MySQL, Redis and the order
// rows agree: sale = live orders, stock = initial - live, one return per
// cancelled order.
func (in *instance) settledWithCancels(t *testing.T, goodsID, initial int64, paid, cancelled int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := in.stats(t, goodsID)
		counts := in.statusCounts(t, goodsID)
		live := int64(st.Orders - st.Returns)
		ok := st.StockLogs == st.Orders && st.RedisStock != nil && *st.RedisStock == st.MySQLStock &&
			counts[service.StatusCancelled] == cancelled && st.Returns == int64(cancelled) &&
			counts[service.StatusPaid] == paid && st.MySQLSale == live && st.MySQLStock == initial-live && st.DeadLetters == 0
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled: %+v redis=%v statuses=%v; want %d paid, %d cancelled", st, deref(st.RedisStock), counts, paid, cancelled)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Orders start unpaid; a paid order keeps its stock, an unpaid one is
// cancelled at its deadline and its units come back to MySQL and Redis once.
func TestPaymentAndTimeout(t *testing.T) {
	e := newEnv(t)
	e.settings["SECKILL_ORDER_PAY_TIMEOUT"] = "1500ms"
	e.settings["SECKILL_ORDER_EXPIRY_SWEEP_INTERVAL"] = "1h" // the deferred messages alone
	in := e.start()
	g := in.createGoods(t, 20)
	var unpaid []orderAnswer
	paid := 0
	for i, v := range service.Versions() {
		user := int64(100 + i)
		code, a := in.order(t, v, user, g.ID, 1)
		code2, b := in.order(t, v, user, g.ID, 1)
		if code != http.StatusCreated || code2 != http.StatusCreated || a.PayDeadline.IsZero() {
			t.Fatalf("%s: orders %d %d, deadline %v", v, code, code2, a.PayDeadline)
		}
		for range 2 { // paying twice is fine
			if status, code := in.pay(t, a.ID, user); status != http.StatusOK {
				t.Errorf("%s: pay: %d %q", v, status, code)
			}
		}
		paid++
		if status, code := in.pay(t, b.ID, user+1000); status != http.StatusNotFound {
			t.Errorf("%s: paying another user's order: %d %q", v, status, code)
		}
		unpaid = append(unpaid, b)
	}
	in.settledWithCancels(t, g.ID, 20, paid, len(unpaid))
	for _, b := range unpaid {
		if status, code := in.pay(t, b.ID, b.UserID); status != http.StatusConflict || code != "order_cancelled" {
			t.Errorf("paying a cancelled order: %d %q", status, code)
		}
	}
	if status, code := in.pay(t, 12345, 1); status != http.StatusNotFound || code != "not_found" {
		t.Errorf("paying an unknown order: %d %q", status, code)
	}
}

// Payments racing the timeout at the deadline: each order ends paid with
// its stock sold, or cancelled with its stock returned once, never both.
// The expiry sweep backs up the deferred messages here.
func TestPaymentRacingTheTimeout(t *testing.T) {
	e := newEnv(t)
	e.settings["SECKILL_ORDER_PAY_TIMEOUT"] = "1s"
	e.settings["SECKILL_ORDER_EXPIRY_SWEEP_INTERVAL"] = "50ms"
	e.settings["SECKILL_ORDER_EXPIRY_SWEEP_GRACE"] = "0s"
	in := e.start()
	g := in.createGoods(t, 60)
	var orders []orderAnswer
	for u := int64(1); u <= 60; u++ {
		code, a := in.order(t, service.Versions()[u%int64(len(service.Versions()))], u, g.ID, 1)
		if code != http.StatusCreated {
			t.Fatalf("order: %d", code)
		}
		orders = append(orders, a)
	}
	var mu sync.Mutex
	paid := 0
	var wg sync.WaitGroup
	for i, o := range orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Payments land from 100 ms before to 100 ms after the deadline.
			time.Sleep(time.Until(o.PayDeadline.Add(time.Duration(i%21-10) * 10 * time.Millisecond)))
			status, code := in.pay(t, o.ID, o.UserID)
			switch {
			case status == http.StatusOK:
				mu.Lock()
				paid++
				mu.Unlock()
			case status == http.StatusConflict && (code == "order_cancelled" || code == "order_expired"):
			default:
				t.Errorf("pay at the deadline: %d %q", status, code)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d of %d payments won the race", paid, len(orders))
	in.settledWithCancels(t, g.ID, 60, paid, len(orders)-paid)
}

// A per-user limit holds under double clicks, across versions, is released
// by a cancellation, and MySQL guards it when Redis forgets.
func TestPerUserLimit(t *testing.T) {
	e := newEnv(t)
	e.settings["SECKILL_ORDER_PAY_TIMEOUT"] = "1s"
	e.settings["SECKILL_ORDER_EXPIRY_SWEEP_INTERVAL"] = "100ms"
	e.settings["SECKILL_ORDER_EXPIRY_SWEEP_GRACE"] = "0s"
	in := e.start()
	var g service.Goods
	if code := in.call(t, "POST", "/admin/goods", map[string]any{"name": "one each", "stock": 100, "per_user_limit": 1}, &g); code != http.StatusCreated || g.PerUserLimit != 1 {
		t.Fatalf("create: %d %+v", code, g)
	}
	// A double click, twenty times over, through every version at once.
	codes := map[int]int{}
	var first orderAnswer
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, a := in.order(t, service.Versions()[i%len(service.Versions())], 5, g.ID, 1)
			mu.Lock()
			defer mu.Unlock()
			codes[code]++
			if code == http.StatusCreated {
				first = a
			} else if a.Error != "limit_exceeded" {
				t.Errorf("refusal %d %q, want 409 limit_exceeded", code, a.Error)
			}
		}()
	}
	wg.Wait()
	if codes[http.StatusCreated] != 1 {
		t.Fatalf("answers %v, want exactly one 201", codes)
	}
	if code, _ := in.order(t, "V2", 5, g.ID, 2); code != http.StatusBadRequest && code != http.StatusConflict {
		t.Errorf("two more units: %d", code)
	}
	// Left unpaid, the order is cancelled and the user may buy again.
	in.settledWithCancels(t, g.ID, 100, 0, 1)
	code, second := in.order(t, "V6", 5, g.ID, 1)
	if code != http.StatusCreated {
		t.Fatalf("after the cancellation: %d %q", code, second.Error)
	}
	if status, _ := in.pay(t, second.ID, 5); status != http.StatusOK {
		t.Fatalf("pay: %d", status)
	}
	_ = first

	// Redis forgets who bought (a failover): it lets the user buy again, and
	// the database's guard dead-letters the excess order.
	if err := in.redis.Client().Del(context.Background(), in.redis.GoodsKey(g.ID)+"_buyers").Err(); err != nil {
		t.Fatal(err)
	}
	if code, _ := in.order(t, "V4", 5, g.ID, 1); code != http.StatusCreated {
		t.Fatalf("order after Redis forgot: %d", code)
	}
	deadline := time.Now().Add(15 * time.Second)
	for in.stats(t, g.ID).DeadLetters != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the excess order was not dead-lettered: %+v", in.stats(t, g.ID))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var reason string
	if err := in.database.DB().QueryRow("SELECT reason FROM dead_letters").Scan(&reason); err != nil || reason == "" {
		t.Errorf("dead letter reason %q (%v)", reason, err)
	}
	t.Logf("dead letter: %s", reason)
}
