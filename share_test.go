package main_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
)

// shareCounts reads an instance's V15 share counts: the requests its
// local share let on to Redis (taken) and answered sold out in memory
// (refused), and the live instances it divided the stock among.
func shareCounts(t *testing.T, in *harness.Instance) (taken, refused, live int64) {
	t.Helper()
	fams := in.Scrape(t)
	for _, m := range fams["seckill_local_share_requests_total"].GetMetric() {
		switch harness.Labels(m)["outcome"] {
		case "taken":
			taken = int64(m.GetCounter().GetValue())
		case "refused":
			refused = int64(m.GetCounter().GetValue())
		}
	}
	for _, m := range fams["seckill_local_share_live_instances"].GetMetric() {
		live = int64(m.GetGauge().GetValue())
	}
	return taken, refused, live
}

// stampedeAll fires n buyers at once through version, spread over the
// instances in turn, and gathers the answers.
func stampedeAll(t *testing.T, ins []*harness.Instance, goodsID int64, n int, version string) (byStatus map[int]int, ids []int64) {
	t.Helper()
	byStatus = map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			part := n / len(ins)
			if i < n%len(ins) {
				part++
			}
			st, sold := stampede(t, in, goodsID, part, version)
			mu.Lock()
			defer mu.Unlock()
			for code, c := range st {
				byStatus[code] += c
			}
			ids = append(ids, sold...)
		}()
	}
	wg.Wait()
	return byStatus, ids
}

// V15 on three instances: 2,000 buyers at once on 300 units sell exactly
// the stock, and Redis is asked by each instance at most for its share,
// ceil(300 / 3) + 50% = 150 units: the buyers past it are answered sold out
// in memory. Each instance derives its share before the stampede, as it
// would at its first buyer, and no recompute runs during it, so the bound
// is exact. Then the trade: buyers who all come to one instance are
// refused past its share while the others still hold units.
func TestShareStampedeOnThreeInstances(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_STOCK_SHARE_EVERY"] = "1m"
	ins := threeInstances(t, e)
	g := ins[0].CreateGoods(t, 300)
	ids := firstOrders(t, ins, g.ID)
	byStatus, sold := stampedeAll(t, ins, g.ID, 2000, "V15")
	checkAccepted(t, byStatus, sold, 300-len(ids))
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 300, Accepted: append(ids, sold...)})

	var taken, refused int64
	for _, in := range ins {
		tk, rf, live := shareCounts(t, in)
		if tk > 150 || live != 3 {
			t.Errorf("instance %s: %d requests reached Redis with %d live instances; want at most its share of 150 among 3", in.Base, tk, live)
		}
		taken += tk
		refused += rf
	}
	t.Logf("2,000 buyers on 3 instances: %d reached Redis's reservation (at most 3 × 150), %d were refused in memory by a spent share, %d by the sold-out flag",
		taken-3, refused, 2000-(taken-3)-refused)

	// The trade, on other goods: 1,000 buyers all at one instance buy its
	// share and are refused past it, though Redis still holds the others'
	// part (so no sold-out flag answers for it); the other instances sell
	// that part.
	g = ins[0].CreateGoods(t, 300)
	ids = firstOrders(t, ins, g.ID)
	taken0, refused0, _ := shareCounts(t, ins[0])
	byStatus, sold = stampede(t, ins[0], g.ID, 1000, "V15")
	checkAccepted(t, byStatus, sold, 149)
	if tk, rf, _ := shareCounts(t, ins[0]); tk-taken0 != 149 || rf-refused0 != 851 {
		t.Errorf("one busy instance: %d requests reached Redis and %d were refused in memory, want 149 and 851", tk-taken0, rf-refused0)
	}
	ids = append(ids, sold...)
	byStatus, sold = stampedeAll(t, ins[1:], g.ID, 1000, "V15")
	checkAccepted(t, byStatus, sold, 300-len(ids))
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 300, Accepted: append(ids, sold...)})
}

// firstOrders places one V15 order through each instance, which derives
// its share, and returns their ids.
func firstOrders(t *testing.T, ins []*harness.Instance, goodsID int64) []int64 {
	t.Helper()
	var ids []int64
	for i, in := range ins {
		code, a := in.Order(t, "V15", int64(900_000+i), goodsID, 1)
		if code != http.StatusCreated {
			t.Fatalf("first order through instance %d: %d", i, code)
		}
		ids = append(ids, a.ID)
	}
	return ids
}

// Shares derived one after another in a stampede may add up to less than
// the stock: an instance that derives its share late divides what is left
// among every live instance, some of which have spent theirs already. The
// units left over sell after the next recompute, which divides what Redis
// still holds anew.
func TestShareUnitsLeftByColdSharesSellAfterARecompute(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_STOCK_SHARE_EVERY"] = "300ms"
	ins := threeInstances(t, e)
	g := ins[0].CreateGoods(t, 300)
	byStatus, ids := stampedeAll(t, ins, g.ID, 2000, "V15")
	first := byStatus[http.StatusCreated]
	deadline := time.Now().Add(10 * time.Second)
	for len(ids) < 300 && time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		_, sold := stampedeAll(t, ins, g.ID, 60, "V15")
		ids = append(ids, sold...)
	}
	if len(ids) != 300 {
		t.Fatalf("%d of 300 units sold, 10 s after the stampede", len(ids))
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 300, Accepted: ids})
	t.Logf("the stampede sold %d units, the waves after its recomputes %d", first, 300-first)
}

// An instance that stops mid-sale leaves its share unsold; the others'
// shares grow at their next recomputes, once its node lease is gone, and
// the survivors sell every unit. With no buffer the survivors' first
// shares (99 units left each) cannot cover the 297 units left: they are
// sold only because the recomputes grow the shares.
func TestShareOfAStoppedInstanceIsSoldByTheOthers(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_STOCK_SHARE_EVERY"] = "200ms"
	e.Settings["SECKILL_STOCK_SHARE_BUFFER"] = "0"
	e.Settings["SECKILL_STOCK_SHARE_BUFFER_MIN"] = "0"
	ins := threeInstances(t, e)
	g := ins[0].CreateGoods(t, 300)
	ids := firstOrders(t, ins, g.ID) // every instance holds its share
	ins[2].Stop()

	survivors := ins[:2]
	deadline := time.Now().Add(20 * time.Second)
	for user := int64(1); len(ids) < 300; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 300 units sold 20 s after an instance stopped", len(ids))
		}
		sold := 0
		for range 50 {
			code, a := survivors[user%2].Order(t, "V15", user, g.ID, 1)
			user++
			switch code {
			case http.StatusCreated:
				ids = append(ids, a.ID)
				sold++
			case http.StatusConflict: // this survivor's share is spent until its next recompute
			default:
				t.Fatalf("order: %d %q", code, a.Error)
			}
		}
		if sold == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 300, Accepted: ids})
	for _, in := range survivors {
		if _, _, live := shareCounts(t, in); live != 2 {
			t.Errorf("instance %s divides among %d live instances, want the 2 survivors", in.Base, live)
		}
	}
}
