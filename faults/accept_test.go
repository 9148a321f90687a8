package faults

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	domain "github.com/go-seckill/seckill/service"
)

// acceptSettings are V13's short intervals: the sweep writes a request
// whose message was lost three seconds after it was accepted.
var acceptSettings = map[string]string{
	"SECKILL_ACCEPT_RESCUE_AFTER": harness.ShortRescueAfter,
	"SECKILL_ACCEPT_RESCUE_EVERY": "500ms",
}

// ended is how the tokens a load received ended.
type ended struct {
	orders  []order        // ordered, with their orders
	failed  map[string]int // failed, by reason
	pending int            // still pending at the deadline
}

// awaitTokens polls every token through s until each has ended, or until
// settleWithin has passed.
func awaitTokens(t *testing.T, s *service, tokens []string) ended {
	t.Helper()
	done, pending := s.AwaitAll(tokens, settleWithin)
	out := ended{failed: map[string]int{}, pending: len(pending)}
	for _, acc := range done {
		if acc.Status == domain.AcceptOrdered && acc.Order != nil {
			out.orders = append(out.orders, order{ID: acc.Order.ID, UserID: acc.Order.UserID})
		} else {
			out.failed[acc.Reason]++
		}
	}
	return out
}

// 17. V13: the service is SIGKILLed while requests are accepted, and
// restarted. Every token a client received ends as an order or as a
// failure with its units back, none stays pending: the requests on nsqd
// are written by the restarted writers, and the sweep writes those whose
// message the kill caught between the reservation and the publish. Then
// the sale goes on and sells exactly the stock.
func acceptServiceKilled(t *testing.T) result {
	e := newEnv(t)
	s := e.service("seckill", acceptSettings)
	s.start()
	const stock = 3000
	g := s.CreateGoods(t, stock).ID
	l := startLoad(s, g, loadSpec{path: "/seckill", workers: 32, dur: 20 * time.Second})
	harness.WaitFor(10*time.Second, func() bool { return len(l.tokensHeld()) >= 1000 })
	l.setPhase("killed")
	s.kill()
	l.stop()
	restart := time.Now()
	s.start()
	end := awaitTokens(t, s, l.tokensHeld())
	rec := time.Since(restart)
	if end.pending > 0 {
		t.Errorf("%d of %d tokens still pending %v after the restart", end.pending, len(l.tokensHeld()), settleWithin)
	}
	e.settle(g, stock, end.orders)
	rest := startLoad(s, g, loadSpec{path: "/order", workers: 32, dur: 10 * time.Second, untilSoldOut: true})
	rest.wait()
	final := e.settle(g, stock, append(end.orders, rest.orders()...))
	if final.Units != stock {
		t.Errorf("sold %d units of %d after recovery: %s", final.Units, stock, rest.summary())
	}
	return result{accepted: len(l.tokensHeld()), recovery: rec,
		note: fmt.Sprintf("every token ended: %d ordered, %d failed %v; then sold out exactly", len(end.orders), len(l.tokensHeld())-len(end.orders), end.failed)}
}

// 18. V13: nsqd is SIGKILLed while requests are accepted, and restarted a
// second later. A request whose publish failed is answered 503 and ends
// failed at once, its units back; the requests nsqd held in memory are
// lost with it and written by the sweep from their Redis records. Every
// token a client received ends as an order.
func acceptNSQDKilled(t *testing.T) result {
	e := newEnv(t)
	s := e.service("seckill", acceptSettings)
	s.start()
	const stock = 100_000
	g := s.CreateGoods(t, stock).ID
	l := startLoad(s, g, loadSpec{path: "/seckill", workers: 32, dur: 10 * time.Second})
	back := e.nsqd.killUnder(l)
	l.stop()
	end := awaitTokens(t, s, l.tokensHeld())
	rec := time.Since(back)
	if end.pending > 0 || len(end.failed) > 0 {
		t.Errorf("of %d tokens, %d still pending and %v failed: every accepted request must become an order", len(l.tokensHeld()), end.pending, end.failed)
	}
	e.settle(g, stock, end.orders)
	return result{accepted: len(l.tokensHeld()), recovery: rec,
		note: fmt.Sprintf("%d answered 503 while nsqd was down; every token ordered", l.count("nsqd down 503"))}
}

// tokensHeld are the tokens the load received.
func (l *load) tokensHeld() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.tokens...)
}
