package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/internal/rediscluster"
	domain "github.com/go-seckill/seckill/service"
)

// machine is where and on what the run happened.
type machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryGiB string `json:"memory_gib"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	MariaDB   string `json:"mysql"`
	Redis     string `json:"redis"`
	// RedisCluster is the version and shape of the harness's cluster.
	RedisCluster string `json:"redis_cluster"`
	Wrk          string `json:"wrk"`
	Commit       string `json:"commit"`
	IdleBefore   string `json:"idle_before"` // CPU idle share just before the first load
	LoadBefore   string `json:"load_before"`
	LoadAfter    string `json:"load_after"`
}

func readMachine(ctx context.Context, root string, o options) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadAverage()}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.ParseFloat(strings.Fields(procField("/proc/meminfo", "MemTotal") + " 0")[0], 64); err == nil && kb > 0 {
		m.MemoryGiB = fmt.Sprintf("%.1f GiB", kb/(1<<20))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.MariaDB = mysqlInfo(ctx, o.MySQL)
	c := redis.NewClient(&redis.Options{Addr: o.Redis})
	if info, err := c.Info(ctx, "server").Result(); err == nil {
		m.Redis = infoField(info, "redis_version")
	}
	c.Close()
	if out, err := exec.CommandContext(ctx, "wrk", "-v").CombinedOutput(); len(out) > 0 {
		_ = err // wrk -v exits 1 after printing its version
		m.Wrk = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		m.Wrk = strings.TrimSpace(strings.SplitN(m.Wrk, "Copyright", 2)[0])
	}
	m.Commit = gitCommit(ctx, root)
	return m
}

// clusterInfo is the cluster's Redis version and shape.
func clusterInfo(ctx context.Context, c *rediscluster.Cluster) string {
	version := ""
	if info, err := c.Client().Info(ctx, "server").Result(); err == nil {
		version = infoField(info, "redis_version")
	}
	return fmt.Sprintf("%s; %d masters, no replicas, no persistence, on loopback ports", orNA(version), len(c.Addrs()))
}

// procField is the value of the first "key : value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func infoField(info, key string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return v
		}
	}
	return ""
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// mysqlInfo is the server version and the settings that decide write rates.
func mysqlInfo(ctx context.Context, dsn string) string {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return ""
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SHOW VARIABLES WHERE Variable_name IN
		('version', 'innodb_flush_log_at_trx_commit', 'innodb_buffer_pool_size', 'tx_isolation', 'transaction_isolation', 'log_bin')`)
	if err != nil {
		return ""
	}
	defer rows.Close()
	v := map[string]string{}
	for rows.Next() {
		var k, val string
		if rows.Scan(&k, &val) == nil {
			v[k] = val
		}
	}
	iso := v["transaction_isolation"]
	if iso == "" {
		iso = v["tx_isolation"]
	}
	pool, _ := strconv.ParseInt(v["innodb_buffer_pool_size"], 10, 64)
	return fmt.Sprintf("%s; innodb_flush_log_at_trx_commit=%s, buffer pool %d MiB, %s, binary log %s",
		v["version"], v["innodb_flush_log_at_trx_commit"], pool>>20, iso, v["log_bin"])
}

// gitCommit is HEAD, and how many files differ from it besides this
// harness's own output.
func gitCommit(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(out))
	st, _ := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain").Output()
	n := 0
	for _, line := range strings.Split(strings.TrimRight(string(st), "\n"), "\n") {
		if len(line) > 3 && !strings.HasPrefix(line[3:], "docs/BENCHMARKS.md") && !strings.HasPrefix(line[3:], "docs/bench/") {
			n++
		}
	}
	if n > 0 {
		commit += fmt.Sprintf(" plus uncommitted changes to %d paths", n)
	}
	return commit
}

// seedVersions are the seed article's figures per version on its 8-core
// server; it does not say in which phase V6 was measured, but only sold-out
// answers are cheap enough to reach that rate.
var seedVersions = map[string]map[string]float64{
	"V1": {inStock: 1221},
	"V2": {inStock: 14300},
	"V3": {inStock: 20490},
	"V4": {inStock: 38000},
	"V6": {soldOut: 133274},
}

// writeReport writes dir/BENCHMARKS.md, dir/bench/versions.svg and
// dir/bench/results.json and returns the markdown's path.
func writeReport(dir string, r *results) (string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "bench"), 0o755); err != nil {
		return "", err
	}
	var bars []chartBar
	for _, p := range r.Phases {
		if p.measured() && !paused(p.Phase) && p.Phase != inStockCluster {
			bars = append(bars, chartBar{Version: p.Version, Phase: p.Phase, RPS: p.Wrk.RPS, P99: p.Wrk.P99, Bound: p.Bound.Rate, Failed: !p.ok()})
		}
	}
	var lines []chartLine
	for _, c := range r.Ceilings {
		lines = append(lines, chartLine{Label: c.ID, Rate: c.Rate})
	}
	title := fmt.Sprintf("seckill order versions on %d cores, wrk -t%d -c%d -d%s, %s",
		r.Machine.Cores, r.Options.Threads, r.Options.Conns, wrkSeconds(r.Options.Duration), r.Started.UTC().Format("2006-01-02"))
	if err := os.WriteFile(filepath.Join(dir, "bench", "versions.svg"), renderChart(title, []string{inStock, soldOut}, bars, lines), 0o644); err != nil {
		return "", err
	}
	title = fmt.Sprintf("seckill coupon claims on one hot template, %d cores, wrk -t%d -c%d -d%s, %s",
		r.Machine.Cores, r.Options.Threads, r.Options.Conns, wrkSeconds(r.Options.Duration), r.Started.UTC().Format("2006-01-02"))
	phases, cbars, clines := couponChart(r)
	if err := os.WriteFile(filepath.Join(dir, "bench", "coupons.svg"), renderChart(title, phases, cbars, clines), 0o644); err != nil {
		return "", err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench", "results.json"), append(js, '\n'), 0o644); err != nil {
		return "", err
	}
	md := markdown(r)
	// The profile and the changes made from it are written by hand, in
	// bench/notes.md beside the figures, and kept across runs.
	if notes, err := os.ReadFile(filepath.Join(dir, "bench", "notes.md")); err == nil {
		md += "\n" + string(notes)
	}
	path := filepath.Join(dir, "BENCHMARKS.md")
	return path, os.WriteFile(path, []byte(md), 0o644)
}

func markdown(r *results) string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	o, m := r.Options, r.Machine

	w("# Benchmarks\n\n")
	if o.Smoke {
		w("**Smoke run (1 s loads): checks the harness, measures nothing.**\n\n")
	}
	w("Every order version against the ceilings of the steps its request goes\n")
	w("through, all measured in one run on one machine by `make bench` (`go run\n")
	w("./bench`, see `bench/main.go`), and the coupon claims against theirs\n")
	w("([below](#coupon-claims)). This file, `bench/versions.svg`,\n")
	w("`bench/coupons.svg` and `bench/results.json` are written by that run:\n")
	w("regenerate, do not edit.\n\n")
	w("Run it with `make bench`: it needs MariaDB and Redis on their default\n")
	w("local ports, as the tests do, `redis-server` and `redis-cli` for the Redis\n")
	w("Cluster it starts itself, and installs wrk with apt-get when missing.\n")
	w("`make bench-smoke` runs every step with 1 s loads into a temporary\n")
	w("directory, and `SECKILL_BENCH_SMOKE=1 go test ./bench` runs that smoke as\n")
	w("a test. `go run ./bench -render docs/bench/results.json` rewrites this\n")
	w("file and the chart from the saved figures.\n\n")
	w("![requests/s and p99 per version and phase, with the ceilings](bench/versions.svg)\n\n")

	w("## Machine and run\n\n| | |\n|---|---|\n")
	w("| date | %s |\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	w("| commit | %s |\n", m.Commit)
	w("| CPU | %s, %d logical cores |\n", orNA(m.CPU), m.Cores)
	w("| memory | %s |\n", orNA(m.MemoryGiB))
	w("| kernel | Linux %s |\n", orNA(m.Kernel))
	w("| Go | %s |\n", m.Go)
	w("| MySQL | %s |\n", orNA(m.MariaDB))
	w("| Redis | %s |\n", orNA(m.Redis))
	w("| Redis Cluster | %s |\n", orNA(m.RedisCluster))
	w("| wrk | %s |\n", orNA(m.Wrk))
	w("| CPU idle before the first load | %s; waited %s in all for a quiet CPU before loads |\n", orNA(m.IdleBefore), r.QuietWaited.Round(time.Second))
	w("| load average (1, 5, 15 min) | %s before, %s after |\n", orNA(m.LoadBefore), orNA(m.LoadAfter))
	w("| run time | %s |\n\n", r.Elapsed.Round(time.Second))

	w("Configuration: `wrk --latency -t%d -c%d -d%s -s wrk/order.lua` (one unit per\n", o.Threads, o.Conns, wrkSeconds(o.Duration))
	w("order, a random user per request) on loopback, on the same cores as the\n")
	w("service, MariaDB and Redis. Each phase buys a fresh goods: **in stock** has\n")
	w("%s units, more than any run sells; **sold out** has 0, so every answer\n", thousands(o.Stock))
	w("is 409. The service runs its default configuration except for its own\n")
	w("database (`%s`, dropped and recreated), Redis key prefix `%s` and an\n", o.Database, o.Prefix)
	w("embedded nsqd on free ports")
	if o.Scale.Goods > 0 { // runs since the scale phases
		w(", and no reconciliation on an interval (the\n")
		w("[scale phases](#cost-in-scale) time passes of their own)")
	}
	w(". The HTTP ceiling runs with the same wrk\n")
	w("settings; the others run %s each after a %s warm-up with %d clients\n", o.CeilingDuration, o.Warmup, o.Conns)
	w("(the consumer's transactions with %d, the consumer's concurrency, and\n", o.ConsumerConns)
	w("batches of %d, its batch size). The best version also runs a backlog\n", o.ConsumerBatch)
	w("phase: in stock, with the consumer's nsqd channel paused while wrk runs,\n")
	w("so that the drain afterwards measures the consumer alone; and the same\n")
	w("on goods with a per-user limit of %d, whose decrements also count each\n", backlogLimit)
	w("buyer's units in the same transaction; and that once more, drained while\n")
	w("a second wrk (the same settings) orders another goods, sold out, so that\n")
	w("the service is busy for the whole drain.")
	if o.Disturbed < 1 {
		w(" A phase during\n")
		w("which other processes took more than %.0f%% of the CPU runs once more and\n", 100*o.Disturbed)
		w("the less disturbed run is shown; a run that broke an invariant is always\n")
		w("the one shown.\n\n")
	} else {
		w(" No phase runs twice.\n\n")
	}

	w("## Versions\n\n")
	w("| version | phase | req/s | p50 | p99 | non-2xx | socket errors | bound | %% of bound | other CPU | seed (8 cores) | invariants |\n")
	w("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|\n")
	for _, p := range r.Phases {
		if paused(p.Phase) {
			continue
		}
		status := "ok"
		if !p.ok() {
			status = "**FAILED**"
		}
		seed := "—"
		if v := seedVersions[p.Version][p.Phase]; v > 0 {
			seed = thousands(int64(v))
		}
		if p.Skipped != "" {
			w("| %s | %s | — | — | — | — | — | — | — | — | %s | not run: %s |\n", p.Version, p.Phase, seed, oneLine(p.Skipped))
			continue
		}
		if p.Err != "" {
			w("| %s | %s | — | — | — | — | — | — | — | — | %s | %s: %s |\n", p.Version, p.Phase, seed, status, oneLine(p.Err))
			continue
		}
		boundCell, frac := "none measured", "—"
		if p.Bound.ID != "" {
			boundCell = fmt.Sprintf("%s %s", p.Bound.ID, thousands(int64(p.Bound.Rate)))
			frac = fmt.Sprintf("%.0f%%", 100*p.Fraction)
		}
		if !p.Bound.Listed {
			boundCell += " (default path)"
		}
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f%% | %s | %s |\n", p.Version, p.Phase, thousands(int64(p.Wrk.RPS)),
			fmtDur(p.Wrk.P50), fmtDur(p.Wrk.P99), thousands(p.Wrk.Non2xx), thousands(p.Wrk.SocketErrors()), boundCell, frac, 100*p.OtherCPU, seed, status)
	}
	w("\n`non-2xx` counts the 409 answers of the sold-out phase. The bound is the\n")
	w("slowest ceiling on the version's path (`pathOf` in `bench/bounds.go`);\n")
	if anyNextHTTP(r.Phases) {
		w("a sold-out phase's is the HTTP ceiling measured again right after it,\n")
		w("because the machine's speed drifts over a run by about as much as a\n")
		w("refusal's cost (the ceiling's two passes, minutes apart, are both in\n")
		w("[Ceilings](#ceilings));\n")
	}
	w("`%% of bound` is req/s over it. `other CPU` is the share of the machine's\n")
	w("CPU that processes outside the benchmark took while wrk ran (a build or\n")
	w("test elsewhere on the machine): above a few percent, that row is slowed by\n")
	w("them, not by the version. The seed's V6 figure was taken with\n")
	w("`wrk -t16 -c500` and does not name its phase.\n\n")

	w("## Ceilings\n\n| ceiling | what | clients | rate | before / after the versions | errors | seed (8 cores) |\n|---|---|---:|---:|---:|---:|---:|\n")
	for _, c := range r.Ceilings {
		rate := thousands(int64(c.Rate)) + " " + c.Unit
		if c.Err != "" {
			rate = "failed: " + oneLine(c.Err)
		}
		var passes []string
		for i, p := range c.Passes {
			pass := thousands(int64(p))
			if i < len(c.OtherCPU) && c.OtherCPU[i] >= 0.05 {
				pass += fmt.Sprintf(" (other CPU %.0f%%)", 100*c.OtherCPU[i])
			}
			passes = append(passes, pass)
		}
		seed := "—"
		if v := seedCeilings[c.ID]; v > 0 {
			seed = thousands(int64(v))
		}
		w("| %s | %s | %d | %s | %s | %s | %s |\n", c.ID, c.What, c.Clients, rate, strings.Join(passes, " / "), thousands(c.Errors), seed)
	}
	w("\nEach ceiling ran once before the versions and once after; the rate is\n")
	w("the better pass. MySQL ceilings use `database/sql` with\n")
	w("`interpolateParams=true` on empty copies of the service's tables (`CREATE\n")
	w("TABLE ... LIKE`), so they pay for the same indexes; ids grow like the\n")
	w("service's snowflake ids.")
	for _, c := range r.Ceilings {
		if c.FirstErr != "" {
			w(" %s's first error: `%s`.", c.ID, strings.ReplaceAll(oneLine(c.FirstErr), "`", "'"))
		}
	}
	w("\n\n")

	w("## Consumer drain\n\n")
	w("Sampled from `GET /admin/goods/:id/stats` every 250 ms (100 ms in the\n")
	w("backlog phase) during and after each in-stock phase. Lag is orders\n")
	w("without a stock log yet; the drain rate is stock logs applied per second\n")
	w("to the one hot goods from wrk's end (in the backlog phase: from the\n")
	w("channel's unpause) until drained, shown for the backlog phase and when\n")
	w("a drain lasted at least a second. Drained takes two equal reads in a\n")
	w("row, so about 0.5 s (0.2 s in the backlog phase) is the shortest drain the\n")
	w("table can show. The best version, served at `POST /order`, is %s.\n\n", orNA(r.Best))
	w("| version | phase | orders | max lag | backlog at wrk end | wrk end to drained | drain rate | applied while wrk ran |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Phases {
		if p.Phase == soldOut || !p.measured() {
			continue
		}
		name, phase, dt, rate := p.Version, p.Phase, "not drained", "—"
		if p.Version == r.Best {
			name = "**" + name + "** (best)"
		}
		switch p.Phase {
		case backlog:
			phase = "consumer paused"
		case backlogLimited:
			phase = "consumer paused, per-user limit"
		case backlogLoaded:
			phase = "consumer paused, per-user limit, drained under load"
		}
		if p.Drained {
			dt = p.Drain.Time.Round(10 * time.Millisecond).String()
		}
		if p.Drain.Rate > 0 && (paused(p.Phase) || p.Drain.Time >= time.Second) {
			rate = thousands(int64(p.Drain.Rate)) + "/s"
		}
		w("| %s | %s | %s | %s | %s | %s | %s | %s/s |\n", name, phase, thousands(p.After.Orders), thousands(p.Drain.MaxLag),
			thousands(p.Drain.BacklogAtEnd), dt, rate, thousands(int64(p.Drain.UnderLoad)))
	}
	if r.Reshard != nil {
		w("%s", reshardMarkdown(*r.Reshard, r.Options))
	}
	if len(r.Overload) > 0 {
		w("%s", overloadMarkdown(r.Overload))
	}
	w("\n## Invariants\n\n")
	w("Checked on every phase once drained (two equal reads in a row with\n")
	w("every order's stock log applied and Redis stock equal to MySQL stock):\n")
	w("order rows at least the 201 answers and at most that plus one request in\n")
	w("flight per connection; order rows = stock logs = MySQL sale; MySQL stock +\n")
	w("sale = the stock created; no negative stock; no dead letters; no sale of\n")
	w("a goods with stock 0 and no sold-out answer while stock remained.\n\n")
	for _, p := range r.Phases {
		switch {
		case p.Skipped != "":
			w("- %s %s: not run: %s\n", p.Version, p.Phase, oneLine(p.Skipped))
		case p.Err != "":
			w("- %s %s: **FAILED**, did not run to the end: %s\n", p.Version, p.Phase, oneLine(p.Err))
		case len(p.Failures) > 0:
			w("- %s %s: **FAILED**: %s\n", p.Version, p.Phase, strings.Join(p.Failures, "; "))
		default:
			w("- %s %s: ok (orders %s, stock logs %s, sale %s, Redis = MySQL stock %s)\n", p.Version, p.Phase,
				thousands(p.After.Orders), thousands(p.After.StockLogs), thousands(p.After.MySQLSale), thousands(p.After.MySQLStock))
		}
		for _, n := range p.Notes {
			w("  - note: %s\n", n)
		}
	}
	if len(r.ServiceLog) > 0 {
		w("\nWhat the service logged at WARN or ERROR during the run:\n\n")
		for _, c := range r.ServiceLog {
			w("- %s × %s `%s`", thousands(int64(c.N)), c.Level, strings.ReplaceAll(c.Msg, "`", "'"))
			if c.Err != "" {
				w(", the first with `err=%s`", strings.ReplaceAll(oneLine(c.Err), "`", "'"))
			}
			w("\n")
		}
	} else {
		w("\nThe service logged nothing at WARN or ERROR during the run.\n")
	}

	b.WriteString(doubleCheckMarkdown(r.DoubleCheck, r.Options, r.Best))
	w("\n## Reading the results\n\n")
	w("%s\n", reading(r))
	b.WriteString(readsMarkdown(r.Reads))
	b.WriteString(rateMarkdown(r.AtRate, r.Options))
	b.WriteString(scaleMarkdown(r.Scale, r.Options))
	b.WriteString(couponSection(r))
	return b.String()
}

// reading is the prose under the tables, built from the figures so that it
// stays true when they change.
func reading(r *results) string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	get := func(version, phase string) *phaseResult {
		for i := range r.Phases {
			if p := &r.Phases[i]; p.Version == version && p.Phase == phase && p.measured() {
				return p
			}
		}
		return nil
	}
	ceil := func(id string) float64 {
		for _, c := range r.Ceilings {
			if c.ID == id {
				return c.Rate
			}
		}
		return 0
	}
	pct := func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }

	w("The seed article went V1 1,221 → V2 14,300 → V3 20,490 → V4 38,000 (two\n")
	w("MySQL hosts) → V6 133,274 QPS on an 8-core server. Here, in stock:")
	prev := ""
	for _, v := range r.Versions {
		p := get(v, inStock)
		if p == nil {
			continue
		}
		if prev != "" {
			w(" →")
		}
		w(" %s %s", v, thousands(int64(p.Wrk.RPS)))
		if pp := get(prev, inStock); pp != nil && pp.Wrk.RPS > 0 {
			w(" (×%.1f", p.Wrk.RPS/pp.Wrk.RPS)
			if s, sp := seedVersions[v][inStock], seedVersions[prev][inStock]; s > 0 && sp > 0 {
				w("; seed ×%.1f", s/sp)
			}
			w(")")
		}
		prev = v
	}
	w(" req/s")
	if p := get(r.Versions[len(r.Versions)-1], soldOut); p != nil {
		w("; sold out, %s answers %s req/s", p.Version, thousands(int64(p.Wrk.RPS)))
	}
	w(".\n")
	var busy []string
	for _, p := range r.Phases {
		if p.measured() && p.OtherCPU >= 0.05 {
			busy = append(busy, fmt.Sprintf("%s %s (%.0f%%)", p.Version, p.Phase, 100*p.OtherCPU))
		}
	}
	if len(busy) > 0 {
		w("Other processes on the machine took CPU during %s: those rows\n", strings.Join(busy, ", "))
		w("are low by about that much or more, and their differences from their\n")
		w("neighbours are noise, not the versions.\n")
	}
	w("The absolute figures do not compare with the seed's: wrk, the service,\n")
	w("MariaDB, Redis and nsqd share %d cores here (V4's hosts and V5's nsqd are\n", r.Machine.Cores)
	w("all the same local servers), and a trivial Gin handler alone\n")
	w("reaches %s req/s under that sharing. Shares of a bound compare better:\n\n", thousands(int64(ceil(ceilHTTP))))

	seedShare := map[string]string{"V1": "1,221 of 3,395 hot-row updates/s, 36%", "V2": "14,300 of 14,361 inserts/s, 100%", "V3": "20,490 of 20,183 inserts/s (5 tables), 100%"}
	var sums []string
	for _, v := range r.Versions {
		p := get(v, inStock)
		if p == nil || p.Bound.Rate <= 0 {
			continue
		}
		w("- %s in stock: %s of %s (%s/s)", v, pct(p.Fraction), p.Bound.ID, thousands(int64(p.Bound.Rate)))
		if s := seedShare[v]; s != "" {
			w("; the seed's %s: %s", v, s)
		}
		w(".\n")
		if v == "V1" {
			w("  V1's transaction holds the row lock longer than the ceiling's: it\n")
			w("  also inserts a stock log and runs the Redis script before COMMIT.\n")
		}
		if sum := pathSum(v, inStock, r.Ceilings); sum > 0 && v != "V1" {
			sums = append(sums, fmt.Sprintf("%s %s/s (reached %s)", v, thousands(int64(sum)), pct(p.Wrk.RPS/sum)))
		}
	}
	var soldOuts []string
	for _, v := range r.Versions {
		if p := get(v, soldOut); p != nil && p.Bound.Rate > 0 {
			soldOuts = append(soldOuts, fmt.Sprintf("%s %s of %s", v, pct(p.Fraction), p.Bound.ID))
		}
	}
	if len(soldOuts) > 0 {
		w("- Sold out: %s.\n", strings.Join(soldOuts, ", "))
	}
	// An async version's in-stock rate counts acceptances: the orders are
	// written after the answers, so the pace of the writers is said too.
	for _, v := range r.Versions {
		ver, _ := domain.FindVersion(v)
		p := get(v, inStock)
		if !ver.AsyncAccept || p == nil {
			continue
		}
		w("\n%s answers each request once its units are reserved and the request is on\n", v)
		w("nsqd (202): %s req/s in stock, p99 %s", thousands(int64(p.Wrk.RPS)), fmtDur(p.Wrk.P99))
		if v3 := get("V3", inStock); v3 != nil && v3.Wrk.RPS > 0 {
			w(", ×%.1f V3's %s", p.Wrk.RPS/v3.Wrk.RPS, thousands(int64(v3.Wrk.RPS)))
		}
		w(".")
		if span := (p.Wrk.Elapsed + p.Drain.Time).Seconds(); p.Drained && span > 0 {
			w(" Its writers had written and applied all %s orders %s after wrk's end:\n", thousands(p.After.Orders), p.Drain.Time.Round(100*time.Millisecond))
			w("%s orders/s from the load's start, the pace MySQL took them at behind the answers.", thousands(int64(float64(p.After.Orders)/span)))
		}
		w("\n")
	}
	// Versions whose paths touch the same ceilings here do the same work on
	// this machine (one MariaDB, one nsqd): their spread is the noise of one
	// run, the yardstick for every other difference in the table.
	groups := map[string][]*phaseResult{}
	var keys []string
	for _, v := range r.Versions {
		if p := get(v, inStock); p != nil {
			path, _ := pathOf(v, inStock)
			k := strings.Join(path, ",")
			if groups[k] == nil {
				keys = append(keys, k)
			}
			groups[k] = append(groups[k], p)
		}
	}
	for _, k := range keys {
		g := groups[k]
		if len(g) < 2 {
			continue
		}
		var names []string
		lo, hi, sum := g[0].Wrk.RPS, g[0].Wrk.RPS, 0.0
		for _, p := range g {
			names = append(names, p.Version)
			lo, hi, sum = min(lo, p.Wrk.RPS), max(hi, p.Wrk.RPS), sum+p.Wrk.RPS
		}
		mean := sum / float64(len(g))
		w("\n%s take the same steps on this machine in stock, so their spread,\n", joinAnd(names))
		w("%s to %s req/s (±%.0f%% around the mean), is the noise of one %s run\n", thousands(int64(lo)), thousands(int64(hi)), 100*(hi-lo)/2/mean, wrkSeconds(r.Options.Duration))
		w("here: smaller differences anywhere in the table are not findings.\n")
	}
	if len(sums) > 0 {
		w("\nOn %d cores the steps of one request do not overlap: wrk, Gin and JSON,\n", r.Machine.Cores)
		w("the Redis script, the insert, the publish and the consumer applying\n")
		w("stock at the same time all take CPU from the same pool, so their costs\n")
		w("add up rather than the slowest one setting the pace. Adding the measured\n")
		w("cost of each step of the path (1/Σ 1/ceiling) gives: %s.\n", strings.Join(sums, ", "))
	}
	if p := get(r.Best, inStock); p != nil {
		w("\nWhile wrk ran on %s, the consumer applied %s stock messages/s against\n", r.Best, thousands(int64(p.Drain.UnderLoad)))
		w("%s orders/s accepted, at most %s behind", thousands(int64(p.Wrk.RPS)), thousands(p.Drain.MaxLag))
		if p.Drain.Time < time.Second {
			w(", and caught up within %s of wrk's end.", p.Drain.Time.Round(10*time.Millisecond))
		} else {
			w("; it needed %s after wrk's end to drain.", p.Drain.Time.Round(100*time.Millisecond))
		}
		w("\n")
	}
	if p := get(r.Best, backlog); p != nil && p.Drain.Rate > 0 {
		w("With its channel paused for the whole run, a backlog of %s messages\n", thousands(p.Drain.BacklogAtEnd))
		w("drained at %s/s in %s: against %s msg/s for the batched transaction\n", thousands(int64(p.Drain.Rate)),
			p.Drain.Time.Round(100*time.Millisecond), thousands(int64(ceil(ceilBatch))))
		w("and %s msg/s for one message per transaction, measured alone.\n", thousands(int64(ceil(ceilConsumer))))
	}
	if p := get(r.Best, backlogLimited); p != nil && p.Drain.Rate > 0 {
		w("With a per-user limit of %d (each buyer's units counted in the same\n", backlogLimit)
		w("transaction), a backlog of %s drained at %s/s in %s.\n", thousands(p.Drain.BacklogAtEnd), thousands(int64(p.Drain.Rate)),
			p.Drain.Time.Round(100*time.Millisecond))
	}
	if p := get(r.Best, backlogLoaded); p != nil && p.Drain.Rate > 0 && p.Load != nil {
		w("The same drained while wrk kept the service answering %s sold-out\n", thousands(int64(p.Load.RPS)))
		w("orders/s: a backlog of %s at %s/s in %s, %.0f%% of the batched\n", thousands(p.Drain.BacklogAtEnd), thousands(int64(p.Drain.Rate)),
			p.Drain.Time.Round(100*time.Millisecond), 100*p.Drain.Rate/max(ceil(ceilBatch), 1))
		w("transaction's ceiling.\n")
	}
	return b.String()
}

// joinAnd writes a, b and c.
func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []string
	for len(s) > 3 {
		out = append([]string{s[len(s)-3:]}, out...)
		s = s[:len(s)-3]
	}
	out = append([]string{s}, out...)
	r := strings.Join(out, ",")
	if neg {
		r = "-" + r
	}
	return r
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", ms(d))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f ms", ms(d))
	}
	return fmt.Sprintf("%.0f ms", ms(d))
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

// oneLine keeps a table cell on one line.
func oneLine(s string) string {
	s = strings.ReplaceAll(strings.SplitN(s, "\n", 2)[0], "|", "/")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// reshardMarkdown is the section of the doubling of V7's hosts under load.
func reshardMarkdown(rr reshardResult, o options) string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	w("\n## V7: doubling the hosts under load\n\n")
	w("`%s` while %d clients order through `/orderV7` as random users (a Go\n", rr.Command, o.Conns)
	w("load, not wrk: each answer is kept with its time and user), %s before\n", o.Duration)
	w("and %s after it. The two hosts are two databases of the local MariaDB\n", o.Duration)
	w("(one disk, one server): the figures show what the move costs the sale,\n")
	w("not what a second server adds. The resharding test runs on separate\n")
	w("servers (`TestReshardGrowsOneToFourHostsDuringAStampede`).\n\n")
	if rr.Err != "" {
		w("**FAILED**, did not run to the end: %s\n", oneLine(rr.Err))
		return b.String()
	}
	w("| window | seconds | answers | orders/s | p50 | p99 | 503 busy | other errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range rr.Windows {
		w("| %s | %.1f | %s | %s | %s | %s | %d | %d |\n", x.Name, x.Seconds, thousands(int64(x.Answers)), thousands(int64(x.RPS)),
			fmtDur(x.P50), fmtDur(x.P99), x.Busy, x.Others)
	}
	w("\nThe command took %s. Each freeze lasts from the freeze of a logical\n", rr.Took.Round(time.Millisecond))
	w("database on its old host to the switch of the map. The orders in flight\n")
	w("during it: its users' (delayed: answered 201 in more than %s; refused:\n", delayedAfter)
	w("503 busy), and for comparison the users' of the logical databases that\n")
	w("never move (l0, l2, l4, l6 here) slower than %s:\n\n", delayedAfter)
	w("| logical database | frozen | its users' orders | delayed | 503 busy | other users' orders | slower than %s |\n|---|---:|---:|---:|---:|---:|---:|\n", delayedAfter)
	for _, f := range rr.Freezes {
		w("| l%d | %s | %d | %d | %d | %d | %d |\n", f.DB, fmtDur(f.Frozen), f.Asked, f.Delayed, f.Refused, f.Others, f.Bystands)
	}
	if len(rr.Failures) > 0 {
		w("\nInvariants after it: **FAILED**: %s\n", strings.Join(rr.Failures, "; "))
	} else {
		w("\nInvariants after it, once drained: ok (%s orders accepted, each stored once on the host the map\n", thousands(int64(rr.Orders)))
		w("names, applied once; Redis = MySQL stock; no 503 busy for a user whose logical database did not move).\n")
	}
	w("\nWhat the command printed:\n\n```\n%s```\n", rr.Output)
	return b.String()
}

// anyNextHTTP says whether a sold-out phase is read against the HTTP
// ceiling measured right after it.
func anyNextHTTP(ps []phaseResult) bool {
	for _, p := range ps {
		if p.NextHTTP > 0 {
			return true
		}
	}
	return false
}
