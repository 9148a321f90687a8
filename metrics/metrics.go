// Package metrics holds one instance's Prometheus metrics, in a registry
// of its own (several instances may run in one process, as the tests do),
// served on an internal listener apart from the public one.
package metrics

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace starts every metric name.
const Namespace = "seckill"

// LatencyBuckets are the request latency buckets, in seconds: fine around
// the 30 ms the p99 alert watches.
var LatencyBuckets = []float64{.001, .0025, .005, .01, .02, .03, .05, .1, .25, .5, 1, 2.5, 5, 10}

// DependencyBuckets are the latency buckets of one call to Redis, MySQL or
// nsqd, in seconds.
var DependencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}

// LagBuckets are the buckets of a message's age when its consumer handles
// it, in seconds.
var LagBuckets = []float64{.005, .01, .05, .1, .5, 1, 2.5, 5, 10, 30, 60, 300}

// Metrics are one instance's metrics. The zero value is not usable: New.
type Metrics struct {
	Registry *prometheus.Registry

	// Answers counts the answers given, by route template, version (the
	// order routes) and status code.
	Answers *prometheus.CounterVec
	// Latency is the time from the request's arrival to its answer, by route.
	Latency *prometheus.HistogramVec
	answers sync.Map // answerKey → answerSeries: the two above, by answer
	// InFlight and InFlightCap are the hot requests being served and the cap
	// (http.max_in_flight) past which they are shed.
	InFlight    prometheus.Gauge
	InFlightCap prometheus.Gauge
	// Shed counts hot requests refused with 503 busy at the cap.
	Shed prometheus.Counter
	// RateLimited counts the limited versions' refusals by reason: ip,
	// instance, user_in_flight, early, stock_gate, captcha (see package
	// admission).
	RateLimited *prometheus.CounterVec
	// LimitFallbacks counts the address limits taken on this instance alone
	// while the Redis the instances share did not answer.
	LimitFallbacks prometheus.Counter
	// QueueWait is how long a limited order waited for a slot past
	// http.max_in_flight, by outcome: served, or busy when the wait ran out.
	QueueWait *prometheus.HistogramVec

	// Dependency times each call to Redis, MySQL (or SQLite) and nsqd;
	// DependencyErrors counts those that failed.
	Dependency       *prometheus.HistogramVec
	DependencyErrors *prometheus.CounterVec

	// ConsumerLag is each message's age when its consumer handles it.
	ConsumerLag *prometheus.HistogramVec
	// DeadLetters counts the messages given up on and written to dead_letters.
	DeadLetters *prometheus.CounterVec

	// Drifting is how many goods or templates the last reconciliation pass
	// found drifting; DriftSeen and DriftRepaired count the drifts seen and
	// repaired, pass after pass.
	Drifting      *prometheus.GaugeVec
	DriftSeen     *prometheus.CounterVec
	DriftRepaired *prometheus.CounterVec

	// StatementsByRoute counts the database statements requests made, by
	// route (see WithRoute): what a read costs the database.
	StatementsByRoute *prometheus.CounterVec
	// DoubleChecks counts V10's delayed checks by event: sent, confirmed,
	// republished, dead_lettered.
	DoubleChecks *prometheus.CounterVec
}

// New makes the metrics in a fresh registry, with the Go runtime's and the
// process's collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{Registry: r}
	m.Answers = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "http", Name: "answers_total",
		Help: "Answers given, by route template, order version (empty off the order routes) and status code."},
		[]string{"route", "version", "code"})
	m.Latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help: "Time from a request's arrival to its answer, by route template.", Buckets: LatencyBuckets}, []string{"route"})
	m.InFlight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "http", Name: "in_flight",
		Help: "Order and claim requests being served now."})
	m.InFlightCap = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "http", Name: "max_in_flight",
		Help: "http.max_in_flight: order and claim requests served at once before 503 busy."})
	m.Shed = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "http", Name: "shed_total",
		Help: "Order and claim requests refused with 503 busy at http.max_in_flight."})
	m.RateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "http", Name: "rate_limited_total",
		Help: "Limited orders refused by the edge's limits, by reason."}, []string{"reason"})
	m.LimitFallbacks = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "http", Name: "limit_fallbacks_total",
		Help: "Address limits taken on this instance alone while the shared Redis did not answer."})
	m.QueueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "http", Name: "queue_wait_seconds",
		Help: "Time a limited order waited for a slot past http.max_in_flight, by outcome (served, busy).", Buckets: LatencyBuckets},
		[]string{"outcome"})
	m.Dependency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "dependency_duration_seconds",
		Help: "Calls to a dependency (redis, mysql, sqlite, nsqd) by operation.", Buckets: DependencyBuckets},
		[]string{"dependency", "op"})
	m.DependencyErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "dependency_errors_total",
		Help: "Calls to a dependency that failed, by operation."}, []string{"dependency", "op"})
	m.ConsumerLag = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "consumer", Name: "lag_seconds",
		Help: "Age of a message (since its publish) when its consumer handles it, by topic.", Buckets: LagBuckets}, []string{"topic"})
	m.DeadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "dead_letters_total",
		Help: "Messages given up on and written to dead_letters, by topic."}, []string{"topic"})
	m.Drifting = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "reconcile", Name: "drifting",
		Help: "Goods or coupon templates whose Redis stock differed from the truth in the last pass, by kind."}, []string{"kind"})
	m.DriftSeen = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "reconcile", Name: "drift_seen_total",
		Help: "Drifts seen by reconciliation passes (one per goods or template and pass), by kind."}, []string{"kind"})
	m.DriftRepaired = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "reconcile", Name: "drift_repaired_total",
		Help: "Drifts repaired by reconciliation passes, by kind."}, []string{"kind"})
	for _, c := range []prometheus.Collector{m.Answers, m.Latency, m.InFlight, m.InFlightCap, m.Shed, m.RateLimited, m.LimitFallbacks, m.QueueWait,
		m.Dependency, m.DependencyErrors, m.ConsumerLag, m.DeadLetters, m.Drifting, m.DriftSeen, m.DriftRepaired} {
		f(c)
	}
	for _, reason := range []string{"ip", "instance", "user_in_flight", "early", "stock_gate", "captcha"} {
		m.RateLimited.WithLabelValues(reason)
	}
	m.StatementsByRoute = newStatementsByRoute()
	f(m.StatementsByRoute)
	m.DoubleChecks = newDoubleChecks(r)
	for _, kind := range []string{"goods", "coupon"} {
		m.Drifting.WithLabelValues(kind)
		m.DriftSeen.WithLabelValues(kind)
		m.DriftRepaired.WithLabelValues(kind)
	}
	return m
}

// Answer counts one answer and its latency.
func (m *Metrics) Answer(route, version string, code int, d time.Duration) {
	k := answerKey{route, version, code}
	s, ok := m.answers.Load(k)
	if !ok {
		// Every answer pays for the label lookups otherwise: a route's few
		// series are looked up once.
		s, _ = m.answers.LoadOrStore(k, answerSeries{
			count:   m.Answers.WithLabelValues(route, version, strconv.Itoa(code)),
			latency: m.Latency.WithLabelValues(route),
		})
	}
	as := s.(answerSeries)
	as.count.Inc()
	as.latency.Observe(d.Seconds())
}

// answerKey names the series of one kind of answer.
type answerKey struct {
	route, version string
	code           int
}

// answerSeries are the series an answer counts in.
type answerSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// Observe times one call to a dependency; err is its failure, nil when it
// succeeded.
func (m *Metrics) Observe(dependency, op string, d time.Duration, err error) {
	m.Dependency.WithLabelValues(dependency, op).Observe(d.Seconds())
	if err != nil {
		m.DependencyErrors.WithLabelValues(dependency, op).Inc()
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Register adds c, for collectors the wiring owns (pool stats, cache
// stats, queue depths); registering one again does nothing.
func (m *Metrics) Register(c prometheus.Collector) error {
	if err := m.Registry.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			return nil
		}
		return err
	}
	return nil
}
