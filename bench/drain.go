package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
)

// The drain phases alone (-drain): the best version's backlog with a
// per-user limit, drained idle and then drained under load, each between
// two passes of the consumer-batch ceiling, so that on a machine whose
// load drifts each drain rate is read against the ceiling of the same
// minute. Nothing is written but the log.

// background is a wrk run going on while something else is measured.
type background struct {
	stop  chan struct{}
	once  sync.Once
	done  chan struct{}
	res   wrkResult
	err   error
	ended time.Time
}

// startLoad creates a goods with stock 0 and starts wrk on the version's
// sold-out orders of it, in the background, until wait (at most for
// o.Duration and o.DrainTimeout); it returns once wrk's connections are up.
func startLoad(ctx context.Context, svc *service, o options, version string) (*background, error) {
	id, err := svc.createGoods(ctx, "bench load", 0, 0)
	if err != nil {
		return nil, err
	}
	b := &background{stop: make(chan struct{}), done: make(chan struct{})}
	w := o.wrk(svc.Base, "/order"+version, id)
	w.Duration, w.Stop = o.Duration+o.DrainTimeout, b.stop
	go func() {
		defer close(b.done)
		b.res, _, b.err = w.run(ctx)
		b.ended = time.Now()
	}()
	time.Sleep(300 * time.Millisecond)
	return b, nil
}

// wait stops the load and returns its figures.
func (b *background) wait() (wrkResult, error) {
	b.once.Do(func() { close(b.stop) })
	<-b.done
	return b.res, b.err
}

// runDrainOnly measures the consumer-batch ceiling, then the best
// version's limited backlog drained idle and under load, with the
// ceiling again after each; a phase's bound is the mean of the passes on
// either side of it, and its fraction is its drain rate over that bound.
func runDrainOnly(ctx context.Context, svc *service, servers *harness.Servers, meter cpuMeter, o options, co ceilingOptions,
	best string, logf func(string, ...any)) ([]phaseResult, error) {
	co.Clients = co.ConsumerConns
	pass := func() (float64, error) {
		l, err := batchCeiling(ctx, co)
		if err != nil {
			return 0, fmt.Errorf("%s ceiling: %w", ceilBatch, err)
		}
		logf("%s ceiling %.0f msg/s", ceilBatch, l.rate())
		return l.rate(), nil
	}
	before, err := pass()
	if err != nil {
		return nil, err
	}
	var phases []phaseResult
	for _, ph := range []string{backlogLimited, backlogLoaded} {
		p := runPhase(ctx, svc, servers, meter, o, best, ph, o.DrainTimeout)
		after, err := pass()
		if err != nil {
			return phases, err
		}
		p.Bound = bound{ID: ceilBatch, Rate: (before + after) / 2}
		p.Fraction = fraction(p.Drain.Rate, p.Bound)
		logDrain(logf, p)
		phases = append(phases, p)
		before = after
	}
	return phases, nil
}

// logDrain logs one backlog phase's drain, with its bound when it has one.
func logDrain(logf func(string, ...any), p phaseResult) {
	status := "ok"
	if !p.ok() {
		status = "FAILED " + p.Err
	}
	line := fmt.Sprintf("%s %s: backlog %d drained at %.0f/s in %s", p.Version, p.Phase, p.Drain.BacklogAtEnd, p.Drain.Rate,
		p.Drain.Time.Round(10*time.Millisecond))
	if p.Bound.ID != "" {
		line += fmt.Sprintf(", %.2f of %s (%.0f)", p.Fraction, p.Bound.ID, p.Bound.Rate)
	}
	if p.Load != nil {
		line += fmt.Sprintf("; load %.0f req/s sold out", p.Load.RPS)
	}
	logf("%s %s %v %v", line, status, p.Failures, p.Notes)
}
