package main_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
)

// couponLoad claims coupons of one template from workers at once, as
// random users over the instances, until stop is closed. Each coupon
// answered 201 is then looked for in its user's list on the other
// instance, and every other one redeemed (with its own id as the order):
// the rest are redeemed after the moves.
type couponLoad struct {
	start    time.Time
	mu       sync.Mutex
	claims   []answer
	redeems  []answer
	claimed  map[int64]int64 // coupon id -> user
	redeemed map[int64]bool
	unlisted []string // coupons a list did not show, and when
	wg       sync.WaitGroup
}

func startCouponLoad(t *testing.T, ins []*harness.Instance, templateID int64, workers int, stop <-chan struct{}) *couponLoad {
	l := &couponLoad{start: time.Now(), claimed: map[int64]int64{}, redeemed: map[int64]bool{}}
	claimed := make(chan [2]int64, 100_000)
	asRandomUsers(&l.wg, ins, workers, stop, func(in *harness.Instance, user int64) {
		begin := time.Now()
		code, c := claim(t, in, user, templateID, "")
		l.mu.Lock()
		defer l.mu.Unlock()
		l.claims = append(l.claims, answer{user: user, code: code, err: c.Error, at: begin.Sub(l.start), took: time.Since(begin)})
		if code == http.StatusCreated {
			id, err := strconv.ParseInt(c.CouponID, 10, 64)
			if err != nil {
				t.Errorf("claim of user %d answered coupon id %q", user, c.CouponID)
			}
			l.claimed[id] = user
			claimed <- [2]int64{id, user}
		}
	})
	for p := range 2 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := 0; ; n++ {
				var cp [2]int64
				select {
				case <-stop:
					return
				case cp = <-claimed:
				}
				in := ins[(p+1)%len(ins)]
				if !listed(t, in, cp[1], cp[0]) {
					l.mu.Lock()
					l.unlisted = append(l.unlisted, fmt.Sprintf("coupon %d of user %d at %v", cp[0], cp[1], time.Since(l.start)))
					l.mu.Unlock()
				}
				if n%2 == 1 {
					continue // redeemed after the moves
				}
				begin := time.Now()
				code, e := redeemCoupon(t, in, cp[0], cp[1])
				l.mu.Lock()
				l.redeems = append(l.redeems, answer{user: cp[1], code: code, err: e, at: begin.Sub(l.start), took: time.Since(begin)})
				if code == http.StatusOK {
					l.redeemed[cp[0]] = true
				}
				l.mu.Unlock()
				if code != http.StatusOK {
					select {
					case claimed <- cp: // busy: looked for and redeemed again later
					default:
					}
				}
			}
		}()
	}
	return l
}

// listed says the user's coupons, as in answers them, hold the coupon.
func listed(t *testing.T, in *harness.Instance, userID, couponID int64) bool {
	var mine struct {
		Coupons []claimedCoupon `json:"coupons"`
	}
	code, err := in.Do(context.Background(), "GET", fmt.Sprintf("/users/%d/coupons", userID), nil, &mine)
	if err != nil || code != http.StatusOK {
		t.Errorf("coupons of user %d: %d %v", userID, code, err)
		return false
	}
	return slices.ContainsFunc(mine.Coupons, func(c claimedCoupon) bool { return c.CouponID == strconv.FormatInt(couponID, 10) })
}

// redeemCoupon redeems the user's coupon for the order of the coupon's own
// id: a retry of the same redemption answers 200 again.
func redeemCoupon(t *testing.T, in *harness.Instance, couponID, userID int64) (int, string) {
	var out struct {
		Error string `json:"error"`
	}
	code, err := in.Do(context.Background(), "POST", fmt.Sprintf("/coupons/%d/redeem", couponID),
		map[string]any{"user_id": userID, "order_id": couponID}, &out)
	if err != nil {
		t.Errorf("redeem coupon %d: %v", couponID, err)
	}
	return code, out.Error
}

// checkCouponsAfterMoves: no coupon lost or doubled (the records in MySQL
// are the claims answered 201, each once, and the units Redis gave out;
// the tests check the old hosts hold none), every coupon is listed and
// redeemable after the moves, and only the moved logical databases' users
// heard busy.
func checkCouponsAfterMoves(t *testing.T, e *harness.Env, ins []*harness.Instance, l *couponLoad, templateID, stock int64, moved map[int]bool) {
	t.Helper()
	busyClaims := checkAnswers(t, "coupon claim", l.claims, moved)
	busyRedeems := checkAnswers(t, "coupon redemption", l.redeems, moved)
	t.Logf("%d coupons claimed of %d asked (%d busy); %d redemptions tried (%d busy), %d redeemed during the moves",
		len(l.claimed), len(l.claims), busyClaims, len(l.redeems), busyRedeems, len(l.redeemed))
	for _, u := range l.unlisted {
		t.Errorf("the user's list missed %s", u)
	}

	// The records: one per claim answered 201, on the host the map names.
	ctx := context.Background()
	tables, err := e.CouponTables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[int64]int{}
	for _, tb := range tables {
		r, err := tb.DB.QueryContext(ctx, "SELECT id, user_id FROM "+tb.Name+" WHERE template_id = ? AND status <> 3", templateID)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var id, user int64
			if err := r.Scan(&id, &user); err != nil {
				t.Fatal(err)
			}
			rows[id]++
			if want, ok := l.claimed[id]; !ok || want != user {
				t.Errorf("coupon %d of user %d is recorded in %s, and was not answered 201 to that user", id, user, tb.Name)
			}
		}
		r.Close()
	}
	for id, user := range l.claimed {
		if rows[id] != 1 {
			t.Errorf("coupon %d of user %d is recorded %d times", id, user, rows[id])
		}
	}
	st := templateStats(t, ins[0], templateID)
	if st.Issued != int64(len(l.claimed)) || st.Stock-st.RedisRemaining != int64(len(l.claimed)) || st.Stock != stock {
		t.Errorf("coupons: %d answered 201, %d issued in MySQL, %d taken from Redis (stock %d)",
			len(l.claimed), st.Issued, st.Stock-st.RedisRemaining, st.Stock)
	}

	// Every coupon is listed, and redeemable, on either instance.
	for id, user := range l.claimed {
		in := ins[int(id%2)]
		if !listed(t, in, user, id) {
			t.Errorf("coupon %d of user %d is not listed after the moves", id, user)
		}
		if code, e := redeemCoupon(t, in, id, user); code != http.StatusOK {
			t.Errorf("coupon %d of user %d: redeem after the moves answered %d %s", id, user, code, e)
		}
	}
	if st := templateStats(t, ins[1], templateID); st.Used != int64(len(l.claimed)) {
		t.Errorf("%d coupons used, want every one of %d", st.Used, len(l.claimed))
	}
}
