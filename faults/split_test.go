package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
)

// 19. V14: the service is SIGKILLed mid-sale of a split goods whose
// buckets hold at most 5 units, so that allotments (goods hash -> bucket,
// two steps across masters) are in flight all the time, and restarted.
// An allotment the kill caught between its steps has its units recorded
// in the hash, counted once; the reconciliation completes it, repairs any
// reservation the kill lost into the hash, and the sale goes on through
// the buckets and sells exactly the stock.
func splitServiceKilled(t *testing.T) result {
	e := newEnv(t)
	s := e.service("seckill", map[string]string{"SECKILL_STOCK_BUCKET_MAX": "5"})
	s.start()
	const stock = 3000
	g := s.CreateGoods(t, stock).ID
	l := startLoad(s, g, loadSpec{path: "/orderV14", workers: 32, dur: 20 * time.Second})
	harness.WaitFor(10*time.Second, func() bool { return l.count("before 201") >= 1000 })
	l.setPhase("killed")
	s.kill()
	l.stop()
	halfDone, err := e.Redis().HKeys(context.Background(), e.GoodsKey(g)).Result()
	if err != nil {
		t.Fatal(err)
	}
	allots := 0
	for _, f := range halfDone {
		if len(f) > 6 && f[:6] == "allot:" {
			allots++
		}
	}
	restart := time.Now()
	s.start()
	e.settle(g, stock, l.orders())
	rec := time.Since(restart)
	rest := startLoad(s, g, loadSpec{path: "/orderV14", workers: 32, dur: 10 * time.Second, untilSoldOut: true})
	rest.wait()
	final := e.settle(g, stock, append(l.orders(), rest.orders()...))
	if final.Units != stock {
		t.Errorf("sold %d units of %d after recovery: %s", final.Units, stock, rest.summary())
	}
	e.CheckSoldThroughBuckets(t, g)
	return result{accepted: len(l.orders()), recovery: rec,
		note: fmt.Sprintf("%d allotments caught half-done by the kill, completed once; then sold out exactly through the buckets", allots)}
}
