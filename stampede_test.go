package main_test

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/service"
)

// stampede fires n orders of one unit at once, with random user ids, through
// the versions given in turn, and counts the answers by status.
func stampede(t *testing.T, in *harness.Instance, goodsID int64, n int, versions ...string) (byStatus map[int]int, orderIDs []int64) {
	t.Helper()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	byStatus = map[int]int{}
	// Distinct buyers: a twin (one user twice at once) is refused by the
	// limited versions (429), and a stampede is of many buyers.
	first := rand.Int64N(1_000_000) + 1
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			code, a := in.Order(t, versions[i%len(versions)], first+int64(i), goodsID, 1)
			mu.Lock()
			defer mu.Unlock()
			byStatus[code]++
			if code == http.StatusCreated {
				orderIDs = append(orderIDs, a.ID)
			} else if code == http.StatusConflict && a.Error != "sold_out" {
				t.Errorf("409 with error %q, want sold_out", a.Error)
			}
		}()
	}
	close(start)
	wg.Wait()
	return byStatus, orderIDs
}

// sellInTurn places n orders of one unit through version, one after
// another, by users first, first+1, ..., and returns the accepted ones.
func sellInTurn(t *testing.T, in *harness.Instance, version string, goodsID, first int64, n int) []int64 {
	t.Helper()
	var sold []int64
	for u := first; u < first+int64(n); u++ {
		if code, a := in.Order(t, version, u, goodsID, 1); code == http.StatusCreated {
			sold = append(sold, a.ID)
		}
	}
	return sold
}

func checkAccepted(t *testing.T, byStatus map[int]int, orderIDs []int64, want int) {
	t.Helper()
	if byStatus[http.StatusCreated] != want || len(byStatus) > 2 {
		t.Errorf("answers by status: %v, want %d × 201 and the rest 409", byStatus, want)
	}
	seen := map[int64]bool{}
	for _, id := range orderIDs {
		if seen[id] {
			t.Errorf("order id %d answered twice", id)
		}
		seen[id] = true
	}
}

// Every version, picked up from the list of versions: 2,000 buyers at once
// on 100 units sell exactly 100, and once the consumer drains, MySQL, Redis,
// the order tables and the stock logs all agree.
func TestStampedeSellsExactlyTheStock(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	for _, v := range service.VersionNames() {
		t.Run(v, func(t *testing.T) {
			g := in.CreateGoods(t, 100)
			byStatus, ids := stampede(t, in, g.ID, 2000, v)
			checkAccepted(t, byStatus, ids, 100)
			e.CheckInvariants(t, g.ID, harness.Sale{Initial: 100, Accepted: ids})
			if ver, _ := service.FindVersion(v); ver.SplitStock {
				e.CheckSoldThroughBuckets(t, g.ID)
			}
		})
	}
}

// V1 (MySQL row lock) and V2 (Redis first) selling one goods at the same
// time: both take their units from the Redis gate, so neither oversells.
func TestMixedVersionsOnOneGoodsNeverOversell(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	g := in.CreateGoods(t, 100)
	byStatus, ids := stampede(t, in, g.ID, 2000, service.VersionNames()...)
	checkAccepted(t, byStatus, ids, 100)
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 100, Accepted: ids})
}

// Stock added by the admin while buyers stampede is sold exactly: no unit is
// lost to a concurrent decrement and none is sold twice.
func TestAdminAddStockDuringStampede(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	for _, v := range service.VersionNames() {
		t.Run(v, func(t *testing.T) {
			g := in.CreateGoods(t, 100)
			const adds, each = 5, 20
			var added atomic.Int64
			var wg sync.WaitGroup
			for range adds {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if code, out := in.AddStock(t, g.ID, each, ""); code != http.StatusOK {
						t.Errorf("add_stock: status %d %+v", code, out)
						return
					}
					added.Add(each)
				}()
			}
			byStatus, ids := stampede(t, in, g.ID, 1500, v)
			wg.Wait()
			// Whatever the first wave left unsold, a second wave sells.
			rest, restIDs := stampede(t, in, g.ID, 300, v)
			sold := byStatus[http.StatusCreated] + rest[http.StatusCreated]
			if total := 100 + int(added.Load()); sold != total {
				t.Errorf("sold %d units, want the initial 100 plus %d added", sold, added.Load())
			}
			checkAccepted(t, map[int]int{http.StatusCreated: sold}, append(ids, restIDs...), sold)
			snap := e.CheckInvariants(t, g.ID, harness.Sale{Initial: 100, Accepted: append(ids, restIDs...)})
			if snap.Adds != added.Load() {
				t.Errorf("the database holds %d units added, the admin added %d", snap.Adds, added.Load())
			}
		})
	}
}
