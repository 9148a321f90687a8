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

// orderFrom places one unit for userID through V8 as sent from address ip,
// with the extra header pairs given.
func orderFrom(t *testing.T, in *harness.Instance, ip string, userID, goodsID int64, header ...string) (int, harness.OrderAnswer, string) {
	t.Helper()
	var a struct {
		harness.OrderAnswer
		Captcha string `json:"captcha"`
	}
	code, err := in.Do(context.Background(), "POST", "/orderV8", map[string]int64{"user_id": userID, "goods_id": goodsID, "number": 1}, &a,
		append([]string{"X-Forwarded-For", ip}, header...)...)
	if err != nil {
		t.Fatal(err)
	}
	return code, a.OrderAnswer, a.Captcha
}

// An address gets exactly its burst through at once (rate 1 an hour here,
// so no token comes back during the test); past it, 429 rate_limited with a
// captcha offer. A solved captcha lets one order through, once; a wrong
// one is refused and used up. Other addresses are not affected, and a
// request from an untrusted peer cannot pick its address.
func TestV8AddressBurstAndCaptcha(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_LIMITS_ORDER_IP_PERIOD"] = "1h"
	in := e.Start(t)
	g := in.CreateGoods(t, 100)

	const ip = "192.0.2.7"
	var accepted []int64
	codes := map[string]int{}
	for user := int64(1); user <= 5; user++ {
		code, a, offer := orderFrom(t, in, ip, user, g.ID)
		switch code {
		case http.StatusCreated:
			accepted = append(accepted, a.ID)
		case http.StatusTooManyRequests:
			if offer != "/captcha" {
				t.Errorf("429 without the captcha offer: %+v", a)
			}
		}
		codes[fmt.Sprint(code, a.Error)]++
	}
	if len(accepted) != 3 || codes["429rate_limited"] != 2 {
		t.Fatalf("burst of 5 from one address: %v, want 3 accepted and 2 rate_limited", codes)
	}
	if code, a, _ := orderFrom(t, in, "192.0.2.8", 6, g.ID); code != http.StatusCreated {
		t.Fatalf("another address refused: %d %+v", code, a)
	} else {
		accepted = append(accepted, a.ID)
	}

	newCaptcha := func() (string, string) {
		var c struct {
			ID    string `json:"captcha_id"`
			Image string `json:"image"`
		}
		if code, err := in.Do(context.Background(), "POST", "/captcha", nil, &c, "X-Forwarded-For", ip); err != nil || code != http.StatusCreated {
			t.Fatalf("POST /captcha: %d %v", code, err)
		}
		status, _, err := in.Send(context.Background(), "GET", c.Image, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET %s: %d %v", c.Image, status, err)
		}
		digits, err := e.Redis().Get(context.Background(), store.CaptchaKey(e.Prefix, c.ID)).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		solution := make([]byte, len(digits))
		for i, d := range digits {
			solution[i] = '0' + d
		}
		return c.ID, string(solution)
	}
	id, solution := newCaptcha()
	wrong := []byte(solution)
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	if code, a, _ := orderFrom(t, in, ip, 7, g.ID, "X-Captcha-Id", id, "X-Captcha-Solution", string(wrong)); code != http.StatusTooManyRequests || a.Error != "captcha_invalid" {
		t.Fatalf("wrong solution: %d %+v, want 429 captcha_invalid", code, a)
	}
	if code, a, _ := orderFrom(t, in, ip, 7, g.ID, "X-Captcha-Id", id, "X-Captcha-Solution", solution); code != http.StatusTooManyRequests || a.Error != "captcha_invalid" {
		t.Fatalf("right solution of a captcha guessed wrong before: %d %+v, want 429 captcha_invalid", code, a)
	}
	id, solution = newCaptcha()
	code, a, _ := orderFrom(t, in, ip, 7, g.ID, "X-Captcha-Id", id, "X-Captcha-Solution", solution)
	if code != http.StatusCreated {
		t.Fatalf("solved captcha: %d %+v, want 201", code, a)
	}
	accepted = append(accepted, a.ID)
	if code, a, _ := orderFrom(t, in, ip, 8, g.ID, "X-Captcha-Id", id, "X-Captcha-Solution", solution); code != http.StatusTooManyRequests {
		t.Fatalf("captcha used twice: %d %+v, want 429", code, a)
	}
	if code, a, _ := orderFrom(t, in, ip, 9, g.ID); code != http.StatusTooManyRequests || a.Error != "rate_limited" {
		t.Fatalf("after the captcha the address is still limited: %d %+v", code, a)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 100, Accepted: accepted})
}

// A request straight from an address no proxy setting trusts is limited by
// its peer, whatever X-Forwarded-For says.
func TestV8UntrustedPeerCannotPickItsAddress(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_LIMITS_TRUSTED_PROXIES"] = ""
	e.Settings["SECKILL_LIMITS_ORDER_IP_PERIOD"] = "1h"
	in := e.Start(t)
	g := in.CreateGoods(t, 100)
	created := 0
	for user := int64(1); user <= 5; user++ {
		if code, _, _ := orderFrom(t, in, fmt.Sprintf("198.51.100.%d", user), user, g.ID); code == http.StatusCreated {
			created++
		}
	}
	if created != 3 {
		t.Fatalf("5 orders from one peer claiming 5 addresses: %d accepted, want the burst, 3", created)
	}
}

// One order of a user and goods at a time: while one is in flight (its
// claim held, here by another instance's order), a twin answers 429
// too_many_requests and sells nothing; once answered, the user orders
// again. Twins fired together sell exactly what was answered 201.
func TestV8UserTwin(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_LIMITS_ORDER_IP_RATE"] = "0"
	in := e.Start(t)
	g := in.CreateGoods(t, 100)
	ctx := context.Background()

	claim := store.ClaimKey(e.Prefix, g.ID, 1)
	if err := e.Redis().Set(ctx, claim, "other-instance", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if code, a := in.Order(t, "V8", 1, g.ID, 1); code != http.StatusTooManyRequests || a.Error != "too_many_requests" {
		t.Fatalf("twin of an order in flight: %d %+v, want 429 too_many_requests", code, a)
	}
	code, a := in.Order(t, "V8", 2, g.ID, 1)
	if code != http.StatusCreated {
		t.Fatalf("another user: %d %+v", code, a)
	}
	accepted := []int64{a.ID}
	e.Redis().Del(ctx, claim)
	for range 2 {
		code, a := in.Order(t, "V8", 1, g.ID, 1)
		if code != http.StatusCreated {
			t.Fatalf("order after the claim ended: %d %+v", code, a)
		}
		accepted = append(accepted, a.ID)
	}
	if n, _ := e.Redis().Exists(ctx, claim).Result(); n != 0 {
		t.Errorf("claim left after the orders were answered")
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	codes := map[int]int{}
	for range 20 {
		wg.Go(func() {
			code, a := in.Order(t, "V8", 3, g.ID, 1)
			mu.Lock()
			defer mu.Unlock()
			codes[code]++
			if code == http.StatusCreated {
				accepted = append(accepted, a.ID)
			}
		})
	}
	wg.Wait()
	if codes[http.StatusCreated] < 1 || codes[http.StatusCreated]+codes[http.StatusTooManyRequests] != 20 {
		t.Errorf("20 twins: %v, want at least one 201 and the rest 429", codes)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 100, Accepted: accepted})
}

// A user who orders before the sale opens is told not_started and
// recorded: every later order of theirs for that goods, before or after
// the opening, answers 403 ordered_early, on any instance. Users who waited
// buy; other goods are not affected.
func TestV8EarlyOrdersAreRefusedForTheSale(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_LIMITS_ORDER_IP_RATE"] = "0"
	one, two := e.Start(t), e.Start(t)
	var g service.Goods
	start := time.Now().Add(time.Hour)
	if code := one.Call(t, "POST", "/admin/goods", map[string]any{"name": "later", "stock": 10, "start_at": start.Format(time.RFC3339Nano)}, &g); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	other := one.CreateGoods(t, 10)
	if code, a := one.Order(t, "V8", 1, g.ID, 1); code != http.StatusConflict || a.Error != "not_started" {
		t.Fatalf("order before the start: %d %+v, want 409 not_started", code, a)
	}
	if code, a := two.Order(t, "V8", 1, g.ID, 1); code != http.StatusForbidden || a.Error != "ordered_early" {
		t.Fatalf("again before the start, on another instance: %d %+v, want 403 ordered_early", code, a)
	}
	if code := one.Call(t, "PATCH", fmt.Sprintf("/admin/goods/%d", g.ID), map[string]any{"name": "later", "start_at": time.Now().Add(-time.Minute).Format(time.RFC3339Nano)}, nil); code != http.StatusOK {
		t.Fatalf("open the sale: %d", code)
	}
	if code, a := two.Order(t, "V8", 1, g.ID, 1); code != http.StatusForbidden || a.Error != "ordered_early" {
		t.Fatalf("the early user after the start: %d %+v, want 403 ordered_early", code, a)
	}
	code, a := two.Order(t, "V8", 2, g.ID, 1)
	if code != http.StatusCreated {
		t.Fatalf("a user who waited: %d %+v", code, a)
	}
	if code, b := one.Order(t, "V8", 1, other.ID, 1); code != http.StatusCreated {
		t.Fatalf("the early user on other goods: %d %+v", code, b)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: []int64{a.ID}})
}

// The stock gate lets exactly floor(k × units on sale) attempts through,
// counted across instances; the rest answer sold_out without touching the
// stock. Stock that comes back (here an addition) reopens it for k × the
// stock then in Redis. Here one buyer with
// a limit of one unit makes every attempt after the first fail at the
// stock script (limit_exceeded), so the gate's count shows in the answers.
func TestV8StockGate(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_LIMITS_ORDER_IP_RATE"] = "0"
	e.Settings["SECKILL_LIMITS_TOTALS_TTL"] = "1ns"
	one, two := e.Start(t), e.Start(t)
	var g service.Goods
	if code := one.Call(t, "POST", "/admin/goods", map[string]any{"name": "gated", "stock": 10, "per_user_limit": 1}, &g); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	attempts := func(n int) map[string]int {
		got := map[string]int{}
		for i := range n {
			in := []*harness.Instance{one, two}[i%2]
			code, a := in.Order(t, "V8", 1, g.ID, 1)
			got[fmt.Sprint(code, a.Error)]++
			if code == http.StatusCreated {
				got["id"] = int(a.ID % 1e9)
			}
		}
		return got
	}
	got := attempts(20) // k = 1.5: 15 pass
	if got["201"] != 1 || got["409limit_exceeded"] != 14 || got["409sold_out"] != 5 {
		t.Fatalf("20 attempts at 10 units: %v, want 1 sold, 14 limit_exceeded, 5 sold_out by the gate", got)
	}
	stock, err := e.Redis().HGet(context.Background(), e.GoodsKey(g.ID), "stock").Int64()
	if err != nil || stock != 9 {
		t.Fatalf("redis stock %d (%v), want 9: the gate's refusals must not touch it", stock, err)
	}
	if code, _ := one.AddStock(t, g.ID, 10, ""); code != http.StatusOK {
		t.Fatalf("add stock: %d", code)
	}
	// 20 units on sale, 19 of them in Redis: the gate lets floor(1.5 × 19)
	// = 28 more attempts through (it reopens for the stock that came back).
	got = attempts(30)
	if got["409limit_exceeded"] != 28 || got["409sold_out"] != 2 {
		t.Fatalf("30 attempts after adding 10 units: %v, want 28 limit_exceeded and 2 sold_out", got)
	}
}

// Once an instance saw a goods' gate closed, it answers keyless orders of
// it 409 sold_out from memory before the address's bucket: they cost no
// round trip and none of the address's tokens, so a shopper who retries a
// sold-out goods is not rate limited for it.
func TestV8SoldOutAnswersTakeNoneOfTheAddressTokens(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_LIMITS_ORDER_IP_PERIOD"] = "1h" // a burst of 3, no token back during the test
	in := e.Start(t)
	g := in.CreateGoods(t, 1) // k = 1.5: one attempt passes the gate
	const ip = "192.0.2.9"
	if code, a, _ := orderFrom(t, in, ip, 1, g.ID); code != http.StatusCreated {
		t.Fatalf("the only unit: %d %s", code, a.Error)
	}
	got := map[string]int{}
	for u := int64(2); u <= 12; u++ {
		code, a, _ := orderFrom(t, in, ip, u, g.ID)
		got[fmt.Sprint(code, a.Error)]++
	}
	if got["409sold_out"] != 11 {
		t.Errorf("11 orders after the sell-out from an address with a burst of 3: %v, want 11 sold_out", got)
	}
	// The address still has the tokens those answers did not take.
	if code, a, _ := orderFrom(t, in, ip, 13, g.ID, "Idempotency-Key", "after-the-sell-out"); code != http.StatusConflict || a.Error != "sold_out" {
		t.Errorf("a keyed order, which meets the bucket: %d %s, want 409 sold_out", code, a.Error)
	}
}

// limitsRefused says a refusal is one of the limits' answers to a user
// firing twins at a limited version: 429 for the twin in flight or for its
// address past its burst.
func limitsRefused(version string, code int, a harness.OrderAnswer) bool {
	v, _ := service.FindVersion(version)
	return v.Limits && code == http.StatusTooManyRequests && (a.Error == "too_many_requests" || a.Error == "rate_limited")
}

// A retry under its Idempotency-Key gets the order its first attempt was
// sold (whose answer may have been lost) even once the stock gate has
// closed: the gate refuses new attempts, not a key's answer.
func TestV8ARetryUnderItsKeyPassesTheClosedGate(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_LIMITS_ORDER_IP_RATE"] = "0"
	in := e.Start(t)
	g := in.CreateGoods(t, 2) // k = 1.5: 3 attempts pass the gate
	code, first := in.OrderWithKey(t, "V8", "lost-answer", 1, g.ID)
	if code != http.StatusCreated {
		t.Fatalf("the first attempt: %d %s", code, first.Error)
	}
	for u := int64(2); u <= 5; u++ {
		in.Order(t, "V8", u, g.ID, 1)
	}
	if code, a := in.Order(t, "V8", 6, g.ID, 1); code != http.StatusConflict || a.Error != "sold_out" {
		t.Fatalf("a new attempt past the gate: %d %s, want sold_out", code, a.Error)
	}
	code, again := in.OrderWithKey(t, "V8", "lost-answer", 1, g.ID)
	if code != http.StatusCreated || again.ID != first.ID {
		t.Errorf("the retry under its key: %d %s order %d, want 201 with order %d", code, again.Error, again.ID, first.ID)
	}
}
