package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-seckill/seckill/internal/harness"
)

// The sold-out phases alone (-soldout): the HTTP ceiling before and after
// the listed versions' sold-out phases, so that each refusal rate is read
// against a ceiling of the same minutes. Nothing is written but the log.

// runSoldOutOnly measures the HTTP ceiling, the sold-out phase of each of
// versions, and the ceiling again; each phase's bound is the better
// ceiling pass, as in the full run.
func runSoldOutOnly(ctx context.Context, svc *service, servers *harness.Servers, meter cpuMeter, o options, co ceilingOptions,
	versions []string, logf func(string, ...any)) ([]phaseResult, error) {
	ceil := ceiling{ID: ceilHTTP, Unit: "req/s"}
	pass := func() error {
		l, err := httpCeiling(ctx, co)
		if err != nil {
			return fmt.Errorf("http ceiling: %w", err)
		}
		ceil.Passes = append(ceil.Passes, l.rate())
		ceil.Rate = max(ceil.Rate, l.rate())
		logf("http ceiling %.0f req/s", l.rate())
		return nil
	}
	if err := pass(); err != nil {
		return nil, err
	}
	var phases []phaseResult
	for _, v := range versions {
		p := runPhase(ctx, svc, servers, meter, o, v, soldOut, o.DrainTimeout)
		phases = append(phases, p)
		logPhase(logf, p)
	}
	if err := pass(); err != nil {
		return phases, err
	}
	for i := range phases {
		phases[i].Bound = boundFor(phases[i].Version, soldOut, []ceiling{ceil})
		phases[i].Fraction = fraction(phases[i].Wrk.RPS, phases[i].Bound)
		logf("%s sold out: %.0f req/s, %.2f of the HTTP ceiling (%s req/s)", phases[i].Version, phases[i].Wrk.RPS,
			phases[i].Fraction, strings.Join(fmtRates(ceil.Passes), " / "))
	}
	return phases, nil
}

func fmtRates(rs []float64) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%.0f", r)
	}
	return out
}
