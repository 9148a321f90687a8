package faults

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
)

// The service's default double-check topic (nsq.check_topic).
const checkTopic = "seckill_stock_check"

// deliveryVersion is how a scenario delivers decrements: V6 with the
// outbox sweep, or V10 with its delayed check (and the sweep switched off,
// so that the check alone is measured, or left on as it is by default).
type deliveryVersion struct {
	path  string
	sweep bool
}

var (
	bySweep = deliveryVersion{path: "/orderV6", sweep: true}
	byCheck = deliveryVersion{path: "/orderV10"}
)

// vars configures the service for d: the sweep's grace and the check's
// delay are both 2 s, so that they race on equal terms.
func (d deliveryVersion) vars(nsqds ...*nsqd) map[string]string {
	addrs := make([]string, len(nsqds))
	for i, n := range nsqds {
		addrs[i] = n.tcp
	}
	v := map[string]string{"SECKILL_NSQ_NSQD": strings.Join(addrs, ","), "SECKILL_DOUBLECHECK_DELAY": "2s"}
	if !d.sweep {
		v["SECKILL_OUTBOX_GRACE"], v["SECKILL_OUTBOX_LATE_HORIZON"] = "10m", "20m"
	}
	return v
}

// messagesOf counts the messages the nsqds took on the stock and check
// topics.
func messagesOf(t *testing.T, nsqds ...*nsqd) (stock, check uint64) {
	t.Helper()
	for _, n := range nsqds {
		for topic, sum := range map[string]*uint64{stockTopic: &stock, checkTopic: &check} {
			st, err := harness.NSQDStats(n.http, topic)
			if err != nil {
				t.Fatal(err)
			}
			*sum += st.MessageCount
		}
	}
	return stock, check
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// checkEvents reads the service's double-check counters from its /metrics.
func checkEvents(t *testing.T, metricsAddr string) map[string]int {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), `seckill_doublecheck_events_total{event="`)
		if !ok {
			continue
		}
		event, value, _ := strings.Cut(rest, `"} `)
		n, _ := strconv.ParseFloat(value, 64)
		out[event] = int(n)
	}
	return out
}

// 11, 12. One of two nsqd is SIGKILLed mid-sale and restarted a second
// later; what it held in memory is lost. V6's lost decrements come back
// through the outbox sweep. V10's come back through their checks, which
// went to the other nsqd (a check goes to the nsqd after its decrement's),
// with the sweep switched off: each loses one of the two, never both.
// Recovery is from the restart until every decrement is applied.
func nsqdKilledOfTwo(d deliveryVersion) func(t *testing.T) result {
	return func(t *testing.T) result {
		e := newEnv(t)
		second := startNSQD(t, e.out)
		metrics := freeAddr(t)
		vars := d.vars(e.nsqd, second)
		vars["SECKILL_METRICS_ADDR"] = metrics
		s := e.service("seckill", vars)
		s.start()
		const stock = 100_000
		g := s.CreateGoods(t, stock).ID
		l := startLoad(s, g, loadSpec{path: d.path, workers: 32, dur: 6 * time.Second})
		back := e.nsqd.killUnder(l)
		l.wait()
		// A publish that fails never refuses an order; a 503 is the
		// database's write budget on a loaded machine, not nsqd's doing.
		if n := l.count("nsqd down ") - l.count("nsqd down 201") - l.count("nsqd down 503"); n > 0 {
			t.Errorf("%d orders refused while one nsqd was down: %s", n, l.summary())
		}
		unchecked, ev := 0, map[string]int(nil)
		if !d.sweep {
			// Every order answered 201 has its check: all of them apply.
			// An order answered 503 outcome_unknown has none (whether it
			// exists was unknown), and lands unapplied if it lands: only
			// the sweep finds it, so the instance restarts with the sweep.
			var snap harness.Snapshot
			if !harness.WaitFor(settleWithin, func() bool {
				var err error
				snap, err = e.Snapshot(context.Background(), g)
				return err == nil && !slices.ContainsFunc(l.orders(), func(o order) bool { return snap.Sales[o.ID] == 0 })
			}) {
				t.Errorf("orders answered 201 not applied by their checks: %s", snap)
			}
			ev = checkEvents(t, metrics) // before a restart resets them
			for id := range snap.Orders {
				if snap.Sales[id] == 0 {
					unchecked++
				}
			}
			if unchecked > 0 {
				s.stop()
				delete(s.vars, "SECKILL_OUTBOX_GRACE")
				delete(s.vars, "SECKILL_OUTBOX_LATE_HORIZON")
				s.start()
			}
		}
		snap := e.settle(g, stock, l.orders())
		rec := time.Since(back)
		if ev == nil {
			ev = checkEvents(t, metrics)
		}
		return result{accepted: len(l.orders()), recovery: rec,
			note: fmt.Sprintf("%s, sweep %s: %d orders stored; checks republished %d, dead-lettered %d; %d orders of unknown outcome had no check, applied by the sweep after a restart with it",
				d.path, onOff(d.sweep), len(snap.Orders), ev["republished"], ev["dead_lettered"], unchecked)}
	}
}

// 13, 14. The consumer stops taking stock messages for 12 s (its channel
// paused on nsqd: the service, and V10's checker, keep running) while
// orders come, then resumes. The sweep republishes each pending order once
// per grace; V10's checks republish each one every delay, three times,
// then dead-letter it, though nothing was lost: false alarms a person must
// resolve. Every decrement still applies exactly once. Recovery is from
// the resume until every decrement is applied.
func consumerPaused(d deliveryVersion) func(t *testing.T) result {
	return func(t *testing.T) result {
		e := newEnv(t)
		metrics := freeAddr(t)
		vars := d.vars(e.nsqd)
		vars["SECKILL_METRICS_ADDR"] = metrics
		if !d.sweep {
			delete(vars, "SECKILL_OUTBOX_GRACE") // V10 as it runs by default: the sweep is on
			delete(vars, "SECKILL_OUTBOX_LATE_HORIZON")
		}
		s := e.service("seckill", vars)
		s.start()
		const stock = 100_000
		g := s.CreateGoods(t, stock).ID
		// The channel exists once the consumer has connected.
		if !harness.WaitFor(10*time.Second, func() bool { _, err := e.nsqd.channel(stockTopic, stockChannel); return err == nil }) {
			t.Fatal("the consumer's channel never appeared")
		}
		if err := harness.PauseChannel(e.nsqd.http, stockTopic, stockChannel, true); err != nil {
			t.Fatal(err)
		}
		l := startLoad(s, g, loadSpec{path: d.path, workers: 8, dur: 2 * time.Second})
		l.wait()
		time.Sleep(10 * time.Second) // 12 s in all since the first order: more than V10's 4 checks
		if err := harness.PauseChannel(e.nsqd.http, stockTopic, stockChannel, false); err != nil {
			t.Fatal(err)
		}
		resumed := time.Now()
		ids := make([]int64, len(l.orders()))
		for i, o := range l.orders() {
			ids[i] = o.ID
		}
		harness.WaitFor(settleWithin, func() bool {
			snap, err := e.Snapshot(context.Background(), g)
			return err == nil && snap.SaleUnits == int64(len(snap.Orders)) && snap.Settled()
		})
		rec := time.Since(resumed)
		// The last checks come up to a delay later: count the letters once
		// none is left.
		if !harness.WaitFor(settleWithin, func() bool {
			st, err := e.nsqd.channel(checkTopic, "check")
			return err != nil || st.Depth == 0 && st.InFlightCount == 0 && st.DeferredCount == 0
		}) {
			t.Error("checks still waiting in nsqd")
		}
		snap, err := e.Snapshot(context.Background(), g)
		if err != nil {
			t.Fatal(err)
		}
		letters := snap.DeadLetters
		// Dead letters of V10's checks name orders whose stock did apply:
		// the invariants read them as the letters they are.
		e.CheckInvariants(t, g, harness.Sale{Initial: stock, Accepted: ids, AllowUnanswered: true, DeadLetters: letters, Within: settleWithin})
		stockMsgs, checkMsgs := messagesOf(t, e.nsqd)
		ev := checkEvents(t, metrics)
		orders := max(len(ids), 1)
		return result{accepted: len(ids), recovery: rec,
			note: fmt.Sprintf("%s: %.2f stock + %.2f check messages per order; checks republished %d, dead-lettered %d (orders applied all the same)",
				d.path, float64(stockMsgs)/float64(orders), float64(checkMsgs)/float64(orders), ev["republished"], letters)}
	}
}
