package main_test

import (
	"net/http"
	"testing"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/service"
)

// The shared stampede suite in the standalone mode: the same invariants,
// and the sale's state survives a restart.
func TestStandaloneModeSellsExactlyTheStockAndSurvivesARestart(t *testing.T) {
	t.Parallel()
	e := harness.NewStandaloneEnv(t)
	in := e.Start(t)
	if !in.Config.IsStandalone() || in.Config.Redis.Addr != "" {
		t.Fatal("not in the standalone mode")
	}
	for _, v := range service.VersionNames() {
		t.Run(v, func(t *testing.T) {
			g := in.CreateGoods(t, 100)
			byStatus, ids := stampede(t, in, g.ID, 2000, v)
			// SQLite takes one writer at a time: on a loaded machine some
			// orders pass their write budget and answer 503 with their
			// units given back; every unit still sells, exactly once.
			if n := byStatus[http.StatusServiceUnavailable]; n > 0 {
				t.Logf("%s: %d answered 503", v, n)
				delete(byStatus, http.StatusServiceUnavailable)
			}
			checkAccepted(t, byStatus, ids, 100)
			e.CheckInvariants(t, g.ID, harness.Sale{Initial: 100, Accepted: ids})
		})
	}
	half := in.CreateGoods(t, 10)
	var before []int64
	for u := range int64(4) {
		code, a := in.Order(t, "V6", u+1, half.ID, 1)
		if code != http.StatusCreated {
			t.Fatalf("order: %d", code)
		}
		before = append(before, a.ID)
	}
	in.Stop()

	in = e.Start(t) // a new in-process Redis: stock comes back from SQLite
	e.CheckInvariants(t, half.ID, harness.Sale{Initial: 10, Accepted: before})
	byStatus, ids := stampede(t, in, half.ID, 50, "V6")
	checkAccepted(t, byStatus, ids, 6)
	e.CheckInvariants(t, half.ID, harness.Sale{Initial: 10, Accepted: append(before, ids...)})
}

// Payment and its timeout in the standalone mode: SQLite compares the
// deadlines as MySQL does.
func TestStandalonePaymentAndTimeout(t *testing.T) {
	t.Parallel()
	e := harness.NewStandaloneEnv(t)
	// SQLite takes one writer at a time: on a loaded machine an order (V14's
	// first, which splits the goods) and its payment took two seconds, past
	// a deadline of one.
	payWithin(e, "5s", "100ms")
	in := e.Start(t)
	stock := int64(2*len(service.VersionNames()) + 4) // two orders a version, and units left over
	g := in.CreateGoods(t, stock)
	var unpaid []harness.OrderAnswer
	var ids []int64
	paid := 0
	for i, v := range service.VersionNames() {
		user := int64(i + 1)
		_, a := in.Order(t, v, user, g.ID, 1)
		_, b := in.Order(t, v, user, g.ID, 1)
		ids = append(ids, a.ID, b.ID)
		if status, code := in.Pay(t, a.ID, user); status != http.StatusOK {
			t.Fatalf("%s: pay: %d %q", v, status, code)
		}
		paid++
		unpaid = append(unpaid, b)
	}
	settledWithCancels(t, e, g.ID, stock, ids, paid, len(unpaid))
	if status, code := in.Pay(t, unpaid[0].ID, unpaid[0].UserID); status != http.StatusConflict || code != "order_cancelled" {
		t.Errorf("paying a cancelled order: %d %q", status, code)
	}
}
