package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
)

// phaseResult is one version in one phase: the wrk figures, the goods'
// stats once the consumer drained, and the invariants checked on them.
type phaseResult struct {
	Version string    `json:"version"`
	Phase   string    `json:"phase"`
	GoodsID int64     `json:"goods_id"`
	Stock   int64     `json:"stock"` // the goods' stock at creation
	Wrk     wrkResult `json:"wrk"`
	// Load is the wrk that kept the service busy during the drain of the
	// backlogLoaded phase: sold-out orders of a goods of its own.
	Load    *wrkResult `json:"load,omitempty"`
	After   stats      `json:"after"`
	Drained bool       `json:"drained"`
	Drain   drain      `json:"drain"`
	Bound   bound      `json:"bound"`
	// NextHTTP is the HTTP ceiling measured right after a sold-out phase
	// of the full run whose path the HTTP ceiling bounds, and its bound:
	// the machine's speed drifts over a run by as much as the gap a
	// refusal leaves to the ceiling.
	NextHTTP float64 `json:"next_http,omitempty"`
	// OtherCPU is the share of the machine's CPU that processes outside
	// the benchmark took while wrk ran (see cpuMeter).
	OtherCPU float64 `json:"other_cpu"`
	// Messages are those nsqd took on the stock and check topics from the
	// phase's start until it drained.
	Messages messages `json:"messages"`
	Fraction float64  `json:"fraction"`
	// Failures are broken invariants: the run is FAILED whatever its speed.
	Failures []string `json:"failures,omitempty"`
	// Notes are worth reading but break nothing (503s, socket errors).
	Notes []string `json:"notes,omitempty"`
	// Err is set when the phase could not run to its end: FAILED.
	Err string `json:"error,omitempty"`
	// Skipped says why the harness did not run the phase (time budget, no
	// way to pause the consumer): no figures, but nothing the service broke.
	Skipped string `json:"skipped,omitempty"`
	raw     string
}

func (p phaseResult) ok() bool { return p.Err == "" && len(p.Failures) == 0 }

// measured says the phase has figures to show.
func (p phaseResult) measured() bool { return p.Err == "" && p.Skipped == "" }

// sample is one read of the goods' stats during or after a phase.
type sample struct {
	At        time.Time
	Orders    int64
	StockLogs int64
}

// drain describes how the stock consumer kept up with one phase.
type drain struct {
	MaxLag       int64         `json:"max_lag"`        // most orders without a stock log seen at once
	BacklogAtEnd int64         `json:"backlog_at_end"` // orders without a stock log when wrk stopped
	Time         time.Duration `json:"time_ns"`        // from wrk's end until drained
	Rate         float64       `json:"rate"`           // stock logs per second from wrk's end until drained
	UnderLoad    float64       `json:"under_load"`     // stock logs per second while wrk ran
}

// runPhase creates a goods, loads /order<version> with wrk while sampling
// the goods' stats every 250 ms, waits for the consumer to drain (at most
// drainFor), then checks the invariants: wrk's answers against the stats,
// and the sale's invariants on the database and Redis the service uses
// (servers), read directly.
func runPhase(ctx context.Context, svc *service, servers *harness.Servers, meter cpuMeter, o options, version, phase string, drainFor time.Duration) phaseResult {
	return runPhaseWith(ctx, svc, servers, meter, o, version, phase, drainFor, func(ctx context.Context, goodsID int64) (wrkResult, string, error) {
		return o.wrk(svc.Base, "/order"+version, goodsID).run(ctx)
	})
}

// phaseLoad loads /order<version> on one goods and says what it answered.
type phaseLoad func(ctx context.Context, goodsID int64) (wrkResult, string, error)

// runPhaseWith is runPhase with another load than wrk's (a constant rate).
func runPhaseWith(ctx context.Context, svc *service, servers *harness.Servers, meter cpuMeter, o options, version, phase string, drainFor time.Duration, load phaseLoad) phaseResult {
	p := phaseResult{Version: version, Phase: phase}
	if phase != soldOut {
		p.Stock = o.Stock
	}
	every := 250 * time.Millisecond
	limit := int64(0)
	if limited(phase) {
		limit = backlogLimit
	}
	if paused(phase) {
		every = 100 * time.Millisecond // the drain may take only a few seconds
	}
	var err error
	if p.GoodsID, err = svc.createGoods(ctx, "bench", p.Stock, limit); err != nil {
		p.Err = err.Error()
		return p
	}
	// Dead letters of earlier phases stay in the shared database.
	before, err := servers.Snapshot(ctx, p.GoodsID)
	if err != nil {
		p.Err = err.Error()
		return p
	}

	sent, err := svc.topicMessages(o)
	if err != nil {
		p.Err = err.Error()
		return p
	}

	var mu sync.Mutex
	var samples []sample
	poll := func() (stats, error) {
		st, err := svc.stats(ctx, p.GoodsID)
		if err == nil {
			mu.Lock()
			samples = append(samples, sample{time.Now(), st.Orders, st.StockLogs})
			mu.Unlock()
		}
		return st, err
	}
	sampling, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-sampling.Done():
				return
			case <-t.C:
				_, _ = poll()
			}
		}
	}()
	if paused(phase) {
		if err := svc.pauseConsumer(o.Topic, o.Channel, true); err != nil {
			stopSampling()
			wg.Wait()
			p.Skipped = "cannot pause the consumer: " + err.Error()
			return p
		}
	}
	start, cpu := time.Now(), meter.snap()
	p.Wrk, p.raw, err = load(ctx, p.GoodsID)
	p.OtherCPU = cpu.otherShare(meter.snap())
	var busy *background
	if phase == backlogLoaded && err == nil {
		// The load is on before the channel unpauses: the whole drain runs
		// under it.
		if busy, err = startLoad(ctx, svc, o, version); err == nil {
			defer busy.wait() // on an early return
		}
	}
	if paused(phase) {
		if uerr := svc.pauseConsumer(o.Topic, o.Channel, false); err == nil {
			err = uerr
		}
	}
	end := time.Now()
	stopSampling()
	wg.Wait()
	if err != nil {
		p.Err = err.Error()
		return p
	}

	// Drained means two reads in a row that agree and are drained: a
	// request still in flight when wrk stopped may land between them.
	deadline := end.Add(drainFor)
	var prev *stats
	for {
		st, err := poll()
		if err != nil {
			p.Err = err.Error()
			return p
		}
		p.After = st
		if st.drained() && prev != nil && sameStats(*prev, st) {
			p.Drained = true
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		prev = &st
		time.Sleep(every)
	}
	drainedAt := time.Now()
	if busy != nil {
		w, err := busy.wait()
		if err != nil {
			p.Err = "the load during the drain: " + err.Error()
			return p
		}
		p.Load = &w
		if w.Created > 0 {
			p.Failures = append(p.Failures, fmt.Sprintf("the load sold %d units of a goods with stock 0", w.Created))
		}
		if busy.ended.Before(drainedAt) {
			p.Notes = append(p.Notes, fmt.Sprintf("the drain outlasted the load by %s", drainedAt.Sub(busy.ended).Round(10*time.Millisecond)))
		}
	}
	p.Drain = drainFigures(samples, start, end)
	if now, err := svc.topicMessages(o); err == nil {
		p.Messages = messages{Stock: now.Stock - sent.Stock, Check: now.Check - sent.Check}
	}
	failures, notes := checkPhase(p, o.Conns)
	p.Failures, p.Notes = append(p.Failures, failures...), append(p.Notes, notes...)
	if p.Drained {
		snap, err := servers.Snapshot(ctx, p.GoodsID)
		if err != nil {
			p.Err = err.Error()
			return p
		}
		// wrk counts the answers, not the order ids: orders in flight when
		// it stopped may be stored unanswered (checkPhase bounds them).
		p.Failures = append(p.Failures, snap.Violations(harness.Sale{
			Initial: p.Stock, AllowUnanswered: true, DeadLetters: before.DeadLetters,
		})...)
	}
	return p
}

func sameStats(a, b stats) bool {
	return a.Orders == b.Orders && a.StockLogs == b.StockLogs && a.MySQLStock == b.MySQLStock &&
		a.MySQLSale == b.MySQLSale && a.DeadLetters == b.DeadLetters &&
		(a.RedisStock == nil) == (b.RedisStock == nil) && (a.RedisStock == nil || *a.RedisStock == *b.RedisStock)
}

// drainFigures reads the samples of one phase, in time order: wrk ran from
// start to end, and the last sample is the drained state (or the last seen).
func drainFigures(samples []sample, start, end time.Time) drain {
	var d drain
	var atEnd *sample
	for i := range samples {
		s := &samples[i]
		// The two counts are read one after the other, not in one snapshot,
		// so a transaction writing both can show a lag of -1.
		d.MaxLag = max(d.MaxLag, s.Orders-s.StockLogs)
		if atEnd == nil && !s.At.Before(end) {
			atEnd = s
		}
	}
	if atEnd == nil {
		return d
	}
	last := samples[len(samples)-1]
	d.BacklogAtEnd = max(0, atEnd.Orders-atEnd.StockLogs)
	d.Time = last.At.Sub(end)
	if span := last.At.Sub(atEnd.At).Seconds(); span > 0 && d.BacklogAtEnd > 0 {
		d.Rate = float64(last.StockLogs-atEnd.StockLogs) / span
	}
	if span := end.Sub(start).Seconds(); span > 0 {
		d.UnderLoad = float64(atEnd.StockLogs) / span
	}
	return d
}

// checkPhase checks wrk's answers against the drained stats of one phase:
// every 201 stored, no order beyond them and those in flight, no unit sold
// from a goods with none, no "sold out" while stock remained. conns is
// wrk's connection count: requests in flight when wrk stops still complete
// on the server, uncounted by wrk. The sale's own invariants (no oversell,
// each order applied once, units adding up, Redis equal to MySQL, no dead
// letter) are checked on the stores by harness.Snapshot.Violations.
func checkPhase(p phaseResult, conns int) (failures, notes []string) {
	st, w := p.After, p.Wrk
	fail := func(f string, a ...any) { failures = append(failures, fmt.Sprintf(f, a...)) }
	note := func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }
	redis := "none"
	if st.RedisStock != nil {
		redis = fmt.Sprint(*st.RedisStock)
	}

	if st.Orders < w.Created {
		fail("%d order rows but %d answers 201: accepted orders are missing", st.Orders, w.Created)
	}
	// A timed-out or reset request may also have been sold: wrk counts it
	// as a socket error, not a 201.
	if slack := int64(conns) + w.SocketErrors(); st.Orders > w.Created+slack {
		fail("%d order rows for %d answers 201 (+%d in flight at most): orders nobody was told about", st.Orders, w.Created, slack)
	}
	if p.Stock == 0 && (w.Created > 0 || st.Orders > 0) {
		fail("sold %d (%d rows) of a goods with stock 0", w.Created, st.Orders)
	}
	if p.Stock > 0 && w.SoldOut > 0 {
		fail("%d answers sold out while stock remained", w.SoldOut)
	}
	if !p.Drained {
		fail("not drained: orders %d, stock logs %d, mysql sale %d, redis stock %s, mysql stock %d",
			st.Orders, st.StockLogs, st.MySQLSale, redis, st.MySQLStock)
	}

	if w.Other > 0 {
		note("%d answers neither 201 nor 409", w.Other)
	}
	if n := w.SocketErrors(); n > 0 {
		note("socket errors: connect %d, read %d, write %d, timeout %d", w.Connect, w.Read, w.Write, w.Timeout)
	}
	return failures, notes
}
