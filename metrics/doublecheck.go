package metrics

import "github.com/prometheus/client_golang/prometheus"

// DoubleCheckEvents are the events of V10's checks, each counted from zero.
var DoubleCheckEvents = []string{"sent", "confirmed", "republished", "dead_lettered"}

func newDoubleChecks(r *prometheus.Registry) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "doublecheck", Name: "events_total",
		Help: "V10's delayed checks of decrements, by event: sent, confirmed (found applied), republished, dead_lettered (handed to a person)."},
		[]string{"event"})
	r.MustRegister(c)
	for _, e := range DoubleCheckEvents {
		c.WithLabelValues(e)
	}
	return c
}
