package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/service"
)

// accept posts to /seckill and returns the status, the acceptance, the
// error code and the headers.
func accept(t *testing.T, in *harness.Instance, user, goods, number int64, key string) (int, service.Acceptance, string, http.Header) {
	t.Helper()
	body := fmt.Sprintf(`{"user_id":%d,"goods_id":%d,"number":%d}`, user, goods, number)
	req, err := http.NewRequest("POST", in.Base+"/seckill", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", harness.UserIP(user))
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := in.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		service.Acceptance
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("POST /seckill: status %d: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, a.Acceptance, a.Error, resp.Header
}

// acceptEach has users 1 to n accept number units each and returns their
// tokens; an answer other than 202 fails the test.
func acceptEach(t *testing.T, in *harness.Instance, n, goods, number int64) []string {
	t.Helper()
	var tokens []string
	for u := int64(1); u <= n; u++ {
		code, acc, _, _ := accept(t, in, u, goods, number, "")
		if code != http.StatusAccepted {
			t.Fatalf("accept %d: %d", u, code)
		}
		tokens = append(tokens, acc.Token)
	}
	return tokens
}

// awaitEach polls each token until it ends and returns their orders' ids;
// a token that does not end as an order fails the test.
func awaitEach(t *testing.T, in *harness.Instance, tokens []string) []int64 {
	t.Helper()
	var ids []int64
	for _, tok := range tokens {
		code, o := in.Await(t, tok)
		if code != http.StatusCreated {
			t.Fatalf("await %s: %d %+v", tok, code, o)
		}
		ids = append(ids, o.ID)
	}
	return ids
}

// Async accept and poll (V13), as a shopper sees it: 202 with a token,
// Location and Retry-After at once; polls that end with the order, which
// can be paid; the same Idempotency-Key gets the same token and one order;
// refusals known at once are answered at once; bad input is refused with
// its reason and moves nothing.
func TestAcceptAndPollEndsInAnOrderThatCanBePaid(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	g := in.CreateGoods(t, 3)

	code, acc, _, h := accept(t, in, 1, g.ID, 1, "")
	if code != http.StatusAccepted || acc.Status != service.AcceptPending || acc.Token == "" || acc.PollAfterMs <= 0 {
		t.Fatalf("POST /seckill: %d %+v, want 202 pending with a token", code, acc)
	}
	if h.Get("Location") != "/seckill/"+acc.Token || h.Get("Retry-After") == "" {
		t.Errorf("headers: Location %q, Retry-After %q", h.Get("Location"), h.Get("Retry-After"))
	}
	code, o := in.Await(t, acc.Token)
	if code != http.StatusCreated || o.ID == 0 || o.UserID != 1 || o.GoodsID != g.ID || o.Version != service.AcceptVersion().Name {
		t.Fatalf("await: %d %+v, want the order", code, o)
	}
	if code, errCode := in.Pay(t, o.ID, 1); code != http.StatusOK {
		t.Errorf("pay the token's order: %d %s", code, errCode)
	}
	accepted := []int64{o.ID}

	// One key, one request: the retry gets the first token and its order.
	code1, acc1, _, _ := accept(t, in, 2, g.ID, 1, "retry-me")
	code2, acc2, _, _ := accept(t, in, 2, g.ID, 1, "retry-me")
	if code1 != http.StatusAccepted || code2 != http.StatusAccepted || acc1.Token != acc2.Token {
		t.Fatalf("same key: %d %q and %d %q, want one token", code1, acc1.Token, code2, acc2.Token)
	}
	_, o1 := in.Await(t, acc1.Token)
	code3, acc3, _, _ := accept(t, in, 2, g.ID, 1, "retry-me") // after its order is written
	_, o3 := in.Await(t, acc3.Token)
	if code3 != http.StatusAccepted || o3.ID != o1.ID {
		t.Errorf("the key retried after its order: %d, order %d, want order %d", code3, o3.ID, o1.ID)
	}
	if code, _, errCode, _ := accept(t, in, 2, g.ID, 2, "retry-me"); code != http.StatusUnprocessableEntity || errCode != "idempotency_key_mismatch" {
		t.Errorf("same key, other number: %d %s", code, errCode)
	}
	accepted = append(accepted, o1.ID)

	if code, acc, _, _ := accept(t, in, 3, g.ID, 1, ""); code == http.StatusAccepted {
		_, o := in.Await(t, acc.Token)
		accepted = append(accepted, o.ID)
	}
	if code, _, errCode, _ := accept(t, in, 4, g.ID, 1, ""); code != http.StatusConflict || errCode != "sold_out" {
		t.Errorf("sold out: %d %s, want 409 sold_out at once", code, errCode)
	}

	for _, c := range []struct {
		method, path, body string
		code               int
		err                string
	}{
		{"POST", "/seckill", `{"user_id":1,"goods_id":1`, http.StatusBadRequest, "invalid_json"},
		{"POST", "/seckill", `{"user_id":1,"number":1}`, http.StatusBadRequest, "invalid_request"},
		{"POST", "/seckill", fmt.Sprintf(`{"user_id":1,"goods_id":%d,"number":0}`, g.ID), http.StatusBadRequest, "invalid_request"},
		{"POST", "/seckill", `{"user_id":1,"goods_id":99999999,"number":1}`, http.StatusNotFound, "not_found"},
		{"GET", "/seckill/not-a-token", "", http.StatusBadRequest, "invalid_request"},
		{"GET", "/seckill/1.2.3.a-b", "", http.StatusBadRequest, "invalid_request"},
		{"GET", fmt.Sprintf("/seckill/%d.5.1000.123", g.ID), "", http.StatusNotFound, "not_found"}, // accepted in 1970: long gone
	} {
		ct := ""
		if c.body != "" {
			ct = "application/json"
		}
		if code, errCode := in.Raw(t, c.method, c.path, ct, c.body); code != c.code || errCode != c.err {
			t.Errorf("%s %s %s: %d %q, want %d %q", c.method, c.path, c.body, code, errCode, c.code, c.err)
		}
	}
	// Goods say how the shop page buys them.
	var q service.Goods
	if code := in.Call(t, "POST", "/admin/goods", map[string]any{"name": "queued", "stock": 1, "checkout": "seckill"}, &q); code != http.StatusCreated || q.Checkout != "seckill" {
		t.Errorf("create with checkout seckill: %d %+v", code, q)
	}
	if in.Call(t, "GET", fmt.Sprintf("/goods/%d", q.ID), nil, &q); q.Checkout != "seckill" {
		t.Errorf("the shopper's read of it: %+v", q)
	}
	if code, errCode := in.Raw(t, "POST", "/admin/goods", "application/json", `{"name":"x","stock":1,"checkout":"later"}`, "Authorization", "Bearer "+in.Token); code != http.StatusBadRequest || errCode != "invalid_request" {
		t.Errorf("an unknown checkout: %d %s, want 400 invalid_request", code, errCode)
	}
	if g.Checkout != "order" {
		t.Errorf("goods created without a checkout: %q, want order", g.Checkout)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 3, Accepted: accepted})
}

// Units of requests accepted and waiting for the writers are not a drift:
// the reconciliation counts them with the stock on sale, so passes that
// see them for minutes repair nothing (repairing would sell them twice),
// and a buyer's units of a goods with a per-user limit stay counted.
func TestAcceptedRequestsWaitingForTheWritersAreNotRepaired(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	var g service.Goods
	if code := in.Call(t, "POST", "/admin/goods", map[string]any{"name": "limited", "stock": 10, "per_user_limit": 2}, &g); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	e.PauseWriters(t, true)
	tokens := acceptEach(t, in, 4, g.ID, 2)
	for pass := 1; pass <= 4; pass++ {
		for _, d := range in.Reconcile(t) {
			if d.GoodsID == g.ID && (d.Drift != 0 || d.Repaired || d.UsersDrift != 0) {
				t.Fatalf("pass %d saw a drift while 8 units waited for the writers: %+v", pass, d)
			}
		}
	}
	if code, _, errCode, _ := accept(t, in, 1, g.ID, 1, ""); code != http.StatusConflict || errCode != "limit_exceeded" {
		t.Errorf("a buyer past the limit with units still pending: %d %s", code, errCode)
	}
	e.PauseWriters(t, false)
	ids := awaitEach(t, in, tokens)
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: ids})
}

// The writers apply the sales of the orders they write themselves, in the
// same batch: a stampede of accepts ends with every sale applied once and
// nothing sent over the stock topic.
func TestTheWritersApplyTheSalesOfTheOrdersTheyWrite(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	g := in.CreateGoods(t, 40)
	var mu sync.Mutex
	var tokens []string
	var wg sync.WaitGroup
	for u := int64(1); u <= 60; u++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, acc, errCode, _ := accept(t, in, u, g.ID, 1, "")
			switch {
			case code == http.StatusAccepted:
				mu.Lock()
				tokens = append(tokens, acc.Token)
				mu.Unlock()
			case code != http.StatusConflict || errCode != "sold_out":
				t.Errorf("accept %d: %d %s", u, code, errCode)
			}
		}()
	}
	wg.Wait()
	if len(tokens) != 40 {
		t.Fatalf("%d of 60 buyers accepted on 40 units, want 40", len(tokens))
	}
	ids := awaitEach(t, in, tokens)
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 40, Accepted: ids})
	for _, d := range e.NSQDs {
		st, err := harness.NSQDStats(d.HTTPAddr(), in.Config.NSQ.Topic)
		if err != nil {
			t.Fatal(err)
		}
		if st.MessageCount != 0 {
			t.Errorf("nsqd %s carried %d stock messages; want none, every sale applied by its writer", d.HTTPAddr(), st.MessageCount)
		}
	}
}

// A request whose message nsqd lost is still written: the sweep writes it
// from its Redis record once it is older than accept.rescue_after; a token
// polled meanwhile stays pending, then ends as its order.
func TestAcceptedRequestsWhoseMessagesAreLostAreWritten(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.ShortWriteBudget()
	e.Settings["SECKILL_ACCEPT_RESCUE_EVERY"] = "300ms"
	in := e.Start(t)
	g := in.CreateGoods(t, 20)
	e.PauseWriters(t, true)
	tokens := acceptEach(t, in, 12, g.ID, 1)
	e.DropAccepted(t)
	var acc service.Acceptance
	if code := in.Call(t, "GET", "/seckill/"+tokens[0], nil, &acc); code != http.StatusOK || acc.Status != service.AcceptPending {
		t.Errorf("poll after the loss: %d %+v, want pending", code, acc)
	}
	ids := awaitEach(t, in, tokens)
	e.PauseWriters(t, false)
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 20, Accepted: ids})
}

// Redis losing a goods while requests wait for the writers loses their
// records with the stock they held; the rebuild restores the stock from
// MySQL, which never counted them, and each message then reserves its
// units again: the requests the stock still covers become orders, the
// others fail sold_out, and nothing is sold twice even when other buyers
// bought the rebuilt stock meanwhile.
func TestAcceptedRequestsWhoseRecordsRedisLostReserveAgain(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.ShortWriteBudget()
	in := e.Start(t)
	const stock = 10
	g := in.CreateGoods(t, stock)
	e.PauseWriters(t, true)
	tokens := acceptEach(t, in, 6, g.ID, 1)
	if err := e.Redis().Del(context.Background(), e.GoodsKey(g.ID), e.BuyersKey(g.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	var acc service.Acceptance
	if code := in.Call(t, "GET", "/seckill/"+tokens[0], nil, &acc); code != http.StatusOK || acc.Status != service.AcceptPending {
		t.Errorf("poll after Redis lost the record: %d %+v, want pending", code, acc)
	}
	// Other buyers take 7 of the rebuilt stock through V6 before the
	// writers run again: 3 are left for the 6 waiting requests.
	var accepted []int64
	var mu sync.Mutex
	harness.Eventually(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(accepted) == 7 {
			return true
		}
		code, o := in.Order(t, "V6", int64(100+len(accepted)), g.ID, 1)
		if code == http.StatusCreated {
			accepted = append(accepted, o.ID)
		}
		return false
	}, "V6 buyers after the rebuild")
	e.PauseWriters(t, false)
	ordered, soldOut := 0, 0
	for _, tok := range tokens {
		switch code, o := in.Await(t, tok); {
		case code == http.StatusCreated:
			ordered++
			accepted = append(accepted, o.ID)
		case code == http.StatusConflict && o.Error == "sold_out":
			soldOut++
		default:
			t.Errorf("await %s: %d %+v", tok, code, o)
		}
	}
	if ordered != 3 || soldOut != 3 {
		t.Errorf("%d ordered and %d sold out of the 6 waiting, want 3 and 3", ordered, soldOut)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: stock, Accepted: accepted})
}

// A retry under an Idempotency-Key gets its first answer even once the
// goods has sold out (the first attempt's answer may have been lost): its
// token and its order, never sold_out; a new key then is sold out. Both
// while the request waits for the writers and after its order is written.
func TestARetryUnderItsKeyIsAnsweredAfterTheSellOut(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	g := in.CreateGoods(t, 2)
	e.PauseWriters(t, true)
	_, first, _, _ := accept(t, in, 1, g.ID, 1, "lost-answer")
	if code, _, _, _ := accept(t, in, 2, g.ID, 1, ""); code != http.StatusAccepted {
		t.Fatalf("the last unit: %d", code)
	}
	if code, _, errCode, _ := accept(t, in, 3, g.ID, 1, ""); code != http.StatusConflict || errCode != "sold_out" {
		t.Fatalf("after the last unit: %d %s, want sold_out", code, errCode)
	}
	code, again, errCode, _ := accept(t, in, 1, g.ID, 1, "lost-answer")
	if code != http.StatusAccepted || again.Token != first.Token {
		t.Errorf("the retry while its request waits: %d %s %q, want 202 with token %q", code, errCode, again.Token, first.Token)
	}
	e.PauseWriters(t, false)
	_, o := in.Await(t, first.Token)
	code, again, errCode, _ = accept(t, in, 1, g.ID, 1, "lost-answer")
	if code != http.StatusAccepted {
		t.Fatalf("the retry after its order: %d %s, want 202", code, errCode)
	}
	if _, o2 := in.Await(t, again.Token); o2.ID != o.ID {
		t.Errorf("the retry after its order ended as order %d, want %d", o2.ID, o.ID)
	}
	if code, _, errCode, _ := accept(t, in, 1, g.ID, 1, "another-key"); code != http.StatusConflict || errCode != "sold_out" {
		t.Errorf("a new key after the sell-out: %d %s, want sold_out", code, errCode)
	}
}
