package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/maypok86/otter/v2/stats"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/go-seckill/seckill/consumer"
	"github.com/go-seckill/seckill/metrics"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/catalog"
	"github.com/go-seckill/seckill/service/coupon"
	"github.com/go-seckill/seckill/service/localshare"
	"github.com/go-seckill/seckill/service/recovery"
)

// serveMetrics serves /metrics on its own listener, never on the public one.
func (a *App) serveMetrics(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener %s: %w", addr, err)
	}
	a.metricsLn = ln
	mux := http.NewServeMux()
	mux.Handle("/metrics", a.metrics.Handler())
	a.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go a.metricsSrv.Serve(ln)
	a.log.Info("metrics serving", "addr", ln.Addr().String(), "path", "/metrics")
	return nil
}

// MetricsAddr is where /metrics answers; empty when metrics.addr is.
func (a *App) MetricsAddr() string {
	if a.metricsLn == nil {
		return ""
	}
	return a.metricsLn.Addr().String()
}

// observePools registers the statistics of each database pool.
func (a *App) observePools() error {
	for name, db := range a.database.Pools() {
		if err := a.metrics.Register(collectors.NewDBStatsCollector(db, name)); err != nil {
			return err
		}
	}
	return nil
}

// lag is a consumer's Lag for topic. The deferred topics (payment
// timeouts, coupon expiries) have none: their messages are meant to wait.
func (a *App) lag(topic string) func(time.Duration) {
	h := a.metrics.ConsumerLag.WithLabelValues(topic)
	return func(age time.Duration) { h.Observe(age.Seconds()) }
}

// consumerCollector reports the messages the instance's consumers took
// from nsqd, finished and requeued, and the backlog of the embedded nsqd.
type consumerCollector struct {
	a        *App
	messages *prometheus.Desc
	depth    *prometheus.Desc
	inFlight *prometheus.Desc
	deferred *prometheus.Desc
}

func newConsumerCollector(a *App) *consumerCollector {
	name := func(n string) string { return prometheus.BuildFQName(metrics.Namespace, "consumer", n) }
	return &consumerCollector{a: a,
		messages: prometheus.NewDesc(name("messages_total"),
			"Messages this instance's consumers received from nsqd, finished and requeued, by topic.", []string{"topic", "state"}, nil),
		depth: prometheus.NewDesc(name("depth"),
			"Messages waiting in a channel of the embedded nsqd (reported only when nsqd is embedded).", []string{"topic", "channel"}, nil),
		inFlight: prometheus.NewDesc(name("in_flight"),
			"Messages delivered from a channel of the embedded nsqd and not yet finished.", []string{"topic", "channel"}, nil),
		deferred: prometheus.NewDesc(name("deferred"),
			"Deferred messages (payment timeouts, expiries) waiting in a channel of the embedded nsqd.", []string{"topic", "channel"}, nil),
	}
}

func (c *consumerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.messages
	ch <- c.depth
	ch <- c.inFlight
	ch <- c.deferred
}

func (c *consumerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, cs := range []struct {
		topic string
		c     *consumer.Consumer
	}{
		{c.a.cfg.NSQ.Topic, c.a.consumer}, {c.a.cfg.NSQ.TimeoutTopic, c.a.timeouts}, {c.a.cfg.NSQ.StockBackTopic, c.a.listener},
		{c.a.cfg.NSQ.CouponExpiryTopic, c.a.couponExp}, {c.a.cfg.NSQ.CouponChangeTopic, c.a.couponChg},
		{c.a.cfg.NSQ.CheckTopic, c.a.checks}, {c.a.cfg.NSQ.AcceptTopic, c.a.writers},
	} {
		if cs.c == nil {
			continue
		}
		received, finished, requeued := cs.c.Stats()
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(received), cs.topic, "received")
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(finished), cs.topic, "finished")
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(requeued), cs.topic, "requeued")
	}
	if c.a.nsqd == nil {
		return
	}
	for _, d := range c.a.nsqd.Depths() {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(d.Depth), d.Topic, d.Channel)
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(d.InFlight), d.Topic, d.Channel)
		ch <- prometheus.MustNewConstMetric(c.deferred, prometheus.GaugeValue, float64(d.Deferred), d.Topic, d.Channel)
	}
}

// cacheCollector reports the coupon template cache's statistics.
type cacheCollector struct {
	s           *stats.Counter
	hits        *prometheus.Desc
	misses      *prometheus.Desc
	loadFailure *prometheus.Desc
	evictions   *prometheus.Desc
}

func newCacheCollector(s *stats.Counter) *cacheCollector {
	name := func(n string) string { return prometheus.BuildFQName(metrics.Namespace, "coupon_cache", n) }
	return &cacheCollector{s: s,
		hits:        prometheus.NewDesc(name("hits_total"), "Lookups the coupon template cache of this instance answered.", nil, nil),
		misses:      prometheus.NewDesc(name("misses_total"), "Lookups the coupon template cache missed (loaded from Redis or MySQL).", nil, nil),
		loadFailure: prometheus.NewDesc(name("load_failures_total"), "Loads of a missed template that failed.", nil, nil),
		evictions:   prometheus.NewDesc(name("evictions_total"), "Templates evicted from the cache for its size.", nil, nil),
	}
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hits
	ch <- c.misses
	ch <- c.loadFailure
	ch <- c.evictions
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s.Snapshot()
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(c.loadFailure, prometheus.CounterValue, float64(s.LoadFailures))
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(s.Evictions))
}

// shareCollector reports V15's local shares: the requests they let
// through to Redis, refused as sold out in memory, and whose unit came
// back after a failed sale; and the live instances they divide among.
type shareCollector struct {
	shares   *localshare.Shares
	requests *prometheus.Desc
	live     *prometheus.Desc
}

func newShareCollector(s *localshare.Shares) *shareCollector {
	return &shareCollector{shares: s,
		requests: prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "local_share", "requests_total"),
			"V15's requests by what this instance's local share did: taken (on to Redis), refused (sold out in memory), returned (the sale failed).", []string{"outcome"}, nil),
		live: prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "local_share", "live_instances"),
			"The running instances the shares were last divided among (snowflake node leases).", nil, nil),
	}
}

func (c *shareCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.live
}

func (c *shareCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.shares.Counts()
	ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n.Taken), "taken")
	ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n.Refused), "refused")
	ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n.Returned), "returned")
	ch <- prometheus.MustNewConstMetric(c.live, prometheus.GaugeValue, float64(n.Live))
}

// stockCollector reports each goods' stock in Redis and in the database,
// read at the scrape (one query and one Redis round trip).
type stockCollector struct {
	catalog *catalog.Catalog
	stock   *prometheus.Desc
	sale    *prometheus.Desc
}

func newStockCollector(c *catalog.Catalog) *stockCollector {
	return &stockCollector{catalog: c,
		stock: prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "goods", "stock"),
			"A goods' stock: in Redis (what may still be sold) and in MySQL (applied by the consumer).", []string{"goods_id", "store"}, nil),
		sale: prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "goods", "sale"),
			"A goods' units sold, as MySQL has applied them.", []string{"goods_id"}, nil),
	}
}

func (c *stockCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.stock
	ch <- c.sale
}

func (c *stockCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	emit := func(gs []service.Goods, store string) {
		for _, g := range gs {
			id := strconv.FormatInt(g.ID, 10)
			ch <- prometheus.MustNewConstMetric(c.stock, prometheus.GaugeValue, float64(g.Stock), id, store)
			if store == "mysql" {
				ch <- prometheus.MustNewConstMetric(c.sale, prometheus.GaugeValue, float64(g.Sale), id)
			}
		}
	}
	if gs, err := c.catalog.ListGoods(ctx); err == nil {
		emit(gs, "mysql")
	}
	if gs, err := c.catalog.ShopperGoods(ctx); err == nil {
		emit(gs, "redis")
	}
}

// countedDeadLetters counts the dead letters written for a topic.
type countedDeadLetters struct {
	consumer.DeadLetters
	n prometheus.Counter
}

func (d countedDeadLetters) DeadLetter(ctx context.Context, m service.StockMessage, body []byte, reason string) error {
	err := d.DeadLetters.DeadLetter(ctx, m, body, reason)
	if err == nil {
		d.n.Inc()
	}
	return err
}

// observedReconciler counts the goods' drifts each pass sees and repairs.
type observedReconciler struct {
	*recovery.Reconciler
	m *metrics.Metrics
}

func (r observedReconciler) Reconcile(ctx context.Context) ([]recovery.Drift, error) {
	return r.observe(r.Reconciler.Reconcile(ctx))
}

func (r observedReconciler) ReconcileAll(ctx context.Context) ([]recovery.Drift, error) {
	return r.observe(r.Reconciler.ReconcileAll(ctx))
}

func (r observedReconciler) observe(ds []recovery.Drift, err error) ([]recovery.Drift, error) {
	if err == nil {
		observeDrifts(r.m, ds)
	}
	return ds, err
}

// observeDrifts counts the goods' drifts a pass saw and repaired.
func observeDrifts(m *metrics.Metrics, ds []recovery.Drift) {
	var drifting, repaired int
	for _, d := range ds {
		if d.Drift != 0 || d.UsersDrift != 0 {
			drifting++
		}
		if d.Repaired || d.UsersRepaired > 0 {
			repaired++
		}
	}
	m.Drifting.WithLabelValues("goods").Set(float64(drifting))
	m.DriftSeen.WithLabelValues("goods").Add(float64(drifting))
	m.DriftRepaired.WithLabelValues("goods").Add(float64(repaired))
}

// observedCoupons counts the templates' drifts each pass sees and repairs.
type observedCoupons struct {
	*coupon.Coupons
	m *metrics.Metrics
}

func (c observedCoupons) Reconcile(ctx context.Context) ([]coupon.Drift, error) {
	ds, err := c.Coupons.Reconcile(ctx)
	if err == nil {
		var drifting, repaired int
		for _, d := range ds {
			if d.Drift != 0 || d.MissingSubs > 0 {
				drifting++
			}
			if d.Repaired {
				repaired++
			}
		}
		c.m.Drifting.WithLabelValues("coupon").Set(float64(drifting))
		c.m.DriftSeen.WithLabelValues("coupon").Add(float64(drifting))
		c.m.DriftRepaired.WithLabelValues("coupon").Add(float64(repaired))
	}
	return ds, err
}
