package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
)

// doubleCheckVersion is the version that delivers its decrements with the
// seed's delayed check rather than the outbox sweep alone.
const doubleCheckVersion = "V10"

// messages are the messages one phase put on the stock and check topics.
type messages struct {
	Stock uint64 `json:"stock"`
	Check uint64 `json:"check"`
}

// perOrder is the stock and check messages per order stored.
func (m messages) perOrder(orders int64) float64 {
	if orders <= 0 {
		return 0
	}
	return float64(m.Stock+m.Check) / float64(orders)
}

// topicMessages reads how many messages the service's nsqd has taken on
// the stock and check topics so far.
func (s *service) topicMessages(o options) (messages, error) {
	addr, err := s.nsqdHTTPAddr()
	if err != nil {
		return messages{}, err
	}
	stock, err := harness.NSQDStats(addr, o.Topic)
	if err != nil {
		return messages{}, err
	}
	check, err := harness.NSQDStats(addr, o.CheckTopic)
	if err != nil {
		return messages{}, err
	}
	return messages{Stock: stock.MessageCount, Check: check.MessageCount}, nil
}

// doubleCheckResult is V10 against the best version (the outbox sweep
// alone), in stock, in rounds that alternate the two so that both meet the
// same machine.
type doubleCheckResult struct {
	Rounds int           `json:"rounds"`
	Phases []phaseResult `json:"phases"`
}

func (d *doubleCheckResult) ok() bool {
	return !slices.ContainsFunc(d.Phases, func(p phaseResult) bool { return !p.ok() })
}

// runDoubleCheck runs rounds of best and V10 in stock, alternately.
func runDoubleCheck(ctx context.Context, svc *service, servers *harness.Servers, meter cpuMeter, o options, best string,
	quiet *quietGate, logf func(string, ...any)) *doubleCheckResult {
	d := &doubleCheckResult{Rounds: o.DoubleCheckRounds}
	for round := range o.DoubleCheckRounds {
		for _, v := range []string{best, doubleCheckVersion} {
			if ctx.Err() != nil {
				return d
			}
			quiet.wait(ctx, v+" against the sweep")
			p := runPhase(ctx, svc, servers, meter, o, v, inStock, o.DrainTimeout)
			p.Notes = append(p.Notes, fmt.Sprintf("double check against the sweep, round %d", round+1))
			d.Phases = append(d.Phases, p)
			logPhase(logf, p)
		}
	}
	return d
}

// median of xs; 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// doubleCheckMarkdown is the section comparing V10 with the sweep.
func doubleCheckMarkdown(d *doubleCheckResult, o options, best string) string {
	if d == nil || len(d.Phases) == 0 {
		return ""
	}
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	w("\n## V10's double check against the outbox sweep\n\n")
	w("%d rounds of `/order%s` and `/order%s` in stock, alternately, in one run\n", d.Rounds, best, doubleCheckVersion)
	w("(`wrk -t%d -c%d -d%s`). Messages are those nsqd took on the stock\n", o.Threads, o.Conns, wrkSeconds(o.Duration))
	w("and check topics during the phase and its drain, per order stored (the\n")
	w("payment-timeout message, one per order in every version, is not counted).\n\n")
	w("| round | version | orders/s | p99 | messages/order | other processes' CPU |\n|---|---|---|---|---|---|\n")
	rate, p99, msgs := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	for i, p := range d.Phases {
		if !p.measured() {
			w("| %d | %s | not run: %s | | | |\n", i/2+1, p.Version, oneLine(p.Skipped+p.Err))
			continue
		}
		mpo := p.Messages.perOrder(p.After.Orders)
		rate[p.Version] = append(rate[p.Version], p.Wrk.RPS)
		p99[p.Version] = append(p99[p.Version], float64(p.Wrk.P99))
		msgs[p.Version] = append(msgs[p.Version], mpo)
		w("| %d | %s | %s | %s | %.2f | %.0f%% |\n", i/2+1, p.Version, thousands(int64(p.Wrk.RPS)), fmtDur(p.Wrk.P99), mpo, 100*p.OtherCPU)
	}
	for _, v := range []string{best, doubleCheckVersion} {
		w("| median | %s | %s | %s | %.2f | |\n", v, thousands(int64(median(rate[v]))), fmtDur(time.Duration(median(p99[v]))), median(msgs[v]))
	}
	if r := median(rate[best]); r > 0 {
		w("\n%s sold at %.2f of %s's rate (medians), with a p99 %.2f times as long.\n", doubleCheckVersion,
			median(rate[doubleCheckVersion])/r, best, median(p99[doubleCheckVersion])/max(median(p99[best]), 1))
	}
	return b.String()
}

// writeDoubleCheckReport writes the comparison alone, for a run with
// -doublecheck-only: dir/doublecheck.md and dir/doublecheck.json.
func writeDoubleCheckReport(dir string, r *results) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "doublecheck.json"), append(js, '\n'), 0o644); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "doublecheck.md")
	md := fmt.Sprintf("Run %s, commit %s, %s.\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"), r.Machine.Commit, r.Elapsed.Round(time.Second)) +
		doubleCheckMarkdown(r.DoubleCheck, r.Options, r.Best)
	return path, os.WriteFile(path, []byte(md), 0o644)
}
