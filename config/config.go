// Package config is the only place that reads configuration. Defaults come
// from the embedded seckill.yaml; an optional file given with -config and
// SECKILL_* environment variables override them, in that order.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/spf13/viper"

	"github.com/go-seckill/seckill/service"
)

//go:embed seckill.yaml
var defaultYAML []byte

// EnvPrefix starts every environment variable the service reads.
const EnvPrefix = "SECKILL_"

// Config is the whole typed configuration of one instance.
type Config struct {
	HTTP        HTTP           `mapstructure:"http"`
	MySQL       MySQL          `mapstructure:"mysql"`
	Redis       Redis          `mapstructure:"redis"`
	NSQ         NSQ            `mapstructure:"nsq"`
	Consumer    Consumer       `mapstructure:"consumer"`
	Outbox      Outbox         `mapstructure:"outbox"`
	Reconcile   Reconcile      `mapstructure:"reconcile"`
	DoubleCheck DoubleCheck    `mapstructure:"doublecheck"`
	Accept      Accept         `mapstructure:"accept"`
	Coupon      Coupon         `mapstructure:"coupon"`
	Order       Order          `mapstructure:"order"`
	Snowflake   Snowflake      `mapstructure:"snowflake"`
	Admin       Admin          `mapstructure:"admin"`
	SoldOut     SoldOut        `mapstructure:"soldout"`
	Stock       Stock          `mapstructure:"stock"`
	Standalone  StandaloneMode `mapstructure:"standalone"`
	Debug       Debug          `mapstructure:"debug"`
	Metrics     Metrics        `mapstructure:"metrics"`
	Limits      Limits         `mapstructure:"limits"`
	GoodsCache  GoodsCache     `mapstructure:"goods_cache"`
}

// GoodsCache tunes V9's in-process goods cache, the level in front of
// Redis that answers the shopper reads and V9's order checks.
type GoodsCache struct {
	MaxSize   int           `mapstructure:"max_size"`
	TTL       time.Duration `mapstructure:"ttl"`
	StockTTL  time.Duration `mapstructure:"stock_ttl"`
	AbsentTTL time.Duration `mapstructure:"absent_ttl"`
}

// Metrics configures the internal listener of /metrics, kept apart from
// the public one.
type Metrics struct {
	Addr string `mapstructure:"addr"`
}

// Debug configures the profiling listener, kept apart from the public one.
type Debug struct {
	PprofAddr string `mapstructure:"pprof_addr"`
}

// StandaloneMode configures what stands in for MySQL without a DSN.
type StandaloneMode struct {
	DataDir string `mapstructure:"data_dir"`
}

type HTTP struct {
	Addr         string `mapstructure:"addr"`
	MaxBodyBytes int64  `mapstructure:"max_body_bytes"`
	MaxInFlight  int    `mapstructure:"max_in_flight"`
	// The http.Server timeouts. WriteTimeout must outlast an order's work
	// after its reservation, so that its answer can still be written.
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	// ShutdownTimeout is how long shutdown waits for requests in flight.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// RequestLogPerSecond bounds the request log's lines of successes and
	// expected refusals (409) a second; other answers are all logged.
	RequestLogPerSecond int `mapstructure:"request_log_per_second"`
}

type MySQL struct {
	DSN          string `mapstructure:"dsn"`
	Shards       string `mapstructure:"shards"`
	OrderTables  int    `mapstructure:"order_tables"`
	MaxOpenConns int    `mapstructure:"max_open_conns"`
	// V7Hosts are the hosts V7's logical databases may live on: the first
	// takes each new one, `seckill reshard` moves them onto the next.
	V7Hosts string `mapstructure:"v7_hosts"`
	// ShardMapInterval is how often an instance reloads the shard map.
	ShardMapInterval time.Duration `mapstructure:"shard_map_interval"`
}

type Redis struct {
	Addr string `mapstructure:"addr"`
	// ClusterAddrs, comma-separated, are seed nodes of a Redis Cluster; set,
	// every Redis command goes through a cluster client instead of Addr.
	ClusterAddrs string `mapstructure:"cluster_addrs"`
	DB           int    `mapstructure:"db"`
	Password     string `mapstructure:"password"`
	KeyPrefix    string `mapstructure:"key_prefix"`
	PoolSize     int    `mapstructure:"pool_size"`
	// RebuildGrace must outlast an order's work after its reservation.
	RebuildGrace time.Duration `mapstructure:"rebuild_grace"`
	// The client's timeouts; PoolTimeout bounds the wait for a free connection.
	DialTimeout  time.Duration `mapstructure:"dial_timeout"`
	ReadTimeout  time.Duration `mapstructure:"read_timeout"`
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	PoolTimeout  time.Duration `mapstructure:"pool_timeout"`
}

type NSQ struct {
	NSQD             string `mapstructure:"nsqd"`
	Lookupd          string `mapstructure:"lookupd"`
	EmbeddedDataDir  string `mapstructure:"embedded_data_dir"`
	EmbeddedTCPAddr  string `mapstructure:"embedded_tcp_addr"`
	EmbeddedHTTPAddr string `mapstructure:"embedded_http_addr"`
	Topic            string `mapstructure:"topic"`
	Channel          string `mapstructure:"channel"`
	StockBackTopic   string `mapstructure:"stock_back_topic"`
	TimeoutTopic     string `mapstructure:"timeout_topic"`
	TimeoutChannel   string `mapstructure:"timeout_channel"`
	// The coupon domain's topics: deferred expiries, and the broadcast of
	// changed templates (each instance reads it on a channel of its own).
	CouponExpiryTopic   string `mapstructure:"coupon_expiry_topic"`
	CouponExpiryChannel string `mapstructure:"coupon_expiry_channel"`
	CouponChangeTopic   string `mapstructure:"coupon_change_topic"`
	// GoodsChangeTopic broadcasts V9's goods cache invalidations.
	GoodsChangeTopic string `mapstructure:"goods_change_topic"`
	// V10's delayed checks of decrements.
	CheckTopic   string `mapstructure:"check_topic"`
	CheckChannel string `mapstructure:"check_channel"`
	// V13's accepted requests, read by the writers.
	AcceptTopic   string `mapstructure:"accept_topic"`
	AcceptChannel string `mapstructure:"accept_channel"`
}

type Coupon struct {
	LocalTTL        time.Duration `mapstructure:"local_ttl"`
	AbsentTTL       time.Duration `mapstructure:"absent_ttl"`
	RedisTTL        time.Duration `mapstructure:"redis_ttl"`
	RefreshInterval time.Duration `mapstructure:"refresh_interval"`
	SweepInterval   time.Duration `mapstructure:"sweep_interval"`
}

type Consumer struct {
	Enabled     bool `mapstructure:"enabled"`
	Concurrency int  `mapstructure:"concurrency"`
	BatchSize   int  `mapstructure:"batch_size"`
	MaxAttempts int  `mapstructure:"max_attempts"`
	// ApplyTimeout bounds the work on one batch of stock messages, or on one
	// payment-timeout message.
	ApplyTimeout time.Duration `mapstructure:"apply_timeout"`
}

type Outbox struct {
	Interval time.Duration `mapstructure:"interval"`
	Grace    time.Duration `mapstructure:"grace"`
	// LateHorizon is how far back the sweep looks again for orders that
	// committed after the watermark had passed their id.
	LateHorizon time.Duration `mapstructure:"late_horizon"`
}

type Reconcile struct {
	// Interval runs a pass every interval; 0 turns it off when a schedule is set.
	Interval time.Duration `mapstructure:"interval"`
	// Schedule runs passes at times of day ("03:00,04:00,05:00"; empty:
	// none) in TimeZone (an IANA name, or Local), and repairs a drift the
	// same ScheduleRepairAfter scheduled passes in a row saw.
	Schedule            string `mapstructure:"schedule"`
	TimeZone            string `mapstructure:"time_zone"`
	ScheduleRepairAfter int    `mapstructure:"schedule_repair_after"`
	// FullEvery makes one interval pass in FullEvery read every goods'
	// truth; the others skip the goods whose stocks did not move since a
	// pass found them in line.
	FullEvery int `mapstructure:"full_every"`
}

// DoubleCheck tunes V10's delayed checks: one Delay after an order (and
// after each republish) its decrement is checked, and republished while
// unconfirmed, at most MaxRepublish times, then dead-lettered.
type DoubleCheck struct {
	Delay        time.Duration `mapstructure:"delay"`
	MaxRepublish int           `mapstructure:"max_republish"`
}

type Order struct {
	MaxNumber      int64         `mapstructure:"max_number"`
	IdempotencyTTL time.Duration `mapstructure:"idempotency_ttl"`
	PayTimeout     time.Duration `mapstructure:"pay_timeout"`
	// The expiry sweep: every interval, cancel orders grace past their deadline.
	ExpirySweepInterval time.Duration `mapstructure:"expiry_sweep_interval"`
	ExpirySweepGrace    time.Duration `mapstructure:"expiry_sweep_grace"`
	// IdempotencyPendingTTL is how long a claimed Idempotency-Key lives
	// before its answer is stored (then kept for IdempotencyTTL): long
	// enough for the order's work, short enough that a claim left by a
	// crashed instance does not block retries for long.
	IdempotencyPendingTTL time.Duration `mapstructure:"idempotency_pending_ttl"`
	// WriteBudget is how long an order's work after its Redis reservation
	// may take: the order write, the message, or giving the units back.
	WriteBudget time.Duration `mapstructure:"write_budget"`
	// V1Timeout is the deadline of V1's MySQL transaction.
	V1Timeout time.Duration `mapstructure:"v1_timeout"`
	// GroupCommit tunes the batches of the versions that group commits.
	GroupCommit GroupCommit `mapstructure:"group_commit"`
}

// GroupCommit: a batch is written when it holds MaxBatch orders, or Wait
// after its first order arrived.
type GroupCommit struct {
	MaxBatch int           `mapstructure:"max_batch"`
	Wait     time.Duration `mapstructure:"wait"`
}

// Snowflake configures the node of this instance's order ids. Every running
// instance holds its node in Redis (a lease renewed every third of
// LeaseTTL), so two instances never make ids with the same node.
type Snowflake struct {
	// Node is 0..1023, or -1 to lease any free node.
	Node     int64         `mapstructure:"node"`
	LeaseTTL time.Duration `mapstructure:"lease_ttl"`
}

// AutoNode is the snowflake.node that leases any free node.
const AutoNode = -1

// Stock tunes split stock (V14): a goods' units over buckets on the Redis
// masters, in front of its hash; and V15's local stock shares: each
// instance may ask Redis for ceil(remaining / live instances) units plus a
// buffer of ShareBuffer of that, at least ShareBufferMin units; every
// ShareEvery the shares are derived anew.
type Stock struct {
	ShareBuffer    float64       `mapstructure:"share_buffer"`
	ShareBufferMin int64         `mapstructure:"share_buffer_min"`
	ShareEvery     time.Duration `mapstructure:"share_every"`
	// SubStocks is how many buckets; 0: one per master, at least 2.
	SubStocks int `mapstructure:"sub_stocks"`
	// BucketMax is the most units one allotment gives a bucket. 100: a
	// refill (three round trips, one on the goods hash's master) per 100
	// units sold from a bucket keeps the hash's master nearly idle, and a
	// master lost mid-sale takes at most 100 units per bucket off sale
	// until the reconciliation puts them back in the hash.
	BucketMax int64 `mapstructure:"bucket_max"`
}

type SoldOut struct {
	TTL time.Duration `mapstructure:"ttl"`
}

type Admin struct {
	Token string `mapstructure:"token"`
}

// Load builds the configuration from the embedded defaults, the file at path
// (skipped when path is empty) and the environment seen through lookup.
func Load(path string, lookup func(string) (string, bool)) (Config, error) {
	defaults := viper.New()
	defaults.SetConfigType("yaml")
	if err := defaults.ReadConfig(bytes.NewReader(defaultYAML)); err != nil {
		return Config{}, fmt.Errorf("embedded defaults: %w", err)
	}
	v := viper.New()
	// Every key gets a default, so every key is also known to the environment
	// override below and to Unmarshal.
	for _, key := range defaults.AllKeys() {
		v.SetDefault(key, defaults.Get(key))
	}
	if path != "" {
		file := viper.New()
		file.SetConfigFile(path)
		if err := file.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
		if unknown := unknownKeys(file, defaults); len(unknown) > 0 {
			return Config{}, fmt.Errorf("config file %s: unknown keys %s (the keys are those of config/seckill.yaml)",
				path, strings.Join(unknown, ", "))
		}
		if err := v.MergeConfigMap(file.AllSettings()); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	for _, key := range defaults.AllKeys() {
		if val, ok := lookup(EnvName(key)); ok {
			v.Set(key, val)
		}
	}
	var c Config
	// Exact: a default without a field in Config is a mistake of ours.
	if err := v.UnmarshalExact(&c); err != nil {
		return Config{}, fmt.Errorf("decode config: %w", err)
	}
	return c, c.Validate()
}

// unknownKeys lists, sorted, the keys of file that are not keys of the
// defaults. A section left empty ("http:" with nothing under it) is not
// a key.
func unknownKeys(file, defaults *viper.Viper) []string {
	known := map[string]bool{}
	for _, k := range defaults.AllKeys() {
		known[k] = true
	}
	var unknown []string
	for _, k := range file.AllKeys() {
		if !known[k] && !(file.Get(k) == nil && defaults.IsSet(k)) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	return unknown
}

// EnvName is the environment variable that overrides key: http.addr -> SECKILL_HTTP_ADDR.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Keys lists every configuration key, for documentation and tooling.
func Keys() []string {
	v := viper.New()
	v.SetConfigType("yaml")
	_ = v.ReadConfig(bytes.NewReader(defaultYAML))
	return v.AllKeys()
}

// Validate reports every invalid setting by its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, why string) { errs = append(errs, fmt.Errorf("%s: %s", key, why)) }
	if c.HTTP.Addr == "" {
		bad("http.addr", "must not be empty")
	}
	if c.HTTP.MaxBodyBytes < 64 {
		bad("http.max_body_bytes", "must be at least 64")
	}
	for _, dsn := range append(append([]string{c.PrimaryDSN()}, c.ShardDSNs()...), c.V7HostDSNs()...) {
		if strings.HasPrefix(dsn, SQLitePrefix) {
			continue
		}
		if _, err := mysql.ParseDSN(dsn); err != nil {
			bad("mysql.dsn/mysql.shards/mysql.v7_hosts", err.Error())
		}
	}
	if c.HTTP.RequestLogPerSecond < 0 {
		bad("http.request_log_per_second", "must be at least 0 (0 logs no success)")
	}
	if _, port, _ := net.SplitHostPort(c.Metrics.Addr); c.Metrics.Addr != "" && c.Metrics.Addr == c.HTTP.Addr && port != "0" {
		bad("metrics.addr", "must differ from http.addr: /metrics is served on an internal listener only")
	}
	if c.MySQL.ShardMapInterval <= 0 {
		bad("mysql.shard_map_interval", "must be a positive duration such as 1s")
	}
	if c.HTTP.MaxInFlight < 1 {
		bad("http.max_in_flight", "must be at least 1")
	}
	c.validateTimeouts(bad)
	c.validateLimits(bad)
	if c.Order.IdempotencyTTL <= 0 {
		bad("order.idempotency_ttl", "must be a positive duration such as 24h")
	}
	if c.MySQL.OrderTables < 1 || c.MySQL.OrderTables > service.MaxOrderTables {
		bad("mysql.order_tables", fmt.Sprintf("must be within 1..%d (the tables the migrations create)", service.MaxOrderTables))
	}
	if c.MySQL.MaxOpenConns < 1 {
		bad("mysql.max_open_conns", "must be at least 1")
	}
	if c.Redis.PoolSize < 1 {
		bad("redis.pool_size", "must be at least 1")
	}
	if len(c.RedisClusterAddrs()) > 0 {
		if c.Redis.Addr != "" {
			bad("redis.addr/redis.cluster_addrs", "set one of them: a single server or a cluster")
		}
		if c.Redis.DB != 0 {
			bad("redis.db", "must be 0 with redis.cluster_addrs: a cluster has database 0 only")
		}
		// A hash tag in the prefix would be every key's tag: all of them on
		// one master, and each goods' own tag ignored.
		if strings.ContainsAny(c.Redis.KeyPrefix, "{}") {
			bad("redis.key_prefix", "must not contain { or } with redis.cluster_addrs: it would put every key in one hash slot")
		}
	}
	if c.NSQ.Topic == "" || c.NSQ.Channel == "" || c.NSQ.StockBackTopic == "" || c.NSQ.TimeoutTopic == "" || c.NSQ.TimeoutChannel == "" ||
		c.NSQ.CouponExpiryTopic == "" || c.NSQ.CouponExpiryChannel == "" || c.NSQ.CouponChangeTopic == "" {
		bad("nsq topics and channels", "must not be empty")
	}
	if c.Order.PayTimeout <= 0 || c.Order.ExpirySweepInterval <= 0 || c.Order.ExpirySweepGrace < 0 {
		bad("order.pay_timeout/order.expiry_sweep_interval/order.expiry_sweep_grace", "must be positive durations such as 5m")
	}
	if c.Stock.SubStocks < 0 || c.Stock.SubStocks > 64 {
		bad("stock.sub_stocks", "must be between 0 (one per Redis master) and 64")
	}
	if c.Stock.BucketMax < 1 {
		bad("stock.bucket_max", "must be a positive number of units")
	}
	if c.SoldOut.TTL <= 0 {
		bad("soldout.ttl", "must be a positive duration such as 2s")
	}
	if c.Stock.ShareBuffer < 0 || c.Stock.ShareBufferMin < 0 || c.Stock.ShareEvery <= 0 {
		bad("stock.share_buffer/share_buffer_min/share_every", "must be a fraction of at least 0, units of at least 0 and a positive duration such as 1s")
	}
	if c.Consumer.Concurrency < 1 {
		bad("consumer.concurrency", "must be at least 1")
	}
	if c.Consumer.BatchSize < 1 || c.Consumer.BatchSize > 1000 {
		bad("consumer.batch_size", "must be within 1..1000")
	}
	if c.Consumer.MaxAttempts < 1 {
		bad("consumer.max_attempts", "must be at least 1")
	}
	if c.Outbox.Interval <= 0 || c.Outbox.Grace <= 0 {
		bad("outbox.interval/outbox.grace", "must be positive durations such as 1s")
	}
	if c.Outbox.LateHorizon < c.Outbox.Grace || c.Outbox.LateHorizon <= c.Order.WriteBudget {
		bad("outbox.late_horizon", "must be at least outbox.grace and longer than order.write_budget")
	}
	if c.NSQ.GoodsChangeTopic == "" {
		bad("nsq.goods_change_topic", "must be set")
	}
	if c.GoodsCache.MaxSize < 1 || c.GoodsCache.TTL <= 0 || c.GoodsCache.StockTTL <= 0 || c.GoodsCache.AbsentTTL <= 0 {
		bad("goods_cache.max_size/ttl/stock_ttl/absent_ttl", "must be positive (a size, durations such as 1s)")
	}
	if c.Coupon.LocalTTL <= 0 || c.Coupon.AbsentTTL <= 0 || c.Coupon.RefreshInterval <= 0 || c.Coupon.SweepInterval <= 0 {
		bad("coupon.local_ttl/absent_ttl/refresh_interval/sweep_interval", "must be positive durations such as 5s")
	}
	if c.Coupon.RedisTTL <= c.Coupon.RefreshInterval {
		bad("coupon.redis_ttl", "must be longer than coupon.refresh_interval, or templates fall out of Redis between refreshes")
	}
	c.validateReconcile(bad)
	c.validateAccept(bad)
	if c.Order.MaxNumber < 1 {
		bad("order.max_number", "must be at least 1")
	}
	if c.Snowflake.Node < AutoNode || c.Snowflake.Node > 1023 {
		bad("snowflake.node", "must be within 0..1023, or -1 to lease any free node")
	}
	if c.Snowflake.LeaseTTL < time.Second {
		bad("snowflake.lease_ttl", "must be at least 1s (the lease is renewed every third of it)")
	}
	return errors.Join(errs...)
}

// validateTimeouts checks that every timeout is positive (zero would mean
// none to net/http and go-redis) and the relations between them.
func (c Config) validateTimeouts(bad func(key, why string)) {
	for _, t := range []struct {
		key string
		d   time.Duration
	}{
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout},
		{"http.read_timeout", c.HTTP.ReadTimeout},
		{"http.write_timeout", c.HTTP.WriteTimeout},
		{"http.idle_timeout", c.HTTP.IdleTimeout},
		{"http.shutdown_timeout", c.HTTP.ShutdownTimeout},
		{"order.write_budget", c.Order.WriteBudget},
		{"order.v1_timeout", c.Order.V1Timeout},
		{"order.idempotency_pending_ttl", c.Order.IdempotencyPendingTTL},
		{"consumer.apply_timeout", c.Consumer.ApplyTimeout},
		{"redis.dial_timeout", c.Redis.DialTimeout},
		{"redis.read_timeout", c.Redis.ReadTimeout},
		{"redis.write_timeout", c.Redis.WriteTimeout},
		{"redis.pool_timeout", c.Redis.PoolTimeout},
	} {
		if t.d <= 0 {
			bad(t.key, "must be a positive duration such as 5s")
		}
	}
	longer := func(key string, d time.Duration, than string, t time.Duration, why string) {
		if d <= t {
			bad(key, fmt.Sprintf("must be longer than %s (%v <= %v): %s", than, d, t, why))
		}
	}
	notLonger := func(key string, d time.Duration, than string, t time.Duration, why string) {
		if d > t {
			bad(key, fmt.Sprintf("must not be longer than %s (%v > %v): %s", than, d, t, why))
		}
	}
	budget := c.Order.WriteBudget
	longer("redis.rebuild_grace", c.Redis.RebuildGrace, "order.write_budget", budget,
		"every reservation taken before Redis lost the stock must have become an order or been given back before the rebuild")
	longer("http.write_timeout", c.HTTP.WriteTimeout, "order.write_budget", budget,
		"the answer must still be writable after the order's work")
	if c.Order.V1Timeout >= c.HTTP.WriteTimeout {
		bad("order.v1_timeout", fmt.Sprintf("must be shorter than http.write_timeout (%v >= %v): "+
			"the answer must still be writable after V1's transaction", c.Order.V1Timeout, c.HTTP.WriteTimeout))
	}
	notLonger("order.v1_timeout", c.Order.V1Timeout, "half of order.write_budget", budget/2,
		"V1's transaction holds its Redis reservation; with the settling of a failed write, which takes the other half, it is the order's work after the reservation")
	longer("order.idempotency_pending_ttl", c.Order.IdempotencyPendingTTL, "order.write_budget", budget,
		"a claimed key must not expire while its order is still being worked on")
	notLonger("order.idempotency_pending_ttl", c.Order.IdempotencyPendingTTL, "order.idempotency_ttl", c.Order.IdempotencyTTL,
		"a pending claim never outlives an answer")
	if c.HTTP.ShutdownTimeout < budget {
		bad("http.shutdown_timeout", fmt.Sprintf("must be at least order.write_budget (%v < %v): "+
			"shutdown waits for the orders in flight before it closes the stores", c.HTTP.ShutdownTimeout, budget))
	}
	notLonger("http.read_header_timeout", c.HTTP.ReadHeaderTimeout, "http.read_timeout", c.HTTP.ReadTimeout,
		"the headers are part of the request")
	if g := c.Order.GroupCommit; g.MaxBatch < 1 || g.MaxBatch > 1000 {
		bad("order.group_commit.max_batch", "must be between 1 and 1000 rows")
	}
	if g := c.Order.GroupCommit; g.Wait < 0 || g.Wait > 100*time.Millisecond {
		bad("order.group_commit.wait", "must be between 0 and 100ms: every order of a batch waits for it")
	}
}

// SQLitePrefix starts a DSN naming an SQLite file instead of a MySQL database.
const SQLitePrefix = "sqlite:"

// Standalone says no MySQL is configured: SQLite files stand in for it.
func (c Config) IsStandalone() bool { return c.MySQL.DSN == "" }

// PrimaryDSN is mysql.dsn, or in the standalone mode an SQLite file in
// standalone.data_dir.
func (c Config) PrimaryDSN() string {
	if c.IsStandalone() {
		return SQLitePrefix + filepath.Join(c.Standalone.DataDir, "seckill.db")
	}
	return c.MySQL.DSN
}

// ShardDSNs are the order hosts; without mysql.shards, the primary alone.
func (c Config) ShardDSNs() []string {
	if s := splitList(c.MySQL.Shards); len(s) > 0 {
		return s
	}
	return []string{c.PrimaryDSN()}
}

// Layout is the order tables and hosts of V3 to V6.
func (c Config) Layout() service.Layout {
	return service.Layout{Tables: c.MySQL.OrderTables, Hosts: len(c.ShardDSNs())}
}

// V7HostDSNs are the hosts V7's logical databases may live on; without
// mysql.v7_hosts, the primary alone.
func (c Config) V7HostDSNs() []string {
	if s := splitList(c.MySQL.V7Hosts); len(s) > 0 {
		return s
	}
	return []string{c.PrimaryDSN()}
}

// EmbeddedNSQDDir is where an embedded nsqd keeps its queues:
// nsq.embedded_data_dir, or else a folder in standalone.data_dir named after
// the database the instance sells from. Messages left in one run's queues
// name orders of that run's database, so a run on another database (the
// standalone mode, then real servers, in one folder) must not read them.
func (c Config) EmbeddedNSQDDir() string {
	if c.NSQ.EmbeddedDataDir != "" {
		return c.NSQ.EmbeddedDataDir
	}
	name := "nsqd-standalone"
	if !c.IsStandalone() {
		name = "nsqd-mysql"
		if cfg, err := mysql.ParseDSN(c.MySQL.DSN); err == nil {
			name = "nsqd-" + unsafeChars.ReplaceAllString(cfg.Addr+"-"+cfg.DBName, "_")
		}
	}
	return filepath.Join(c.Standalone.DataDir, name)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// RedisClusterAddrs are the seed nodes of the Redis Cluster; empty means
// one server (redis.addr) or, without it, an in-process one.
func (c Config) RedisClusterAddrs() []string { return splitList(c.Redis.ClusterAddrs) }

// NSQDAddrs are the nsqd TCP addresses; empty means run one embedded.
func (c Config) NSQDAddrs() []string { return splitList(c.NSQ.NSQD) }

// LookupdAddrs are the nsqlookupd HTTP addresses consumers ask for nsqd.
func (c Config) LookupdAddrs() []string { return splitList(c.NSQ.Lookupd) }

// String is safe to log: passwords and the admin token are masked.
func (c Config) String() string {
	masked := c
	masked.MySQL.DSN = maskDSN(c.MySQL.DSN)
	shards := c.ShardDSNs()
	for i := range shards {
		shards[i] = maskDSN(shards[i])
	}
	masked.MySQL.Shards = strings.Join(shards, ",")
	v7 := c.V7HostDSNs()
	for i := range v7 {
		v7[i] = maskDSN(v7[i])
	}
	masked.MySQL.V7Hosts = strings.Join(v7, ",")
	if masked.Redis.Password != "" {
		masked.Redis.Password = "***"
	}
	if masked.Admin.Token != "" {
		masked.Admin.Token = "***"
	}
	type plain Config // drops the String method, so Sprintf does not recurse
	return fmt.Sprintf("%+v", plain(masked))
}

func maskDSN(dsn string) string {
	if dsn == "" || strings.HasPrefix(dsn, SQLitePrefix) {
		return dsn
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "(invalid dsn)"
	}
	if cfg.Passwd != "" {
		cfg.Passwd = "***"
	}
	return cfg.FormatDSN()
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
