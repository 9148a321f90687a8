package main_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/service"
)

// answerKey is one series of seckill_http_answers_total.
type answerKey struct {
	route, version, code string
}

// answers counts the statuses a client saw, by route and version.
type answers struct {
	mu sync.Mutex
	n  map[answerKey]int
}

func (a *answers) add(route, version string, code int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n[answerKey{route, version, strconv.Itoa(code)}]++
}

// After a stampede of orders on two versions and /order, with coupon
// claims alongside, the answer counters on /metrics equal the answers the
// clients saw, route by route and status by status; every answer was
// timed; nothing is left in flight; the dependencies were timed; and
// /metrics is served on the internal listener only.
func TestMetricsCountTheAnswersGiven(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	seen := &answers{n: map[answerKey]int{}}

	goods := in.CreateGoods(t, 60)
	seen.add("/admin/goods", "", http.StatusCreated)
	tpl := createTemplate(t, in, map[string]any{"name": "5 off", "type": "fixed", "value": 500, "stock": 30, "per_user_limit": 0})
	seen.add("/admin/coupon-templates", "", http.StatusCreated)

	names := service.VersionNames()
	best := service.BestVersion().Name
	versions := []string{names[1], best, ""} // V2, the best, and /order
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 240 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			v := versions[i%len(versions)]
			code, _ := in.Order(t, v, rand.Int64N(1_000_000)+1, goods.ID, 1)
			label := v
			if v == "" {
				label = best
			}
			seen.add("/order"+v, label, code)
		}()
	}
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			code, _ := claim(t, in, int64(i+1), tpl.ID, "")
			seen.add("/coupons/claim", "", code)
		}()
	}
	close(start)
	wg.Wait()
	// A read, an unknown path and a wrong method.
	code := in.Call(t, "GET", fmt.Sprintf("/goods/%d", goods.ID), nil, nil)
	seen.add("/goods/:id", "", code)
	code, _ = in.Raw(t, "GET", "/no-such-route", "", "")
	seen.add("unmatched", "", code)
	code, _ = in.Raw(t, "DELETE", "/goods", "", "")
	seen.add("unmatched", "", code)
	if code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /goods: %d, want 405", code)
	}

	// /metrics is not on the public listener.
	if code, _ := in.Raw(t, "GET", "/metrics", "", ""); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the public listener: %d, want 404", code)
	}
	seen.add("unmatched", "", http.StatusNotFound)

	fams := in.Scrape(t)
	got := map[answerKey]int{}
	for _, m := range fams["seckill_http_answers_total"].GetMetric() {
		l := harness.Labels(m)
		got[answerKey{l["route"], l["version"], l["code"]}] = int(m.GetCounter().GetValue())
	}
	for k, n := range seen.n {
		if got[k] != n {
			t.Errorf("answers %+v: counter %d, the clients saw %d", k, got[k], n)
		}
	}
	for k, n := range got {
		if _, ok := seen.n[k]; !ok {
			t.Errorf("answers %+v: counter %d, the clients saw none", k, n)
		}
	}
	perRoute := map[string]int{}
	for k, n := range seen.n {
		perRoute[k.route] += n
	}
	for _, m := range fams["seckill_http_request_duration_seconds"].GetMetric() {
		route := harness.Labels(m)["route"]
		if n := int(m.GetHistogram().GetSampleCount()); n != perRoute[route] {
			t.Errorf("latency of %s: %d samples, %d answers", route, n, perRoute[route])
		}
	}
	sold := 0
	for k, n := range seen.n {
		if k.code == "201" && k.route != "/admin/goods" && k.route != "/admin/coupon-templates" && k.route != "/coupons/claim" {
			sold += n
		}
	}
	if sold != 60 {
		t.Errorf("%d orders answered 201, want the stock, 60", sold)
	}

	gauge := func(name string) float64 {
		f := fams[name]
		if f == nil || len(f.GetMetric()) == 0 {
			t.Errorf("no %s", name)
			return -1
		}
		m := f.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	if v := gauge("seckill_http_in_flight"); v != 0 {
		t.Errorf("in flight after the stampede: %v", v)
	}
	if v := gauge("seckill_http_max_in_flight"); v != float64(in.Config.HTTP.MaxInFlight) {
		t.Errorf("max in flight %v, want %d", v, in.Config.HTTP.MaxInFlight)
	}
	for _, name := range []string{"seckill_http_shed_total", "seckill_http_rate_limited_total"} {
		if v := gauge(name); v != 0 {
			t.Errorf("%s = %v, want 0", name, v)
		}
	}
	deps := map[string]bool{}
	for _, m := range fams["seckill_dependency_duration_seconds"].GetMetric() {
		if m.GetHistogram().GetSampleCount() > 0 {
			deps[harness.Labels(m)["dependency"]] = true
		}
	}
	for _, d := range []string{"redis", "mysql", "nsqd"} {
		if !deps[d] {
			t.Errorf("no call to %s timed (timed: %v)", d, deps)
		}
	}
	for _, name := range []string{"seckill_dead_letters_total", "seckill_reconcile_drifting", "seckill_consumer_messages_total",
		"seckill_coupon_cache_hits_total", "seckill_coupon_cache_misses_total", "go_sql_open_connections"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	redisStock := -1.0
	for _, m := range fams["seckill_goods_stock"].GetMetric() {
		if l := harness.Labels(m); l["goods_id"] == strconv.FormatInt(goods.ID, 10) && l["store"] == "redis" {
			redisStock = m.GetGauge().GetValue()
		}
	}
	if redisStock != 0 {
		t.Errorf("the goods' stock in Redis on /metrics: %v, want 0 after the sale", redisStock)
	}
	harness.Eventually(t, 10*time.Second, func() bool {
		fams := in.Scrape(t)
		for _, m := range fams["seckill_consumer_lag_seconds"].GetMetric() {
			if harness.Labels(m)["topic"] == in.Config.NSQ.Topic && m.GetHistogram().GetSampleCount() > 0 {
				return true
			}
		}
		return false
	}, "the consumer's lag observed")
}
