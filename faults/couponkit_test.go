package faults

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/store"
)

// The coupon scenarios' kit: templates and claims over HTTP, a claim storm
// over several instances, and the coupon invariants read from MySQL
// (coupon_templates, each logical database's coupon tables where the shard
// map puts them) and Redis (the sub-stock hashes) directly.

// The coupon statuses in the tables.
const (
	couponUnused  = 0
	couponUsed    = 1
	couponExpired = 2
	couponVoid    = 3
)

// createTemplate creates a coupon template through s and returns its id.
func (s *service) createTemplate(t *testing.T, body map[string]any) int64 {
	t.Helper()
	var tpl struct {
		ID int64 `json:"id"`
	}
	if code := s.Call(t, "POST", "/admin/coupon-templates", body, &tpl); code != http.StatusCreated || tpl.ID < 1 {
		t.Fatalf("create template %v: status %d", body, code)
	}
	return tpl.ID
}

// claimAnswer is the answer to a claim: the coupon, or the error code.
type claimAnswer struct {
	CouponID string `json:"coupon_id"`
	UserID   int64  `json:"user_id"`
	Template int64  `json:"template_id"`
	Error    string `json:"error"`
}

// claim posts one claim under key ("" for none). err is set when no answer
// came (connection refused or reset, timeout).
func (s *service) claim(user, tpl int64, key string) (int, claimAnswer, error) {
	var a claimAnswer
	var header []string
	if key != "" {
		header = []string{"Idempotency-Key", key}
	}
	code, data, err := s.Send(context.Background(), "POST", "/coupons/claim", map[string]int64{"user_id": user, "template_id": tpl}, header...)
	if err != nil {
		return 0, a, err
	}
	_ = json.Unmarshal(data, &a)
	return code, a, nil
}

// makeLogicalDBs claims a coupon of a template of its own for a user of
// each V7 logical database, so that their tables, made on a logical
// database's first write, are there before the scenario: it then meets
// claims, not 256 CREATE TABLEs. A claim that outlives its write budget
// while they are made answers 503 and is sent again. The coupons expire
// within a second: their expiry messages leave the channel at once.
func (s *service) makeLogicalDBs(t *testing.T) {
	tpl := s.createTemplate(t, map[string]any{"name": "tables", "type": "fixed", "value": 1, "stock": 100, "valid_for": "1s"})
	for user := int64(1); user <= 8; user++ {
		harness.Eventually(t, time.Minute, func() bool {
			code, _, _ := s.claim(user, tpl, "tables")
			return code == http.StatusCreated
		}, "no claim of user %d made the tables of its logical database", user)
	}
}

// reconcileNow runs one reconciliation pass on s; an error is ignored (the
// pass is a nudge: the interval runs them too).
func (s *service) reconcileNow() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = s.Do(ctx, "POST", "/admin/reconcile", nil, nil)
}

// outcome is "201", "409 out_of_stock", "no answer", ...
func outcome(code int, a claimAnswer, err error) string {
	if err != nil {
		return "no answer"
	}
	return strings.TrimSpace(fmt.Sprint(code, " ", a.Error))
}

// ---------------------------------------------------------------- storm

// claimReq is one claim a client makes, and retries with the same key.
type claimReq struct {
	user int64
	key  string
}

// storm is a claim storm on one template: workers post claims, each under a
// key of its own, to the instances live names (worker i to live[i % n]),
// each from a user of the pool (or a new user when pool is 0). Answers are
// counted per phase; claims that got no answer or a 503 are kept for
// retries.
type storm struct {
	tpl      int64
	pool     []int64
	live     atomic.Pointer[[]*service]
	phase    atomic.Value // string
	seq      atomic.Int64
	stopping chan struct{}
	once     sync.Once
	done     chan struct{}

	mu      sync.Mutex
	counts  map[string]int             // "phase outcome"
	coupons map[int64]claimReq         // coupon ids answered 201
	twice   int                        // 201s naming a coupon another request got
	pending map[claimReq]string        // no answer or 503: the last outcome
	took    map[string][]time.Duration // per phase, every answer's latency
}

func startStorm(tpl int64, pool []int64, workers int, dur time.Duration, live ...*service) *storm {
	st := &storm{tpl: tpl, pool: pool, stopping: make(chan struct{}), done: make(chan struct{}),
		counts: map[string]int{}, coupons: map[int64]claimReq{}, pending: map[claimReq]string{}, took: map[string][]time.Duration{}}
	st.setLive(live...)
	st.phase.Store("before")
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				select {
				case <-st.stopping:
					return
				default:
				}
				if !st.one(w) {
					time.Sleep(10 * time.Millisecond) // a client backing off
				}
			}
		}()
	}
	go func() { wg.Wait(); close(st.done) }()
	return st
}

func (st *storm) setLive(live ...*service) { st.live.Store(&live) }
func (st *storm) setPhase(p string)        { st.phase.Store(p) }
func (st *storm) stop()                    { st.once.Do(func() { close(st.stopping) }); <-st.done }

// one posts one claim; false for anything but 201.
func (st *storm) one(w int) bool {
	live := *st.live.Load()
	s := live[w%len(live)]
	r := claimReq{user: users.Add(1)}
	if len(st.pool) > 0 {
		r.user = st.pool[rand.IntN(len(st.pool))]
	}
	r.key = fmt.Sprintf("storm-%d", st.seq.Add(1))
	phase := st.phase.Load().(string)
	start := time.Now()
	code, a, err := s.claim(r.user, st.tpl, r.key)
	took := time.Since(start)
	out := outcome(code, a, err)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.counts[phase+" "+out]++
	st.took[phase] = append(st.took[phase], took)
	switch {
	case code == http.StatusCreated:
		id, _ := strconv.ParseInt(a.CouponID, 10, 64)
		if _, dup := st.coupons[id]; dup {
			st.twice++
		}
		st.coupons[id] = r
		return true
	case err != nil || code == http.StatusServiceUnavailable:
		st.pending[r] = out
	}
	return false
}

// count sums the answers whose "phase outcome" starts with prefix.
func (st *storm) count(prefix string) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for k, v := range st.counts {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

func (st *storm) summary() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(st.counts)) {
		fmt.Fprintf(&b, "%s=%d ", k, st.counts[k])
	}
	return b.String()
}

func (st *storm) latency(phase string, p float64) time.Duration {
	st.mu.Lock()
	defer st.mu.Unlock()
	return percentile(st.took[phase], p)
}

// retryPending retries, through s, every claim that got no answer or a 503,
// with its key, until each has an answer that is not a 503 (at most five
// tries). A key whose coupon is recorded must get that coupon back; another
// gets a fresh claim (201) or a refusal that says why not (409). It
// returns how many were retried, how many got back a coupon recorded
// before the retry, and how many got a fresh one.
func (st *storm) retryPending(t *testing.T, e *env, s *service) (retried, replayed, fresh int) {
	t.Helper()
	snap, err := e.couponSnapshot(context.Background(), st.tpl, false)
	if err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	reqs := slices.Collect(maps.Keys(st.pending))
	st.mu.Unlock()
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(reqs); i = int(next.Add(1)) - 1 {
				r := reqs[i]
				recorded := snap.byKey[r.user][r.key]
				var code int
				var a claimAnswer
				var err error
				for try := range 5 {
					if code, a, err = s.claim(r.user, st.tpl, r.key); err == nil && code != http.StatusServiceUnavailable {
						break
					}
					time.Sleep(time.Duration(try+1) * 50 * time.Millisecond)
				}
				out := outcome(code, a, err)
				id, _ := strconv.ParseInt(a.CouponID, 10, 64)
				mu.Lock()
				retried++
				switch {
				case len(recorded) > 0 && (code != http.StatusCreated || id != recorded[0]):
					t.Errorf("key %s of user %d holds coupon %v, but its retry answered %s %s", r.key, r.user, recorded, out, a.CouponID)
				case len(recorded) > 0:
					replayed++
				case code == http.StatusCreated:
					fresh++
				case code != http.StatusConflict:
					t.Errorf("key %s of user %d, recorded nothing: retry answered %s", r.key, r.user, out)
				}
				mu.Unlock()
				st.mu.Lock()
				st.counts["retry "+out]++
				if code == http.StatusCreated {
					if old, ok := st.coupons[id]; ok && old != r {
						st.twice++
					}
					st.coupons[id] = r
				}
				st.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return retried, replayed, fresh
}

func (st *storm) answered() map[int64]claimReq {
	st.mu.Lock()
	defer st.mu.Unlock()
	return maps.Clone(st.coupons)
}

// ---------------------------------------------------------------- snapshot

// couponSnap is a template's state read from MySQL and Redis directly.
type couponSnap struct {
	stock    int64
	limit    int
	tags     []string
	rows     map[int64]int                // coupon id -> rows with it (void ones aside)
	status   map[int64]int                // coupon id -> status (void ones aside)
	owner    map[int64]int64              // coupon id -> user
	byKey    map[int64]map[string][]int64 // user -> key -> coupon ids
	perUser  map[int64]int
	voids    int
	issued   int64
	used     int64
	expired  int64 // status 2, or unused past expires_at
	subs     []*int64
	subSum   int64
	redisErr error
}

func (c couponSnap) String() string {
	levels := make([]string, len(c.subs))
	for i, l := range c.subs {
		levels[i] = "missing"
		if l != nil {
			levels[i] = strconv.FormatInt(*l, 10)
		}
	}
	return fmt.Sprintf("stock %d, issued %d (used %d, expired %d, void rows %d), sub-stocks [%s] = %d, redis error %v",
		c.stock, c.issued, c.used, c.expired, c.voids, strings.Join(levels, " "), c.subSum, c.redisErr)
}

// settled: every sub-stock is there and none is negative, and the
// sub-stocks with the coupons recorded make exactly the stock.
func (c couponSnap) settled() bool {
	if c.redisErr != nil {
		return false
	}
	for _, l := range c.subs {
		if l == nil || *l < 0 {
			return false
		}
	}
	return c.subSum+c.issued == c.stock
}

// couponSnapshot reads the template's stock and tags, every one of its
// coupon rows (in each logical database's coupon tables, on the host the
// shard map names) and, withRedis, its sub-stocks in Redis.
func (e *env) couponSnapshot(ctx context.Context, tpl int64, withRedis bool) (couponSnap, error) {
	c := couponSnap{rows: map[int64]int{}, status: map[int64]int{}, owner: map[int64]int64{},
		byKey: map[int64]map[string][]int64{}, perUser: map[int64]int{}}
	var tags string
	if err := e.DB(0).QueryRowContext(ctx, "SELECT stock, per_user_limit, tags FROM coupon_templates WHERE id = ?", tpl).
		Scan(&c.stock, &c.limit, &tags); err != nil {
		return c, err
	}
	c.tags = strings.Split(tags, ",")
	tables, err := e.CouponTables(ctx)
	if err != nil {
		return c, err
	}
	for _, tb := range tables {
		rows, err := tb.DB.QueryContext(ctx, fmt.Sprintf("SELECT id, user_id, status, COALESCE(idem_key, ''), status = %d AND expires_at <= UTC_TIMESTAMP(3) FROM %s WHERE template_id = ?", couponUnused, tb.Name), tpl)
		if err != nil {
			return c, err
		}
		for rows.Next() {
			var id, user int64
			var status int
			var key string
			var past bool
			if err := rows.Scan(&id, &user, &status, &key, &past); err != nil {
				rows.Close()
				return c, err
			}
			if status == couponVoid {
				c.voids++
				continue
			}
			c.rows[id]++
			c.status[id], c.owner[id] = status, user
			c.perUser[user]++
			c.issued++
			if status == couponUsed {
				c.used++
			}
			if status == couponExpired || past {
				c.expired++
			}
			if key != "" {
				if c.byKey[user] == nil {
					c.byKey[user] = map[string][]int64{}
				}
				c.byKey[user][key] = append(c.byKey[user][key], id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return c, err
		}
	}
	c.subs = make([]*int64, len(c.tags))
	if !withRedis {
		return c, nil
	}
	rdb := e.Redis()
	for i, tag := range c.tags {
		v, err := rdb.HGet(ctx, store.CouponStockKey(e.Prefix, tag), "stock").Int64()
		switch {
		case err == nil:
			c.subs[i] = &v
			c.subSum += v
		case !errors.Is(err, redis.Nil):
			c.redisErr = err
		}
	}
	return c, nil
}

// violations are the coupon invariants that do not hold in c, given the
// coupons answered 201: each is recorded exactly once, no two rows share a
// (user, key), no more is issued than the stock, every user holds at most
// the per-user limit; with all, every coupon recorded was answered (every
// claim of the scenario was retried until it had an answer).
func (c couponSnap) violations(answered map[int64]claimReq, all bool) []string {
	var out []string
	if c.issued > c.stock {
		out = append(out, fmt.Sprintf("over-issued: %d coupons for a stock of %d", c.issued, c.stock))
	}
	missing := 0
	for id, r := range answered {
		switch {
		case c.rows[id] == 0:
			missing++
		case c.rows[id] > 1:
			out = append(out, fmt.Sprintf("coupon %d recorded %d times", id, c.rows[id]))
		case c.owner[id] != r.user:
			out = append(out, fmt.Sprintf("coupon %d belongs to user %d, answered to user %d", id, c.owner[id], r.user))
		}
	}
	if missing > 0 {
		out = append(out, fmt.Sprintf("%d coupons answered 201 are not recorded", missing))
	}
	for user, keys := range c.byKey {
		for key, ids := range keys {
			if len(ids) > 1 {
				out = append(out, fmt.Sprintf("user %d holds coupons %v under one key %q", user, ids, key))
			}
		}
	}
	for user, n := range c.perUser {
		if c.limit > 0 && n > c.limit {
			out = append(out, fmt.Sprintf("user %d holds %d coupons, over the limit %d", user, n, c.limit))
		}
	}
	if all {
		unanswered := 0
		for id := range c.rows {
			if _, ok := answered[id]; !ok {
				unanswered++
			}
		}
		if unanswered > 0 {
			out = append(out, fmt.Sprintf("%d coupons recorded that no client was told of, after every claim was retried", unanswered))
		}
	}
	for i, l := range c.subs {
		if l != nil && *l < 0 {
			out = append(out, fmt.Sprintf("sub-stock %d is negative: %d", i, *l))
		}
	}
	return out
}

// lockCouponInserts holds, on each host of coupon tables, a transaction
// with next-key locks over every coupon table there (every logical
// database's, where the shard map puts it): inserts into them wait until
// release, plain reads do not.
func (e *env) lockCouponInserts() (release func(), err error) {
	ctx := context.Background()
	tables, err := e.CouponTables(ctx)
	if err != nil {
		return nil, err
	}
	txs := map[*sql.DB]*sql.Tx{}
	var conns []*sql.Conn
	release = func() {
		for _, tx := range txs {
			_ = tx.Rollback()
		}
		for _, c := range conns {
			c.Close()
		}
	}
	for _, tb := range tables {
		tx, ok := txs[tb.DB]
		if !ok {
			conn, err := tb.DB.Conn(ctx)
			if err != nil {
				release()
				return nil, err
			}
			conns = append(conns, conn)
			if tx, err = conn.BeginTx(ctx, nil); err != nil {
				release()
				return nil, err
			}
			txs[tb.DB] = tx
		}
		rows, err := tx.QueryContext(ctx, "SELECT id FROM "+tb.Name+" WHERE id > 0 FOR UPDATE")
		if err != nil {
			release()
			return nil, err
		}
		rows.Close()
	}
	return release, nil
}

// watchIssued reads the template's records every 100 ms until stop is
// called, and reports any reading with more coupons issued than the stock.
// It returns stop, which says how many readings it made.
func (e *env) watchIssued(t *testing.T, tpl int64) (stop func() int) {
	done, quit := make(chan struct{}), make(chan struct{})
	readings := 0
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-time.After(100 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := e.couponSnapshot(ctx, tpl, false)
			cancel()
			if err != nil {
				continue
			}
			readings++
			if c.issued > c.stock {
				t.Errorf("over-issued during the storm: %s", c)
			}
		}
	}()
	return func() int { close(quit); <-done; return readings }
}

// settleCoupons nudges reconciliation on s (a pass now and then, besides
// the interval's) until the template is settled, within settleWithin, then
// checks the invariants. It returns the snapshot and the time it took.
func (e *env) settleCoupons(t *testing.T, s *service, tpl int64, answered map[int64]claimReq, all bool) (couponSnap, time.Duration) {
	t.Helper()
	start := time.Now()
	var c couponSnap
	var err error
	settled := harness.WaitFor(settleWithin, func() bool {
		s.reconcileNow()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err = e.couponSnapshot(ctx, tpl, true)
		return err == nil && c.settled()
	})
	took := time.Since(start)
	if !settled {
		t.Errorf("template %d not settled within %v: %s (last error %v)", tpl, settleWithin, c, err)
	}
	if v := c.violations(answered, all); len(v) > 0 {
		t.Errorf("template %d broke the coupon invariants:\n  %s\n(%s)", tpl, strings.Join(v, "\n  "), c)
	}
	return c, took
}

// newUsers hands out n fresh user ids.
func newUsers(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = users.Add(1)
	}
	return out
}
