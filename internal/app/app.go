// Package app is one running instance of the service: it connects every
// dependency in order, serves HTTP and runs the background work, and stops
// them in the reverse order. The command and the test harness start it the
// same way.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/maypok86/otter/v2/stats"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/admission"
	"github.com/go-seckill/seckill/config"
	"github.com/go-seckill/seckill/consumer"
	"github.com/go-seckill/seckill/handlers"
	"github.com/go-seckill/seckill/internal/reshard"
	"github.com/go-seckill/seckill/metrics"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/catalog"
	"github.com/go-seckill/seckill/service/coupon"
	"github.com/go-seckill/seckill/service/deadletter"
	"github.com/go-seckill/seckill/service/doublecheck"
	"github.com/go-seckill/seckill/service/goodscache"
	"github.com/go-seckill/seckill/service/ledger"
	"github.com/go-seckill/seckill/service/localshare"
	"github.com/go-seckill/seckill/service/ordering"
	"github.com/go-seckill/seckill/service/payment"
	"github.com/go-seckill/seckill/service/recovery"
	"github.com/go-seckill/seckill/service/reservation"
	"github.com/go-seckill/seckill/service/soldout"
	"github.com/go-seckill/seckill/store"
)

// LoadConfig reads the built-in defaults, the file at path (if any) and the
// SECKILL_* variables lookupEnv finds.
func LoadConfig(path string, lookupEnv func(string) (string, bool)) (config.Config, error) {
	cfg, err := config.Load(path, lookupEnv)
	if err != nil {
		return config.Config{}, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

// NewLogger writes text log lines at level info and above to w.
func NewLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// LogRedisTo sends go-redis's own lines (a pool failing to dial, say) to
// log instead of stderr, where a Redis that is down would bury the one
// line that says so. go-redis keeps one logger per process.
func LogRedisTo(log *slog.Logger) { redis.SetLogger(redisLog{log}) }

type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "redis")
}

// App is one running instance. Its parts are started in dependency order by
// Start and stopped in reverse by Shutdown.
type App struct {
	cfg       config.Config
	log       *slog.Logger
	database  *store.Database
	redis     *store.Redis
	miniRed   *miniredis.Miniredis // nil unless Redis runs embedded
	nsqd      *store.EmbeddedNSQD  // nil when nsqd runs elsewhere
	pub       *store.Publisher
	consumer  *consumer.Consumer // nil when switched off
	timeouts  *consumer.Consumer // payment timeouts; nil when the consumer is switched off
	listener  *consumer.Consumer // stock-back broadcasts
	couponExp *consumer.Consumer // coupon and template expiries; nil when the consumer is switched off
	couponChg *consumer.Consumer // "template changed" broadcasts
	goodsChg  *consumer.Consumer // "goods changed" broadcasts (V9's goods cache)
	checks    *consumer.Consumer // V10's delayed checks; nil when the consumer is switched off
	writers   *consumer.Consumer // V13's writers of accepted requests; nil when the consumer is switched off
	ledger    *ledger.Ledger     // nil until wired
	letters   *deadletter.Book   // nil until wired
	lease     *store.NodeLease   // this instance's snowflake node
	http      *http.Server
	httpLn    net.Listener
	pprof     *http.Server // nil unless debug.pprof_addr is set
	metrics   *metrics.Metrics
	// metricsSrv serves /metrics on metricsLn; nil unless metrics.addr is set.
	metricsSrv *http.Server
	metricsLn  net.Listener
	cacheStats *stats.Counter // the coupon template cache's
	draining   atomic.Bool
	stopLoops  context.CancelFunc
	loops      sync.WaitGroup
	stopOnce   sync.Once
}

// Migrate applies the migrations on every database and returns.
func Migrate(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	d, err := store.OpenDatabase(ctx, cfg.PrimaryDSN(), cfg.ShardDSNs(), 2)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.OpenLogicalHosts(ctx, cfg.V7HostDSNs(), 2); err != nil {
		return err
	}
	n, err := d.Migrate(ctx)
	if err != nil {
		return err
	}
	// V7's logical databases get their tables here rather than on their
	// first orders, in the sale.
	if err := d.ClaimAll(ctx); err != nil {
		return fmt.Errorf("v7 logical databases: %w", err)
	}
	log.Info("migrations applied; V7's logical databases made", "databases", n)
	return nil
}

// Start connects every dependency, applies migrations and begins listening.
// On failure it stops whatever it had started and returns the cause. The
// result is unnamed: a `return nil, err` must not clear the app the
// deferred Shutdown stops.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *App, err error) {
	a := &App{cfg: cfg, log: log, metrics: metrics.New(), cacheStats: stats.NewCounter()}
	defer func() {
		if err != nil {
			a.Shutdown()
		}
	}()
	log.Info("starting", "config", cfg.String())

	if cfg.IsStandalone() {
		log.Warn("standalone mode: SQLite files stand in for MySQL and an in-process Redis for Redis; "+
			"figures measured here are not benchmarks. Set SECKILL_MYSQL_DSN and SECKILL_REDIS_ADDR for real servers.",
			"data", cfg.PrimaryDSN())
	}
	if a.database, err = store.OpenDatabase(ctx, cfg.PrimaryDSN(), cfg.ShardDSNs(), cfg.MySQL.MaxOpenConns, a.metrics); err != nil {
		return nil, err
	}
	// The truth counts an order settled for good past the age at which the
	// outbox stops looking for rows that commit late: the same bound.
	a.database.SettleTruthAfter(cfg.Outbox.LateHorizon)
	if err = a.observePools(); err != nil {
		return nil, err
	}
	if err = a.database.OpenLogicalHosts(ctx, cfg.V7HostDSNs(), cfg.MySQL.MaxOpenConns); err != nil {
		return nil, err
	}
	if _, err = a.database.Migrate(ctx); err != nil {
		return nil, err
	}
	if err = a.database.CheckOrderLayout(ctx, cfg.Layout()); err != nil {
		return nil, err
	}
	if _, err = a.database.RefreshShardMap(ctx); err != nil {
		return nil, fmt.Errorf("shard map: %w", err)
	}
	if cfg.IsStandalone() {
		// One SQLite connection would make every order wait while V7's
		// first orders make their tables: they are made now.
		if err = a.database.ClaimAll(ctx); err != nil {
			return nil, fmt.Errorf("v7 logical databases: %w", err)
		}
	}
	redisAddr := cfg.Redis.Addr
	clusterAddrs := cfg.RedisClusterAddrs()
	if redisAddr == "" && len(clusterAddrs) == 0 {
		// miniredis runs the same Lua scripts over a real TCP socket; it keeps
		// nothing on disk, so stock is rebuilt from the database below.
		a.miniRed = miniredis.NewMiniRedis()
		if err = a.miniRed.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("embedded redis: %w", err)
		}
		redisAddr = a.miniRed.Addr()
		log.Info("embedded redis started", "addr", redisAddr)
	}
	if a.redis, err = store.OpenRedis(ctx, store.RedisOptions{
		Addr: redisAddr, ClusterAddrs: clusterAddrs, Password: cfg.Redis.Password, DB: cfg.Redis.DB,
		PoolSize: cfg.Redis.PoolSize, KeyPrefix: cfg.Redis.KeyPrefix,
		DialTimeout: cfg.Redis.DialTimeout, ReadTimeout: cfg.Redis.ReadTimeout,
		WriteTimeout: cfg.Redis.WriteTimeout, PoolTimeout: cfg.Redis.PoolTimeout, Observer: a.metrics,
	}); err != nil {
		if len(clusterAddrs) > 0 {
			return nil, fmt.Errorf("redis cluster %s: %w", strings.Join(clusterAddrs, ","), err)
		}
		return nil, fmt.Errorf("redis %s: %w", redisAddr, err)
	}

	nsqds := cfg.NSQDAddrs()
	if len(nsqds) == 0 {
		dir, _ := filepath.Abs(cfg.EmbeddedNSQDDir())
		if a.nsqd, err = store.StartNSQD(dir, cfg.NSQ.EmbeddedTCPAddr, cfg.NSQ.EmbeddedHTTPAddr, log); err != nil {
			return nil, err
		}
		nsqds = []string{a.nsqd.TCPAddr()}
		log.Info("embedded nsqd started", "tcp", a.nsqd.TCPAddr(), "http", a.nsqd.HTTPAddr(), "data", dir)
	}
	if a.pub, err = store.NewPublisher(nsqds, store.PublisherTopics{
		Stock: cfg.NSQ.Topic, Timeout: cfg.NSQ.TimeoutTopic, StockBack: cfg.NSQ.StockBackTopic,
		CouponExpiry: cfg.NSQ.CouponExpiryTopic, CouponChange: cfg.NSQ.CouponChangeTopic, GoodsChange: cfg.NSQ.GoodsChangeTopic, Check: cfg.NSQ.CheckTopic,
		Accept: cfg.NSQ.AcceptTopic,
	}, log, a.metrics); err != nil {
		return nil, err
	}
	// Two instances on one snowflake node would make equal order ids: each
	// leases its node in Redis for as long as it lives.
	if a.lease, err = a.redis.LeaseNode(ctx, cfg.Snowflake.Node, cfg.Snowflake.LeaseTTL); err != nil {
		return nil, err
	}
	log.Info("snowflake node leased", "node", a.lease.Node())
	ids, err := store.NewIDs(a.lease.Node())
	if err != nil {
		return nil, err
	}
	units := a.wire(ids)

	if err := a.loadStock(ctx); err != nil {
		return nil, err
	}
	if err := a.loadCatalog(ctx); err != nil {
		return nil, err
	}

	lookupds := cfg.LookupdAddrs()
	if a.listener, err = consumer.StartStockBack(units.stockBack, consumer.Options{
		Topic: cfg.NSQ.StockBackTopic, Channel: fmt.Sprintf("instance-%d-%s#ephemeral", a.lease.Node(), randomToken()[:8]),
		NSQDs: nsqds, Lookupds: lookupds, Concurrency: 1, NSQLog: store.NSQLogger(log), Lag: a.lag(cfg.NSQ.StockBackTopic),
	}); err != nil {
		return nil, err
	}
	if a.couponChg, err = consumer.StartCouponChanges(units.coupons.Changed, consumer.Options{
		Topic: cfg.NSQ.CouponChangeTopic, Channel: fmt.Sprintf("instance-%d-%s#ephemeral", a.lease.Node(), randomToken()[:8]),
		NSQDs: nsqds, Lookupds: lookupds, Concurrency: 1, NSQLog: store.NSQLogger(log), Lag: a.lag(cfg.NSQ.CouponChangeTopic),
	}); err != nil {
		return nil, err
	}
	if err = a.listenGoodsChanges(units.goodsCache, nsqds, lookupds); err != nil {
		return nil, err
	}
	if cfg.Consumer.Enabled {
		if a.couponExp, err = consumer.StartCouponExpiry(units.coupons, consumer.Options{
			Topic: cfg.NSQ.CouponExpiryTopic, Channel: cfg.NSQ.CouponExpiryChannel, NSQDs: nsqds, Lookupds: lookupds,
			Concurrency: cfg.Consumer.Concurrency, MaxAttempts: uint16(cfg.Consumer.MaxAttempts),
			ApplyTimeout: cfg.Consumer.ApplyTimeout, NSQLog: store.NSQLogger(log),
		}, log); err != nil {
			return nil, err
		}
		if a.consumer, err = consumer.Start(a.ledger, a.deadLetters(cfg.NSQ.Topic), consumer.Options{
			Topic: cfg.NSQ.Topic, Channel: cfg.NSQ.Channel, NSQDs: nsqds, Lookupds: lookupds,
			Concurrency: cfg.Consumer.Concurrency, MaxAttempts: uint16(cfg.Consumer.MaxAttempts),
			BatchSize: cfg.Consumer.BatchSize, ApplyTimeout: cfg.Consumer.ApplyTimeout, NSQLog: store.NSQLogger(log),
			Lag: a.lag(cfg.NSQ.Topic),
		}, log); err != nil {
			return nil, err
		}
		if a.timeouts, err = consumer.StartTimeouts(units.payments, a.deadLetters(cfg.NSQ.TimeoutTopic), consumer.Options{
			Topic: cfg.NSQ.TimeoutTopic, Channel: cfg.NSQ.TimeoutChannel, NSQDs: nsqds, Lookupds: lookupds,
			Concurrency: cfg.Consumer.Concurrency, MaxAttempts: uint16(cfg.Consumer.MaxAttempts),
			ApplyTimeout: cfg.Consumer.ApplyTimeout, NSQLog: store.NSQLogger(log),
		}, log); err != nil {
			return nil, err
		}
		if a.checks, err = a.startChecks(units.checker, nsqds, lookupds); err != nil {
			return nil, err
		}
		if a.writers, err = a.startWriters(units.placer, nsqds, lookupds); err != nil {
			return nil, err
		}
	}
	for _, c := range []prometheus.Collector{newConsumerCollector(a), newCacheCollector(a.cacheStats), newStockCollector(units.catalog), newShareCollector(units.shares),
		newGoodsCacheCollector(units.goodsMemory, units.goodsCache)} {
		if err = a.metrics.Register(c); err != nil {
			return nil, err
		}
	}
	a.startLoops(units)

	token := cfg.Admin.Token
	if token == "" {
		token = randomToken()
		log.Warn("admin.token is not set; generated one for this run", "admin_token", token)
	}
	gin.SetMode(gin.ReleaseMode)
	a.http = &http.Server{
		Handler: handlers.New(handlers.Service{
			Orders: units.placer, Catalog: units.shownCatalog, Payments: units.payments, Reconciler: units.reconciler, Coupons: units.coupons,
			DeadLetters: units.letters, Reservations: units.reservations, Buckets: a.ledger, Ready: a.ready,
		}, handlers.Options{
			AdminToken: token, MaxBodyBytes: cfg.HTTP.MaxBodyBytes, MaxInFlight: cfg.HTTP.MaxInFlight,
			Draining: a.draining.Load, Log: log, Metrics: a.metrics, RequestLogSuccesses: cfg.HTTP.RequestLogPerSecond,
			Limits: a.limits(units.admission), TrustedProxies: cfg.Limits.Proxies(),
		}),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
	}
	if a.httpLn, err = net.Listen("tcp", cfg.HTTP.Addr); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	if cfg.Metrics.Addr != "" {
		if err := a.serveMetrics(cfg.Metrics.Addr); err != nil {
			return nil, err
		}
	}
	if cfg.Debug.PprofAddr != "" {
		if err := a.servePprof(cfg.Debug.PprofAddr); err != nil {
			return nil, err
		}
	}
	log.Info("serving", "addr", a.httpLn.Addr().String(), "versions", service.VersionNames(), "order", service.BestVersion().Name)
	return a, nil
}

// units are the parts of the domain, wired to the stores.
type units struct {
	flags      *soldout.Flags
	shares     *localshare.Shares // V15's local stock shares
	letters    *deadletter.Book
	placer     *ordering.Placer
	payments   *payment.Payments
	catalog    *catalog.Catalog
	outbox     *recovery.Outbox
	reconciler observedReconciler
	checker    *doublecheck.Checker
	scheduled  *recovery.Scheduled // nil without reconcile.schedule
	coupons    observedCoupons
	// reservations admits the first reservers of reservation sales.
	reservations *reservation.Reservations
	admission    *admission.Admission
	// stockBack runs when another instance says goods have stock again:
	// the sold-out flag is cleared, the local share is derived anew and the
	// stock gate learns the units on sale anew. The instance that put the
	// stock back also reopens the gate.
	stockBack func(goodsID int64)
	// V9's goods cache, the catalog the routes see (shopper reads from
	// the cache), and the cache's in-memory statistics.
	goodsCache   *goodscache.Cache
	shownCatalog *goodscache.Catalog
	goodsMemory  *stats.Counter
}

// wire builds the units of the domain on the stores. The ledger is kept
// on the app: shutdown stops the rebuilds it runs.
func (a *App) wire(ids *store.IDs) units {
	cfg := a.cfg
	layout := cfg.Layout()
	u := units{flags: soldout.New(cfg.SoldOut.TTL), admission: a.newAdmission(), goodsMemory: stats.NewCounter(),
		shares: localshare.New(a.redis, a.redis, localshare.Options{Buffer: cfg.Stock.ShareBuffer, MinBuffer: cfg.Stock.ShareBufferMin})}
	u.stockBack = func(goodsID int64) {
		u.flags.Clear(goodsID)
		u.shares.StockBack(goodsID)
		u.admission.Forget(goodsID)
	}
	u.goodsCache = a.newGoodsCache(u.goodsMemory)
	a.letters = deadletter.New(a.database, a.pub, a.log)
	u.letters = a.letters
	u.checker = a.newChecker()
	clock := payment.NewClock(a.pub, a.log)
	a.ledger = ledger.New(ledger.Stores{
		Gate: a.redis, Moves: a.redis, Mends: a.redis, Locker: a.redis,
		Sales: a.database, Records: a.database, Truths: a.database, Orders: a.database, Announcer: a.pub, Accepts: a.redis,
		Buckets: a.redis.GoodsBuckets(), Splits: a.database,
	}, ledger.Options{
		Split:       ledger.SplitOptions{SubStocks: cfg.Stock.SubStocks, BucketMax: cfg.Stock.BucketMax},
		WriteBudget: cfg.Order.WriteBudget, V1Timeout: cfg.Order.V1Timeout, RebuildGrace: cfg.Redis.RebuildGrace, Applied: clock.Start, StockBack: func(goodsID int64) {
			u.flags.Clear(goodsID)
			u.shares.StockBack(goodsID)
			u.admission.StockBack(goodsID)
		},
	}, a.log)
	u.placer = ordering.New(a.ledger, a.database, a.database, a.pub, ids, a.redis.Outcomes(cfg.Order.IdempotencyPendingTTL, cfg.Order.IdempotencyTTL), u.flags, ordering.Options{
		MaxNumber: cfg.Order.MaxNumber, Layout: layout, PayTimeout: cfg.Order.PayTimeout, CachedGoods: u.goodsCache, Checks: u.checker,
	}, a.log)
	u.reservations = reservation.New(a.database, a.redis, a.database)
	u.placer.EnableReservations(u.reservations)
	u.placer.EnableLocalShare(u.shares)
	u.placer.EnableGroupCommit(a.database, a.pub, ordering.GroupCommitOptions{MaxBatch: cfg.Order.GroupCommit.MaxBatch, Wait: cfg.Order.GroupCommit.Wait})
	a.enableAsyncAccept(u.placer)
	u.coupons = observedCoupons{coupon.New(a.database, a.database, a.redis.CouponStocks(), a.redis, a.redis, a.pub, ids, coupon.Options{
		WriteBudget: cfg.Order.WriteBudget, LocalTTL: cfg.Coupon.LocalTTL, AbsentTTL: cfg.Coupon.AbsentTTL, RedisTTL: cfg.Coupon.RedisTTL, CacheStats: a.cacheStats,
	}, a.log), a.metrics}
	u.payments = payment.New(a.database, a.ledger, paymentCoupons{u.coupons.Coupons}, layout, a.log)
	u.catalog = catalog.New(a.database, a.ledger, a.redis, a.redis, ids)
	u.shownCatalog = goodscache.NewCatalog(u.catalog, u.goodsCache, a.pub, a.log)
	u.outbox = recovery.NewOutbox(a.database, a.pub, ids, cfg.Outbox.Grace, cfg.Outbox.LateHorizon)
	reconciler := recovery.NewReconciler(a.database, a.ledger.Repairs(), a.log)
	reconciler.SetFullEvery(cfg.Reconcile.FullEvery)
	u.reconciler = observedReconciler{reconciler, a.metrics}
	if sched, ok := cfg.ReconcileSchedule(); ok {
		u.scheduled = recovery.NewScheduled(a.database, a.ledger.Repairs(), sched, cfg.Reconcile.ScheduleRepairAfter, time.Now, a.log)
	}
	return u
}

// loadStock puts back into Redis the stock of goods it does not hold. The
// embedded Redis starts empty and only this instance sells from it: the
// stock is restored at once. A shared Redis may have lost it while other
// instances sell: the rebuilds wait out their orders in flight, in the
// background, and those goods answer stock_not_loaded meanwhile.
func (a *App) loadStock(ctx context.Context) error {
	if a.miniRed != nil {
		restored, err := a.ledger.Repairs().RestoreMissing(ctx)
		if err != nil {
			return fmt.Errorf("restore stock into redis: %w", err)
		}
		if len(restored) > 0 {
			a.log.Info("stock restored into the embedded redis from the database", "goods", restored)
		}
		return nil
	}
	started, err := a.ledger.Repairs().RebuildMissing(ctx)
	if err != nil {
		return fmt.Errorf("look for goods redis lost: %w", err)
	}
	if len(started) > 0 {
		a.log.Warn("redis holds no stock for some goods; rebuilding it from the database after the grace", "goods", started)
	}
	return nil
}

// loadCatalog makes Redis hold the catalog the shopper reads walk: every
// goods' details in its hash, the index of ids, and the marker that says
// both are whole (see store.Redis.Catalog).
func (a *App) loadCatalog(ctx context.Context) error {
	gs, err := a.database.ListGoods(ctx)
	if err != nil {
		return fmt.Errorf("list goods for redis: %w", err)
	}
	if err := a.redis.Catalog(ctx, gs); err != nil {
		return fmt.Errorf("goods catalog into redis: %w", err)
	}
	return nil
}

// ready reports the first dependency that does not answer, in a fixed order.
func (a *App) ready(ctx context.Context) error {
	for _, dep := range []struct {
		name string
		ping func(context.Context) error
	}{{"mysql", a.database.Ping}, {"redis", a.redis.Ping}, {"nsqd", a.pub.Ping}} {
		if err := dep.ping(ctx); err != nil {
			return fmt.Errorf("%s: %w", dep.name, err)
		}
	}
	return nil
}

// startLoops runs the background work: every outbox.interval, republish
// the stock messages of orders with no stock log after the grace period;
// every order.expiry_sweep_interval, cancel expired unpaid orders no
// timeout message cancelled; every reconcile.interval, compare Redis with
// the database and repair lasting drift.
func (a *App) startLoops(u units) {
	ctx, cancel := context.WithCancel(context.Background())
	a.stopLoops = cancel
	a.every(ctx, a.cfg.Outbox.Interval, func(ctx context.Context) {
		if n, err := u.outbox.Sweep(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("outbox sweep failed", "err", err)
		} else if n > 0 {
			a.log.Info("outbox sweep republished stock messages", "count", n)
		}
	})
	a.every(ctx, a.cfg.Order.ExpirySweepInterval, func(ctx context.Context) {
		if n, err := u.payments.SweepExpired(ctx, a.cfg.Order.ExpirySweepGrace); err != nil && ctx.Err() == nil {
			a.log.Warn("expiry sweep failed", "err", err)
		} else if n > 0 {
			a.log.Info("expiry sweep cancelled unpaid orders", "count", n)
		}
	})
	// The shard map: reloaded, and the epoch held said in Redis for as long
	// as the node lease lives, so that an expansion knows when every
	// running instance has switched.
	acked := int64(-1)
	a.every(ctx, a.cfg.MySQL.ShardMapInterval, func(ctx context.Context) {
		epoch, err := a.database.RefreshShardMap(ctx)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("shard map reload failed", "err", err)
			}
			return
		}
		if err := a.redis.AckShardMap(ctx, a.lease.Node(), epoch, a.cfg.Snowflake.LeaseTTL); err != nil && ctx.Err() == nil {
			a.log.Warn("shard map acknowledgement failed", "err", err)
		} else if epoch != acked {
			acked = epoch
			a.log.Info("shard map held", "epoch", epoch)
		}
	})
	if a.cfg.Reconcile.Interval > 0 {
		a.every(ctx, a.cfg.Reconcile.Interval, func(ctx context.Context) {
			if _, err := u.reconciler.Reconcile(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("reconciliation failed", "err", err)
			}
			if _, err := u.coupons.Reconcile(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("coupon reconciliation failed", "err", err)
			}
		})
	}
	a.reconcileOnSchedule(ctx, u.scheduled)
	// V15's shares follow the remaining stock and the live instances: a
	// dead or idle instance's part comes back to the others this way.
	a.every(ctx, a.cfg.Stock.ShareEvery, func(ctx context.Context) {
		if err := u.shares.Recompute(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("local stock shares not recomputed; they stay as they were", "err", err)
		}
	})
	a.every(ctx, a.cfg.Accept.RescueEvery, func(ctx context.Context) { a.rescueAccepted(ctx, u.placer) })
	a.every(ctx, a.cfg.Coupon.SweepInterval, func(ctx context.Context) {
		if n, ended, err := u.coupons.Sweep(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("coupon expiry sweep failed", "err", err)
		} else if n+ended > 0 {
			a.log.Info("coupon expiry sweep", "coupons_expired", n, "templates_ended", ended)
		}
	})
	a.every(ctx, a.cfg.Coupon.RefreshInterval, func(ctx context.Context) {
		if _, err := u.coupons.RefreshRedis(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("coupon template refresh failed", "err", err)
		}
	})
}

// every runs fn every interval until ctx ends.
func (a *App) every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	a.loops.Add(1)
	go func() {
		defer a.loops.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn(ctx)
			}
		}
	}()
}

// servePprof serves net/http/pprof on its own listener, never on the
// public one.
func (a *App) servePprof(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof listener %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	a.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go a.pprof.Serve(ln)
	a.log.Info("pprof serving", "addr", ln.Addr().String())
	return nil
}

// Addr is where the instance listens.
func (a *App) Addr() string { return a.httpLn.Addr().String() }

// RedisAddr is where the instance's Redis answers: the configured one, or
// in the standalone mode the in-process one; empty on a cluster (see
// config.RedisClusterAddrs).
func (a *App) RedisAddr() string {
	if a.miniRed != nil {
		return a.miniRed.Addr()
	}
	return a.cfg.Redis.Addr
}

// Serve answers requests until ctx ends, then shuts down.
func (a *App) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- a.http.Serve(a.httpLn) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	case <-a.lease.Lost():
		err = fmt.Errorf("snowflake node %d is held by another instance now; stopping so that no two instances make equal order ids", a.lease.Node())
	}
	a.Shutdown()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Shutdown stops in the order that loses nothing: readiness off, HTTP
// drained (in-flight orders finish), the consumer's handlers finished, the
// publisher flushed, nsqd's queues written to disk, then the stores closed.
// It is safe on a partly started app, and a second call does nothing.
func (a *App) Shutdown() { a.stopOnce.Do(a.shutdown) }

func (a *App) shutdown() {
	a.draining.Store(true)
	if a.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.HTTP.ShutdownTimeout)
		if err := a.http.Shutdown(ctx); err != nil {
			a.log.Warn("http shutdown", "err", err)
		}
		cancel()
	}
	if a.httpLn != nil {
		a.httpLn.Close() // in case serve never ran
	}
	if a.pprof != nil {
		a.pprof.Close()
	}
	if a.metricsSrv != nil {
		a.metricsSrv.Close()
	}
	if a.stopLoops != nil {
		a.stopLoops()
		a.loops.Wait()
	}
	if a.consumer != nil {
		a.consumer.Stop()
	}
	if a.timeouts != nil {
		a.timeouts.Stop()
	}
	if a.checks != nil {
		a.checks.Stop()
	}
	if a.writers != nil {
		a.writers.Stop()
	}
	if a.listener != nil {
		a.listener.Stop()
	}
	if a.couponExp != nil {
		a.couponExp.Stop()
	}
	if a.couponChg != nil {
		a.couponChg.Stop()
	}
	if a.goodsChg != nil {
		a.goodsChg.Stop()
	}
	if a.ledger != nil {
		a.ledger.Close()
	}
	if a.pub != nil {
		a.pub.Stop()
	}
	if a.nsqd != nil {
		a.nsqd.Exit()
	}
	if a.lease != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := a.lease.Release(ctx); err != nil {
			a.log.Warn("release snowflake node", "err", err)
		}
		cancel()
	}
	if a.redis != nil {
		a.redis.Close()
	}
	if a.miniRed != nil {
		a.miniRed.Close()
	}
	if a.database != nil {
		a.database.Close()
	}
	a.log.Info("stopped")
}

// deadLetters are the ledger's dead letters, counted for topic.
func (a *App) deadLetters(topic string) consumer.DeadLetters {
	return countedDeadLetters{DeadLetters: a.letters.For(topic), n: a.metrics.DeadLetters.WithLabelValues(topic)}
}

// paymentCoupons is the coupon unit as payment uses it: a redemption
// against an order's amount (0: a free order, no threshold to check).
type paymentCoupons struct{ c *coupon.Coupons }

func (p paymentCoupons) Redeem(ctx context.Context, couponID, userID, orderID, amount int64) (int64, error) {
	var of *int64
	if amount > 0 {
		of = &amount
	}
	r, err := p.c.Redeem(ctx, couponID, userID, orderID, of)
	if err != nil || r.Discount == nil {
		return 0, err
	}
	return *r.Discount, nil
}

func (p paymentCoupons) Release(ctx context.Context, couponID, userID, orderID int64) error {
	return p.c.Release(ctx, couponID, userID, orderID)
}

func (p paymentCoupons) ReleaseOrder(ctx context.Context, userID, orderID int64) error {
	return p.c.ReleaseOrder(ctx, userID, orderID)
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Reshard runs `seckill reshard`: it connects to the primary, the V7 hosts
// and Redis (where the running instances say which map they hold) and
// doubles the hosts of V7's logical databases, or shows the plan.
func Reshard(ctx context.Context, cfg config.Config, opts reshard.Options, out io.Writer) (reshard.Plan, error) {
	if cfg.IsStandalone() || cfg.Redis.Addr == "" {
		return reshard.Plan{}, errors.New("resharding needs MySQL/MariaDB hosts and the Redis the instances share (mysql.dsn, redis.addr)")
	}
	d, err := store.OpenDatabase(ctx, cfg.PrimaryDSN(), nil, 4)
	if err != nil {
		return reshard.Plan{}, err
	}
	defer d.Close()
	if err := d.OpenLogicalHosts(ctx, cfg.V7HostDSNs(), 4); err != nil {
		return reshard.Plan{}, err
	}
	if !opts.DryRun {
		if _, err := d.Migrate(ctx); err != nil { // the new hosts need their fences
			return reshard.Plan{}, err
		}
	}
	r, err := store.OpenRedis(ctx, store.RedisOptions{
		Addr: cfg.Redis.Addr, Password: cfg.Redis.Password, DB: cfg.Redis.DB, PoolSize: 4, KeyPrefix: cfg.Redis.KeyPrefix,
		DialTimeout: cfg.Redis.DialTimeout, ReadTimeout: cfg.Redis.ReadTimeout,
		WriteTimeout: cfg.Redis.WriteTimeout, PoolTimeout: cfg.Redis.PoolTimeout,
	})
	if err != nil {
		return reshard.Plan{}, fmt.Errorf("redis %s: %w", cfg.Redis.Addr, err)
	}
	defer r.Close()
	if opts.AckTimeout == 0 {
		// An instance killed meanwhile stops counting when its node lease ends.
		opts.AckTimeout = 2*cfg.Snowflake.LeaseTTL + 4*cfg.MySQL.ShardMapInterval
	}
	if opts.Settle == 0 {
		opts.Settle = cfg.MySQL.ShardMapInterval
	}
	return reshard.Run(ctx, d, r, opts, out)
}
