package store

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/recovery"
)

// buyerUnits is what Redis counts for user: 0 when it holds nothing.
func (g *rig) buyerUnits(tb testing.TB, goodsID, userID int64) int64 {
	tb.Helper()
	n, err := g.r.c.HGet(context.Background(), BuyersKey(g.r.prefix, goodsID), itoa(userID)).Int64()
	if err != nil && err.Error() != "redis: nil" {
		tb.Fatal(err)
	}
	return n
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A reservation whose reply timed out after the script ran, and an order
// write whose outcome was unknown and which never existed, left units
// counted for buyers without an order: the reconciliation gives back the
// stock and the buyers' units from the same truth, after the same number
// of passes, and the buyers can buy again. A buyer whose count Redis lost
// gets it back and stays within the limit.
func TestLeakedBuyerUnitsAreRepaired(t *testing.T) {
	ctx := context.Background()
	g := newRig(t)
	gd := g.goods(t, 10, 1)
	g.sell(t, gd.ID, 7, 1)
	if err := g.r.Reserve(ctx, gd.ID, 8, 1, time.Now()); err != nil { // the reply timed out; no order
		t.Fatal(err)
	}
	if err := g.r.c.HIncrBy(ctx, BuyersKey(g.r.prefix, gd.ID), "9", 1).Err(); err != nil { // raised by hand
		t.Fatal(err)
	}
	if err := g.r.c.HDel(ctx, BuyersKey(g.r.prefix, gd.ID), "7").Err(); err != nil { // lost in a failover
		t.Fatal(err)
	}
	for _, u := range []int64{8, 9} {
		if err := g.r.Reserve(ctx, gd.ID, u, 1, time.Now()); !errors.Is(err, service.ErrLimitExceeded) {
			t.Fatalf("user %d before the repair: %v, want limit exceeded", u, err)
		}
	}
	for i := 1; i <= recovery.RepairAfter; i++ {
		d := g.passes(t, gd.ID, 1)
		if i < recovery.RepairAfter && (g.buyerUnits(t, gd.ID, 8) != 1 || g.buyerUnits(t, gd.ID, 9) != 1 || d.UsersRepaired != 0) {
			t.Fatalf("buyers repaired after %d passes, before %d: %+v", i, recovery.RepairAfter, d)
		}
		if d.UsersDrift != 3 || (i == recovery.RepairAfter && d.UsersRepaired != 3) {
			t.Errorf("pass %d: %+v, want 3 buyers drifting, repaired on pass %d", i, d, recovery.RepairAfter)
		}
	}
	if d := g.passes(t, gd.ID, 1); d.UsersDrift != 0 || d.Drift != 0 {
		t.Errorf("after the repair: %+v", d)
	}
	if got := g.redisStock(t, gd.ID); got != 9 {
		t.Errorf("stock %d after the repair, want 9", got)
	}
	for _, u := range []int64{8, 9} {
		if n := g.buyerUnits(t, gd.ID, u); n != 0 {
			t.Errorf("user %d holds %d units after the repair, want 0", u, n)
		}
		if err := g.r.Reserve(ctx, gd.ID, u, 1, time.Now()); err != nil {
			t.Errorf("user %d after the repair: %v", u, err)
		}
	}
	if err := g.r.Reserve(ctx, gd.ID, 7, 1, time.Now()); !errors.Is(err, service.ErrLimitExceeded) {
		t.Errorf("user 7, who holds an order: %v, want limit exceeded", err)
	}
}

// A buyer's units that differ from the database's but change between
// passes (orders in flight) are not repaired; once the same difference
// lasts RepairAfter passes, they are.
func TestChangingBuyerDifferenceIsNotRepaired(t *testing.T) {
	ctx := context.Background()
	g := newRig(t)
	gd := g.goods(t, 100, 5)
	g.sell(t, gd.ID, 3, 1)
	buyers := BuyersKey(g.r.prefix, gd.ID)
	for i := 1; i <= recovery.RepairAfter+1; i++ {
		if err := g.r.c.HIncrBy(ctx, buyers, "3", 1).Err(); err != nil { // 1+i units counted against 1 ordered
			t.Fatal(err)
		}
		if d := g.passes(t, gd.ID, 1); d.UsersDrift != 1 || d.UsersRepaired != 0 {
			t.Fatalf("pass %d: %+v, want 1 buyer drifting, none repaired", i, d)
		}
	}
	if n := g.buyerUnits(t, gd.ID, 3); n != recovery.RepairAfter+2 {
		t.Fatalf("user 3 holds %d, want %d", n, recovery.RepairAfter+2)
	}
	// The last pass saw the difference for the first time; it stays.
	for range recovery.RepairAfter - 2 {
		if d := g.passes(t, gd.ID, 1); d.UsersRepaired != 0 {
			t.Fatalf("repaired early: %+v", d)
		}
	}
	if d := g.passes(t, gd.ID, 1); d.UsersRepaired != 1 || g.buyerUnits(t, gd.ID, 3) != 1 {
		t.Errorf("after %d passes with the same difference: %+v, user 3 holds %d; want repaired to 1", recovery.RepairAfter, d, g.buyerUnits(t, gd.ID, 3))
	}
}

// A cancelled order's return reached MySQL and Redis refused it, or has
// not been recorded yet (its sale was not applied, MySQL was down).
// Whether the reconciliation repairs the stock and the buyer together, or
// the buyer alone (the stock drift kept changing), the return's retry
// afterwards changes neither the stock nor the buyer's units again.
func TestBuyerRepairAndTheReturnRetryCountOnce(t *testing.T) {
	for _, c := range []struct {
		name                 string
		recorded, stockMoves bool
	}{
		{"stock and buyer repaired", true, false},
		{"buyer repaired alone", true, true},
		{"return recorded after the repair", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			g := newRig(t)
			gd := g.goods(t, 20, 2)
			m := g.sell(t, gd.ID, 5, 2)
			g.cancel(t, m)
			if c.recorded {
				g.cache.failReturn.Store(1)
				if err := g.l.ReturnOrder(ctx, m); err == nil {
					t.Fatal("no error")
				}
			}
			for i := range int64(recovery.RepairAfter) {
				if c.stockMoves { // a reservation without an order each pass: the stock drift changes
					if err := g.r.Reserve(ctx, gd.ID, 100+i, 1, time.Now()); err != nil {
						t.Fatal(err)
					}
				}
				g.passes(t, gd.ID, 1)
			}
			if n := g.buyerUnits(t, gd.ID, 5); n != 0 {
				t.Fatalf("user 5 holds %d after %d passes, want 0", n, recovery.RepairAfter)
			}
			if err := g.l.ReturnOrder(ctx, m); err != nil { // the timeout consumer's retry
				t.Fatal(err)
			}
			if n := g.buyerUnits(t, gd.ID, 5); n != 0 {
				t.Errorf("user 5 holds %d after the retry, want 0", n)
			}
			if got, truth := g.redisStock(t, gd.ID), g.truth(t, gd.ID); got > truth {
				t.Errorf("redis %d above the truth %d after the retry", got, truth)
			}
			g.passes(t, gd.ID, recovery.RepairAfter+1)
			if got, truth := g.redisStock(t, gd.ID), g.truth(t, gd.ID); got != truth || truth != 20 {
				t.Errorf("in the end redis %d, truth %d; want 20", got, truth)
			}
			if err := g.r.Reserve(ctx, gd.ID, 5, 3, time.Now()); !errors.Is(err, service.ErrLimitExceeded) {
				t.Errorf("user 5 buying 3 of a limit of 2: %v", err)
			}
			if err := g.r.Reserve(ctx, gd.ID, 5, 2, time.Now()); err != nil {
				t.Errorf("user 5 buying 2 again: %v", err)
			}
			if ms := g.markers(t, gd.ID); len(ms) != 0 {
				t.Errorf("markers stay: %v", ms)
			}
		})
	}
}
