package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
)

// shareSettings keep V15's shares without a buffer, so that only the
// recomputes can give a dead instance's part to the others, and a killed
// instance's node lease short, so that the survivors soon divide by two.
var shareSettings = map[string]string{
	"SECKILL_STOCK_SHARE_EVERY":      "500ms",
	"SECKILL_STOCK_SHARE_BUFFER":     "0",
	"SECKILL_STOCK_SHARE_BUFFER_MIN": "0",
	"SECKILL_SNOWFLAKE_LEASE_TTL":    "3s",
}

// 19. V15: one of three instances is SIGKILLed mid-sale. Its share was
// never taken out of Redis: the survivors' recomputes (remaining stock over
// the live instances, two once the dead lease ends) grow their shares, and
// they sell every unit; the reconciliation gives back the units the kill
// caught between reservation and order, and those are sold too.
func shareInstanceKilled(t *testing.T) result {
	e := newEnv(t)
	var ss []*service
	for i := range 3 {
		s := e.service(fmt.Sprintf("seckill-%d", i+1), shareSettings)
		s.start()
		ss = append(ss, s)
	}
	const stock = 3000
	g := ss[0].CreateGoods(t, stock).ID
	var loads []*load
	for _, s := range ss {
		loads = append(loads, startLoad(s, g, loadSpec{path: "/orderV15", workers: 8, dur: 30 * time.Second}))
	}
	harness.WaitFor(10*time.Second, func() bool { return loads[0].count("before 201")+loads[1].count("before 201") >= 600 })
	for _, l := range loads {
		l.setPhase("killed")
	}
	ss[2].kill()
	killed := time.Now()
	loads[2].stop()
	survivors := loads[:2]

	// The survivors sell until Redis holds nothing; then the
	// reconciliation gives back what the kill stranded between reservation
	// and order, and they sell that as well.
	left := func() int64 {
		n, _ := e.Redis().HGet(context.Background(), e.GoodsKey(g), "stock").Int64()
		return n
	}
	sellOut := func(ls []*load) bool {
		defer func() {
			for _, l := range ls {
				l.stop()
			}
		}()
		return harness.WaitFor(settleWithin, func() bool { return left() == 0 })
	}
	soldOut := sellOut(survivors)
	rec := time.Since(killed)
	var orders []order
	for _, l := range loads {
		orders = append(orders, l.orders()...)
	}
	e.settle(g, stock, orders)
	rest := []*load{startLoad(ss[0], g, loadSpec{path: "/orderV15", workers: 8, dur: 20 * time.Second}),
		startLoad(ss[1], g, loadSpec{path: "/orderV15", workers: 8, dur: 20 * time.Second})}
	soldOut = sellOut(rest) && soldOut
	for _, l := range rest {
		orders = append(orders, l.orders()...)
	}
	final := e.settle(g, stock, orders)
	if !soldOut || final.Units != stock {
		t.Errorf("sold %d units of %d after the kill (redis holds %d): %s / %s", final.Units, stock, left(), survivors[0].summary(), survivors[1].summary())
	}
	return result{accepted: len(orders), recovery: rec,
		note: fmt.Sprintf("the survivors sold the rest: %d orders after the kill, %d after the reconciliation gave back what it stranded; %d answered sold out (a spent share before its recompute, or the end of the sale)",
			survivors[0].count("killed 201")+survivors[1].count("killed 201"), len(rest[0].orders())+len(rest[1].orders()),
			survivors[0].count("killed 409")+survivors[1].count("killed 409"))}
}
