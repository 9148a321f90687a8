package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	domain "github.com/go-seckill/seckill/service"
)

// The constant-rate phase: a version held, in stock, at a share of the
// peak wrk measured for it in the same run, by a load held at a constant
// rate with its latencies counted from when each request was due (see
// rateLoad), for the p99 a buyer sees when the service is busy but not
// saturated. wrk cannot hold a rate: its percentiles are those of a
// saturated service.
const (
	atRate    = "80% of peak"
	rateShare = 0.8
	// rateGoal is the project's goal for the p99 at rateShare of the peak.
	rateGoal = 30 * time.Millisecond
)

// rateResult is one version held at rateShare of its peak.
type rateResult struct {
	Version string      `json:"version"`
	Peak    float64     `json:"peak"`   // wrk's in-stock req/s of the version in the same run
	Target  float64     `json:"target"` // the rate asked for
	Sent    float64     `json:"sent"`   // the rate the requests left at
	Phase   phaseResult `json:"phase"`  // its answers, drain and invariants
	Skipped string      `json:"skipped,omitempty"`
}

func (r rateResult) ok() bool { return r.Skipped != "" || r.Phase.ok() }

// targetRate is rateShare of a peak, in whole requests per second.
func targetRate(peak float64) float64 { return math.Floor(peak * rateShare) }

// rateVersions are the versions held at a rate: V3, the best in-stock
// path and the versions that accept asynchronously (their 202 is the
// answer a buyer waits for), those of versions that the service has.
func rateVersions(versions []string, best string) []string {
	var out []string
	for _, v := range versions {
		ver, _ := domain.FindVersion(v)
		if v == "V3" || v == best || ver.AsyncAccept {
			out = append(out, v)
		}
	}
	return out
}

// peakOf is version's in-stock wrk rate among phases; 0 when it was not
// measured or broke an invariant.
func peakOf(phases []phaseResult, version string) float64 {
	for _, p := range phases {
		if p.Version == version && p.Phase == inStock && p.measured() && p.ok() {
			return p.Wrk.RPS
		}
	}
	return 0
}

// runAtRate holds version at rateShare of peak for o.Duration on a fresh
// goods, then drains and checks it as every phase.
func runAtRate(ctx context.Context, svc *service, servers *harness.Servers, meter cpuMeter, o options, version string, peak float64) rateResult {
	r := rateResult{Version: version, Peak: peak, Target: targetRate(peak)}
	if r.Target < 1 {
		r.Skipped = "no in-stock peak measured for it in this run"
		return r
	}
	r.Phase = runPhaseWith(ctx, svc, servers, meter, o, version, atRate, o.DrainTimeout, func(ctx context.Context, goodsID int64) (wrkResult, string, error) {
		f, err := rateLoad{URL: svc.Base, Path: "/order" + version, GoodsID: goodsID, Rate: r.Target, Conns: o.Conns, Duration: o.Duration}.run(ctx)
		r.Sent = f.Sent
		return f.wrkResult, "", err
	})
	return r
}

// runRatesOnly is -rate80: each version's in-stock phase with wrk for its
// peak, then the constant-rate phase at rateShare of it.
func runRatesOnly(ctx context.Context, svc *service, servers *harness.Servers, meter cpuMeter, o options, versions []string, logf func(string, ...any)) ([]phaseResult, []rateResult) {
	var phases []phaseResult
	var rates []rateResult
	for _, v := range versions {
		if ctx.Err() != nil {
			break
		}
		p := runPhase(ctx, svc, servers, meter, o, v, inStock, o.DrainTimeout)
		logPhase(logf, p)
		phases = append(phases, p)
		r := runAtRate(ctx, svc, servers, meter, o, v, peakOf(phases, v))
		logRate(logf, r)
		rates = append(rates, r)
	}
	return phases, rates
}

func logRate(logf func(string, ...any), r rateResult) {
	if r.Skipped != "" {
		logf("%s %s not run: %s", r.Version, atRate, r.Skipped)
		return
	}
	p := r.Phase
	status := "ok"
	if !p.ok() {
		status = "FAILED " + p.Err + " " + strings.Join(p.Failures, "; ")
	}
	logf("%s %s: asked %.0f req/s (peak %.0f), sent %.0f/s, answered %.0f/s  p50 %-8s p99 %-8s (goal %s)  201/202 %d  other %d  no answer %d  other CPU %.0f%%  %s",
		r.Version, atRate, r.Target, r.Peak, r.Sent, p.Wrk.RPS, fmtDur(p.Wrk.P50), fmtDur(p.Wrk.P99), fmtDur(rateGoal),
		p.Wrk.Created, p.Wrk.Other, p.Wrk.SocketErrors(), 100*p.OtherCPU, status)
}

// rateMarkdown is the report's section of the constant-rate phases.
func rateMarkdown(rates []rateResult, o options) string {
	if len(rates) == 0 {
		return ""
	}
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	w("\n## p99 at %.0f%% of the peak\n\n", 100*rateShare)
	w("Each version in stock at a constant %.0f%% of the req/s wrk measured for it\n", 100*rateShare)
	w("in this run (its in-stock row above), for %s on a fresh goods, over %d\n", o.Duration, o.Conns)
	w("connections, each sending on its own schedule, as wrk2 does (`bench/rateload.go`).\n")
	w("A request's latency counts from when its schedule said it should leave, so an\n")
	w("answer that comes late counts its own delay and the wait of the requests behind\n")
	w("it, which wrk's closed loop hides (coordinated omission).\n")
	w("The goal is a p99 of at most %s. Drained and checked as every phase.\n", fmtDur(rateGoal))
	w("Where `sent` falls short of `asked`, the service could not keep the rate up:\n")
	w("the row is that of a saturated machine, not of %.0f%% of the peak.\n\n", 100*rateShare)
	w("| version | peak (wrk) | asked | sent | answered/s | p50 | p99 | goal ≤ %s | other CPU | invariants |\n|---|---:|---:|---:|---:|---:|---:|---|---:|---|\n", fmtDur(rateGoal))
	for _, r := range rates {
		p := r.Phase
		switch {
		case r.Skipped != "":
			w("| %s | — | — | — | — | — | — | — | — | not run: %s |\n", r.Version, oneLine(r.Skipped))
			continue
		case p.Err != "":
			w("| %s | %s | %s | — | — | — | — | — | — | **FAILED**: %s |\n", r.Version, thousands(int64(r.Peak)), thousands(int64(r.Target)), oneLine(p.Err))
			continue
		}
		goal, status := "met", "ok"
		if p.Wrk.P99 > rateGoal {
			goal = "**missed**"
		}
		if !p.ok() {
			status = "**FAILED**: " + strings.Join(p.Failures, "; ")
		}
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %.0f%% | %s |\n", r.Version, thousands(int64(r.Peak)), thousands(int64(r.Target)),
			thousands(int64(r.Sent)), thousands(int64(p.Wrk.RPS)), fmtDur(p.Wrk.P50), fmtDur(p.Wrk.P99), goal, 100*p.OtherCPU, status)
	}
	return b.String()
}
