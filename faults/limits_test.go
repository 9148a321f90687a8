package faults

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
)

// 11. V8's limits keep their shared state (address buckets, user claims,
// early buyers, the stock gate) in the Redis that holds the stock; here
// every Redis connection of the service goes through a TCP proxy that
// refuses connections and cuts open ones for two seconds. The address
// limit fails open to this instance's own buckets (the order cannot sell
// without Redis anyway: a 429 would only blame the client for it); the
// user claim and the gate fail closed with the stock, as 503 unavailable
// with Retry-After. No answer is a 429 or a 5xx other than 503, and the
// sale's invariants hold once Redis is back and the sale goes on.
func limitsRedisDown(t *testing.T) result {
	e := newEnv(t)
	px := startProxy(t, e.RedisAddr())
	s := e.service("seckill", map[string]string{
		"SECKILL_REDIS_ADDR":             px.addr,
		"SECKILL_LIMITS_TRUSTED_PROXIES": harness.TrustedProxies,
	})
	s.start()
	const stock = 100_000
	g := s.CreateGoods(t, stock).ID
	l := startLoad(s, g, loadSpec{path: "/orderV8", workers: 16, dur: 10 * time.Second})
	time.Sleep(time.Second)
	l.setPhase("redis down")
	px.down()
	time.Sleep(2 * time.Second)
	l.setPhase("redis back")
	if err := px.up(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	time.Sleep(time.Second)
	l.stop()

	down503 := l.count("redis down 503")
	if down503 == 0 {
		t.Errorf("no 503 while Redis was down: %s", l.summary())
	}
	if other := l.count("redis down ") - down503 - l.count("redis down 201"); other > 0 {
		t.Errorf("%d answers other than 201 or 503 while Redis was down: %s", other, l.summary())
	}
	for _, phase := range []string{"before", "redis down", "redis back"} {
		if n := l.count(phase + " 429"); n > 0 {
			t.Errorf("%d answers 429 %s: every buyer has an address of its own: %s", n, phase, l.summary())
		}
	}
	if l.count("redis back 201") == 0 {
		t.Errorf("no order accepted once Redis was back: %s", l.summary())
	}
	if l.noRetryAfter > 0 {
		t.Errorf("%d answers 503 without Retry-After", l.noRetryAfter)
	}
	snap := e.settle(g, stock, l.orders())
	return result{accepted: len(l.orders()), recovery: time.Since(back),
		note: fmt.Sprintf("%d answered 503 during the outage, none 429; %d stored and answered 503 outcome_unknown",
			down503, l.storedUnknown(snap))}
}
