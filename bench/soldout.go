package main

import (
	"context"
	"fmt"

	"github.com/go-seckill/seckill/internal/harness"
)

// The sold-out phases alone (-soldout): each listed version's sold-out
// phase between two passes of the HTTP ceiling, so that on a machine whose
// load drifts each refusal rate is read against the ceiling of the same
// minute. A version may be listed more than once. Nothing is written but
// the log.

// runSoldOutOnly measures the HTTP ceiling, then for each of versions its
// sold-out phase and the ceiling again; a phase's bound is the mean of the
// passes on either side of it.
func runSoldOutOnly(ctx context.Context, svc *service, servers *harness.Servers, meter cpuMeter, o options, co ceilingOptions,
	versions []string, logf func(string, ...any)) ([]phaseResult, error) {
	pass := func() (float64, error) {
		l, err := httpCeiling(ctx, co)
		if err != nil {
			return 0, fmt.Errorf("http ceiling: %w", err)
		}
		logf("http ceiling %.0f req/s", l.rate())
		return l.rate(), nil
	}
	before, err := pass()
	if err != nil {
		return nil, err
	}
	var phases []phaseResult
	for _, v := range versions {
		p := runPhase(ctx, svc, servers, meter, o, v, soldOut, o.DrainTimeout)
		logPhase(logf, p)
		after, err := pass()
		if err != nil {
			return phases, err
		}
		p.Bound = bound{ID: ceilHTTP, Rate: (before + after) / 2}
		p.Fraction = fraction(p.Wrk.RPS, p.Bound)
		logf("%s sold out: %.0f req/s, %.2f of the HTTP ceiling (%.0f, the mean of %.0f before and %.0f after)",
			v, p.Wrk.RPS, p.Fraction, p.Bound.Rate, before, after)
		phases = append(phases, p)
		before = after
	}
	return phases, nil
}

// httpCeilingNext measures the HTTP ceiling once, right after a sold-out
// phase of the full run, for that phase's bound; 0 when it failed (the
// phase keeps the run's ceiling).
func httpCeilingNext(ctx context.Context, co ceilingOptions, logf func(string, ...any)) float64 {
	l, err := httpCeiling(ctx, co)
	if err != nil {
		logf("http ceiling after the phase failed: %v", err)
		return 0
	}
	logf("http ceiling right after it %.0f req/s", l.rate())
	return l.rate()
}
