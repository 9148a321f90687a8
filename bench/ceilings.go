package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	domain "github.com/go-seckill/seckill/service"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nsqio/go-nsq"
	"github.com/nsqio/nsq/nsqd"
	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/store"
)

// The ceilings: what one step of an order path can do at most on this
// machine, measured alone with the same clients the service uses.
const (
	ceilHTTP     = "http"           // trivial Gin POST handler under the same wrk settings
	ceilHINCRBY  = "hincrby"        // Redis HINCRBY
	ceilEvalSHA  = "evalsha"        // Redis EVALSHA of the check-and-decrement script
	ceilInsert1  = "insert-1"       // single-row INSERT, one table
	ceilInsert16 = "insert-16"      // single-row INSERT spread over 16 tables
	ceilHotTx    = "hot-tx"         // conditional UPDATE of one row + INSERT, one tx
	ceilHotMiss  = "hot-miss"       // conditional UPDATE matching nothing on one row, rolled back
	ceilConsumer = "consumer"       // INSERT stock log + conditional UPDATE of one row, one tx
	ceilBatch    = "consumer-batch" // the same for a batch of messages in one tx
	ceilNSQ      = "nsq-publish"    // go-nsq Publish to one nsqd, one producer
	// The coupon claim's steps: the sub-stock take script (on one Redis,
	// and on the cluster's masters) and the insert of the coupon's record.
	ceilTake         = "coupon-take"         // EVALSHA of the sub-stock take script, one key, one Redis
	ceilTakeCluster  = "coupon-take-cluster" // the same over one key per master of the cluster
	ceilCouponInsert = "coupon-insert-16"    // single-row INSERT spread over 16 tables shaped like the coupon tables
)

// ceiling is one measured rate: the better of two passes, one before the
// versions run and one after, since a ceiling is what the machine can do
// and a pass disturbed by anything else on the machine only shows less.
type ceiling struct {
	ID       string    `json:"id"`
	What     string    `json:"what"`
	Clients  int       `json:"clients"`
	Rate     float64   `json:"rate"` // operations per second; 0 when not measured
	Passes   []float64 `json:"passes"`
	OtherCPU []float64 `json:"other_cpu"` // per pass, see cpuMeter
	Unit     string    `json:"unit"`
	Errors   int64     `json:"errors"`
	FirstErr string    `json:"first_error,omitempty"`
	Err      string    `json:"error,omitempty"` // set when no pass could measure it
}

// load is what one bounded load did.
type load struct {
	Ops, Errors int64
	Elapsed     time.Duration
	FirstErr    string
}

func (l load) rate() float64 {
	if l.Elapsed <= 0 {
		return 0
	}
	return float64(l.Ops) / l.Elapsed.Seconds()
}

// seedCeilings are the seed article's figures for the same operations on
// its 8-core server, where it gives them: shown beside ours for scale.
var seedCeilings = map[string]float64{
	ceilHINCRBY:  97626,
	ceilEvalSHA:  69870,
	ceilInsert1:  14361,
	ceilInsert16: 20183, // its best spread was 5 tables
	ceilHotTx:    3395,  // "hot row update"
}

// ceilingOptions size the ceiling runs.
type ceilingOptions struct {
	Duration      time.Duration // measured time of each ceiling
	Warmup        time.Duration // unmeasured run before it: pools filled, caches warm
	Clients       int           // wrk connections, Redis clients, MySQL connections
	ConsumerConns int           // the consumer's concurrency
	ConsumerBatch int           // the consumer's batch size
	DSN           string        // bench database, interpolateParams=true
	RedisAddr     string
	RedisPrefix   string
	ClusterAddrs  []string // the Redis Cluster's masters
	RedisPool     int      // the service's Redis pool (per master on a cluster)
	TempDir       string
	Wrk           wrkRun // for the HTTP ceiling; URL and Path are filled in
	Meter         cpuMeter
	Quiet         *quietGate
}

type ceilingStep struct {
	id, what, unit string
	clients        int
	run            func(context.Context, ceilingOptions) (load, error)
}

func ceilingSteps(o ceilingOptions) []ceilingStep {
	return []ceilingStep{
		{ceilHTTP, "trivial Gin POST handler (decode the JSON body, answer a fixed JSON 201), wrk with wrk/order.lua", "req/s", o.Clients, httpCeiling},
		{ceilHINCRBY, "Redis HINCRBY, go-redis", "ops/s", o.Clients, redisCeiling(false)},
		{ceilEvalSHA, "Redis EVALSHA of the check-and-decrement script, go-redis", "ops/s", o.Clients, redisCeiling(true)},
		{ceilInsert1, "MySQL single-row INSERT into one table shaped like orders", "rows/s", o.Clients, insertCeiling(1)},
		{ceilInsert16, "MySQL single-row INSERT spread over 16 tables shaped like orders", "rows/s", o.Clients, insertCeiling(16)},
		{ceilHotTx, "MySQL tx: UPDATE one goods row SET stock=stock-1, sale=sale+1 WHERE stock>=1; INSERT order", "tx/s", o.Clients, hotTxCeiling},
		{ceilHotMiss, "MySQL tx: the same UPDATE on a row with stock 0 (matches nothing); ROLLBACK", "tx/s", o.Clients, hotMissCeiling},
		{ceilConsumer, "MySQL tx: INSERT goods_stock_logs row; UPDATE one goods row (one stock message per tx)", "msg/s", o.ConsumerConns, consumerCeiling},
		{ceilBatch, fmt.Sprintf("MySQL tx: INSERT %d goods_stock_logs rows in one statement; UPDATE one goods row by %d (the consumer's batch)", o.ConsumerBatch, o.ConsumerBatch), "msg/s", o.ConsumerConns, batchCeiling},
		{ceilNSQ, "nsqd PUB of a stock message, one go-nsq producer shared by all clients", "msg/s", o.Clients, nsqCeiling},
		{ceilTake, "Redis EVALSHA of the coupon sub-stock take script (store's CouponStocks.Take), one key on the single Redis", "ops/s", o.Clients, takeCeiling(false)},
		{ceilTakeCluster, fmt.Sprintf("the same take, each call on one of %d keys spread over the cluster's %d masters (store.SpreadTags)", len(o.ClusterAddrs), len(o.ClusterAddrs)), "ops/s", o.Clients, takeCeiling(true)},
		{ceilCouponInsert, "MySQL single-row INSERT of a claimed coupon spread over 16 tables shaped like the coupon tables (5 indexes)", "rows/s", o.Clients, couponInsertCeiling},
	}
}

// measureCeilings runs one pass over every ceiling, one after the other so
// none competes with another for the cores, and folds it into prev (nil on
// the first pass).
func measureCeilings(ctx context.Context, o ceilingOptions, prev []ceiling, logf func(string, ...any)) []ceiling {
	var out []ceiling
	for i, s := range ceilingSteps(o) {
		c := ceiling{ID: s.id, What: s.what, Unit: s.unit, Clients: s.clients}
		if i < len(prev) {
			c = prev[i]
		}
		oo := o
		oo.Clients = s.clients
		o.Quiet.wait(ctx, "ceiling "+s.id)
		cpu := o.Meter.snap()
		l, err := s.run(ctx, oo)
		other := cpu.otherShare(o.Meter.snap())
		c.Errors += l.Errors
		if c.FirstErr == "" {
			c.FirstErr = l.FirstErr
		}
		if err != nil {
			if c.Rate == 0 {
				c.Err = err.Error()
			}
			logf("ceiling %-12s failed: %v", s.id, err)
		} else {
			c.Passes = append(c.Passes, l.rate())
			c.OtherCPU = append(c.OtherCPU, other)
			c.Rate = max(c.Rate, l.rate())
			c.Err = ""
			logf("ceiling %-14s %9.0f %-6s (%d clients, %d errors%s; other processes %.0f%% CPU)", s.id, l.rate(), s.unit, s.clients, l.Errors, firstErrSuffix(l.FirstErr), 100*other)
		}
		out = append(out, c)
	}
	return out
}

func firstErrSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ", first: " + e
}

// drive runs op from n goroutines for warmup (not counted), then for d, and
// returns the operations completed in d. Every goroutine stops at the
// deadline: the load ends by itself. Too many errors end it early.
func drive(ctx context.Context, n int, warmup, d time.Duration, op func(ctx context.Context) error) (load, error) {
	if warmup > 0 {
		if _, err := driveOnce(ctx, n, warmup, op); err != nil {
			return load{}, err
		}
	}
	return driveOnce(ctx, n, d, op)
}

func driveOnce(ctx context.Context, n int, d time.Duration, op func(ctx context.Context) error) (load, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ops, errs atomic.Int64
	var mu sync.Mutex
	var firstErr string
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				err := op(ctx)
				switch {
				case err == nil:
					ops.Add(1)
				case ctx.Err() != nil: // cut off by the deadline, not a failure
				default:
					mu.Lock()
					if firstErr == "" {
						firstErr = err.Error()
					}
					mu.Unlock()
					if errs.Add(1) > 1000 {
						cancel()
					}
				}
			}
		}()
	}
	wg.Wait()
	l := load{Ops: ops.Load(), Errors: errs.Load(), Elapsed: time.Since(start), FirstErr: firstErr}
	if l.Errors > 1000 {
		return l, fmt.Errorf("%d errors, first: %s", l.Errors, firstErr)
	}
	return l, nil
}

// httpCeiling serves the least a Gin order handler can do (read the JSON
// body into a struct, answer a fixed small JSON 201) and loads it with wrk
// exactly as the versions are loaded: no version can answer faster. The
// server is a process of its own, as the service is: served from the
// bench's process it shared that process's heap and goroutines, and read
// lower late in a run than the sold-out phases it bounds.
func httpCeiling(ctx context.Context, o ceilingOptions) (load, error) {
	srv, err := startCeilingServer(ctx)
	if err != nil {
		return load{}, fmt.Errorf("start the ceiling's server: %w", err)
	}
	defer srv.stop()

	w := o.Wrk
	w.URL, w.Path, w.GoodsID = "http://"+srv.addr, "/order", 1
	res, _, err := w.run(ctx)
	if err != nil {
		return load{}, err
	}
	// wrk's own rate over its own clock, as for the versions.
	out := load{Ops: int64(res.RPS * res.Elapsed.Seconds()), Errors: res.SocketErrors() + res.Other, Elapsed: res.Elapsed}
	if out.Errors > 0 {
		out.FirstErr = fmt.Sprintf("%d answers not 201, socket errors: connect %d, read %d, write %d, timeout %d", res.Other, res.Connect, res.Read, res.Write, res.Timeout)
	}
	return out, nil
}

// ceilingServerArg, as the only argument, makes the bench's binary the
// HTTP ceiling's server (serveHTTPCeiling) instead of a run.
const ceilingServerArg = "-serve-http-ceiling"

// serveHTTPCeiling serves the ceiling's handler on a free loopback port,
// writes the address as one line on stdout, and exits when stdin closes:
// when the bench stops it, or dies.
func serveHTTPCeiling() {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	answer := []byte(`{"order_id":"1","user_id":1,"goods_id":1,"number":1}`)
	r.POST("/order", func(c *gin.Context) {
		var b struct {
			UserID  int64 `json:"user_id"`
			GoodsID int64 `json:"goods_id"`
			Number  int64 `json:"number"`
		}
		if err := json.NewDecoder(c.Request.Body).Decode(&b); err != nil {
			c.Data(http.StatusBadRequest, "application/json", []byte(`{"error":"invalid_json"}`))
			return
		}
		c.Data(http.StatusCreated, "application/json", answer)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().String())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	_ = srv.Serve(l)
}

type ceilingServer struct {
	addr  string
	cmd   *exec.Cmd
	stdin io.Closer
}

// startCeilingServer runs this binary as the ceiling's server and waits
// for its address.
func startCeilingServer(ctx context.Context) (*ceilingServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, ceilingServerArg)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &ceilingServer{cmd: cmd, stdin: stdin}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Scan()
		line <- sc.Text()
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case s.addr = <-line:
	case <-time.After(10 * time.Second):
	}
	if s.addr == "" {
		s.stop()
		return nil, errors.New("the server gave no address")
	}
	return s, nil
}

// stop closes the server's stdin, which ends it, and waits for it.
func (s *ceilingServer) stop() {
	_ = s.stdin.Close()
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// reserveScript is the service's check-and-decrement (store/redis.go).
const reserveScript = `
local stock = redis.call('HGET', KEYS[1], 'stock')
if not stock then return -2 end
local n = tonumber(ARGV[1])
if tonumber(stock) < n then return -1 end
return redis.call('HINCRBY', KEYS[1], 'stock', -n)
`

func redisCeiling(script bool) func(context.Context, ceilingOptions) (load, error) {
	return func(ctx context.Context, o ceilingOptions) (load, error) {
		// The service's pool size: the client side costs as much as the server.
		c := redis.NewClient(&redis.Options{Addr: o.RedisAddr, PoolSize: 128, MinIdleConns: 32})
		defer c.Close()
		key := o.RedisPrefix + "ceiling:stock"
		defer c.Del(context.Background(), key)
		if err := c.HSet(ctx, key, "stock", int64(1)<<50).Err(); err != nil {
			return load{}, err
		}
		op := func(ctx context.Context) error { return c.HIncrBy(ctx, key, "stock", -1).Err() }
		if script {
			sha, err := c.ScriptLoad(ctx, reserveScript).Result()
			if err != nil {
				return load{}, err
			}
			op = func(ctx context.Context) error { return c.EvalSha(ctx, sha, []string{key}, 1).Err() }
		}
		return drive(ctx, o.Clients, o.Warmup, o.Duration, op)
	}
}

// takeCeiling runs the service's own take (store.CouponStocks.Take: the
// script's EVALSHA through go-redis, on the service's pool size) against
// sub-stocks that never run out: one key on the single Redis, or one key
// per master of the cluster, each call on one of them at random, as a claim
// picks its sub-stock.
func takeCeiling(cluster bool) func(context.Context, ceilingOptions) (load, error) {
	return func(ctx context.Context, o ceilingOptions) (load, error) {
		ro := store.RedisOptions{Addr: o.RedisAddr, PoolSize: o.RedisPool, KeyPrefix: o.RedisPrefix}
		keys := 1
		if cluster {
			if len(o.ClusterAddrs) == 0 {
				return load{}, errors.New("no Redis Cluster")
			}
			ro.Addr, ro.ClusterAddrs, keys = "", o.ClusterAddrs, len(o.ClusterAddrs)
		}
		r, err := store.OpenRedis(ctx, ro)
		if err != nil {
			return load{}, err
		}
		defer r.Close()
		st := r.CouponStocks()
		tags, err := st.Spread(ctx, keys, "ceiling")
		if err != nil {
			return load{}, err
		}
		for _, tag := range tags {
			if err := st.Add(ctx, tag, int64(1)<<50, randomHex(8)); err != nil {
				return load{}, err
			}
		}
		defer func() {
			addrs := []string{o.RedisAddr}
			if cluster {
				addrs = o.ClusterAddrs
			}
			c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs, IsClusterMode: cluster})
			defer c.Close()
			for _, tag := range tags {
				c.Del(context.Background(), store.CouponStockKey(o.RedisPrefix, tag))
			}
		}()
		return drive(ctx, o.Clients, o.Warmup, o.Duration, func(ctx context.Context) error {
			ok, err := st.Take(ctx, tags[rand.IntN(len(tags))], 1)
			if err == nil && !ok {
				err = errors.New("the sub-stock ran out")
			}
			return err
		})
	}
}

// couponInsertCeiling inserts claimed coupons as the service records them
// (store/coupons.go), spread as claims are, into empty copies of the
// coupon tables.
func couponInsertCeiling(ctx context.Context, o ceilingOptions) (load, error) {
	return withDB(ctx, o, func(db *sql.DB) (load, error) {
		return drive(ctx, o.Clients, o.Warmup, o.Duration, func(ctx context.Context) error {
			id, user := ids.Add(1), rand.Int64N(2_000_000_000)+1
			table := domain.ByUserTable(user, domain.Layout{Tables: domain.MaxOrderTables}).Table - 1
			now := time.Now()
			_, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO ceil_coupon_%d (id, template_id, user_id, seq, status, sub_stock, idem_key, claimed_at, expires_at) VALUES (?, 1, ?, NULL, 0, 0, NULL, ?, ?)", table),
				id, user, now, now.Add(30*24*time.Hour))
			return err
		})
	})
}

// openMySQL opens the bench database with n connections kept open.
func openMySQL(dsn string, n int) (*sql.DB, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	return db, nil
}

// ids are increasing like the service's snowflake ids, so rows append at
// the right end of the primary key as the service's do.
var ids atomic.Int64

func init() { ids.Store(time.Now().UnixNano()) }

// ceilingTables makes empty copies of the service's tables (same columns
// and indexes; the service has migrated the database by now) and one hot
// goods row with plenty of stock and one with none.
func ceilingTables(ctx context.Context, db *sql.DB) error {
	qs := []string{
		"DROP TABLE IF EXISTS ceil_goods", "CREATE TABLE ceil_goods LIKE goods",
		"INSERT INTO ceil_goods (id, name, stock) VALUES (1, 'hot', 1000000000000), (2, 'empty', 0)",
		"DROP TABLE IF EXISTS ceil_stock_logs", "CREATE TABLE ceil_stock_logs LIKE goods_stock_logs",
	}
	for i := range 16 {
		qs = append(qs, fmt.Sprintf("DROP TABLE IF EXISTS ceil_orders_%d", i), fmt.Sprintf("CREATE TABLE ceil_orders_%d LIKE orders", i))
		qs = append(qs, fmt.Sprintf("DROP TABLE IF EXISTS ceil_coupon_%d", i))
		qs = append(qs, store.CouponTableDDL(fmt.Sprintf("ceil_coupon_%d", i))...)
	}
	for _, q := range qs {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func insertOrder(ctx context.Context, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, tables int) error {
	id, user := ids.Add(1), rand.Int64N(2_000_000_000)+1
	// Spread as V3 spreads orders (ceil_orders_0.. for order_1..).
	table := domain.ByUserTable(user, domain.Layout{Tables: tables}).Table - 1
	_, err := q.ExecContext(ctx, fmt.Sprintf("INSERT INTO ceil_orders_%d (id, user_id, goods_id, number) VALUES (?, ?, 1, 1)", table), id, user)
	return err
}

func insertCeiling(tables int) func(context.Context, ceilingOptions) (load, error) {
	return func(ctx context.Context, o ceilingOptions) (load, error) {
		return withDB(ctx, o, func(db *sql.DB) (load, error) {
			return drive(ctx, o.Clients, o.Warmup, o.Duration, func(ctx context.Context) error { return insertOrder(ctx, db, tables) })
		})
	}
}

// hotTxCeiling is V1's bound: every transaction waits for the one row lock.
func hotTxCeiling(ctx context.Context, o ceilingOptions) (load, error) {
	return withDB(ctx, o, func(db *sql.DB) (load, error) {
		return drive(ctx, o.Clients, o.Warmup, o.Duration, func(ctx context.Context) error {
			return inTx(ctx, db, func(tx *sql.Tx) error {
				res, err := tx.ExecContext(ctx, "UPDATE ceil_goods SET stock = stock - 1, sale = sale + 1 WHERE id = 1 AND stock >= 1")
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n != 1 {
					return errors.New("hot row did not decrement")
				}
				return insertOrder(ctx, tx, 1)
			})
		})
	})
}

// hotMissCeiling is V1's sold-out path: the UPDATE still locks the row in
// REPEATABLE READ, then the transaction rolls back.
func hotMissCeiling(ctx context.Context, o ceilingOptions) (load, error) {
	return withDB(ctx, o, func(db *sql.DB) (load, error) {
		return drive(ctx, o.Clients, o.Warmup, o.Duration, func(ctx context.Context) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, "UPDATE ceil_goods SET stock = stock - 1, sale = sale + 1 WHERE id = 2 AND stock >= 1")
			if rerr := tx.Rollback(); err == nil {
				err = rerr
			}
			return err
		})
	})
}

// consumerCeiling is one stock message as the consumer applies it, with the
// consumer's concurrency, all on one hot goods.
func consumerCeiling(ctx context.Context, o ceilingOptions) (load, error) {
	return withDB(ctx, o, func(db *sql.DB) (load, error) {
		return drive(ctx, o.Clients, o.Warmup, o.Duration, func(ctx context.Context) error {
			return inTx(ctx, db, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, "INSERT INTO ceil_stock_logs (goods_id, order_id, number) VALUES (1, ?, 1)", ids.Add(1)); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, "UPDATE ceil_goods SET stock = stock - 1, sale = sale + 1 WHERE id = 1 AND stock >= 1")
				return err
			})
		})
	})
}

// batchCeiling is the consumer's batched transaction: one multi-row stock
// log insert and one update of the hot goods per batch.
func batchCeiling(ctx context.Context, o ceilingOptions) (load, error) {
	n := max(o.ConsumerBatch, 1)
	insert := "INSERT INTO ceil_stock_logs (goods_id, order_id, number) VALUES " + strings.TrimSuffix(strings.Repeat("(1, ?, 1),", n), ",")
	l, err := withDB(ctx, o, func(db *sql.DB) (load, error) {
		return drive(ctx, o.Clients, o.Warmup, o.Duration, func(ctx context.Context) error {
			args := make([]any, n)
			for i := range args {
				args[i] = ids.Add(1)
			}
			return inTx(ctx, db, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, "UPDATE ceil_goods SET stock = stock - ?, sale = sale + ? WHERE id = 1 AND stock >= ?", n, n, n)
				return err
			})
		})
	})
	l.Ops *= int64(n) // messages, not transactions
	return l, err
}

func withDB(ctx context.Context, o ceilingOptions, f func(*sql.DB) (load, error)) (load, error) {
	db, err := openMySQL(o.DSN, o.Clients)
	if err != nil {
		return load{}, err
	}
	// Closed after each ceiling: the server's connection limit is shared
	// with the running service.
	defer db.Close()
	return f(db)
}

func inTx(ctx context.Context, db *sql.DB, f func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// nsqCeiling publishes to an nsqd of its own, set up as the service's
// embedded one (store/nsq.go): no consumer, so past the in-memory queue
// messages go to disk, as they do when the service's consumer lags.
func nsqCeiling(ctx context.Context, o ceilingOptions) (load, error) {
	dir, err := os.MkdirTemp(o.TempDir, "nsqd-")
	if err != nil {
		return load{}, err
	}
	opts := nsqd.NewOptions()
	opts.DataPath = dir
	opts.TCPAddress, opts.HTTPAddress, opts.HTTPSAddress = "127.0.0.1:0", "127.0.0.1:0", ""
	opts.BroadcastAddress = "127.0.0.1"
	opts.LogLevel = 3 // warn
	opts.Logger = log.New(io.Discard, "", 0)
	n, err := nsqd.New(opts)
	if err != nil {
		return load{}, err
	}
	go func() { _ = n.Main() }()
	defer n.Exit()

	p, err := nsq.NewProducer(n.RealTCPAddr().String(), nsq.NewConfig())
	if err != nil {
		return load{}, err
	}
	p.SetLogger(log.New(io.Discard, "", 0), nsq.LogLevelError)
	defer p.Stop()
	return drive(ctx, o.Clients, o.Warmup, o.Duration, func(ctx context.Context) error {
		body := fmt.Appendf(nil, `{"order_id":%d,"goods_id":1,"user_id":%d,"number":1}`, ids.Add(1), rand.Int64N(2_000_000_000)+1)
		return p.Publish("bench_ceiling", body)
	})
}
