package faults

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
)

// 11. Redis stops answering V9's service for 2 s (a proxy in front of it
// refuses connections) while shoppers read two goods: one the instance
// holds in memory, one it never read. The held one answers 200 from memory
// with the stock last seen; the other answers 503 unavailable; V9 orders
// answer 503 (nothing is sold without Redis). Once Redis is back both
// read 200 with Redis's stock, and V9 sells out exactly.
func redisDownForReads(t *testing.T) result {
	e := newEnv(t)
	px := startProxy(t, e.RedisAddr())
	s := e.service("seckill", map[string]string{"SECKILL_REDIS_ADDR": px.addr, "SECKILL_GOODS_CACHE_STOCK_TTL": "200ms"})
	s.start()
	const stock = 500
	held := s.CreateGoods(t, stock).ID
	cold := s.CreateGoods(t, 10).ID
	l := startLoad(s, held, loadSpec{path: "/orderV9", workers: 8, dur: 30 * time.Second, untilSoldOut: true})
	harness.WaitFor(10*time.Second, func() bool { return l.count("before 201") >= 50 })
	read := func(id int64) (int, string) { return s.Raw(t, "GET", fmt.Sprintf("/goods/%d", id), "", "") }
	if code, _ := read(held); code != http.StatusOK {
		t.Fatalf("before the fault: %d", code)
	}

	l.setPhase("redis down")
	px.down()
	down := time.Now()
	heldAnswers, coldAnswers := map[string]int{}, map[string]int{}
	for time.Since(down) < 2*time.Second {
		code, errCode := read(held)
		heldAnswers[fmt.Sprint(code, " ", errCode)]++
		code, errCode = read(cold)
		coldAnswers[fmt.Sprint(code, " ", errCode)]++
		time.Sleep(20 * time.Millisecond)
	}
	if err := px.up(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	l.setPhase("redis back")
	for k := range heldAnswers {
		if k != "200 " {
			t.Errorf("the goods held in memory answered %q while Redis was down (all: %v), want 200 from memory", k, heldAnswers)
		}
	}
	for k := range coldAnswers {
		if k != "503 unavailable" {
			t.Errorf("goods not in memory answered %q while Redis was down (all: %v), want 503 unavailable", k, coldAnswers)
		}
	}
	if !harness.WaitFor(10*time.Second, func() bool { code, _ := read(cold); return code == http.StatusOK }) {
		t.Error("goods not in memory still unreadable 10 s after Redis came back")
	}
	rec := time.Since(back)
	l.wait()
	// A reservation whose give-back met Redis down leaves Redis a unit
	// short until reconciliation repairs it; the rest then sells.
	e.settle(held, stock, l.orders())
	rest := startLoad(s, held, loadSpec{path: "/orderV9", workers: 8, dur: 10 * time.Second, untilSoldOut: true})
	rest.wait()
	accepted := append(l.orders(), rest.orders()...)
	snap := e.settle(held, stock, accepted)
	if snap.Units != stock {
		t.Errorf("sold %d units of %d: %s; %s", snap.Units, stock, l.summary(), rest.summary())
	}
	return result{accepted: len(accepted), recovery: rec,
		note: fmt.Sprintf("reads while down: held goods %v, goods not held %v; orders %d × 503; then sold out exactly",
			heldAnswers, coldAnswers, l.count("redis down 503 unavailable"))}
}
