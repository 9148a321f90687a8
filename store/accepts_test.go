package store

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
)

func acceptedAs(goodsID, userID int64, id string, n int64) (service.Token, service.Accepted) {
	t := service.Token{GoodsID: goodsID, UserID: userID, AcceptedAt: time.Now().UTC().Truncate(time.Millisecond), ID: id}
	return t, service.Accepted{Token: t.String(), Number: n, Route: userID}
}

// stateOf is where one request stands in Redis.
func stateOf(r *Redis, tok service.Token) (*service.Accepted, string, error) {
	sts, err := r.AcceptStates(context.Background(), []service.Token{tok})
	if err != nil {
		return nil, "", err
	}
	return sts[0].Pending, sts[0].Failure, nil
}

// settle settles one request of n units.
func settle(r *Redis, tok service.Token, n int64) error {
	return r.SettleAccepted(context.Background(), []service.Token{tok}, []service.Accepted{{Token: tok.String(), Number: n}})
}

// held reads the stock on sale, the units accepted and their sum.
func held(t *testing.T, r *Redis, goodsID int64) (stock, held int64) {
	t.Helper()
	ctx := context.Background()
	stock, _, err := r.Stock(ctx, goodsID)
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := r.Held(ctx, goodsID)
	if err != nil {
		t.Fatal(err)
	}
	return stock, h
}

// An accepted request takes its units off sale and keeps them, with its
// record, beside the stock: a second accept of its id moves nothing, its
// settle keeps them sold, its failure gives them back once, and the
// reconciliation's compare reads stock and accepted units together.
func TestAcceptedRequestsHoldTheirUnitsBesideTheStock(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *Redis{"server": openTestRedis, "cluster": openClusterRedis} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := open(t)
			if err := r.Put(ctx, service.Goods{ID: 1, Stock: 10, PerUserLimit: 2}); err != nil {
				t.Fatal(err)
			}
			t1, a1 := acceptedAs(1, 7, "101", 2)
			if prior, err := r.Accept(ctx, t1, a1); err != nil || prior != "" {
				t.Fatalf("accept: %q %v", prior, err)
			}
			if s, h := held(t, r, 1); s != 8 || h != 10 {
				t.Fatalf("after accepting 2 of 10: stock %d, held %d; want 8 and 10", s, h)
			}
			if prior, err := r.Accept(ctx, t1, a1); err != nil || prior != a1.Token {
				t.Fatalf("accept again: %q %v, want the first token", prior, err)
			}
			other := a1
			other.Number = 1
			if _, err := r.Accept(ctx, t1, other); !errors.Is(err, service.ErrKeyMismatch) {
				t.Fatalf("same id, other number: %v, want ErrKeyMismatch", err)
			}
			if t2, a2 := acceptedAs(1, 7, "102", 1); true {
				if _, err := r.Accept(ctx, t2, a2); !errors.Is(err, service.ErrLimitExceeded) {
					t.Fatalf("past the per-user limit: %v", err)
				}
			}
			if s, h := held(t, r, 1); s != 8 || h != 10 {
				t.Fatalf("refusals moved units: stock %d, held %d", s, h)
			}
			if pending, failure, err := stateOf(r, t1); err != nil || pending == nil || pending.Number != 2 || failure != "" {
				t.Fatalf("state: %+v %q %v, want pending of 2", pending, failure, err)
			}
			// The repair compares what Redis holds for the truth.
			if ok, err := r.Repair(ctx, 1, 8, 1, nil, nil); err != nil || ok {
				t.Fatalf("repair against the stock alone: %v %v, want refused", ok, err)
			}
			if ok, err := r.Repair(ctx, 1, 10, 1, nil, nil); err != nil || !ok {
				t.Fatalf("repair against stock and accepted: %v %v", ok, err)
			}
			if ok, err := r.Repair(ctx, 1, 11, -1, nil, nil); err != nil || !ok {
				t.Fatal(ok, err)
			}

			for range 2 { // a second settle changes nothing
				if err := settle(r, t1, 2); err != nil {
					t.Fatal(err)
				}
				if s, h := held(t, r, 1); s != 8 || h != 8 {
					t.Fatalf("after the settle: stock %d, held %d; want 8 and 8", s, h)
				}
			}
			if pending, failure, err := stateOf(r, t1); err != nil || pending != nil || failure != "" {
				t.Fatalf("settled state: %+v %q %v, want neither", pending, failure, err)
			}

			t3, a3 := acceptedAs(1, 8, "103", 2)
			if _, err := r.Accept(ctx, t3, a3); err != nil {
				t.Fatal(err)
			}
			for i, wantGave := range []bool{true, false} {
				gave, err := r.FailAccepted(ctx, t3, 2, "expired")
				if err != nil || gave != wantGave {
					t.Fatalf("fail #%d: gave %v %v, want %v", i+1, gave, err, wantGave)
				}
				if s, h := held(t, r, 1); s != 8 || h != 8 {
					t.Fatalf("after fail #%d: stock %d, held %d; want 8 and 8", i+1, s, h)
				}
			}
			if _, failure, err := stateOf(r, t3); err != nil || failure != "expired" {
				t.Fatalf("failed state: %q %v", failure, err)
			}
			// The buyer got the units back under the limit: two more pass.
			if t4, a4 := acceptedAs(1, 8, "104", 2); true {
				if _, err := r.Accept(ctx, t4, a4); err != nil {
					t.Fatalf("the buyer's units were not given back: %v", err)
				}
			}
			// A failed id accepted again moves nothing and names the first token.
			if prior, err := r.Accept(ctx, t3, a3); err != nil || prior != a3.Token {
				t.Fatalf("accept a failed id: %q %v", prior, err)
			}
			if s, _ := held(t, r, 1); s != 6 {
				t.Fatalf("stock %d, want 6", s)
			}
			var recs []service.Accepted
			if err := r.AcceptedRecords(ctx, 1, func(rs []service.Accepted) error { recs = append(recs, rs...); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].Number != 2 {
				t.Fatalf("records %+v, want the one pending", recs)
			}
			units, err := r.AcceptedUnits(ctx, []int64{1, 2})
			if err != nil || units[1] != 2 || len(units) != 1 {
				t.Fatalf("accepted units %v %v", units, err)
			}
		})
	}
}

// Many accepts racing with settles and failures on one goods never take
// more than the stock, and what ends is accounted for: the stock left is
// the initial less the units settled.
func TestAcceptsRacingSettlesAndFailuresKeepTheCount(t *testing.T) {
	ctx := context.Background()
	r := openTestRedis(t)
	const initial = 300
	if err := r.Put(ctx, service.Goods{ID: 1, Stock: initial}); err != nil {
		t.Fatal(err)
	}
	var settled, accepted atomic.Int64
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				tok, a := acceptedAs(1, int64(w*100+i+1), strconv.Itoa(w*100+i+1), 1)
				_, err := r.Accept(ctx, tok, a)
				if errors.Is(err, service.ErrSoldOut) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				accepted.Add(1)
				if i%3 == 0 {
					if _, err := r.FailAccepted(ctx, tok, 1, "expired"); err != nil {
						t.Error(err)
					}
					continue
				}
				if err := settle(r, tok, 1); err != nil {
					t.Error(err)
				}
				settled.Add(1)
			}
		}()
	}
	wg.Wait()
	s, h := held(t, r, 1)
	if s != initial-settled.Load() || h != s || settled.Load() > initial {
		t.Fatalf("stock %d, held %d after %d accepted and %d settled of %d", s, h, accepted.Load(), settled.Load(), initial)
	}
}

// A batch of settles pipelined as EVALSHA still runs on a Redis that
// forgot its scripts (a restart, a new master): each call answered
// NOSCRIPT runs again on its own, once.
func TestSettlesRunOnARedisThatForgotTheScript(t *testing.T) {
	ctx := context.Background()
	r := openTestRedis(t)
	if err := r.Put(ctx, service.Goods{ID: 1, Stock: 10}); err != nil {
		t.Fatal(err)
	}
	var ts []service.Token
	var as []service.Accepted
	for i := range 4 {
		tok, a := acceptedAs(1, int64(i+1), strconv.Itoa(i+1), 2)
		if _, err := r.Accept(ctx, tok, a); err != nil {
			t.Fatal(err)
		}
		ts, as = append(ts, tok), append(as, a)
	}
	if err := r.c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.SettleAccepted(ctx, ts, as); err != nil {
		t.Fatal(err)
	}
	if s, h := held(t, r, 1); s != 2 || h != 2 {
		t.Fatalf("after settling 4 × 2 of 10: stock %d, held %d; want 2 and 2 (settled once each)", s, h)
	}
}
