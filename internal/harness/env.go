package harness

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/bwmarrin/snowflake"

	"github.com/go-seckill/seckill/config"
	"github.com/go-seckill/seckill/internal/app"
	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/store"
)

// AdminToken is the admin token of every instance the harness starts.
const AdminToken = "test-admin-token"

// MaxOpenConns bounds each instance's pool per database, so that tests
// running in parallel, with several instances each, stay well under the
// server's connection limit.
const MaxOpenConns = 12

// Env is one test's deployment: its databases, Redis key prefix and nsqd,
// and the settings its instances start with (SECKILL_* variables). Every
// instance started from it shares them, like restarts of one deployment.
type Env struct {
	*Servers
	Settings map[string]string
	NSQDs    []*store.EmbeddedNSQD // none when the instances run their own
}

// TrustedProxies is the instances' limits.trusted_proxies: the tests'
// clients, on loopback, say which address each user comes from.
const TrustedProxies = "127.0.0.1,::1"

// NewEnv gives the test two MySQL databases (the primary doubles as the
// first order host), a Redis key prefix and two nsqd, so that every version
// runs as designed, with intervals short enough for a test.
func NewEnv(tb testing.TB) *Env {
	tb.Helper()
	s := NewServers(tb, 2)
	nsqds := []*store.EmbeddedNSQD{StartNSQD(tb), StartNSQD(tb)}
	primary, second := s.DSNs[0], s.DSNs[1]
	e := &Env{Servers: s, NSQDs: nsqds, Settings: map[string]string{
		"SECKILL_HTTP_ADDR":              "127.0.0.1:0",
		"SECKILL_MYSQL_DSN":              primary,
		"SECKILL_MYSQL_SHARDS":           primary + "," + second,
		"SECKILL_NSQ_NSQD":               nsqds[0].TCPAddr() + "," + nsqds[1].TCPAddr(),
		"SECKILL_SOLDOUT_TTL":            "1m", // only the broadcast clears flags in tests
		"SECKILL_MYSQL_MAX_OPEN_CONNS":   strconv.Itoa(MaxOpenConns),
		"SECKILL_REDIS_ADDR":             s.RedisAddr(),
		"SECKILL_REDIS_KEY_PREFIX":       s.Prefix,
		"SECKILL_NSQ_EMBEDDED_DATA_DIR":  tb.TempDir(),
		"SECKILL_NSQ_EMBEDDED_TCP_ADDR":  "127.0.0.1:0",
		"SECKILL_NSQ_EMBEDDED_HTTP_ADDR": "127.0.0.1:0",
		"SECKILL_METRICS_ADDR":           "127.0.0.1:0",
		"SECKILL_ADMIN_TOKEN":            AdminToken,
		"SECKILL_OUTBOX_INTERVAL":        "200ms",
		"SECKILL_OUTBOX_GRACE":           "3s",
		"SECKILL_CONSUMER_MAX_ATTEMPTS":  "5",
		"SECKILL_LIMITS_TRUSTED_PROXIES": TrustedProxies,
	}}
	e.patientV1()
	return e
}

// NewStandaloneEnv configures nothing but a data folder: SQLite files stand
// in for MySQL (two of them as order hosts), an in-process Redis for Redis
// and an embedded nsqd for NSQ. The invariant check reads the files and the
// Redis of the instance started last.
func NewStandaloneEnv(tb testing.TB) *Env {
	tb.Helper()
	dir := tb.TempDir()
	dsns := []string{store.SQLitePrefix + filepath.Join(dir, "seckill.db"), store.SQLitePrefix + filepath.Join(dir, "orders2.db")}
	s, err := OpenServers(dsns, "", "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	e := &Env{Servers: s, Settings: map[string]string{
		"SECKILL_HTTP_ADDR":              "127.0.0.1:0",
		"SECKILL_STANDALONE_DATA_DIR":    dir,
		"SECKILL_MYSQL_SHARDS":           dsns[0] + "," + dsns[1],
		"SECKILL_NSQ_EMBEDDED_DATA_DIR":  filepath.Join(dir, "nsqd"),
		"SECKILL_NSQ_EMBEDDED_TCP_ADDR":  "127.0.0.1:0",
		"SECKILL_NSQ_EMBEDDED_HTTP_ADDR": "127.0.0.1:0",
		"SECKILL_METRICS_ADDR":           "127.0.0.1:0",
		"SECKILL_ADMIN_TOKEN":            AdminToken,
		"SECKILL_OUTBOX_INTERVAL":        "200ms",
		"SECKILL_OUTBOX_GRACE":           "3s",
		"SECKILL_SOLDOUT_TTL":            "1m",
		"SECKILL_LIMITS_TRUSTED_PROXIES": TrustedProxies,
	}}
	e.patientV1()
	return e
}

// EmbeddedNSQD has the instances run their own nsqd, kept in the env's
// folder across restarts.
func (e *Env) EmbeddedNSQD() {
	delete(e.Settings, "SECKILL_NSQ_NSQD")
	e.NSQDs = nil
}

// UseRedisCluster has the env's instances, and the reads of its checks,
// use the Redis Cluster c instead of one server, under the env's key
// prefix, whose keys are deleted on every master when the test ends.
func (e *Env) UseRedisCluster(tb testing.TB, c *testenv.Cluster) {
	tb.Helper()
	delete(e.Settings, "SECKILL_REDIS_ADDR")
	e.Settings["SECKILL_REDIS_CLUSTER_ADDRS"] = strings.Join(c.Addrs(), ",")
	e.Servers.UseRedisCluster(c.Addrs())
	prefix := e.Prefix
	tb.Cleanup(func() { c.DeletePrefix(prefix) })
}

// Config is the configuration the env's settings make.
func (e *Env) Config(tb testing.TB) config.Config {
	tb.Helper()
	cfg, err := app.LoadConfig("", func(k string) (string, bool) { v, ok := e.Settings[k]; return v, ok })
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// Instance is one running service.
type Instance struct {
	*Client
	Config config.Config
	// MetricsURL is the instance's /metrics on its internal listener.
	MetricsURL string

	tb     testing.TB
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// Start runs an instance on 127.0.0.1:0 with the env's settings until Stop
// or the end of the test.
func (e *Env) Start(tb testing.TB) *Instance {
	tb.Helper()
	cfg := e.Config(tb)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Start(ctx, cfg, Logger(tb))
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	if cfg.Redis.Addr == "" && len(cfg.RedisClusterAddrs()) == 0 {
		e.UseRedis(a.RedisAddr())
	}
	in := &Instance{Client: NewClient("http://"+a.Addr(), AdminToken), Config: cfg,
		tb: tb, cancel: cancel, done: make(chan error, 1)}
	if addr := a.MetricsAddr(); addr != "" {
		in.MetricsURL = "http://" + addr + "/metrics"
	}
	go func() { in.done <- a.Serve(ctx) }()
	tb.Cleanup(in.Stop)
	return in
}

// Stop shuts the instance down gracefully and waits; calling it again does
// nothing.
func (in *Instance) Stop() {
	in.once.Do(func() {
		in.HTTP.CloseIdleConnections()
		in.cancel()
		if err := <-in.done; err != nil {
			in.tb.Errorf("instance %s stopped with: %v", in.Base, err)
		}
	})
}

// PublishStock sends stock messages, in their JSON wire format, to the
// stock topic of the env's first nsqd.
func (e *Env) PublishStock(tb testing.TB, msgs ...service.StockMessage) {
	tb.Helper()
	e.publish(tb, e.Config(tb).NSQ.Topic, msgs)
}

// PublishTimeout sends messages to the payment-timeout topic of the env's
// first nsqd, as the consumer does at an order's deadline.
func (e *Env) PublishTimeout(tb testing.TB, msgs ...service.StockMessage) {
	tb.Helper()
	e.publish(tb, e.Config(tb).NSQ.TimeoutTopic, msgs)
}

func (e *Env) publish(tb testing.TB, topic string, msgs []service.StockMessage) {
	tb.Helper()
	bodies := make([][]byte, len(msgs))
	for i, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		bodies[i] = b
	}
	e.PublishRaw(tb, topic, bodies...)
}

// PublishRaw sends bodies as they are to topic on the env's first nsqd.
func (e *Env) PublishRaw(tb testing.TB, topic string, bodies ...[]byte) {
	tb.Helper()
	if len(e.NSQDs) == 0 {
		tb.Fatal("the env runs no nsqd of its own")
	}
	Publish(tb, e.NSQDs[0].TCPAddr(), topic, bodies...)
}

// PauseStockConsumer stops (pause) or resumes the delivery of stock
// messages to the consumers on every nsqd of the env; meanwhile they queue.
func (e *Env) PauseStockConsumer(tb testing.TB, pause bool) {
	tb.Helper()
	cfg := e.Config(tb)
	for _, n := range e.NSQDs {
		if err := PauseChannel(n.HTTPAddr(), cfg.NSQ.Topic, cfg.NSQ.Channel, pause); err != nil {
			tb.Fatal(err)
		}
	}
}

// PauseWriters stops (pause) or resumes the delivery of accepted requests
// (V13) to the writers on every nsqd of the env; meanwhile they queue.
func (e *Env) PauseWriters(tb testing.TB, pause bool) {
	tb.Helper()
	cfg := e.Config(tb)
	for _, n := range e.NSQDs {
		if err := PauseChannel(n.HTTPAddr(), cfg.NSQ.AcceptTopic, cfg.NSQ.AcceptChannel, pause); err != nil {
			tb.Fatal(err)
		}
	}
}

// DropAccepted drops the accepted requests queued for the writers on every
// nsqd of the env, as an nsqd that died with them would.
func (e *Env) DropAccepted(tb testing.TB) {
	tb.Helper()
	cfg := e.Config(tb)
	for _, n := range e.NSQDs {
		if err := EmptyChannel(n.HTTPAddr(), cfg.NSQ.AcceptTopic, cfg.NSQ.AcceptChannel); err != nil {
			tb.Fatal(err)
		}
	}
}

// ids makes order ids for orders tests write themselves: snowflake ids, as
// the service's, from node 1023, which no instance of the tests uses.
var ids = func() *snowflake.Node {
	n, err := snowflake.NewNode(1023)
	if err != nil {
		panic(err)
	}
	return n
}()

// NewOrderID is a fresh order id for an order the test writes itself.
func NewOrderID() int64 { return ids.Generate().Int64() }

// Short timeouts for tests that have Redis lose its stock: the rebuild
// waits out the write budget of every order in flight, so both are short.
const (
	ShortRebuildGrace = "2s"
	ShortWriteBudget  = "1500ms"
	ShortV1Timeout    = "700ms"
	// ShortRescueAfter: V13's sweep writes a request whose message was
	// lost this long after it was accepted (at least the write budget).
	ShortRescueAfter = "3s"
)

// ShortWriteBudget gives the env's instances the short write budget and
// rebuild grace above.
func (e *Env) ShortWriteBudget() {
	e.Settings["SECKILL_REDIS_REBUILD_GRACE"] = ShortRebuildGrace
	e.Settings["SECKILL_ORDER_WRITE_BUDGET"] = ShortWriteBudget
	e.Settings["SECKILL_ORDER_V1_TIMEOUT"] = ShortV1Timeout
	e.Settings["SECKILL_ACCEPT_RESCUE_AFTER"] = ShortRescueAfter
}

// patientV1 gives V1 a deadline that a stampede of thousands on its one hot
// row, on two shared cores under the race detector, stays within, and the
// write budget, rebuild grace and HTTP timeouts that must exceed it. Every
// env starts with it; V1's deadline itself is tested with the stores.
func (e *Env) patientV1() {
	for k, v := range map[string]string{
		"SECKILL_ORDER_V1_TIMEOUT":              "30s",
		"SECKILL_ORDER_WRITE_BUDGET":            "60s",
		"SECKILL_REDIS_REBUILD_GRACE":           "61s",
		"SECKILL_HTTP_WRITE_TIMEOUT":            "65s",
		"SECKILL_HTTP_SHUTDOWN_TIMEOUT":         "60s",
		"SECKILL_ORDER_IDEMPOTENCY_PENDING_TTL": "70s",
		"SECKILL_ACCEPT_RESCUE_AFTER":           "61s",
	} {
		e.Settings[k] = v
	}
}
