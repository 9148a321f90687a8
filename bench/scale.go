package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/service/recovery"
)

// The scale phases: the best version's cost at the two ends of one size,
// each end with a load of its own, its invariants and one reconciliation
// pass timed after it. Flat means the large end costs what the small one
// does.
const (
	scaleGoods   = "goods" // goods on sale at once, the buyers spread over all of them
	scaleStock   = "stock" // units of each goods
	scaleHistory = "history"
)

// scaleNames are the scale phases in the order they run: the goods phase
// last, since every later reconciliation pass would read its goods too.
var scaleNames = []string{scaleHistory, scaleStock, scaleGoods}

// scaleTime is the share of the budget phase is given: two loads and
// their drains, and the passes, in four phase slots; the goods phase's
// pass besides, which reads every goods on sale (under 1 ms each here,
// twice that allowed: see the README's reconciliation), and the history
// phase's writing of the history and its first pass (about 25 µs an
// order here), and the flushing it waits for (o.FlushWait at most).
func scaleTime(phase string, o options) time.Duration {
	t := 4 * (o.Duration + 5*time.Second)
	switch phase {
	case scaleGoods:
		t += time.Duration(o.Scale.Goods) * 2 * time.Millisecond
	case scaleHistory:
		t += time.Duration(o.Scale.History)*25*time.Microsecond + o.FlushWait
	}
	return t
}

// The small ends.
const (
	smallGoods   = 1
	smallStock   = 100
	smallHistory = 1_000
	// stockGoods is how many goods the stock phase sells at either end: a
	// goods of smallStock units sells out in a few milliseconds, so both
	// ends sell smallStock units of each of stockGoods goods, and differ
	// only in what the goods hold.
	stockGoods = 100
)

// scaleSizes are the large ends.
type scaleSizes struct {
	Goods   int64 `json:"goods"`
	Stock   int64 `json:"stock"`
	History int64 `json:"history"`
}

func defaultScaleSizes() scaleSizes {
	return scaleSizes{Goods: 10_000, Stock: 10_000_000, History: 1_000_000}
}

// ends are the small and large sizes of phase.
func (s scaleSizes) ends(phase string) (small, large int64) {
	switch phase {
	case scaleGoods:
		return smallGoods, s.Goods
	case scaleStock:
		return smallStock, s.Stock
	}
	return smallHistory, s.History
}

// scalePhase is one size at its two ends.
type scalePhase struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Small   scaleEnd `json:"small"`
	Large   scaleEnd `json:"large"`
	Skipped string   `json:"skipped,omitempty"`
}

func (p scalePhase) ok() bool { return p.Skipped != "" || (p.Small.ok() && p.Large.ok()) }

// scaleEnd is one end of a scale phase.
type scaleEnd struct {
	Size    int64         `json:"size"`
	Goods   int           `json:"goods"`      // goods the load bought
	Prepare time.Duration `json:"prepare_ns"` // making the goods, or writing the history
	Load    loadFigures   `json:"load"`
	Orders  int64         `json:"orders"` // stored by the load
	Drained bool          `json:"drained"`
	Drain   time.Duration `json:"drain_ns"` // from the load's end until drained
	// Settle is the history phase's wait, after writing the history, for
	// InnoDB to flush it (see settleWrites).
	Settle time.Duration `json:"settle_ns,omitempty"`
	// FirstPass is the history phase's pass once the history is written
	// and flushed: it reads the new history and moves the truth's marks
	// past it, unless a scheduled pass of the service did so meanwhile.
	FirstPass time.Duration `json:"first_pass_ns,omitempty"`
	// Pass is one reconciliation pass after the drain; it reconciles every
	// goods in the database, PassGoods of them.
	Pass      time.Duration `json:"pass_ns"`
	PassGoods int           `json:"pass_goods"`
	// ChangedPass is the pass right after it with scope changed, as most
	// passes on the service's interval run: it reads the truth only of the
	// goods whose stocks moved since, none here.
	ChangedPass time.Duration `json:"changed_pass_ns"`
	OtherCPU    float64       `json:"other_cpu"`
	Failures    []string      `json:"failures,omitempty"`
	Err         string        `json:"error,omitempty"`
}

func (e scaleEnd) ok() bool { return e.Err == "" && len(e.Failures) == 0 }

// scaleRun is what the scale phases need of the run.
type scaleRun struct {
	svc     *service
	servers *harness.Servers
	meter   cpuMeter
	o       options
	version string
	logf    func(string, ...any)
}

// runScale runs phase at both ends, the small one first.
func (r scaleRun) runScale(ctx context.Context, phase string) scalePhase {
	p := scalePhase{Name: phase, Version: r.version}
	small, large := r.o.Scale.ends(phase)
	p.Small = r.runEnd(ctx, phase, small)
	logScaleEnd(r.logf, p, p.Small)
	if ctx.Err() != nil {
		return p
	}
	p.Large = r.runEnd(ctx, phase, large)
	logScaleEnd(r.logf, p, p.Large)
	return p
}

// runEnd makes the goods (and the history) of one end, loads them, waits
// for the drain, checks the invariants and times a reconciliation pass.
func (r scaleRun) runEnd(ctx context.Context, phase string, size int64) scaleEnd {
	e := scaleEnd{Size: size}
	fail := func(err error) scaleEnd { e.Err = err.Error(); return e }
	o := r.o
	load := goLoad{URL: r.svc.Base, Path: "/order" + r.version, Conns: o.Conns, Duration: o.Duration}
	initial := map[int64]int64{} // every goods checked, and the stock it was made with
	start := time.Now()
	switch phase {
	case scaleGoods:
		ids, err := r.svc.createGoodsN(ctx, int(size), o.Stock)
		if err != nil {
			return fail(err)
		}
		load.Goods = ids
	case scaleStock:
		ids, err := r.svc.createGoodsN(ctx, stockGoods, size)
		if err != nil {
			return fail(err)
		}
		load.Goods, load.Count, load.Duration = ids, stockGoods*smallStock, 0
	case scaleHistory:
		old, err := r.svc.createGoodsN(ctx, 1, o.Stock)
		if err != nil {
			return fail(err)
		}
		if err := writeHistory(ctx, r.servers, old[0], size, time.Now().Add(-time.Hour)); err != nil {
			return fail(fmt.Errorf("writing the history: %w", err))
		}
		initial[old[0]] = o.Stock
		e.Prepare = time.Since(start)
		if e.Settle, err = settleWrites(ctx, r.servers.DB(0), o.FlushWait); err != nil {
			return fail(err)
		}
		if e.FirstPass, _, _, err = r.pass(ctx, "all", nil); err != nil {
			return fail(err)
		}
		ids, err := r.svc.createGoodsN(ctx, 1, o.Stock)
		if err != nil {
			return fail(err)
		}
		load.Goods = ids
	}
	if e.Prepare == 0 {
		e.Prepare = time.Since(start)
	}
	e.Goods = len(load.Goods)
	for _, id := range load.Goods {
		initial[id] = o.Stock
		if phase == scaleStock {
			initial[id] = size
		}
	}
	var deadBefore int64
	if err := r.servers.DB(0).QueryRowContext(ctx, "SELECT COUNT(*) FROM dead_letters").Scan(&deadBefore); err != nil {
		return fail(err)
	}

	cpu := r.meter.snap()
	f, err := load.run(ctx)
	e.OtherCPU = cpu.otherShare(r.meter.snap())
	e.Load = f
	if err != nil {
		return fail(err)
	}
	end := time.Now()
	// Drained takes two reads in a row that agree, as runPhase's. Only the
	// loaded goods are read until then: counting a history takes seconds.
	var prev, t goodsTally
	for {
		if t, err = tallyGoods(ctx, r.servers, load.Goods); err != nil {
			return fail(err)
		}
		if t.drained() && prev != nil && t.equal(prev) {
			e.Drained = true
			break
		}
		if time.Since(end) > o.DrainTimeout || ctx.Err() != nil {
			break
		}
		prev = t
		time.Sleep(250 * time.Millisecond)
	}
	e.Drain = time.Since(end)
	for _, id := range load.Goods {
		e.Orders += t[id].Orders
	}
	if len(initial) > len(load.Goods) {
		if t, err = tallyGoods(ctx, r.servers, slices.Sorted(maps.Keys(initial))); err != nil {
			return fail(err)
		}
	}
	e.Failures = checkScaleAnswers(f.wrkResult, e.Orders, o.Conns)
	if !e.Drained {
		e.Failures = append(e.Failures, fmt.Sprintf("not drained %s after the load", o.DrainTimeout))
	}
	e.Failures = append(e.Failures, t.violations(initial)...)
	var dead int64
	if err := r.servers.DB(0).QueryRowContext(ctx, "SELECT COUNT(*) FROM dead_letters").Scan(&dead); err != nil {
		return fail(err)
	}
	if dead != deadBefore {
		e.Failures = append(e.Failures, fmt.Sprintf("%d dead letters during the load", dead-deadBefore))
	}
	var drifted []string
	if e.Pass, e.PassGoods, drifted, err = r.pass(ctx, "all", initial); err != nil {
		return fail(err)
	}
	e.Failures = append(e.Failures, drifted...)
	if e.ChangedPass, _, drifted, err = r.pass(ctx, "changed", initial); err != nil {
		return fail(err)
	}
	e.Failures = append(e.Failures, drifted...)
	return e
}

// checkScaleAnswers checks the load's answers against the orders stored:
// every 201 stored, no order beyond them and those in flight, and no
// sold-out answer, since every end has stock for all its requests.
func checkScaleAnswers(w wrkResult, orders int64, conns int) []string {
	var out []string
	if orders < w.Created {
		out = append(out, fmt.Sprintf("%d order rows but %d answers 201: accepted orders are missing", orders, w.Created))
	}
	if slack := int64(conns) + w.SocketErrors(); orders > w.Created+slack {
		out = append(out, fmt.Sprintf("%d order rows for %d answers 201 (+%d in flight at most)", orders, w.Created, slack))
	}
	if w.SoldOut > 0 {
		out = append(out, fmt.Sprintf("%d answers sold out while stock remained", w.SoldOut))
	}
	return out
}

// pass runs one reconciliation pass (POST /admin/reconcile) of scope (all
// or changed), times it and says how many goods it reconciled. A goods of
// checked drifting once drained is a failure: the truth or the Redis stock
// is wrong.
func (r scaleRun) pass(ctx context.Context, scope string, checked map[int64]int64) (took time.Duration, goods int, drifted []string, err error) {
	c := *r.svc.Client
	// A pass over thousands of goods outlasts the client's usual timeout.
	c.HTTP = &http.Client{Timeout: adminPassTimeout}
	var out struct {
		Goods []recovery.Drift `json:"goods"`
	}
	start := time.Now()
	code, err := c.Do(ctx, "POST", "/admin/reconcile?scope="+scope, nil, &out)
	took = time.Since(start)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("POST /admin/reconcile answered %d", code)
	}
	if err != nil {
		return took, 0, nil, err
	}
	for _, d := range out.Goods {
		if _, ok := checked[d.GoodsID]; ok && d.Drift != 0 {
			drifted = append(drifted, fmt.Sprintf("goods %d drifted by %d once drained", d.GoodsID, d.Drift))
		}
	}
	return took, len(out.Goods), drifted, nil
}

// createGoodsN makes n goods of stock units through the admin API, a few
// at a time, and returns their ids in order.
func (s *service) createGoodsN(ctx context.Context, n int, stock int64) ([]int64, error) {
	ids := make([]int64, n)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				id, err := s.createGoods(ctx, "scale", stock, 0)
				mu.Lock()
				ids[i] = id
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	slices.Sort(ids)
	return ids, first
}

func logScaleEnd(logf func(string, ...any), p scalePhase, e scaleEnd) {
	status := "ok"
	if !e.ok() {
		status = "FAILED " + e.Err + " " + strings.Join(e.Failures, "; ")
	}
	first := ""
	if e.FirstPass > 0 {
		first = fmt.Sprintf(" (first pass after writing the history and waiting %s for InnoDB's flushing: %s)", e.Settle.Round(100*time.Millisecond), e.FirstPass.Round(time.Millisecond))
	}
	logf("scale %s %s=%s: %d goods, prepared in %s; %.0f req/s p50 %s p99 %s, 201 %d, orders %d, drained in %s; reconcile pass over %d goods %s, of changes %s%s; other CPU %.0f%%  %s",
		p.Version, p.Name, thousands(e.Size), e.Goods, e.Prepare.Round(time.Millisecond), e.Load.RPS, fmtDur(e.Load.P50), fmtDur(e.Load.P99),
		e.Load.Created, e.Orders, e.Drain.Round(10*time.Millisecond), e.PassGoods, e.Pass.Round(time.Millisecond), e.ChangedPass.Round(time.Millisecond), first, 100*e.OtherCPU, status)
}

// scaleWhat says what the two ends of a scale phase hold.
func scaleWhat(p scalePhase, o options) (what, small, large string) {
	switch p.Name {
	case scaleGoods:
		return "goods on sale at once, each request buying one of them in turn",
			thousands(p.Small.Size) + " goods", thousands(p.Large.Size) + " goods"
	case scaleStock:
		return fmt.Sprintf("units of each of %d goods; both ends sell %s units of each", stockGoods, thousands(smallStock)),
			thousands(p.Small.Size) + " units", thousands(p.Large.Size) + " units"
	}
	return "settled orders of another goods in the order tables, written in bulk",
		thousands(p.Small.Size) + " orders", thousands(p.Large.Size) + " orders"
}

// ratio is large over small, for the table.
func ratio(small, large float64) string {
	if small <= 0 || large <= 0 {
		return "—"
	}
	return fmt.Sprintf("×%.2f", large/small)
}

// scaleMarkdown is the report's section of the scale phases.
func scaleMarkdown(phases []scalePhase, o options) string {
	if len(phases) == 0 {
		return ""
	}
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	w("\n## Cost in scale\n\n")
	w("%s (`-scale-version`; the best version by default) at both ends of one\n", phases[0].Version)
	w("size at a time, each end a load of its own on goods of its own, from Go\n")
	w("(`bench/goload.go`, vegeta with %d\n", o.Conns)
	w("workers as fast as they go, a closed loop like wrk's that can also stop\n")
	w("after a count and spread its requests over many goods): for %s, or, in the\n", o.Duration)
	w("stock phase, until %s units of each of %d goods are sold. Each end is\n", thousands(smallStock), stockGoods)
	w("drained and checked (per goods, counted by the database: every order\n")
	w("applied once, stock + sale = the stock made, Redis = MySQL stock, no dead\n")
	w("letter, every 201 stored, no sold-out answer), then one reconciliation pass\n")
	w("(`POST /admin/reconcile`) is timed: it reconciles every goods in the\n")
	w("database, those of earlier phases too; then one pass of scope changed, as\n")
	w("nine in ten passes on the service's interval are (`reconcile.full_every`):\n")
	w("it reads the truth only of goods whose Redis or MySQL stock moved since a\n")
	w("pass found them in line, and one Redis read of each other goods. In the history phase the history\n")
	w("is another goods' settled orders, made an hour ago (below the truth's\n")
	w("horizon), one pass reads it once and moves its mark, and the pass timed\n")
	w("after the load is the next one.\n\n")
	w("| phase | what | small end | large end | req/s | p99 | reconcile pass | pass of changes | large/small: req/s, p99, pass | invariants |\n")
	w("|---|---|---|---|---:|---:|---:|---:|---|---|\n")
	for _, p := range phases {
		what, small, large := scaleWhat(p, o)
		if p.Skipped != "" {
			w("| %s | %s | %s | %s | — | — | — | — | — | not run: %s |\n", p.Name, what, small, large, oneLine(p.Skipped))
			continue
		}
		status := "ok"
		for _, e := range []scaleEnd{p.Small, p.Large} {
			if !e.ok() {
				status = "**FAILED**: " + oneLine(strings.Join(append([]string{e.Err}, e.Failures...), "; "))
			}
		}
		w("| %s | %s | %s | %s | %s / %s | %s / %s | %s over %s goods / %s over %s goods | %s / %s | %s, %s, %s | %s |\n",
			p.Name, what, small, large,
			thousands(int64(p.Small.Load.RPS)), thousands(int64(p.Large.Load.RPS)),
			fmtDur(p.Small.Load.P99), fmtDur(p.Large.Load.P99),
			passDur(p.Small.Pass), thousands(int64(p.Small.PassGoods)), passDur(p.Large.Pass), thousands(int64(p.Large.PassGoods)),
			passDur(p.Small.ChangedPass), passDur(p.Large.ChangedPass),
			ratio(p.Small.Load.RPS, p.Large.Load.RPS), ratio(float64(p.Small.Load.P99), float64(p.Large.Load.P99)),
			ratio(float64(p.Small.Pass), float64(p.Large.Pass)), status)
	}
	w("\nreq/s, p99 and the pass are given as small end / large end.")
	for _, p := range phases {
		switch {
		case p.Skipped != "":
		case p.Name == scaleHistory:
			w(" Writing the history took %s for %s orders and %s for %s, then\n", p.Small.Prepare.Round(time.Second/10), thousands(p.Small.Size),
				p.Large.Prepare.Round(time.Second/10), thousands(p.Large.Size))
			w("InnoDB flushed it for %s and %s (until at most a quarter of its buffer pool\n", p.Small.Settle.Round(time.Second/10), p.Large.Settle.Round(time.Second/10))
			w("was dirty, %s at most: a load right after a bulk write measures the\n", o.FlushWait)
			w("flushing); the first pass after it, which reads the new history once,\n")
			w("took %s and %s. The large end is `-scale-history`: 10^7 orders, the\n", passDur(p.Small.FirstPass), passDur(p.Large.FirstPass))
			w("goal's, take minutes to write here (about 20 s a million).")
		case p.Name == scaleGoods:
			w(" Making %s goods through the admin API took %s.", thousands(p.Large.Size), p.Large.Prepare.Round(time.Second/10))
			if p.Large.PassGoods > 0 {
				w(" A full pass reads every goods' truth, changed or not: at the goods\n")
				w("phase's large end it took %s a goods; the pass of changes %s a goods.", fmtDur(p.Large.Pass/time.Duration(p.Large.PassGoods)),
					fmtDur(p.Large.ChangedPass/time.Duration(p.Large.PassGoods)))
			}
		}
	}
	w("\n")
	return b.String()
}

// passDur is a pass's time: milliseconds below a second, else seconds.
func passDur(d time.Duration) string {
	if d < time.Second {
		return fmtDur(d)
	}
	return d.Round(10 * time.Millisecond).String()
}
