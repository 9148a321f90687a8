package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The read phase: GET /goods/:id of one goods under wrk, as the shopper
// pages poll it, answered by V9's goods cache. It counts the MySQL
// statements the read route made (zero is the goal) and every statement
// the instance made meanwhile (its background loops), from /metrics
// scraped before and after the load.

// readPhase is what the read phase measured.
type readPhase struct {
	Wrk      wrkResult `json:"wrk"`
	Bound    float64   `json:"http_ceiling_rps"` // the trivial Gin handler's rate
	Fraction float64   `json:"fraction"`         // of the HTTP ceiling
	// RouteStatements are the MySQL statements GET /goods/:id made during
	// the load; AllStatements every MySQL statement of the instance then.
	RouteStatements float64 `json:"route_mysql_statements"`
	AllStatements   float64 `json:"all_mysql_statements"`
	// Lookups of the goods cache during the load, by "level result".
	Lookups map[string]float64 `json:"cache_lookups"`
	Err     string             `json:"error,omitempty"`
}

// readRoute is the route the read phase loads.
const readRoute = "/goods/:id"

func (p readPhase) ok() bool {
	return p.Err == "" && p.RouteStatements == 0 && p.Wrk.Other == 0 && p.Wrk.SocketErrors() == 0
}

// runReadPhase loads GET /goods/:id on svc for o.Duration.
func runReadPhase(ctx context.Context, svc *service, o options, root string, httpCeiling float64) readPhase {
	var p readPhase
	fail := func(err error) readPhase { p.Err = err.Error(); return p }
	id, err := svc.createGoods(ctx, "read phase", 1000, 0)
	if err != nil {
		return fail(err)
	}
	metricsURL, err := svc.metricsURL()
	if err != nil {
		return fail(err)
	}
	before, err := scrape(ctx, metricsURL)
	if err != nil {
		return fail(err)
	}
	w := wrkRun{URL: svc.Base, Path: fmt.Sprintf("/goods/%d", id), GoodsID: id, Script: filepath.Join(root, "wrk", "read.lua"),
		Threads: o.Threads, Conns: o.Conns, Duration: o.Duration}
	if p.Wrk, _, err = w.run(ctx); err != nil {
		return fail(err)
	}
	after, err := scrape(ctx, metricsURL)
	if err != nil {
		return fail(err)
	}
	p.RouteStatements = after.sum("seckill_dependency_statements_by_route_total", map[string]string{"dependency": "mysql", "route": readRoute}) -
		before.sum("seckill_dependency_statements_by_route_total", map[string]string{"dependency": "mysql", "route": readRoute})
	p.AllStatements = after.sum("seckill_dependency_duration_seconds", map[string]string{"dependency": "mysql"}) -
		before.sum("seckill_dependency_duration_seconds", map[string]string{"dependency": "mysql"})
	p.Lookups = map[string]float64{}
	for _, level := range []string{"memory", "redis"} {
		for _, result := range []string{"hit", "miss"} {
			l := map[string]string{"level": level, "result": result}
			p.Lookups[level+" "+result] = after.sum("seckill_goods_cache_lookups_total", l) - before.sum("seckill_goods_cache_lookups_total", l)
		}
	}
	p.Bound = httpCeiling
	if httpCeiling > 0 {
		p.Fraction = p.Wrk.RPS / httpCeiling
	}
	return p
}

// metrics are the families of one scrape.
type metrics map[string]*dto.MetricFamily

func scrape(ctx context.Context, url string) (metrics, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// sum adds the samples of family name whose labels include want: counter
// values, or a histogram's counts.
func (m metrics) sum(name string, want map[string]string) float64 {
	var n float64
	f := m[name]
	if f == nil {
		return 0
	}
next:
	for _, s := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range s.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		if h := s.GetHistogram(); h != nil {
			n += float64(h.GetSampleCount())
		} else {
			n += s.GetCounter().GetValue()
		}
	}
	return n
}

var reMetricsAddr = regexp.MustCompile(`msg="metrics serving" addr=(\S+)`)

// metricsURL is where the service serves /metrics, read from its log.
func (s *service) metricsURL() (string, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		log, err := os.ReadFile(s.logPath)
		if err != nil {
			return "", err
		}
		if m := reMetricsAddr.FindSubmatch(log); m != nil {
			return "http://" + string(m[1]) + "/metrics", nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the service log says nowhere where /metrics is served")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func logReadPhase(logf func(string, ...any), p readPhase) {
	if p.Err != "" {
		logf("V9 reads FAILED: %s", p.Err)
		return
	}
	status := "ok"
	if !p.ok() {
		status = "FAILED"
	}
	logf("V9 reads GET %s %9.0f req/s  p50 %-8s p99 %-8s  %.0f%% of the HTTP ceiling (%.0f req/s)  MySQL statements: read route %.0f, whole instance %.0f  cache %s  %s",
		readRoute, p.Wrk.RPS, fmtDur(p.Wrk.P50), fmtDur(p.Wrk.P99), 100*p.Fraction, p.Bound, p.RouteStatements, p.AllStatements, lookupsLine(p.Lookups), status)
}

func lookupsLine(l map[string]float64) string {
	var parts []string
	for _, k := range []string{"memory hit", "memory miss", "redis hit", "redis miss"} {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, l[k]))
	}
	return strings.Join(parts, ", ")
}

// readsMarkdown is the report's section of the read phase.
func readsMarkdown(p *readPhase) string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	w("\n## V9: goods reads from the cache\n\n")
	if p.Err != "" {
		w("The read phase failed: `%s`.\n", oneLine(p.Err))
		return b.String()
	}
	w("`GET %s` of one goods under the same wrk settings (`wrk/read.lua`), answered by V9's\n", readRoute)
	w("goods cache (this instance's memory in front of Redis), against the HTTP ceiling.\n")
	w("MySQL statements from `/metrics` scraped before and after the load.\n\n")
	w("| req/s | p50 | p99 | of the HTTP ceiling | MySQL statements of the route | of the whole instance (background loops) | cache lookups |\n")
	w("|---:|---:|---:|---:|---:|---:|---|\n")
	w("| %s | %s | %s | %.0f%% of %s | %.0f | %.0f | %s |\n", thousands(int64(p.Wrk.RPS)), fmtDur(p.Wrk.P50), fmtDur(p.Wrk.P99),
		100*p.Fraction, thousands(int64(p.Bound)), p.RouteStatements, p.AllStatements, lookupsLine(p.Lookups))
	return b.String()
}

// httpCeilingRate is the HTTP ceiling's rate among cs; 0 when not measured.
func httpCeilingRate(cs []ceiling) float64 {
	for _, c := range cs {
		if c.ID == ceilHTTP {
			return c.Rate
		}
	}
	return 0
}

// runReadsOnly measures the HTTP ceiling and the read phase on svc, and
// nothing else: a quick look at V9's reads without the whole run.
func runReadsOnly(ctx context.Context, svc *service, o options, co ceilingOptions, root string, logf func(string, ...any)) *readPhase {
	l, err := httpCeiling(ctx, co)
	if err != nil {
		return &readPhase{Err: "http ceiling: " + err.Error()}
	}
	logf("http ceiling %.0f req/s", l.rate())
	p := runReadPhase(ctx, svc, o, root, l.rate())
	return &p
}
