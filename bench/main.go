// Command bench measures every order version of the service against the
// ceilings of the steps its path goes through, all in one run on this
// machine, and writes docs/BENCHMARKS.md and docs/bench/versions.svg.
//
//	go run ./bench          # the full run (make bench), about 20 minutes
//	go run ./bench -smoke   # every step with 1 s loads, into a temp dir
//	go run ./bench -rate80 V3,V6,V13        # p99 at 80% of each one's peak, alone
//	go run ./bench -scale history,stock,goods  # the scale phases alone
//
// It builds the service, starts it on a free loopback port with its own
// database (dropped and recreated), Redis key prefix and embedded nsqd, and
// stops it at the end. For the coupon phases it also starts a Redis Cluster
// of three masters (redis-server processes on free loopback ports, data in
// a temporary folder, internal/rediscluster) and a second instance on it
// with a database of its own; both are stopped at the end, on an error and
// on Ctrl-C. Every load targets 127.0.0.1 and ends by itself.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-seckill/seckill/config"
	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/internal/rediscluster"
)

// options configure one run.
type options struct {
	Smoke           bool          `json:"smoke"`
	Duration        time.Duration `json:"duration_ns"`         // wrk -d per phase (and for the HTTP ceiling)
	Threads         int           `json:"threads"`             // wrk -t
	Conns           int           `json:"connections"`         // wrk -c, and the clients of every other ceiling
	ConsumerConns   int           `json:"consumer_conns"`      // the service's consumer.concurrency
	ConsumerBatch   int           `json:"consumer_batch"`      // the service's consumer.batch_size
	Topic, Channel  string        `json:"-"`                   // the service's stock topic and consumer channel
	CeilingDuration time.Duration `json:"ceiling_duration_ns"` // each non-HTTP ceiling
	Warmup          time.Duration `json:"warmup_ns"`           // unmeasured run before each non-HTTP ceiling
	Stock           int64         `json:"stock"`               // stock of the in-stock goods: more than any run sells
	DrainTimeout    time.Duration `json:"drain_timeout_ns"`    // longest wait for the consumer after a phase
	Budget          time.Duration `json:"budget_ns"`           // phases that would not fit are skipped
	QuietWait       time.Duration `json:"quiet_wait_ns"`       // longest total wait for an idle CPU before the loads
	Disturbed       float64       `json:"disturbed"`           // other processes' CPU share above which a phase runs again
	MySQL           string        `json:"-"`                   // server DSN without a database
	Database        string        `json:"database"`
	ClusterDatabase string        `json:"cluster_database"` // the database of the instance on the Redis Cluster
	Masters         int           `json:"cluster_masters"`
	SubStocks       []int         `json:"sub_stocks"`        // a coupon phase per count, on each Redis
	SettleTimeout   time.Duration `json:"settle_timeout_ns"` // longest wait for a coupon phase's claims in flight
	RedisPool       int           `json:"-"`                 // the service's redis.pool_size
	Redis           string        `json:"-"`
	Prefix          string        `json:"redis_key_prefix"`
	Out             string        `json:"-"` // gets BENCHMARKS.md and bench/
	ReadsOnly       bool          `json:"-"` // only the HTTP ceiling and V9's read phase, no report
	SoldOutOnly     []string      `json:"-"` // only the HTTP ceiling and these versions' sold-out phases, no report
	DrainOnly       bool          `json:"-"` // only the consumer-batch ceiling and the best version's limited backlog phases, no report
	Pprof           string        `json:"-"` // the service's debug.pprof_addr, when set
	// Only names the versions of a versions-only run: the ceilings and
	// those versions' phases, printed, no report.
	Only        []string `json:"-"`
	Script      string   `json:"-"` // wrk/order.lua
	ClaimScript string   `json:"-"` // wrk/claim.lua
	// V10 against the sweep: rounds of the two in stock, alternately; with
	// DoubleCheckOnly nothing else runs and the report is doublecheck.md.
	DoubleCheckRounds int    `json:"doublecheck_rounds"`
	DoubleCheckOnly   bool   `json:"doublecheck_only"`
	CheckTopic        string `json:"-"` // the service's double-check topic
	// Scale is the large end of each scale phase; ScaleOnly names the
	// phases of a scale-only run (-scale) and RateOnly the versions of a
	// constant-rate-only run (-rate80): those, printed, no report.
	Scale     scaleSizes `json:"scale"`
	ScaleOnly []string   `json:"-"`
	RateOnly  []string   `json:"-"`
	// ScaleVersion is the version the scale phases load; "": the best.
	ScaleVersion string `json:"scale_version,omitempty"`
	// FlushWait bounds the history phase's wait for InnoDB to flush the
	// history it wrote (see settleWrites).
	FlushWait time.Duration `json:"flush_wait_ns"`
}

func defaultOptions() options {
	return options{
		Duration: 8 * time.Second, Threads: 2, Conns: 64,
		CeilingDuration: 3 * time.Second, Warmup: time.Second,
		Stock: 100_000_000, DrainTimeout: 3 * time.Minute, Budget: 21 * time.Minute, QuietWait: 45 * time.Second, Disturbed: 0.10,
		MySQL: "root@tcp(127.0.0.1:3306)/", Database: "seckill_bench", ClusterDatabase: "seckill_bench_cluster",
		Masters: rediscluster.DefaultMasters, SubStocks: []int{1, 4, 16}, SettleTimeout: 15 * time.Second,
		Redis: "127.0.0.1:6379", Prefix: "bench:", DoubleCheckRounds: 3, Scale: defaultScaleSizes(), FlushWait: time.Minute,
	}
}

// smokeOptions run every step briefly: a check that the harness works, not
// a measurement.
func smokeOptions(o options) options {
	o.Smoke = true
	o.Duration, o.CeilingDuration, o.Warmup = time.Second, 500*time.Millisecond, 200*time.Millisecond
	// The budget only guards against a hung step: skipping a phase fails the
	// smoke, whose caller bounds its time.
	o.DrainTimeout, o.Budget, o.QuietWait = 30*time.Second, 10*time.Minute, 0
	o.Database, o.ClusterDatabase, o.Prefix = "seckill_bench_smoke", "seckill_bench_smoke_cluster", "bench-smoke:"
	// A second run of a disturbed phase refines a measurement; a smoke
	// measures nothing, so it never runs a phase twice.
	o.Disturbed = 2
	o.Scale, o.FlushWait = scaleSizes{Goods: 100, Stock: 10_000, History: 10_000}, 5*time.Second
	return o
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == ceilingServerArg {
		serveHTTPCeiling()
		return
	}
	o := defaultOptions()
	smoke := flag.Bool("smoke", false, "1 s loads, output to a temporary directory: checks the harness in under a minute")
	flag.DurationVar(&o.Duration, "d", o.Duration, "wrk duration of each phase (whole seconds)")
	flag.IntVar(&o.Threads, "t", o.Threads, "wrk threads")
	flag.IntVar(&o.Conns, "c", o.Conns, "wrk connections; also the clients of the Redis, MySQL and NSQ ceilings")
	flag.DurationVar(&o.CeilingDuration, "ceiling-d", o.CeilingDuration, "duration of each Redis, MySQL and NSQ ceiling")
	flag.DurationVar(&o.Budget, "budget", o.Budget, "time for the ceilings' first pass and the phases; phases that would not fit are skipped")
	flag.StringVar(&o.MySQL, "mysql", o.MySQL, "MySQL server DSN, without a database")
	flag.StringVar(&o.Redis, "redis", o.Redis, "Redis address")
	flag.StringVar(&o.Out, "out", "", "directory for BENCHMARKS.md and bench/ (default: docs, or a temp dir with -smoke)")
	dbName := flag.String("db", "", "database name (dropped and recreated; default "+o.Database+", or seckill_bench_smoke with -smoke), so that two runs on one server do not share one")
	prefix := flag.String("prefix", "", "Redis key prefix (cleared first; default "+o.Prefix+")")
	flag.BoolVar(&o.ReadsOnly, "reads", false, "measure only the HTTP ceiling and V9's read phase (GET /goods/:id), print them, write no report")
	soldOutOnly := flag.String("soldout", "", "comma-separated versions (V6,V8): measure only the HTTP ceiling and their sold-out phases, print them, write no report")
	flag.IntVar(&o.DoubleCheckRounds, "doublecheck-rounds", o.DoubleCheckRounds, "rounds of V10 against the best version in stock, alternately (0: none)")
	flag.BoolVar(&o.DoubleCheckOnly, "doublecheck-only", false, "run only V10 against the best version and write doublecheck.md into -out")
	flag.BoolVar(&o.DrainOnly, "drain", false, "measure only the consumer-batch ceiling and the best version's backlog with a per-user limit, drained idle and under load, print them, write no report")
	flag.StringVar(&o.Pprof, "pprof", "", "serve the service's pprof on this loopback address (e.g. 127.0.0.1:6060) for profiling a run")
	only := flag.String("versions", "", "comma-separated versions (e.g. V3,V6,V13): measure only the ceilings and their phases, print them, write no report")
	scaleOnly := flag.String("scale", "", "comma-separated scale phases ("+strings.Join(scaleNames, ",")+"): run only those, for the best version, print them, write no report")
	flag.StringVar(&o.ScaleVersion, "scale-version", "", "the version the scale phases load (default: the best, POST /order's)")
	flag.Int64Var(&o.Scale.Goods, "scale-goods", o.Scale.Goods, "goods on sale at once at the large end of the goods phase")
	flag.Int64Var(&o.Scale.Stock, "scale-stock", o.Scale.Stock, "units of each goods at the large end of the stock phase")
	flag.Int64Var(&o.Scale.History, "scale-history", o.Scale.History, "orders in the history at the large end of the history phase")
	rateOnly := flag.String("rate80", "", "comma-separated versions (V3,V6,V13): measure only their in-stock peak with wrk and their p99 at 80% of it, print them, write no report")
	render := flag.String("render", "", "rewrite the report from a results.json instead of measuring (after a change to the report's code)")
	flag.Parse()
	if *render != "" {
		if err := rerender(*render, o.Out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *smoke {
		o = smokeOptions(o)
	}
	if *dbName != "" {
		// The cluster instance's database follows, so that two runs with
		// their own -db share neither.
		o.Database, o.ClusterDatabase = *dbName, *dbName+"_cluster"
	}
	if *prefix != "" {
		o.Prefix = *prefix
	}
	if *only != "" {
		o.Only = strings.Split(*only, ",")
	}
	if *soldOutOnly != "" {
		o.SoldOutOnly = strings.Split(*soldOutOnly, ",")
	}
	if *scaleOnly != "" {
		o.ScaleOnly = strings.Split(*scaleOnly, ",")
		for _, name := range o.ScaleOnly {
			if !slices.Contains(scaleNames, name) {
				fmt.Fprintf(os.Stderr, "bench: -scale %s: the phases are %s\n", name, strings.Join(scaleNames, ","))
				os.Exit(2)
			}
		}
	}
	if *rateOnly != "" {
		o.RateOnly = strings.Split(*rateOnly, ",")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if len(o.ScaleOnly) > 0 || len(o.RateOnly) > 0 {
		if !res.ok() {
			fmt.Fprintln(os.Stderr, "bench: FAILED: a phase broke an invariant or did not run")
			os.Exit(1)
		}
		return
	}
	if len(o.Only) > 0 {
		if !res.ok() {
			fmt.Fprintln(os.Stderr, "bench: FAILED: a phase broke an invariant or did not run")
			os.Exit(1)
		}
		return
	}
	if o.ReadsOnly {
		if res.Reads == nil || !res.Reads.ok() {
			fmt.Fprintln(os.Stderr, "bench: FAILED: the read phase")
			os.Exit(1)
		}
		return
	}
	if len(o.SoldOutOnly) > 0 || o.DrainOnly {
		for _, p := range res.Phases {
			if !p.ok() {
				fmt.Fprintln(os.Stderr, "bench: FAILED:", p.Version, p.Phase)
				os.Exit(1)
			}
		}
		return
	}
	if !res.ok() {
		fmt.Fprintln(os.Stderr, "bench: FAILED: a phase broke an invariant or did not run; see", res.Report)
		os.Exit(1)
	}
}

// results is everything one run measured.
type results struct {
	Started  time.Time      `json:"started"`
	Elapsed  time.Duration  `json:"elapsed_ns"`
	Machine  machine        `json:"machine"`
	Options  options        `json:"options"`
	Versions []string       `json:"versions"`
	Best     string         `json:"best"`
	Ceilings []ceiling      `json:"ceilings"`
	Phases   []phaseResult  `json:"phases"`
	Coupons  []couponPhase  `json:"coupon_phases"`
	Reshard  *reshardResult `json:"reshard,omitempty"`
	// Overload is the best version shedding against the limited one
	// waiting, under the same overload.
	Overload []overloadResult `json:"overload,omitempty"`
	Reads    *readPhase       `json:"reads,omitempty"` // V9's GET /goods/:id
	// DoubleCheck is V10 against the best version, in alternate rounds.
	DoubleCheck *doubleCheckResult `json:"doublecheck,omitempty"`
	// Scale is the best version at both ends of each size; AtRate the
	// versions held at 80% of their peak.
	Scale      []scalePhase `json:"scale,omitempty"`
	AtRate     []rateResult `json:"at_rate,omitempty"`
	ServiceLog []logCount   `json:"service_log_problems"` // WARN and ERROR lines by message
	// ClusterServiceLog is the same for the instance on the Redis Cluster.
	ClusterServiceLog []logCount    `json:"cluster_service_log_problems"`
	QuietWaited       time.Duration `json:"quiet_waited_ns"` // spent waiting for a quiet CPU
	Report            string        `json:"-"`
}

// ok says every phase that ran kept the invariants, and one at least ran.
func (r *results) ok() bool {
	ran := false
	for _, p := range r.Phases {
		if !p.ok() {
			return false
		}
		ran = ran || p.measured()
	}
	for _, p := range r.Coupons {
		if !p.ok() {
			return false
		}
	}
	if r.Reshard != nil && !r.Reshard.ok() {
		return false
	}
	for _, p := range r.Overload {
		if !p.ok() {
			return false
		}
	}
	if r.Reads != nil && !r.Reads.ok() {
		return false
	}
	for _, p := range r.Scale {
		if !p.ok() {
			return false
		}
		ran = ran || p.Skipped == ""
	}
	for _, x := range r.AtRate {
		if !x.ok() {
			return false
		}
	}
	if r.DoubleCheck != nil {
		return r.DoubleCheck.ok() && (ran || len(r.DoubleCheck.Phases) > 0)
	}
	return ran
}

// run does the whole benchmark and writes the report.
func run(ctx context.Context, o options, logw io.Writer) (*results, error) {
	logf := func(f string, a ...any) { fmt.Fprintf(logw, "bench: "+f+"\n", a...) }
	res := &results{Started: time.Now(), Options: o}
	deadline := res.Started.Add(o.Budget)

	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	if o.Out == "" {
		o.Out = filepath.Join(root, "docs")
		if o.Smoke {
			if o.Out, err = os.MkdirTemp("", "seckill-bench-smoke-"); err != nil {
				return nil, err
			}
		}
	}
	o.Script = filepath.Join(root, "wrk", "order.lua")
	o.ClaimScript = filepath.Join(root, "wrk", "claim.lua")
	// The consumer ceilings run with the concurrency and batch size the
	// service's consumer is configured with (its defaults: the harness does
	// not override them), and the backlog phase pauses its channel.
	cfg, err := config.Load("", func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, err
	}
	o.ConsumerConns, o.ConsumerBatch = cfg.Consumer.Concurrency, cfg.Consumer.BatchSize
	o.Topic, o.Channel, o.CheckTopic = cfg.NSQ.Topic, cfg.NSQ.Channel, cfg.NSQ.CheckTopic
	o.RedisPool = cfg.Redis.PoolSize
	res.Options = o
	if err := ensureWrk(ctx, logf); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "seckill-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	logf("building the service")
	bin, err := buildService(ctx, root, tmp)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{o.Database, o.ClusterDatabase, o.Database + "_v7b"} {
		if err := resetDatabase(ctx, o.MySQL, name); err != nil {
			return nil, err
		}
	}
	if err := clearRedisPrefix(ctx, o.Redis, o.Prefix); err != nil {
		return nil, fmt.Errorf("redis %s: %w", o.Redis, err)
	}
	serviceDSN, err := databaseDSN(o.MySQL, o.Database, false)
	if err != nil {
		return nil, err
	}
	// The cluster runs for the whole run: its script ceiling is measured
	// in both passes, and its servers count as the benchmark's own CPU.
	cluster, err := startRedisCluster(ctx, tmp, o.Masters)
	if err != nil {
		return nil, err
	}
	defer cluster.Stop()
	logf("redis cluster up: masters %s", strings.Join(cluster.Addrs(), " "))
	// V7's logical databases start on the service's database; the
	// resharding phase moves half of them to a second one.
	v7bDSN, err := databaseDSN(o.MySQL, o.Database+"_v7b", false)
	if err != nil {
		return nil, err
	}
	env := map[string]string{
		"SECKILL_MYSQL_DSN":                serviceDSN,
		"SECKILL_MYSQL_V7_HOSTS":           serviceDSN + "," + v7bDSN,
		"SECKILL_MYSQL_SHARD_MAP_INTERVAL": "200ms",
		"SECKILL_REDIS_ADDR":               o.Redis,
		"SECKILL_REDIS_KEY_PREFIX":         o.Prefix,
		"SECKILL_NSQ_EMBEDDED_TCP_ADDR":    "127.0.0.1:0",
		"SECKILL_NSQ_EMBEDDED_HTTP_ADDR":   "127.0.0.1:0",
		"SECKILL_NSQ_EMBEDDED_DATA_DIR":    filepath.Join(tmp, "nsqd"),
		"SECKILL_METRICS_ADDR":             "127.0.0.1:0",
		// wrk and the Go loads say each buyer's address in X-Forwarded-For.
		"SECKILL_LIMITS_TRUSTED_PROXIES": "127.0.0.1,::1",
		// The scale phases time POST /admin/reconcile over thousands of
		// goods: longer than the default answer's 15 s. A pass on the
		// interval would hold theirs up (one pass at a time), and share
		// the machine with their loads. The scheduled passes stay.
		"SECKILL_HTTP_WRITE_TIMEOUT": adminPassTimeout.String(),
		"SECKILL_RECONCILE_INTERVAL": "0s",
		// No order is paid here: with the default 5 minutes, the orders of
		// the first phases would all time out during the later ones, and
		// their cancellations (each a transaction, a Redis update and a
		// broadcast) take the cores from the phase being measured. The
		// bench measures the sale; payments and timeouts have their tests.
		"SECKILL_ORDER_PAY_TIMEOUT": "3h",
	}
	if o.Pprof != "" {
		if err := requireLoopback("http://" + o.Pprof); err != nil {
			return nil, err
		}
		env["SECKILL_DEBUG_PPROF_ADDR"] = o.Pprof
	}
	// The tables of V7's logical databases are made before the sale, as an
	// operator's `seckill -migrate` makes them, not by V7's first orders.
	if out, err := commandWith(ctx, bin, env, "-migrate").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("seckill -migrate: %w\n%s", err, out)
	}
	svc, err := startService(ctx, bin, tmp, env)
	if err != nil {
		return nil, err
	}
	defer svc.stop()
	logf("service up at %s", svc.Base)
	servers, err := harness.OpenServers([]string{serviceDSN}, o.Redis, o.Prefix)
	if err != nil {
		return nil, err
	}
	defer servers.Close()
	if _, err := servers.AddDatabase(v7bDSN); err != nil {
		return nil, err
	}
	meter := newCPUMeter(svc.cmd.Process.Pid)
	if res.Versions, res.Best, err = svc.versions(ctx); err != nil {
		return nil, err
	}
	if len(o.Only) > 0 {
		var kept []string
		for _, v := range res.Versions {
			if slices.Contains(o.Only, v) {
				kept = append(kept, v)
			}
		}
		if len(kept) != len(o.Only) {
			return nil, fmt.Errorf("-versions %s: the service has %v", strings.Join(o.Only, ","), res.Versions)
		}
		res.Versions = kept
	}
	logf("versions %v, best %s", res.Versions, res.Best)
	res.Machine = readMachine(ctx, root, o)
	res.Machine.RedisCluster = clusterInfo(ctx, cluster)
	quiet := &quietGate{left: o.QuietWait, logf: logf}
	if idle, err := cpuIdle(ctx, time.Second); err == nil {
		res.Machine.IdleBefore = fmt.Sprintf("%.0f%%", 100*idle)
	}
	if o.DoubleCheckOnly {
		res.DoubleCheck = runDoubleCheck(ctx, svc, servers, meter, o, res.Best, quiet, logf)
		svc.stop()
		res.ServiceLog = svc.logProblems()
		res.Elapsed = time.Since(res.Started)
		res.Report, err = writeDoubleCheckReport(o.Out, res)
		return res, err
	}

	// Ceilings first, with the service idle: the same run, the same machine.
	ceilDSN, err := databaseDSN(o.MySQL, o.Database, true)
	if err != nil {
		return nil, err
	}
	if err := prepareCeilingTables(ctx, ceilDSN); err != nil {
		return nil, err
	}
	co := ceilingOptions{
		Duration: o.CeilingDuration, Warmup: o.Warmup, Clients: o.Conns,
		ConsumerConns: o.ConsumerConns, ConsumerBatch: o.ConsumerBatch,
		DSN: ceilDSN, RedisAddr: o.Redis, RedisPrefix: o.Prefix, TempDir: tmp,
		ClusterAddrs: cluster.Addrs(), RedisPool: o.RedisPool,
		Wrk:   wrkRun{Script: o.Script, Threads: o.Threads, Conns: o.Conns, Duration: o.Duration},
		Meter: meter, Quiet: quiet,
	}
	if o.ReadsOnly {
		res.Reads = runReadsOnly(ctx, svc, o, co, root, logf)
		logReadPhase(logf, *res.Reads)
		return res, nil
	}
	if len(o.SoldOutOnly) > 0 {
		res.Phases, err = runSoldOutOnly(ctx, svc, servers, meter, o, co, o.SoldOutOnly, logf)
		return res, err
	}
	if o.DrainOnly {
		res.Phases, err = runDrainOnly(ctx, svc, servers, meter, o, co, res.Best, logf)
		return res, err
	}
	if len(o.ScaleOnly) > 0 || len(o.RateOnly) > 0 {
		res.Phases, res.AtRate = runRatesOnly(ctx, svc, servers, meter, o, o.RateOnly, logf)
		sr := scaleRun{svc: svc, servers: servers, meter: meter, o: o, version: cmp.Or(o.ScaleVersion, res.Best), logf: logf}
		for _, name := range scaleNames {
			if slices.Contains(o.ScaleOnly, name) && ctx.Err() == nil {
				res.Scale = append(res.Scale, sr.runScale(ctx, name))
			}
		}
		return res, ctx.Err()
	}
	logf("ceilings, first pass")
	passStart := time.Now()
	res.Ceilings = measureCeilings(ctx, co, nil, logf)
	// Keep time for the second pass, stopping the service and the report.
	reserve := time.Since(passStart) + 30*time.Second
	// Every phase has a slot of the budget kept for it: a phase run twice
	// on a busy machine, or a long drain, takes only spare time, never a
	// later phase's slot. The coupon phases keep theirs, and time to start
	// the instance on the cluster, while the versions run.
	slot := o.Duration + 5*time.Second
	couponTime := time.Duration(2*len(o.SubStocks)+len(clusterVersions(res.Versions)))*slot + 15*time.Second
	versionPhases := 0
	for _, v := range res.Versions {
		versionPhases += 3 // in stock, sold out and the HTTP ceiling after it
		if v == res.Best {
			versionPhases += 3
		}
	}

	for _, v := range res.Versions {
		phases := []string{inStock, soldOut}
		if v == res.Best {
			phases = []string{inStock, backlog, backlogLimited, backlogLoaded, soldOut}
		}
		for _, ph := range phases {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			versionPhases--
			later := reserve + couponTime + time.Duration(versionPhases)*slot
			left := time.Until(deadline) - later
			if left < slot {
				res.Phases = append(res.Phases, phaseResult{Version: v, Phase: ph, Skipped: "the time budget ran out"})
				logPhase(logf, res.Phases[len(res.Phases)-1])
				continue
			}
			quiet.wait(ctx, v+" "+ph)
			p := runPhase(ctx, svc, servers, meter, o, v, ph, min(o.DrainTimeout, left-o.Duration))
			// A run that shared the machine with someone else's work says
			// little about the version: run it once more and keep the less
			// disturbed one. A broken invariant is never run again, and a
			// second run that breaks one is the one reported.
			left = time.Until(deadline) - later
			if p.ok() && p.measured() && p.OtherCPU > o.Disturbed && left >= slot {
				logf("%s %s: other processes took %.0f%% of the CPU; running it again", v, ph, 100*p.OtherCPU)
				quiet.wait(ctx, v+" "+ph)
				q := runPhase(ctx, svc, servers, meter, o, v, ph, min(o.DrainTimeout, left-o.Duration))
				first, kept := p.OtherCPU, "first"
				if !q.ok() || q.OtherCPU < p.OtherCPU {
					p, kept = q, "second"
				}
				p.Notes = append(p.Notes, fmt.Sprintf("run twice: other processes took %.0f%% of the CPU during the first run and %.0f%% during the second; the %s run is shown",
					100*first, 100*q.OtherCPU, kept))
			}
			if ph == soldOut {
				versionPhases--
				if p.measured() && boundFor(v, ph, res.Ceilings).ID == ceilHTTP {
					p.NextHTTP = httpCeilingNext(ctx, co, logf)
				}
			}
			p.Bound = boundFor(v, ph, res.Ceilings) // provisional, for the log line
			p.Fraction = fraction(p.Wrk.RPS, p.Bound)
			res.Phases = append(res.Phases, p)
			logPhase(logf, p)
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if len(o.Only) > 0 {
		if len(clusterVersions(res.Versions)) > 0 {
			svc.stop()
			err := runOnCluster(ctx, bin, tmp, o, cluster, meter, deadline, reserve, quiet, res, false, logf)
			return res, err
		}
		return res, nil
	}
	quiet.wait(ctx, "V9 reads")
	reads := runReadPhase(ctx, svc, o, root, httpCeilingRate(res.Ceilings))
	res.Reads = &reads
	logReadPhase(logf, reads)
	if o.DoubleCheckRounds > 0 {
		res.DoubleCheck = runDoubleCheck(ctx, svc, servers, meter, o, res.Best, quiet, logf)
	}
	logf("V7: doubling the hosts under load")
	quiet.wait(ctx, "reshard")
	rr := runReshard(ctx, svc, servers, bin, env, o)
	res.Reshard = &rr
	for _, x := range rr.Windows {
		logf("reshard %-6s %7.0f orders/s  p50 %-8s p99 %-8s busy %d  others %d", x.Name, x.RPS, fmtDur(x.P50), fmtDur(x.P99), x.Busy, x.Others)
	}
	for _, f := range rr.Freezes {
		logf("reshard l%d frozen %s: of its users' %d orders, %d delayed and %d refused; of %d others, %d slower than %s",
			f.DB, fmtDur(f.Frozen), f.Asked, f.Delayed, f.Refused, f.Others, f.Bystands, delayedAfter)
	}
	if !rr.ok() {
		logf("reshard FAILED: %s %s", rr.Err, strings.Join(rr.Failures, "; "))
	}
	// Claims on the single Redis, through the same instance.
	single := couponTarget{Redis: onSingle, svc: svc, servers: servers, meter: meter}
	res.Coupons = append(res.Coupons, runCouponPhases(ctx, single, o, deadline, reserve+couponTime/2, quiet, logf)...)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// The constant-rate and scale phases keep the cluster's coupon
	// phases' share of the budget.
	later := reserve + couponTime/2
	for _, v := range rateVersions(res.Versions, res.Best) {
		r := rateResult{Version: v, Skipped: "the time budget ran out"}
		if time.Until(deadline)-later >= slot {
			quiet.wait(ctx, v+" "+atRate)
			r = runAtRate(ctx, svc, servers, meter, o, v, peakOf(res.Phases, v))
		}
		logRate(logf, r)
		res.AtRate = append(res.AtRate, r)
	}
	sr := scaleRun{svc: svc, servers: servers, meter: meter, o: o, version: cmp.Or(o.ScaleVersion, res.Best), logf: logf}
	for _, name := range scaleNames {
		if time.Until(deadline)-later < scaleTime(name, o) {
			res.Scale = append(res.Scale, scalePhase{Name: name, Version: sr.version, Skipped: "the time budget ran out"})
			logf("scale %s not run: the time budget ran out", name)
			continue
		}
		quiet.wait(ctx, "scale "+name)
		res.Scale = append(res.Scale, sr.runScale(ctx, name))
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	svc.stop()
	res.ServiceLog = svc.logProblems()
	for _, c := range res.ServiceLog {
		logf("service logged %d × %s %q (first err: %s)", c.N, c.Level, c.Msg, c.Err)
	}

	if limited := limitedVersion(); limited != "" {
		logf("overload: %d buyers, %d at a time, on a cap of %d: %s sheds, %s waits", overloadStock, overloadFactor*overloadCap, overloadCap, res.Best, limited)
		quiet.wait(ctx, "overload")
		res.Overload = runOverload(ctx, bin, tmp, env, res.Best, limited)
		for _, x := range res.Overload {
			logf("overload %s (%s): sold %d of %d in %s, answers %v %s", x.Version, x.Mode, x.Sold, overloadStock, fmtDur(x.Elapsed), x.Answers, x.Err)
		}
	}

	// Claims on the cluster, through a second instance started now, once
	// the first is stopped: one instance at a time on the cores and on
	// MySQL's connection limit.
	if err := runOnCluster(ctx, bin, tmp, o, cluster, meter, deadline, reserve, quiet, res, true, logf); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// The second pass runs with the service stopped: its idle connection
	// pools would otherwise count against MySQL's connection limit.
	logf("ceilings, second pass")
	res.Ceilings = measureCeilings(ctx, co, res.Ceilings, logf)
	for i := range res.Phases {
		p := &res.Phases[i]
		p.Bound = boundFor(p.Version, p.Phase, res.Ceilings)
		if p.NextHTTP > 0 && (p.Bound.ID == ceilHTTP || p.NextHTTP < p.Bound.Rate) {
			p.Bound.ID, p.Bound.Rate = ceilHTTP, p.NextHTTP
		}
		p.Fraction = fraction(p.Wrk.RPS, p.Bound)
	}
	if res.Reads != nil && res.Reads.Err == "" {
		res.Reads.Bound = httpCeilingRate(res.Ceilings)
		res.Reads.Fraction = res.Reads.Wrk.RPS / max(res.Reads.Bound, 1)
	}
	for i := range res.Coupons {
		if res.Coupons[i].measured() {
			claimRatios(&res.Coupons[i], res.Ceilings)
		}
	}
	res.Machine.LoadAfter = loadAverage()
	res.QuietWaited = quiet.waited
	res.Elapsed = time.Since(res.Started)
	if res.Report, err = writeReport(o.Out, res); err != nil {
		return res, err
	}
	logf("wrote %s, %s and %s (%s)", res.Report, filepath.Join(o.Out, "bench", "versions.svg"), filepath.Join(o.Out, "bench", "coupons.svg"), res.Elapsed.Round(time.Second))
	return res, nil
}

// serviceEnv is the environment of an instance in dir: its database, its
// Redis (redisVar is SECKILL_REDIS_ADDR or SECKILL_REDIS_CLUSTER_ADDRS)
// under the key prefix, and an embedded nsqd on free ports.
func serviceEnv(dir, dsn, prefix, redisVar, redisAddr string) map[string]string {
	return map[string]string{
		"SECKILL_MYSQL_DSN":              dsn,
		redisVar:                         redisAddr,
		"SECKILL_REDIS_KEY_PREFIX":       prefix,
		"SECKILL_NSQ_EMBEDDED_TCP_ADDR":  "127.0.0.1:0",
		"SECKILL_NSQ_EMBEDDED_HTTP_ADDR": "127.0.0.1:0",
		"SECKILL_METRICS_ADDR":           "127.0.0.1:0",
		"SECKILL_NSQ_EMBEDDED_DATA_DIR":  filepath.Join(dir, "nsqd"),
	}
}

// startRedisCluster starts the cluster of the coupon phases in dir, with
// no persistence, as the single Redis runs.
func startRedisCluster(ctx context.Context, dir string, masters int) (*rediscluster.Cluster, error) {
	bin, err := rediscluster.Binary()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "redis-cluster")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	c, err := rediscluster.Start(ctx, bin, rediscluster.Options{Dir: root, Masters: masters})
	if err != nil {
		return nil, fmt.Errorf("redis cluster: %w", err)
	}
	return c, nil
}

// runOnCluster starts an instance on the cluster with a database of its
// own, runs the coupon phases on it (with coupons) and the in-stock phase
// of the split versions and the best one (clusterVersions), and stops it.
func runOnCluster(ctx context.Context, bin, tmp string, o options, cluster *rediscluster.Cluster, meter cpuMeter,
	deadline time.Time, reserve time.Duration, quiet *quietGate, res *results, coupons bool, logf func(string, ...any)) error {
	dir := filepath.Join(tmp, "cluster-instance")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	dsn, err := databaseDSN(o.MySQL, o.ClusterDatabase, false)
	if err != nil {
		return err
	}
	env := serviceEnv(dir, dsn, o.Prefix, "SECKILL_REDIS_CLUSTER_ADDRS", strings.Join(cluster.Addrs(), ","))
	// The coupon records live in V7's logical databases: their tables are
	// made before the claims, as an operator's `seckill -migrate` makes
	// them, not by the first claims.
	if out, err := commandWith(ctx, bin, env, "-migrate").CombinedOutput(); err != nil {
		return fmt.Errorf("seckill -migrate on the cluster instance's database: %w\n%s", err, out)
	}
	svc, err := startService(ctx, bin, dir, env)
	if err != nil {
		return fmt.Errorf("the instance on the redis cluster: %w", err)
	}
	defer svc.stop()
	logf("instance on the redis cluster up at %s", svc.Base)
	servers, err := harness.OpenServers([]string{dsn}, "", o.Prefix)
	if err != nil {
		return err
	}
	defer servers.Close()
	servers.UseRedisCluster(cluster.Addrs())
	tg := couponTarget{Redis: onCluster, svc: svc, servers: servers, meter: meter.with(svc.cmd.Process.Pid), masterOf: cluster.MasterOf}
	if coupons {
		res.Coupons = append(res.Coupons, runCouponPhases(ctx, tg, o, deadline, reserve, quiet, logf)...)
	}
	for _, v := range clusterVersions(res.Versions) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Until(deadline)-reserve < o.Duration+5*time.Second {
			res.Phases = append(res.Phases, phaseResult{Version: v, Phase: inStockCluster, Skipped: "the time budget ran out"})
			logPhase(logf, res.Phases[len(res.Phases)-1])
			continue
		}
		quiet.wait(ctx, v+" "+inStockCluster)
		p := runPhase(ctx, svc, servers, tg.meter, o, v, inStockCluster, o.DrainTimeout)
		p.Bound = boundFor(v, inStockCluster, res.Ceilings)
		p.Fraction = fraction(p.Wrk.RPS, p.Bound)
		res.Phases = append(res.Phases, p)
		logPhase(logf, p)
	}
	svc.stop()
	res.ClusterServiceLog = svc.logProblems()
	for _, c := range res.ClusterServiceLog {
		logf("instance on the cluster logged %d × %s %q (first err: %s)", c.N, c.Level, c.Msg, c.Err)
	}
	return nil
}

// runCouponPhases runs a coupon phase per sub-stock count on tg, each once
// more when other processes took much of the CPU, as the versions' are,
// keeping reserve before the deadline for what follows them and a slot
// for each phase still to run.
func runCouponPhases(ctx context.Context, tg couponTarget, o options, deadline time.Time, reserve time.Duration, quiet *quietGate, logf func(string, ...any)) []couponPhase {
	var out []couponPhase
	slot := o.Duration + 5*time.Second
	for i, n := range o.SubStocks {
		if ctx.Err() != nil {
			return out
		}
		later := reserve + time.Duration(len(o.SubStocks)-1-i)*slot
		p := couponPhase{Redis: tg.Redis, SubStocks: n, Stock: o.Stock}
		if time.Until(deadline)-later < slot {
			p.Skipped = "the time budget ran out"
			out = append(out, p)
			logCouponPhase(logf, p)
			continue
		}
		quiet.wait(ctx, p.name())
		p = runCouponPhase(ctx, tg, o, n, o.SettleTimeout)
		if p.ok() && p.measured() && p.OtherCPU > o.Disturbed && time.Until(deadline)-later >= slot {
			logf("%s: other processes took %.0f%% of the CPU; running it again", p.name(), 100*p.OtherCPU)
			quiet.wait(ctx, p.name())
			q := runCouponPhase(ctx, tg, o, n, o.SettleTimeout)
			first, kept := p.OtherCPU, "first"
			if !q.ok() || q.OtherCPU < p.OtherCPU {
				p, kept = q, "second"
			}
			p.Notes = append(p.Notes, fmt.Sprintf("run twice: other processes took %.0f%% of the CPU during the first run and %.0f%% during the second; the %s run is shown",
				100*first, 100*q.OtherCPU, kept))
		}
		out = append(out, p)
		logCouponPhase(logf, p)
	}
	return out
}

func logPhase(logf func(string, ...any), p phaseResult) {
	status := "ok"
	if !p.ok() {
		status = "FAILED"
	}
	if p.Skipped != "" {
		logf("%s %-8s not run: %s", p.Version, p.Phase, p.Skipped)
		return
	}
	if p.Err != "" {
		logf("%s %-8s %s: %s", p.Version, p.Phase, status, p.Err)
		return
	}
	bound := "no bound"
	if p.Bound.ID != "" {
		bound = fmt.Sprintf("%.0f%% of %s", 100*p.Fraction, p.Bound.ID)
	}
	logf("%s %-8s %9.0f req/s  p50 %-8s  p99 %-8s  non-2xx %-7d errors %-4d  %-16s other CPU %3.0f%%  drained %-6s %s %s",
		p.Version, p.Phase, p.Wrk.RPS, fmtDur(p.Wrk.P50), fmtDur(p.Wrk.P99), p.Wrk.Non2xx, p.Wrk.SocketErrors(),
		bound, 100*p.OtherCPU, p.Drain.Time.Round(10*time.Millisecond), status, strings.Join(append(p.Failures, p.Notes...), "; "))
}

// rerender writes the report of a saved results.json into out (default:
// the docs directory it came from).
func rerender(path, out string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r results
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if out == "" {
		out = filepath.Dir(filepath.Dir(path))
	}
	_, err = writeReport(out, &r)
	return err
}

// o.wrk is the wrk run of one phase.
func (o options) wrk(base, path string, goodsID int64) wrkRun {
	return wrkRun{URL: base, Path: path, GoodsID: goodsID, Script: o.Script, Threads: o.Threads, Conns: o.Conns, Duration: o.Duration}
}

func prepareCeilingTables(ctx context.Context, dsn string) error {
	db, err := openMySQL(dsn, 1)
	if err != nil {
		return err
	}
	defer db.Close()
	return ceilingTables(ctx, db)
}

// moduleRoot is the nearest directory above the working one with go.mod:
// `go run ./bench` runs from the root, `go test` from bench/.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
