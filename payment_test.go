package main_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/service"
)

// payWithin gives orders timeout to be paid, and has the expiry sweep look
// every sweep for orders past it.
func payWithin(e *harness.Env, timeout, sweep string) {
	e.Settings["SECKILL_ORDER_PAY_TIMEOUT"] = timeout
	e.Settings["SECKILL_ORDER_EXPIRY_SWEEP_INTERVAL"] = sweep
	e.Settings["SECKILL_ORDER_EXPIRY_SWEEP_GRACE"] = "0s"
}

// settledWithCancels waits until every order's sale is applied and every
// cancelled order's units are back, with paid orders paid and cancelled
// ones cancelled, then checks the sale's invariants: sale = live orders,
// stock = initial - live, one return per cancelled order.
func settledWithCancels(t *testing.T, e *harness.Env, goodsID, initial int64, accepted []int64, paid, cancelled int) harness.Snapshot {
	t.Helper()
	var snap harness.Snapshot
	var err error
	if !harness.WaitFor(30*time.Second, func() bool {
		snap, err = e.Snapshot(context.Background(), goodsID)
		return err == nil && snap.Settled() &&
			snap.Count(service.StatusPaid) == paid && snap.Count(service.StatusCancelled) == cancelled
	}) {
		t.Fatalf("not settled: %s (%v); want %d paid, %d cancelled", snap, err, paid, cancelled)
	}
	return e.CheckInvariants(t, goodsID, harness.Sale{Initial: initial, Accepted: accepted})
}

// Orders start unpaid; a paid order keeps its stock, an unpaid one is
// cancelled at its deadline and its units come back to MySQL and Redis once.
func TestPaymentAndTimeout(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	// The deferred messages alone. The deadline outlasts a slow order: on a
	// loaded machine a version's first order took two seconds.
	payWithin(e, "5s", "1h")
	in := e.Start(t)
	stock := int64(2*len(service.VersionNames()) + 4) // two orders a version, and units left over
	g := in.CreateGoods(t, stock)
	var unpaid []harness.OrderAnswer
	var ids []int64
	paid := 0
	for i, v := range service.VersionNames() {
		user := int64(100 + i)
		code, a := in.Order(t, v, user, g.ID, 1)
		code2, b := in.Order(t, v, user, g.ID, 1)
		ids = append(ids, a.ID, b.ID)
		if code != http.StatusCreated || code2 != http.StatusCreated || a.PayDeadline.IsZero() {
			t.Fatalf("%s: orders %d %d, deadline %v", v, code, code2, a.PayDeadline)
		}
		for range 2 { // paying twice is fine
			if status, code := in.Pay(t, a.ID, user); status != http.StatusOK {
				t.Errorf("%s: pay: %d %q", v, status, code)
			}
		}
		paid++
		if status, code := in.Pay(t, b.ID, user+1000); status != http.StatusNotFound {
			t.Errorf("%s: paying another user's order: %d %q", v, status, code)
		}
		unpaid = append(unpaid, b)
	}
	settledWithCancels(t, e, g.ID, stock, ids, paid, len(unpaid))
	for _, b := range unpaid {
		if status, code := in.Pay(t, b.ID, b.UserID); status != http.StatusConflict || code != "order_cancelled" {
			t.Errorf("paying a cancelled order: %d %q", status, code)
		}
	}
	if status, code := in.Pay(t, 12345, 1); status != http.StatusNotFound || code != "not_found" {
		t.Errorf("paying an unknown order: %d %q", status, code)
	}
}

// The orders of a batch share their payment-timeout messages: a backlog of
// 120 orders applied in a few batches starts far fewer messages than
// orders, and each message still cancels exactly its unpaid orders, once,
// while the paid ones keep their units.
func TestABatchsOrdersShareTheirTimeoutMessages(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	payWithin(e, "6s", "1h") // the deferred messages alone
	in := e.Start(t)
	const n = 120
	g := in.CreateGoods(t, n+10)
	e.PauseStockConsumer(t, true)
	orders := make([]harness.OrderAnswer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, a := in.Order(t, "V6", int64(1000+i), g.ID, 1)
			if code != http.StatusCreated {
				t.Errorf("order: %d", code)
			}
			orders[i] = a
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	e.PauseStockConsumer(t, false)
	var ids []int64
	paid := 0
	for i, o := range orders {
		ids = append(ids, o.ID)
		if i%2 == 1 {
			continue
		}
		if status, code := in.Pay(t, o.ID, o.UserID); status != http.StatusOK {
			t.Fatalf("pay: %d %q", status, code)
		}
		paid++
	}
	settledWithCancels(t, e, g.ID, n+10, ids, paid, n-paid)
	cfg := in.Config
	var messages uint64
	for _, d := range e.NSQDs {
		st, err := harness.NSQDStats(d.HTTPAddr(), cfg.NSQ.TimeoutTopic)
		if err != nil {
			t.Fatal(err)
		}
		messages += st.MessageCount
	}
	t.Logf("%d orders started %d payment-timeout messages", n, messages)
	if messages == 0 || messages > n/4 {
		t.Errorf("%d orders started %d payment-timeout messages; want a few, shared by each batch's orders", n, messages)
	}
}

// Payments racing the timeout at the deadline: each order ends paid with
// its stock sold, or cancelled with its stock returned once, never both.
// The expiry sweep backs up the deferred messages here.
func TestPaymentRacingTheTimeout(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	payWithin(e, "1s", "50ms")
	in := e.Start(t)
	g := in.CreateGoods(t, 60)
	var orders []harness.OrderAnswer
	var ids []int64
	for u := int64(1); u <= 60; u++ {
		code, a := in.Order(t, service.VersionNames()[u%int64(len(service.VersionNames()))], u, g.ID, 1)
		if code != http.StatusCreated {
			t.Fatalf("order: %d", code)
		}
		orders, ids = append(orders, a), append(ids, a.ID)
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
			status, code := in.Pay(t, o.ID, o.UserID)
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
	settledWithCancels(t, e, g.ID, 60, ids, paid, len(orders)-paid)
}

// A per-user limit holds under double clicks, across versions, is released
// by a cancellation, and MySQL guards it when Redis forgets.
func TestPerUserLimit(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	payWithin(e, "1s", "100ms")
	in := e.Start(t)
	var g service.Goods
	if code := in.Call(t, "POST", "/admin/goods", map[string]any{"name": "one each", "stock": 100, "per_user_limit": 1}, &g); code != http.StatusCreated || g.PerUserLimit != 1 {
		t.Fatalf("create: %d %+v", code, g)
	}
	// A double click, twenty times over, through every version at once.
	codes := map[int]int{}
	var first harness.OrderAnswer
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := service.VersionNames()[i%len(service.VersionNames())]
			code, a := in.Order(t, v, 5, g.ID, 1)
			mu.Lock()
			defer mu.Unlock()
			codes[code]++
			switch {
			case code == http.StatusCreated:
				first = a
			case a.Error == "limit_exceeded", limitsRefused(v, code, a):
			case v == "V1" && code == http.StatusServiceUnavailable && a.Error == "unavailable":
				// V1's transaction locks the goods row first, the
				// consumer's the buyer's row first (store/sales.go): when
				// they meet, InnoDB rolls V1's back, which sold nothing.
			default:
				t.Errorf("refusal %d %q, want 409 limit_exceeded", code, a.Error)
			}
		}()
	}
	wg.Wait()
	if codes[http.StatusCreated] != 1 {
		t.Fatalf("answers %v, want exactly one 201", codes)
	}
	if code, _ := in.Order(t, "V2", 5, g.ID, 2); code != http.StatusBadRequest && code != http.StatusConflict {
		t.Errorf("two more units: %d", code)
	}
	// Left unpaid, the order is cancelled and the user may buy again.
	settledWithCancels(t, e, g.ID, 100, []int64{first.ID}, 0, 1)
	code, second := in.Order(t, "V6", 5, g.ID, 1)
	if code != http.StatusCreated {
		t.Fatalf("after the cancellation: %d %q", code, second.Error)
	}
	if status, _ := in.Pay(t, second.ID, 5); status != http.StatusOK {
		t.Fatalf("pay: %d", status)
	}

	// Redis forgets who bought (a failover): it lets the user buy again, and
	// the database's guard dead-letters the excess order.
	if err := e.Redis().Del(context.Background(), e.BuyersKey(g.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	if code, _ := in.Order(t, "V4", 5, g.ID, 1); code != http.StatusCreated {
		t.Fatalf("order after Redis forgot: %d", code)
	}
	deadline := time.Now().Add(15 * time.Second)
	for in.Stats(t, g.ID).DeadLetters != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the excess order was not dead-lettered: %+v", in.Stats(t, g.ID))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var reason string
	if err := e.DB(0).QueryRow("SELECT reason FROM dead_letters").Scan(&reason); err != nil || reason == "" {
		t.Errorf("dead letter reason %q (%v)", reason, err)
	}
	t.Logf("dead letter: %s", reason)
}
