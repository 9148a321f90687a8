package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/store"
)

// The Redis a coupon phase's service runs on.
const (
	onSingle  = "single"  // the one Redis server the order versions use
	onCluster = "cluster" // the harness's own Redis Cluster
)

// couponPhase is claims of one fresh template with a given number of
// sub-stocks, on one Redis or on the cluster: the wrk figures, the
// template's state read from MySQL and Redis once settled, and the
// invariants checked on it.
type couponPhase struct {
	Redis      string        `json:"redis"` // onSingle or onCluster
	SubStocks  int           `json:"sub_stocks"`
	TemplateID int64         `json:"template_id"`
	Stock      int64         `json:"stock"`
	Wrk        wrkResult     `json:"wrk"`
	OtherCPU   float64       `json:"other_cpu"` // see cpuMeter
	After      couponState   `json:"after"`
	Settled    bool          `json:"settled"`
	Settle     time.Duration `json:"settle_ns"` // from wrk's end until settled
	// Ratios are claims/s over each ceiling on the claim's path, and over
	// insert-16 (set once the ceilings' second pass ran).
	Ratios   map[string]float64 `json:"ratios,omitempty"`
	Bound    bound              `json:"bound"`
	Fraction float64            `json:"fraction"`
	Failures []string           `json:"failures,omitempty"`
	Notes    []string           `json:"notes,omitempty"`
	Err      string             `json:"error,omitempty"`
	Skipped  string             `json:"skipped,omitempty"`
}

func (p couponPhase) ok() bool       { return p.Err == "" && len(p.Failures) == 0 }
func (p couponPhase) measured() bool { return p.Err == "" && p.Skipped == "" }

// name is how logs and the report call the phase.
func (p couponPhase) name() string {
	return fmt.Sprintf("claims %s %d sub-stock%s", p.Redis, p.SubStocks, plural(p.SubStocks))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// couponState is a template as the stores hold it, read directly.
type couponState struct {
	Issued    int64    `json:"issued"`     // its coupon rows but void ones, over every host and table
	Void      int64    `json:"void"`       // void rows: fences of claims whose write had an unknown outcome
	SubStocks []*int64 `json:"sub_stocks"` // each sub-stock's units in Redis; nil when missing
	Masters   int      `json:"masters"`    // how many Redis masters hold its sub-stocks
}

// left is the units the sub-stocks hold, counting a missing one as 0.
func (s couponState) left() int64 {
	var n int64
	for _, v := range s.SubStocks {
		if v != nil {
			n += *v
		}
	}
	return n
}

func (s couponState) equal(o couponState) bool {
	return s.Issued == o.Issued && s.Void == o.Void && slices.EqualFunc(s.SubStocks, o.SubStocks, func(a, b *int64) bool {
		return (a == nil) == (b == nil) && (a == nil || *a == *b)
	})
}

// couponTarget is one service instance the coupon phases load, with the
// stores it uses, read directly.
type couponTarget struct {
	Redis    string // onSingle or onCluster
	svc      *service
	servers  *harness.Servers
	meter    cpuMeter
	masterOf func(key string) int // nil on one Redis
}

// runCouponPhase creates a template of o.Stock units split over subStocks
// sub-stocks, with no per-user limit, loads POST /coupons/claim with wrk
// and wrk/claim.lua (a random user per claim), then reads the template's
// coupons from every coupon table of every host and its sub-stocks from
// Redis until two reads in a row agree and add up (at most settleFor: a
// claim in flight when wrk stopped has taken its unit and not yet written
// its record), and checks the invariants.
func runCouponPhase(ctx context.Context, tg couponTarget, o options, subStocks int, settleFor time.Duration) couponPhase {
	p := couponPhase{Redis: tg.Redis, SubStocks: subStocks, Stock: o.Stock}
	var err error
	if p.TemplateID, err = tg.svc.createTemplate(ctx, o.Stock, subStocks); err != nil {
		p.Err = err.Error()
		return p
	}
	w := o.wrk(tg.svc.Base, "/coupons/claim", 0)
	w.Script, w.TemplateID = o.ClaimScript, p.TemplateID
	cpu := tg.meter.snap()
	res, raw, err := w.run(ctx)
	p.OtherCPU = cpu.otherShare(tg.meter.snap())
	end := time.Now()
	if err != nil {
		p.Err = err.Error()
		if raw != "" {
			p.Err += "\n" + raw
		}
		return p
	}
	p.Wrk = res

	tags, err := templateTags(ctx, tg.servers.DB(0), p.TemplateID)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	if len(tags) != subStocks {
		p.Failures = append(p.Failures, fmt.Sprintf("the template has %d sub-stocks, %d asked for", len(tags), subStocks))
	}
	var prev *couponState
	deadline := end.Add(settleFor)
	for {
		st, err := readCouponState(ctx, tg, p.TemplateID, tags)
		if err != nil {
			p.Err = err.Error()
			return p
		}
		p.After = st
		if st.Issued+st.left() == p.Stock && prev != nil && prev.equal(st) {
			p.Settled, p.Settle = true, time.Since(end)
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		prev = &st
		time.Sleep(100 * time.Millisecond)
	}
	f, n := checkCoupons(p, o.Conns)
	p.Failures, p.Notes = append(p.Failures, f...), append(p.Notes, n...)
	return p
}

// checkCoupons checks a settled template against wrk's answers: no unit
// lost or doubled (issued + what the sub-stocks hold = the stock), never
// more issued than the stock, no sub-stock below zero or missing, every
// 201 recorded and no more records than the 201s and the claims in flight
// when wrk stopped (one per connection, and one per socket error), and no
// claim refused while stock remained.
func checkCoupons(p couponPhase, conns int) (failures, notes []string) {
	st, w := p.After, p.Wrk
	fail := func(f string, a ...any) { failures = append(failures, fmt.Sprintf(f, a...)) }
	note := func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }
	if sum := st.Issued + st.left(); sum != p.Stock {
		fail("issued %d + sub-stocks %d = %d, not the stock %d (not settled after the wait, or units lost or doubled)", st.Issued, st.left(), sum, p.Stock)
	}
	if st.Issued > p.Stock {
		fail("issued %d, more than the stock %d", st.Issued, p.Stock)
	}
	for i, v := range st.SubStocks {
		switch {
		case v == nil:
			fail("sub-stock %d is missing from Redis", i)
		case *v < 0:
			fail("sub-stock %d holds %d units", i, *v)
		}
	}
	if st.Issued < w.Created {
		fail("%d coupons recorded but %d answers 201: claimed coupons are missing", st.Issued, w.Created)
	}
	if slack := int64(conns) + w.SocketErrors(); st.Issued > w.Created+slack {
		fail("%d coupons recorded for %d answers 201 (+%d in flight at most): coupons nobody was told about", st.Issued, w.Created, slack)
	}
	if w.SoldOut > 0 {
		fail("%d claims answered 409 while stock remained", w.SoldOut)
	}
	if w.Other > 0 {
		note("%d answers neither 201 nor 409", w.Other)
	}
	if n := w.SocketErrors(); n > 0 {
		note("socket errors: connect %d, read %d, write %d, timeout %d", w.Connect, w.Read, w.Write, w.Timeout)
	}
	if st.Void > 0 {
		note("%d void rows (claims whose write had an unknown outcome, fenced)", st.Void)
	}
	return failures, notes
}

// templateTags are the hash tags of a template's sub-stocks, as its row
// in the primary records them.
func templateTags(ctx context.Context, db *sql.DB, id int64) ([]string, error) {
	var tags string
	if err := db.QueryRowContext(ctx, "SELECT tags FROM coupon_templates WHERE id = ?", id).Scan(&tags); err != nil {
		return nil, fmt.Errorf("coupon template %d: %w", id, err)
	}
	if tags == "" {
		return nil, nil
	}
	return strings.Split(tags, ","), nil
}

// readCouponState reads the template's coupons from every coupon table,
// on the host the shard map names for its logical database, and its
// sub-stocks from Redis.
func readCouponState(ctx context.Context, tg couponTarget, id int64, tags []string) (couponState, error) {
	var st couponState
	tables, err := tg.servers.CouponTables(ctx)
	if err != nil {
		return st, err
	}
	for _, tb := range tables {
		var issued, void int64
		if err := tb.DB.QueryRowContext(ctx, "SELECT COALESCE(SUM(status <> 3), 0), COALESCE(SUM(status = 3), 0) FROM "+tb.Name+" WHERE template_id = ?", id).
			Scan(&issued, &void); err != nil {
			return st, fmt.Errorf("count coupons in %s: %w", tb.Name, err)
		}
		st.Issued += issued
		st.Void += void
	}
	masters := map[int]bool{}
	rdb := tg.servers.Redis()
	for _, tag := range tags {
		key := store.CouponStockKey(tg.servers.Prefix, tag)
		v, err := rdb.HGet(ctx, key, "stock").Int64()
		switch {
		case errors.Is(err, redis.Nil):
			st.SubStocks = append(st.SubStocks, nil)
		case err != nil:
			return st, fmt.Errorf("sub-stock %s: %w", key, err)
		default:
			st.SubStocks = append(st.SubStocks, &v)
		}
		if tg.masterOf != nil {
			masters[tg.masterOf(key)] = true
		}
	}
	st.Masters = max(1, len(masters))
	return st, nil
}

// createTemplate creates a coupon template of stock units over subStocks
// sub-stocks, with no per-user limit, through the admin API.
func (s *service) createTemplate(ctx context.Context, stock int64, subStocks int) (int64, error) {
	var t struct {
		ID        int64 `json:"id"`
		SubStocks int   `json:"sub_stocks"`
	}
	err := s.getJSON(ctx, "POST", "/admin/coupon-templates", map[string]any{
		"name": "bench", "type": "fixed", "value": 100, "stock": stock, "per_user_limit": 0, "sub_stocks": subStocks,
	}, http.StatusCreated, &t)
	switch {
	case err != nil:
		return 0, err
	case t.ID < 1:
		return 0, errors.New("POST /admin/coupon-templates returned no id")
	case t.SubStocks != subStocks:
		return 0, fmt.Errorf("POST /admin/coupon-templates made %d sub-stocks, %d asked for", t.SubStocks, subStocks)
	}
	return t.ID, nil
}

// claimPath lists the ceilings a claim on redisKind passes through: HTTP,
// the take script, the insert of its record and the publish of its
// deferred expiry. The take ceiling is the cluster's (one key per master)
// on the cluster, whatever the sub-stocks: with fewer sub-stocks than
// masters a claim uses fewer masters, which the ratio then shows.
func claimPath(redisKind string) []string {
	take := ceilTake
	if redisKind == onCluster {
		take = ceilTakeCluster
	}
	return []string{ceilHTTP, take, ceilCouponInsert, ceilNSQ}
}

// claimRatios are the phase's claims/s over each ceiling of its path and
// over insert-16 (the orders' insert), with the lowest of the path as its
// bound.
func claimRatios(p *couponPhase, ceilings []ceiling) {
	p.Ratios, p.Bound = map[string]float64{}, bound{Listed: true}
	rate := func(id string) float64 {
		for _, c := range ceilings {
			if c.ID == id {
				return c.Rate
			}
		}
		return 0
	}
	path := claimPath(p.Redis)
	for _, id := range append(slices.Clone(path), ceilInsert16) {
		if r := rate(id); r > 0 {
			p.Ratios[id] = p.Wrk.RPS / r
		}
	}
	for _, id := range path {
		if r := rate(id); r > 0 && (p.Bound.ID == "" || r < p.Bound.Rate) {
			p.Bound.ID, p.Bound.Rate = id, r
		}
	}
	p.Fraction = fraction(p.Wrk.RPS, p.Bound)
}

// claimPathSum is 1/Σ(1/ceiling) over the claim's path (see pathSum); 0
// when a ceiling was not measured.
func claimPathSum(redisKind string, ceilings []ceiling) float64 {
	var perOp float64
	for _, id := range claimPath(redisKind) {
		r := 0.0
		for _, c := range ceilings {
			if c.ID == id {
				r = c.Rate
			}
		}
		if r <= 0 {
			return 0
		}
		perOp += 1 / r
	}
	return 1 / perOp
}

func logCouponPhase(logf func(string, ...any), p couponPhase) {
	status := "ok"
	if !p.ok() {
		status = "FAILED"
	}
	switch {
	case p.Skipped != "":
		logf("%s not run: %s", p.name(), p.Skipped)
	case p.Err != "":
		logf("%s %s: %s", p.name(), status, p.Err)
	default:
		logf("%s %9.0f req/s  p50 %-8s  p99 %-8s  non-2xx %-6d errors %-4d  issued %d + sub-stocks %d on %d master(s)  other CPU %3.0f%%  settled %-6s %s %s",
			p.name(), p.Wrk.RPS, fmtDur(p.Wrk.P50), fmtDur(p.Wrk.P99), p.Wrk.Non2xx, p.Wrk.SocketErrors(),
			p.After.Issued, p.After.left(), p.After.Masters, 100*p.OtherCPU, p.Settle.Round(10*time.Millisecond), status,
			strings.Join(append(p.Failures, p.Notes...), "; "))
	}
}
