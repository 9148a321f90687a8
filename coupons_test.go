package main_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/store"
)

// The coupon API as its clients see it: templates, claims, redemption and
// the figures, with the refusals the contract names.

type couponTemplate struct {
	ID           int64   `json:"id"`
	Name         string  `json:"name"`
	Type         string  `json:"type"`
	Value        int64   `json:"value"`
	Threshold    int64   `json:"threshold"`
	Stock        int64   `json:"stock"`
	PerUserLimit int     `json:"per_user_limit"`
	ValidFor     string  `json:"valid_for"`
	SubStocks    int     `json:"sub_stocks"`
	Remaining    *int64  `json:"remaining"`
	StartAt      *string `json:"start_at"`
	EndAt        *string `json:"end_at"`
}

type claimedCoupon struct {
	CouponID   string `json:"coupon_id"`
	TemplateID int64  `json:"template_id"`
	UserID     int64  `json:"user_id"`
	Status     string `json:"status"`
	ExpiresAt  string `json:"expires_at"`
	OrderID    string `json:"order_id"`
	Error      string `json:"error"`
}

type couponStats struct {
	Stock          int64 `json:"stock"`
	Issued         int64 `json:"issued"`
	RedisRemaining int64 `json:"redis_remaining"`
	SubStocks      []struct {
		Index     int    `json:"index"`
		Remaining *int64 `json:"remaining"`
	} `json:"sub_stocks"`
	Used       int64 `json:"used"`
	Expired    int64 `json:"expired"`
	PendingOps int   `json:"pending_ops"`
}

func createTemplate(t testing.TB, in *harness.Instance, body map[string]any) couponTemplate {
	t.Helper()
	var tpl couponTemplate
	if code := in.Call(t, "POST", "/admin/coupon-templates", body, &tpl); code != http.StatusCreated {
		t.Fatalf("create template %v: %d", body, code)
	}
	return tpl
}

func claim(t testing.TB, in *harness.Instance, userID, templateID int64, key string) (int, claimedCoupon) {
	t.Helper()
	var c claimedCoupon
	var header []string
	if key != "" {
		header = []string{"Idempotency-Key", key}
	}
	code, err := in.Do(context.Background(), "POST", "/coupons/claim", map[string]any{"user_id": userID, "template_id": templateID}, &c, header...)
	if err != nil {
		t.Error(err)
	}
	return code, c
}

func templateStats(t testing.TB, in *harness.Instance, id int64) couponStats {
	t.Helper()
	var s couponStats
	if code := in.Call(t, "GET", fmt.Sprintf("/admin/coupon-templates/%d/stats", id), nil, &s); code != http.StatusOK {
		t.Fatalf("stats: %d", code)
	}
	return s
}

func TestCouponContract(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)

	t.Run("bad templates", func(t *testing.T) {
		for name, body := range map[string]string{
			"malformed":           `{"name":`,
			"missing stock":       `{"name":"a","type":"fixed","value":100}`,
			"unknown type":        `{"name":"a","type":"gift","value":100,"stock":1}`,
			"percent over 99":     `{"name":"a","type":"percent","value":100,"stock":1}`,
			"threshold below":     `{"name":"a","type":"threshold","value":500,"threshold":100,"stock":1}`,
			"negative stock":      `{"name":"a","type":"fixed","value":100,"stock":-1}`,
			"bad valid_for":       `{"name":"a","type":"fixed","value":100,"stock":1,"valid_for":"soon"}`,
			"too many subs":       `{"name":"a","type":"fixed","value":100,"stock":1,"sub_stocks":65}`,
			"end before start":    `{"name":"a","type":"fixed","value":100,"stock":1,"start_at":"2030-01-02T00:00:00Z","end_at":"2030-01-01T00:00:00Z"}`,
			"unknown field":       `{"name":"a","type":"fixed","value":100,"stock":1,"colour":"red"}`,
			"negative user limit": `{"name":"a","type":"fixed","value":100,"stock":1,"per_user_limit":-1}`,
		} {
			if status, code := in.Raw(t, "POST", "/admin/coupon-templates", "application/json", body, "Authorization", "Bearer "+harness.AdminToken); status != 400 {
				t.Errorf("%s: %d %s, want 400", name, status, code)
			}
		}
		if status, _ := in.Raw(t, "POST", "/admin/coupon-templates", "application/json", `{"name":"a","type":"fixed","value":1,"stock":1}`, "Authorization", "Bearer wrong"); status != 401 {
			t.Errorf("without the admin token: %d, want 401", status)
		}
	})

	tpl := createTemplate(t, in, map[string]any{"name": "10 off", "type": "fixed", "value": 1000, "stock": 3, "per_user_limit": 1, "valid_for": "72h", "sub_stocks": 2})
	if tpl.ID == 0 || tpl.Name != "10 off" || tpl.Value != 1000 || tpl.Stock != 3 || tpl.SubStocks != 2 || tpl.ValidFor != "72h0m0s" || tpl.PerUserLimit != 1 {
		t.Fatalf("created %+v", tpl)
	}
	var pub couponTemplate
	if code := in.Call(t, "GET", fmt.Sprintf("/coupon-templates/%d", tpl.ID), nil, &pub); code != 200 || pub.Remaining == nil || *pub.Remaining != 3 {
		t.Fatalf("public template: %d %+v", code, pub)
	}
	if status, code := in.Raw(t, "GET", "/coupon-templates/987654", "", ""); status != 404 || code != "not_found" {
		t.Errorf("unknown template: %d %s", status, code)
	}

	// Claims: one per user, a retry under its key gets the same coupon.
	code, c1 := claim(t, in, 1, tpl.ID, "k-1")
	if code != 201 || c1.CouponID == "" || c1.Status != "unused" || c1.UserID != 1 || c1.TemplateID != tpl.ID || c1.ExpiresAt == "" {
		t.Fatalf("claim: %d %+v", code, c1)
	}
	if code, again := claim(t, in, 1, tpl.ID, "k-1"); code != 201 || again.CouponID != c1.CouponID {
		t.Errorf("retry with the key: %d %+v, want coupon %s", code, again, c1.CouponID)
	}
	if code, c := claim(t, in, 1, tpl.ID, ""); code != 409 || c.Error != "limit_exceeded" {
		t.Errorf("second claim of user 1: %d %+v", code, c)
	}
	if code, c := claim(t, in, 1, 987654, ""); code != 404 {
		t.Errorf("unknown template: %d %+v", code, c)
	}
	for name, body := range map[string]string{"no user": `{"template_id":1}`, "zero user": `{"user_id":0,"template_id":1}`, "string id": `{"user_id":"1","template_id":1}`} {
		if status, code := in.Raw(t, "POST", "/coupons/claim", "application/json", body); status != 400 {
			t.Errorf("%s: %d %s", name, status, code)
		}
	}
	claim(t, in, 2, tpl.ID, "")
	claim(t, in, 3, tpl.ID, "")
	if code, c := claim(t, in, 4, tpl.ID, ""); code != 409 || c.Error != "out_of_stock" {
		t.Errorf("past the stock: %d %+v", code, c)
	}

	other := createTemplate(t, in, map[string]any{"name": "5%", "type": "percent", "value": 5, "stock": 10})
	if code, c := claim(t, in, 1, other.ID, "k-1"); code != 422 || c.Error != "idempotency_key_mismatch" {
		t.Errorf("key reused for another template: %d %+v", code, c)
	}

	// Redemption.
	redeem := func(id string, user int64, order any) (int, map[string]any) {
		var out map[string]any
		code := in.Call(t, "POST", "/coupons/"+id+"/redeem", map[string]any{"user_id": user, "order_id": order}, &out)
		return code, out
	}
	if code, out := redeem(c1.CouponID, 1, "1234567890123456789"); code != 200 || out["status"] != "used" {
		t.Errorf("redeem: %d %v", code, out)
	}
	if code, _ := redeem(c1.CouponID, 1, 1234567890123456789); code != 200 {
		t.Errorf("redeem for the same order again: %d", code)
	}
	if code, out := redeem(c1.CouponID, 1, 42); code != 409 || out["error"] != "coupon_used" {
		t.Errorf("redeem for another order: %d %v", code, out)
	}
	if code, _ := redeem(c1.CouponID, 2, 42); code != 404 {
		t.Errorf("another user's coupon: %d", code)
	}
	var mine struct {
		Coupons []claimedCoupon `json:"coupons"`
	}
	in.Call(t, "GET", "/users/1/coupons?status=used", nil, &mine)
	if len(mine.Coupons) != 1 || mine.Coupons[0].CouponID != c1.CouponID || mine.Coupons[0].OrderID != "1234567890123456789" {
		t.Errorf("user 1's used coupons: %+v", mine.Coupons)
	}
	if status, _ := in.Raw(t, "GET", "/users/1/coupons?status=lost", "", ""); status != 400 {
		t.Errorf("unknown status filter: %d", status)
	}

	// Stock added once per op id, spread over the sub-stocks.
	var added struct {
		Added bool `json:"added"`
	}
	for i, want := range []bool{true, false} {
		if code := in.Call(t, "POST", fmt.Sprintf("/admin/coupon-templates/%d/stock", tpl.ID), map[string]any{"add": 4, "op_id": "top-up-1"}, &added); code != 200 || added.Added != want {
			t.Errorf("addition %d: %d added=%v", i, code, added.Added)
		}
	}
	st := templateStats(t, in, tpl.ID)
	if st.Stock != 7 || st.Issued != 3 || st.RedisRemaining != 4 || st.Used != 1 || len(st.SubStocks) != 2 || st.PendingOps != 0 {
		t.Errorf("stats %+v", st)
	}
	if code, c := claim(t, in, 4, tpl.ID, ""); code != 201 {
		t.Errorf("claim after the addition: %d %+v", code, c)
	}

	// Expiry: a short-lived coupon cannot be used once expired and lists so.
	short := createTemplate(t, in, map[string]any{"name": "flash", "type": "threshold", "value": 500, "threshold": 3000, "stock": 5, "valid_for": "2s"})
	_, sc := claim(t, in, 7, short.ID, "")
	var below map[string]any
	if code := in.Call(t, "POST", "/coupons/"+sc.CouponID+"/redeem", map[string]any{"user_id": 7, "order_id": 9, "amount": 2999}, &below); code != 409 || below["error"] != "threshold_not_met" {
		t.Errorf("below the threshold: %d %v", code, below)
	}
	harness.Eventually(t, 10*time.Second, func() bool {
		var db int
		at := service.CouponTable(7)
		tables, err := e.CouponTables(context.Background())
		for _, tb := range tables {
			if err == nil && tb.Name == service.LogicalCouponTableName(at.DB-1, at.Table) {
				err = tb.DB.QueryRow("SELECT status FROM "+tb.Name+" WHERE id = ?", sc.CouponID).Scan(&db)
			}
		}
		return err == nil && db == 2
	}, "the expiry message marks the coupon expired")
	if code, out := redeem(sc.CouponID, 7, 9); code != 409 || out["error"] != "coupon_expired" {
		t.Errorf("redeem expired: %d %v", code, out)
	}
	in.Call(t, "GET", "/users/7/coupons?status=expired", nil, &mine)
	if len(mine.Coupons) != 1 || mine.Coupons[0].Status != "expired" {
		t.Errorf("user 7's expired coupons: %+v", mine.Coupons)
	}

	// Sale window.
	future := createTemplate(t, in, map[string]any{"name": "later", "type": "fixed", "value": 1, "stock": 5, "start_at": time.Now().Add(time.Hour).Format(time.RFC3339)})
	if code, c := claim(t, in, 1, future.ID, ""); code != 409 || c.Error != "not_started" {
		t.Errorf("before the start: %d %+v", code, c)
	}
	var list struct {
		Templates []couponTemplate `json:"templates"`
	}
	in.Call(t, "GET", "/coupon-templates", nil, &list)
	for _, l := range list.Templates {
		if l.ID == future.ID {
			t.Errorf("a template not started is listed as claimable")
		}
	}
}

// A claim storm on one template with sub-stocks: exactly the stock is
// issued, never more; each user's limit holds under concurrent claims of
// one user; afterwards Redis holds stock - issued.
func TestCouponClaimStormIssuesExactlyTheStock(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	const stock = 300
	tpl := createTemplate(t, in, map[string]any{"name": "storm", "type": "fixed", "value": 100, "stock": stock, "per_user_limit": 2, "sub_stocks": 4})
	var created, refused, other atomic.Int64
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				// 200 users, each claiming three times at once: two fit.
				user := int64((w*20+i)%200 + 1)
				code, _ := claim(t, in, user, tpl.ID, "")
				switch code {
				case 201:
					created.Add(1)
				case 409:
					refused.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	st := templateStats(t, in, tpl.ID)
	if st.Issued != created.Load() || st.Issued > stock || other.Load() != 0 {
		t.Fatalf("issued %d, answered 201 %d times, 409 %d, other %d (stock %d)", st.Issued, created.Load(), refused.Load(), other.Load(), stock)
	}
	if st.Issued != stock || st.RedisRemaining != 0 {
		t.Errorf("demand (640 claims, 400 allowed) passed the stock: issued %d, redis %d, want %d and 0", st.Issued, st.RedisRemaining, stock)
	}
	var perUser int
	tables, err := e.CouponTables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		var n int
		if err := tb.DB.QueryRow("SELECT COALESCE(MAX(c), 0) FROM (SELECT COUNT(*) c FROM "+tb.Name+" WHERE template_id = ? AND status <> 3 GROUP BY user_id) x", tpl.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		perUser = max(perUser, n)
	}
	if perUser > 2 {
		t.Errorf("a user holds %d coupons of a template limited to 2", perUser)
	}
}

// A unit taken from Redis with no record (an instance died between the
// two) is given back by reconciliation after consecutive passes see it;
// units Redis gained are taken off the same way.
func TestCouponReconciliationRepairsSubStocks(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	tpl := createTemplate(t, in, map[string]any{"name": "rec", "type": "fixed", "value": 100, "stock": 10, "sub_stocks": 2})
	claim(t, in, 1, tpl.ID, "")
	st := templateStats(t, in, tpl.ID)
	if st.RedisRemaining != 9 {
		t.Fatalf("before: %+v", st)
	}
	keys, err := e.Redis().Keys(context.Background(), store.CouponStockKey(e.Prefix, "*")).Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("sub-stock keys %v: %v", keys, err)
	}
	// Lose three units (taken, never recorded) from one sub-stock.
	e.Redis().HIncrBy(context.Background(), keys[0], "stock", -3)
	var rep struct {
		Coupons []struct {
			TemplateID int64 `json:"template_id"`
			Drift      int64 `json:"drift"`
			Seen       int   `json:"seen"`
			Repaired   bool  `json:"repaired"`
		} `json:"coupons"`
	}
	for pass := 1; pass <= 3; pass++ {
		in.Call(t, "POST", "/admin/reconcile", nil, &rep)
		for _, d := range rep.Coupons {
			if d.TemplateID == tpl.ID && (d.Drift != -3 || d.Seen != pass || d.Repaired != (pass == 3)) {
				t.Errorf("pass %d: %+v", pass, d)
			}
		}
	}
	if st := templateStats(t, in, tpl.ID); st.RedisRemaining != 9 || st.Issued != 1 {
		t.Errorf("after the repair: %+v", st)
	}
}

// The standalone mode (SQLite files, in-process Redis) issues coupons with
// the same promises.
func TestCouponsInTheStandaloneMode(t *testing.T) {
	t.Parallel()
	e := harness.NewStandaloneEnv(t)
	in := e.Start(t)
	tpl := createTemplate(t, in, map[string]any{"name": "solo", "type": "fixed", "value": 100, "stock": 5, "sub_stocks": 3})
	var wg sync.WaitGroup
	var created atomic.Int64
	for u := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _ := claim(t, in, int64(u+1), tpl.ID, ""); code == 201 {
				created.Add(1)
			}
		}()
	}
	wg.Wait()
	if st := templateStats(t, in, tpl.ID); created.Load() != 5 || st.Issued != 5 || st.RedisRemaining != 0 {
		t.Errorf("issued %d (201 x%d), redis %d; want 5 of 5", st.Issued, created.Load(), st.RedisRemaining)
	}
}

// On a real three-master Redis Cluster: a template's sub-stocks land on
// different masters, a claim storm issues exactly the stock, and with one
// master killed mid-storm the claims go on from the sub-stocks on the
// others (its own are skipped, not waited on), never issuing more than the
// stock; once it is back, reconciliation finds Redis = truth.
func TestCouponsOnARedisCluster(t *testing.T) {
	t.Parallel()
	cluster := testenv.RedisCluster(t)
	e := harness.NewEnv(t)
	e.UseRedisCluster(t, cluster)
	in := e.Start(t)
	const stock = 3000
	tpl := createTemplate(t, in, map[string]any{"name": "cluster", "type": "fixed", "value": 100, "stock": stock, "per_user_limit": 0})
	if tpl.SubStocks != 3 {
		t.Errorf("default split of %d units over 3 masters: %d sub-stocks, want 3", stock, tpl.SubStocks)
	}
	keys := couponStockKeys(t, e, cluster)
	masters := map[int]bool{}
	for _, k := range keys {
		masters[cluster.MasterOf(k)] = true
	}
	if len(keys) != 3 || len(masters) != 3 {
		t.Errorf("sub-stock keys %v on masters %v, want one on each of 3", keys, masters)
	}

	var created, unavailable, other atomic.Int64
	storm := func(users int64, from int64) {
		var wg sync.WaitGroup
		next := atomic.Int64{}
		next.Store(from)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					u := next.Add(1)
					if u > from+users {
						return
					}
					switch code, _ := claim(t, in, u, tpl.ID, ""); code {
					case 201:
						created.Add(1)
					case 503:
						unavailable.Add(1)
					default:
						other.Add(1)
					}
				}
			}()
		}
		wg.Wait()
	}
	storm(1000, 0)
	cluster.Kill(t, 0)
	start := time.Now()
	storm(1000, 1000)
	during := time.Since(start)
	cluster.Restart(t, 0)
	storm(2000, 2000)
	st := templateStats(t, in, tpl.ID)
	t.Logf("claims: 201 x%d, 503 x%d, other x%d; 1000 claims with a master down took %v; stats %+v",
		created.Load(), unavailable.Load(), other.Load(), during, st)
	if st.Issued != created.Load() || st.Issued > stock {
		t.Fatalf("issued %d, 201 answered %d times (stock %d)", st.Issued, created.Load(), stock)
	}
	if st.Issued+st.RedisRemaining != stock {
		t.Errorf("issued %d + redis %d != stock %d", st.Issued, st.RedisRemaining, stock)
	}
	if st.Issued != stock {
		t.Errorf("4000 claims for 3000 units issued only %d", st.Issued)
	}
}

// couponStockKeys finds the sub-stock keys of the env's prefix on every
// master.
func couponStockKeys(t *testing.T, e *harness.Env, c *testenv.Cluster) []string {
	t.Helper()
	var mu sync.Mutex
	var keys []string
	err := c.Client().ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		ks, err := m.Keys(ctx, store.CouponStockKey(e.Prefix, "*")).Result()
		mu.Lock()
		keys = append(keys, ks...)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
