package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	domain "github.com/go-seckill/seckill/service"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve the HTTP ceiling as the bench's
// binary does, for the runs the tests start (TestSmoke).
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == ceilingServerArg {
		serveHTTPCeiling()
		return
	}
	os.Exit(m.Run())
}

const wrkInStock = `Running 8s test @ http://127.0.0.1:40123/orderV2
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    11.74ms    8.12ms 120.33ms   80.50%
    Req/Sec     2.45k   210.11     3.01k    70.00%
  Latency Distribution
     50%   11.74ms
     75%   15.02ms
     90%   21.50ms
     99%   42.65ms
  39042 requests in 8.00s, 9.31MB read
Requests/sec:   4880.42
Transfer/sec:      1.16MB
orders: created=39042 sold_out=0 other=0
`

const wrkSoldOut = `Running 8s test @ http://127.0.0.1:40123/orderV2
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.00us  300.00us   2.00s    90.00%
    Req/Sec    20.10k     1.20k    24.00k    70.00%
  Latency Distribution
     50%  760.00us
     75%    0.90ms
     90%    1.10ms
     99%    1.52s
  321600 requests in 1.00m, 60.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 7
  Non-2xx or 3xx responses: 321600
Requests/sec:  40200.12
Transfer/sec:      7.50MB
orders: created=0 sold_out=321598 other=2
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkInStock)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{Requests: 39042, Elapsed: 8 * time.Second, RPS: 4880.42,
		P50: 11740 * time.Microsecond, P90: 21500 * time.Microsecond, P99: 42650 * time.Microsecond, Created: 39042}
	if r != want {
		t.Errorf("in stock:\n got %+v\nwant %+v", r, want)
	}

	r, err = parseWrk(wrkSoldOut)
	if err != nil {
		t.Fatal(err)
	}
	want = wrkResult{Requests: 321600, Elapsed: time.Minute, RPS: 40200.12,
		P50: 760 * time.Microsecond, P90: 1100 * time.Microsecond, P99: 1520 * time.Millisecond,
		Non2xx: 321600, Read: 2, Timeout: 7, SoldOut: 321598, Other: 2}
	if r != want {
		t.Errorf("sold out:\n got %+v\nwant %+v", r, want)
	}
	if r.SocketErrors() != 9 {
		t.Errorf("SocketErrors = %d, want 9", r.SocketErrors())
	}
}

func TestParseWrkReadsClaims(t *testing.T) {
	out := strings.Replace(wrkInStock, "orders: created=39042 sold_out=0 other=0", "claims: created=39000 out_of_stock=2 other=40", 1)
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Created != 39000 || r.SoldOut != 2 || r.Other != 40 {
		t.Errorf("claims line: created %d, 409 %d, other %d", r.Created, r.SoldOut, r.Other)
	}
}

func TestParseWrkRejectsIncompleteOutput(t *testing.T) {
	for name, out := range map[string]string{
		"empty":           "",
		"no latency":      strings.Replace(wrkInStock, "     99%   42.65ms\n", "", 1),
		"no order counts": strings.Replace(wrkInStock, "orders: created=39042 sold_out=0 other=0\n", "", 1),
		"no rate":         strings.Replace(wrkInStock, "Requests/sec:   4880.42\n", "", 1),
		"bad unit":        strings.Replace(wrkInStock, "42.65ms", "42.65xs", 1),
	} {
		if _, err := parseWrk(out); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestWrkSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Second: "1s", 8 * time.Second: "8s", 1500 * time.Millisecond: "2s", 0: "1s"} {
		if got := wrkSeconds(d); got != want {
			t.Errorf("wrkSeconds(%s) = %s, want %s", d, got, want)
		}
	}
}

func TestRequireLoopback(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80"} {
		if err := requireLoopback(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1:8080", "http://example.com", "http://0.0.0.0:80"} {
		if requireLoopback(u) == nil {
			t.Errorf("%s accepted", u)
		}
	}
}

func testCeilings() []ceiling {
	return []ceiling{
		{ID: ceilHTTP, Rate: 80000}, {ID: ceilEvalSHA, Rate: 130000}, {ID: ceilHINCRBY, Rate: 150000},
		{ID: ceilInsert1, Rate: 19000}, {ID: ceilInsert16, Rate: 22000}, {ID: ceilHotTx, Rate: 3000},
		{ID: ceilHotMiss, Rate: 9000}, {ID: ceilNSQ, Rate: 50000}, {ID: ceilConsumer, Rate: 4000},
		{ID: ceilTakeCluster, Rate: 100000},
	}
}

func TestBoundFor(t *testing.T) {
	cs := testCeilings()
	for _, tc := range []struct {
		version, phase, want string
		listed               bool
	}{
		{"V1", inStock, ceilHotTx, true},
		{"V1", soldOut, ceilHotMiss, true},
		{"V2", inStock, ceilInsert1, true},
		{"V2", soldOut, ceilHTTP, true},
		{"V3", inStock, ceilInsert16, true},
		{"V5", inStock, ceilInsert16, true},
		{"V6", soldOut, ceilHTTP, true},
		{"V99", inStock, ceilInsert16, false},
		{"V99", soldOut, ceilHTTP, false},
	} {
		b := boundFor(tc.version, tc.phase, cs)
		if b.ID != tc.want || b.Listed != tc.listed {
			t.Errorf("%s %s: bound %+v, want %s listed=%v", tc.version, tc.phase, b, tc.want, tc.listed)
		}
	}

	// A ceiling that could not be measured is not a bound; the next lowest is.
	cs[3].Rate, cs[3].Err = 0, "failed"
	if b := boundFor("V2", inStock, cs); b.ID != ceilNSQ {
		t.Errorf("V2 without the insert ceiling: bound %s, want %s", b.ID, ceilNSQ)
	}
	if b := boundFor("V2", inStock, nil); b.ID != "" || fraction(1000, b) != 0 {
		t.Errorf("no ceilings: bound %+v, fraction %v", b, fraction(1000, b))
	}
	if f := fraction(1500, bound{ID: ceilHotTx, Rate: 3000}); f != 0.5 {
		t.Errorf("fraction = %v, want 0.5", f)
	}
}

func TestPathSum(t *testing.T) {
	cs := []ceiling{{ID: ceilHTTP, Rate: 4000}, {ID: ceilEvalSHA, Rate: 4000}, {ID: ceilHotTx, Rate: 2000}, {ID: ceilHotMiss, Rate: 0}}
	if got := pathSum("V1", inStock, cs); got != 1000 {
		t.Errorf("V1 in stock: %v, want 1000 (1/(1/4000+1/4000+1/2000))", got)
	}
	if got := pathSum("V1", soldOut, cs); got != 0 {
		t.Errorf("V1 sold out with an unmeasured ceiling: %v, want 0", got)
	}
}

func TestEveryListedPathNamesKnownCeilings(t *testing.T) {
	known := map[string]bool{}
	for _, c := range testCeilings() {
		known[c.ID] = true
	}
	known[ceilHINCRBY] = true
	for _, v := range domain.VersionNames() {
		for _, ph := range []string{inStock, soldOut, inStockCluster} {
			path, listed := pathOf(v, ph)
			if len(path) == 0 || !listed {
				t.Errorf("%s has no ceilings for %s", v, ph)
			}
			for _, id := range path {
				if !known[id] {
					t.Errorf("%s %s: unknown ceiling %q", v, ph, id)
				}
			}
		}
	}
}

func i64(v int64) *int64 { return &v }

func TestCheckPhase(t *testing.T) {
	good := phaseResult{Version: "V2", Phase: inStock, Stock: 1000, Drained: true,
		Wrk:   wrkResult{Created: 100},
		After: stats{RedisStock: i64(897), MySQLStock: 897, MySQLSale: 103, Orders: 103, StockLogs: 103}}
	if f, n := checkPhase(good, 64); len(f) != 0 || len(n) != 0 {
		t.Fatalf("clean run: failures %v notes %v", f, n)
	}

	for name, tc := range map[string]struct {
		mutate func(*phaseResult)
		want   string
	}{
		"lost order": {func(p *phaseResult) { p.Wrk.Created = 104 }, "accepted orders are missing"},
		"phantom orders": {func(p *phaseResult) {
			p.Wrk.Created = 10
		}, "nobody was told about"},
		"not drained": {func(p *phaseResult) { p.Drained = false; p.After.StockLogs = 90 }, "not drained"},
		"sold from zero": {func(p *phaseResult) {
			p.Phase, p.Stock = soldOut, 0
		}, "stock 0"},
		"false sold out": {func(p *phaseResult) { p.Wrk.SoldOut = 3 }, "sold out while stock remained"},
	} {
		p := good
		st := *good.After.RedisStock
		p.After.RedisStock = &st
		tc.mutate(&p)
		f, _ := checkPhase(p, 64)
		if !strings.Contains(strings.Join(f, "|"), tc.want) {
			t.Errorf("%s: failures %v, want one containing %q", name, f, tc.want)
		}
	}

	p := good
	p.Wrk.Other, p.Wrk.Timeout = 2, 1
	if f, n := checkPhase(p, 64); len(f) != 0 || len(n) != 2 {
		t.Errorf("503s and timeouts: failures %v notes %v, want two notes only", f, n)
	}
}

func TestCheckCoupons(t *testing.T) {
	good := couponPhase{Redis: onCluster, SubStocks: 2, Stock: 1000, Settled: true,
		Wrk:   wrkResult{Created: 100},
		After: couponState{Issued: 103, SubStocks: []*int64{i64(450), i64(447)}, Masters: 2}}
	if f, n := checkCoupons(good, 64); len(f) != 0 || len(n) != 0 {
		t.Fatalf("clean run: failures %v notes %v", f, n)
	}
	for name, tc := range map[string]struct {
		mutate func(*couponPhase)
		want   string
	}{
		"unit lost":       {func(p *couponPhase) { p.After.SubStocks[0] = i64(449) }, "not the stock"},
		"unit doubled":    {func(p *couponPhase) { p.After.Issued = 104 }, "not the stock"},
		"over-issued":     {func(p *couponPhase) { p.After.Issued, p.After.SubStocks = 1001, []*int64{i64(-1), i64(0)} }, "more than the stock"},
		"negative":        {func(p *couponPhase) { p.After.SubStocks = []*int64{i64(-3), i64(900)} }, "holds -3 units"},
		"missing":         {func(p *couponPhase) { p.After.SubStocks = []*int64{nil, i64(897)} }, "missing from Redis"},
		"201 not stored":  {func(p *couponPhase) { p.Wrk.Created = 104 }, "claimed coupons are missing"},
		"untold coupons":  {func(p *couponPhase) { p.Wrk.Created = 10 }, "nobody was told about"},
		"409 while stock": {func(p *couponPhase) { p.Wrk.SoldOut = 1 }, "409 while stock remained"},
	} {
		p := good
		p.After.SubStocks = []*int64{i64(450), i64(447)}
		tc.mutate(&p)
		f, _ := checkCoupons(p, 64)
		if !strings.Contains(strings.Join(f, "|"), tc.want) {
			t.Errorf("%s: failures %v, want one containing %q", name, f, tc.want)
		}
	}
}

func TestClaimRatios(t *testing.T) {
	cs := []ceiling{{ID: ceilHTTP, Rate: 40000}, {ID: ceilTake, Rate: 80000}, {ID: ceilTakeCluster, Rate: 100000},
		{ID: ceilCouponInsert, Rate: 8000}, {ID: ceilInsert16, Rate: 10000}, {ID: ceilNSQ, Rate: 50000}}
	p := couponPhase{Redis: onCluster, Wrk: wrkResult{RPS: 4000}}
	claimRatios(&p, cs)
	if p.Bound.ID != ceilCouponInsert || p.Fraction != 0.5 {
		t.Errorf("bound %+v fraction %v, want %s at 50%%", p.Bound, p.Fraction, ceilCouponInsert)
	}
	want := map[string]float64{ceilHTTP: 0.1, ceilTakeCluster: 0.04, ceilCouponInsert: 0.5, ceilInsert16: 0.4, ceilNSQ: 0.08}
	if len(p.Ratios) != len(want) {
		t.Errorf("ratios %v, want %v", p.Ratios, want)
	}
	for id, v := range want {
		if p.Ratios[id] != v {
			t.Errorf("ratio to %s = %v, want %v", id, p.Ratios[id], v)
		}
	}
	if got := claimPathSum(onSingle, cs); got < 5479 || got > 5480 {
		t.Errorf("claimPathSum on one Redis = %v, want 1/(1/40000+1/80000+1/8000+1/50000) ≈ 5479", got)
	}
}

func TestDrainFigures(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	samples := []sample{
		{at(250), 1000, 900},
		{at(500), 2000, 1500},
		{at(1000), 3000, 2000}, // wrk ended at 1000
		{at(1500), 3000, 2600},
		{at(2000), 3000, 3000},
	}
	d := drainFigures(samples, t0, at(1000))
	want := drain{MaxLag: 1000, BacklogAtEnd: 1000, Time: time.Second, Rate: 1000, UnderLoad: 2000}
	if d != want {
		t.Errorf("got %+v, want %+v", d, want)
	}
	if d := drainFigures(nil, t0, at(1000)); d != (drain{}) {
		t.Errorf("no samples: %+v", d)
	}
}

func TestRenderChartIsValidXML(t *testing.T) {
	bars := []chartBar{
		{Version: "V1", Phase: inStock, RPS: 1200, P99: 60 * time.Millisecond},
		{Version: "V1", Phase: soldOut, RPS: 5000, P99: 20 * time.Millisecond},
		{Version: "V2 <&>", Phase: inStock, RPS: 9000, P99: 40 * time.Millisecond, Failed: true},
		{Version: "V2 <&>", Phase: soldOut, RPS: 0, P99: 0},
	}
	lines := []chartLine{{"http", 80000}, {"insert-1", 19000}, {"insert-16", 20000}, {"none", 0}}
	svg := renderChart(`title "quoted" & <tagged>`, []string{inStock, soldOut}, bars, lines)
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var texts []string
	var root string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("invalid XML: %v\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			texts = append(texts, string(tok))
		}
	}
	if root != "svg" {
		t.Errorf("root element %q, want svg", root)
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{"V1", "V2 <&>", "FAILED", "http 80k", "insert-1 19k", "1.2k", `title "quoted" & <tagged>`} {
		if !strings.Contains(all, want) {
			t.Errorf("chart text lacks %q", want)
		}
	}
	if strings.Contains(string(svg), "NaN") || strings.Contains(string(svg), "Inf") {
		t.Errorf("chart has NaN or Inf coordinates")
	}
}

func TestNumberFormats(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1221: "1,221", 133274: "133,274", -1500: "-1,500", 100000000: "100,000,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %s, want %s", n, got, want)
		}
	}
	for v, want := range map[float64]string{1234: "1.23k", 133274: "133k", 80: "80", 2_500_000: "2.5M"} {
		if got := si(v); got != want {
			t.Errorf("si(%v) = %s, want %s", v, got, want)
		}
	}
	for d, want := range map[time.Duration]string{760 * time.Microsecond: "760 µs", 2500 * time.Microsecond: "2.50 ms", 42650 * time.Microsecond: "42.6 ms", 1520 * time.Millisecond: "1520 ms"} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%s) = %s, want %s", d, got, want)
		}
	}
}

// TestSmoke runs the whole harness with 1 s loads against the real
// MariaDB, Redis and wrk, into a temporary directory. It needs those
// servers and starts the service, so it runs only when asked.
func TestSmoke(t *testing.T) {
	if os.Getenv("SECKILL_BENCH_SMOKE") != "1" {
		t.Skip("set SECKILL_BENCH_SMOKE=1 to run the benchmark smoke (needs MariaDB, Redis and wrk; about 40 s)")
	}
	o := smokeOptions(defaultOptions())
	o.Out = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := run(ctx, o, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("smoke run: %s", time.Since(start).Round(time.Second))
	// In stock and sold out for every version, the three backlog phases,
	// and in stock on the cluster for the split versions and their baseline.
	if len(res.Phases) != 2*len(res.Versions)+3+len(clusterVersions(res.Versions)) {
		t.Errorf("%d phases for %d versions", len(res.Phases), len(res.Versions))
	}
	for _, p := range res.Phases {
		if !p.measured() {
			t.Errorf("%s %s did not run: %s%s", p.Version, p.Phase, p.Err, p.Skipped)
		}
		if !p.ok() {
			t.Errorf("%s %s: error %q, failures %v", p.Version, p.Phase, p.Err, p.Failures)
		}
	}
	for _, c := range res.Ceilings {
		if c.Err != "" || c.Rate <= 0 {
			t.Errorf("ceiling %s: rate %v, error %q", c.ID, c.Rate, c.Err)
		}
	}
	// A claim phase per sub-stock count on each Redis, each checked.
	if len(res.Coupons) != 2*len(o.SubStocks) {
		t.Errorf("%d coupon phases, want %d", len(res.Coupons), 2*len(o.SubStocks))
	}
	for _, p := range res.Coupons {
		if !p.measured() || !p.ok() || !p.Settled || p.After.Issued < 1 {
			t.Errorf("%s: error %q, skipped %q, failures %v, settled %v, issued %d", p.name(), p.Err, p.Skipped, p.Failures, p.Settled, p.After.Issued)
		}
		if want := min(p.SubStocks, o.Masters); p.Redis == onCluster && p.After.Masters != want {
			t.Errorf("%s: sub-stocks on %d masters, want %d", p.name(), p.After.Masters, want)
		}
	}
	// V3, the best version and V13 held at a rate; both ends of each size.
	if len(res.AtRate) != len(rateVersions(res.Versions, res.Best)) || len(res.Scale) != len(scaleNames) {
		t.Errorf("%d constant-rate phases and %d scale phases", len(res.AtRate), len(res.Scale))
	}
	for _, r := range res.AtRate {
		if r.Skipped != "" || !r.ok() || r.Sent <= 0 {
			t.Errorf("%s %s: skipped %q, error %q, failures %v, sent %.0f/s", r.Version, atRate, r.Skipped, r.Phase.Err, r.Phase.Failures, r.Sent)
		}
	}
	for _, p := range res.Scale {
		if p.Skipped != "" || !p.ok() || p.Small.Orders < 1 || p.Large.Orders < 1 {
			t.Errorf("scale %s: skipped %q, small %+v, large %+v", p.Name, p.Skipped, p.Small, p.Large)
		}
	}
	md, err := os.ReadFile(filepath.Join(o.Out, "BENCHMARKS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, section := range []string{"## p99 at 80% of the peak", "## Cost in scale"} {
		if !strings.Contains(string(md), section) {
			t.Errorf("BENCHMARKS.md has no section %q", section)
		}
	}
	for _, v := range res.Versions {
		if !strings.Contains(string(md), "| "+v+" | "+inStock+" |") {
			t.Errorf("BENCHMARKS.md has no row for %s", v)
		}
	}
	for _, row := range []string{"| single Redis | 16 |", fmt.Sprintf("| %d-master cluster | 16 |", o.Masters)} {
		if !strings.Contains(string(md), row) {
			t.Errorf("BENCHMARKS.md has no coupon row %q", row)
		}
	}
	for _, name := range []string{"versions.svg", "coupons.svg"} {
		svg, err := os.ReadFile(filepath.Join(o.Out, "bench", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := xml.Unmarshal(svg, new(struct{})); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestCountLogProblems(t *testing.T) {
	log := `time=1 level=INFO msg=serving addr=127.0.0.1:1
time=2 level=WARN msg="outbox sweep republished" count=3 err="context canceled"
time=3 level=WARN msg="outbox sweep republished" count=1
time=4 level=ERROR msg="stock message dead-lettered" order_id=7
time=5 level=WARN msg=plain
`
	got := countLogProblems(log)
	want := []logCount{{"WARN", "outbox sweep republished", 2, "context canceled"}, {"ERROR", "stock message dead-lettered", 1, ""}, {"WARN", "plain", 1, ""}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestProcParsers(t *testing.T) {
	total, busy := parseProcStat("cpu  100 5 50 800 20 3 2 0 7 0\ncpu0 1 2 3 4 5 6 7 8\n")
	if total != 980 || busy != 160 {
		t.Errorf("parseProcStat: total %v busy %v, want 980 160", total, busy)
	}
	stat := "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 30 12 5 3 20 0 8 0 1000 0 0"
	if got := parsePIDStat(stat, false); got != 42 {
		t.Errorf("parsePIDStat without children = %v, want 42", got)
	}
	if got := parsePIDStat(stat, true); got != 50 {
		t.Errorf("parsePIDStat with children = %v, want 50", got)
	}
	a, b := cpuSnap{total: 1000, busy: 400, ours: 300}, cpuSnap{total: 2000, busy: 1300, ours: 1000}
	if got := a.otherShare(b); got != 0.2 {
		t.Errorf("otherShare = %v, want 0.2", got)
	}
}

// The benchmark reads each freeze from what `seckill reshard` prints.
func TestFreezeLineMatchesTheCommand(t *testing.T) {
	m := freezeLine.FindStringSubmatch("l5: frozen 625ms (from 2026-11-26T13:40:01.123456Z): caught up 577 rows, verified 5180 rows in 16 tables, switched to x at epoch 8")
	if len(m) != 4 || m[1] != "5" || m[2] != "625ms" || m[3] != "2026-11-26T13:40:01.123456Z" {
		t.Fatalf("%q", m)
	}
}
