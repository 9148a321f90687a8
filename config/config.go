// Package config is the only place that reads configuration. Defaults come
// from the embedded seckill.yaml; an optional file given with -config and
// SECKILL_* environment variables override them, in that order.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/spf13/viper"

	"github.com/go-seckill/seckill/migrations"
)

//go:embed seckill.yaml
var defaultYAML []byte

// EnvPrefix starts every environment variable the service reads.
const EnvPrefix = "SECKILL_"

// Config is the whole typed configuration of one instance.
type Config struct {
	HTTP       HTTP           `mapstructure:"http"`
	MySQL      MySQL          `mapstructure:"mysql"`
	Redis      Redis          `mapstructure:"redis"`
	NSQ        NSQ            `mapstructure:"nsq"`
	Consumer   Consumer       `mapstructure:"consumer"`
	Outbox     Outbox         `mapstructure:"outbox"`
	Reconcile  Reconcile      `mapstructure:"reconcile"`
	Order      Order          `mapstructure:"order"`
	Snowflake  Snowflake      `mapstructure:"snowflake"`
	Admin      Admin          `mapstructure:"admin"`
	SoldOut    SoldOut        `mapstructure:"soldout"`
	Standalone StandaloneMode `mapstructure:"standalone"`
	Debug      Debug          `mapstructure:"debug"`
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
}

type MySQL struct {
	DSN          string `mapstructure:"dsn"`
	Shards       string `mapstructure:"shards"`
	OrderTables  int    `mapstructure:"order_tables"`
	MaxOpenConns int    `mapstructure:"max_open_conns"`
}

type Redis struct {
	Addr      string `mapstructure:"addr"`
	DB        int    `mapstructure:"db"`
	Password  string `mapstructure:"password"`
	KeyPrefix string `mapstructure:"key_prefix"`
	PoolSize  int    `mapstructure:"pool_size"`
	// RebuildGrace must outlast an order's work after its reservation.
	RebuildGrace time.Duration `mapstructure:"rebuild_grace"`
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
}

type Consumer struct {
	Enabled     bool `mapstructure:"enabled"`
	Concurrency int  `mapstructure:"concurrency"`
	BatchSize   int  `mapstructure:"batch_size"`
	MaxAttempts int  `mapstructure:"max_attempts"`
}

type Outbox struct {
	Interval time.Duration `mapstructure:"interval"`
	Grace    time.Duration `mapstructure:"grace"`
}

type Reconcile struct {
	Interval time.Duration `mapstructure:"interval"`
}

type Order struct {
	MaxNumber      int64         `mapstructure:"max_number"`
	IdempotencyTTL time.Duration `mapstructure:"idempotency_ttl"`
	PayTimeout     time.Duration `mapstructure:"pay_timeout"`
	// The expiry sweep: every interval, cancel orders grace past their deadline.
	ExpirySweepInterval time.Duration `mapstructure:"expiry_sweep_interval"`
	ExpirySweepGrace    time.Duration `mapstructure:"expiry_sweep_grace"`
}

type Snowflake struct {
	Node int64 `mapstructure:"node"`
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
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	for _, key := range defaults.AllKeys() {
		if val, ok := lookup(EnvName(key)); ok {
			v.Set(key, val)
		}
	}
	var c Config
	if err := v.Unmarshal(&c); err != nil {
		return Config{}, fmt.Errorf("decode config: %w", err)
	}
	return c, c.Validate()
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
	for _, dsn := range append([]string{c.PrimaryDSN()}, c.ShardDSNs()...) {
		if strings.HasPrefix(dsn, SQLitePrefix) {
			continue
		}
		if _, err := mysql.ParseDSN(dsn); err != nil {
			bad("mysql.dsn/mysql.shards", err.Error())
		}
	}
	if c.HTTP.MaxInFlight < 1 {
		bad("http.max_in_flight", "must be at least 1")
	}
	if c.Redis.RebuildGrace < 0 {
		bad("redis.rebuild_grace", "must not be negative")
	}
	if c.Order.IdempotencyTTL <= 0 {
		bad("order.idempotency_ttl", "must be a positive duration such as 24h")
	}
	if c.MySQL.OrderTables < 1 || c.MySQL.OrderTables > migrations.OrderTables {
		bad("mysql.order_tables", fmt.Sprintf("must be within 1..%d (the tables the migrations create)", migrations.OrderTables))
	}
	if c.MySQL.MaxOpenConns < 1 {
		bad("mysql.max_open_conns", "must be at least 1")
	}
	if c.Redis.PoolSize < 1 {
		bad("redis.pool_size", "must be at least 1")
	}
	if c.NSQ.Topic == "" || c.NSQ.Channel == "" || c.NSQ.StockBackTopic == "" || c.NSQ.TimeoutTopic == "" || c.NSQ.TimeoutChannel == "" {
		bad("nsq topics and channels", "must not be empty")
	}
	if c.Order.PayTimeout <= 0 || c.Order.ExpirySweepInterval <= 0 || c.Order.ExpirySweepGrace < 0 {
		bad("order.pay_timeout/order.expiry_sweep_interval/order.expiry_sweep_grace", "must be positive durations such as 5m")
	}
	if c.SoldOut.TTL <= 0 {
		bad("soldout.ttl", "must be a positive duration such as 2s")
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
	if c.Reconcile.Interval <= 0 {
		bad("reconcile.interval", "must be a positive duration such as 30s")
	}
	if c.Order.MaxNumber < 1 {
		bad("order.max_number", "must be at least 1")
	}
	if c.Snowflake.Node < 0 || c.Snowflake.Node > 1023 {
		bad("snowflake.node", "must be within 0..1023")
	}
	return errors.Join(errs...)
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
