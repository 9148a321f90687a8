package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultsMatchTheContract(t *testing.T) {
	c, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	// Nothing configured: the standalone mode, SQLite in data/ and an
	// in-process Redis.
	if c.HTTP.Addr != ":8080" || !c.IsStandalone() || c.PrimaryDSN() != "sqlite:data/seckill.db" ||
		c.Redis.Addr != "" || c.Redis.DB != 0 || !c.Consumer.Enabled || c.Admin.Token != "" {
		t.Errorf("defaults: %+v", c)
	}
	if got := c.ShardDSNs(); len(got) != 1 || got[0] != c.PrimaryDSN() {
		t.Errorf("shards default to the primary alone, got %v", got)
	}
	real, err := Load("", env(map[string]string{"SECKILL_MYSQL_DSN": "root@tcp(127.0.0.1:3306)/seckill?parseTime=true"}))
	if err != nil || real.IsStandalone() || real.PrimaryDSN() != real.MySQL.DSN {
		t.Errorf("a DSN leaves the standalone mode: %v %+v", err, real)
	}
	if len(c.NSQDAddrs()) != 0 {
		t.Errorf("nsqd defaults to embedded, got %v", c.NSQDAddrs())
	}
}

// Every key has a default, so every key can be set from the environment.
func TestEveryKeyIsOverriddenByItsEnvironmentVariable(t *testing.T) {
	c, err := Load("", env(map[string]string{
		"SECKILL_HTTP_ADDR":        "127.0.0.1:9000",
		"SECKILL_MYSQL_SHARDS":     "root@tcp(a:3306)/s1, root@tcp(b:3306)/s2",
		"SECKILL_REDIS_DB":         "3",
		"SECKILL_NSQ_NSQD":         "127.0.0.1:4150,127.0.0.1:4250",
		"SECKILL_CONSUMER_ENABLED": "false",
		"SECKILL_OUTBOX_GRACE":     "250ms",
		"SECKILL_ADMIN_TOKEN":      "s3cret",
		"SECKILL_SNOWFLAKE_NODE":   "7",
		"SECKILL_ORDER_MAX_NUMBER": "2",
		"SECKILL_REDIS_KEY_PREFIX": "p:",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != "127.0.0.1:9000" || c.Redis.DB != 3 || c.Consumer.Enabled || c.Outbox.Grace != 250*time.Millisecond ||
		c.Admin.Token != "s3cret" || c.Snowflake.Node != 7 || c.Order.MaxNumber != 2 || c.Redis.KeyPrefix != "p:" {
		t.Errorf("overrides not applied: %+v", c)
	}
	if got := c.ShardDSNs(); len(got) != 2 || got[1] != "root@tcp(b:3306)/s2" {
		t.Errorf("shards: %v", got)
	}
	if got := c.NSQDAddrs(); len(got) != 2 {
		t.Errorf("nsqd: %v", got)
	}
	for _, k := range Keys() {
		if !strings.HasPrefix(EnvName(k), "SECKILL_") || strings.Contains(EnvName(k), ".") {
			t.Errorf("key %s maps to %s", k, EnvName(k))
		}
	}
}

func TestFileOverridesDefaultsAndEnvironmentOverridesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("http:\n  addr: \":7000\"\nredis:\n  db: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, env(map[string]string{"SECKILL_REDIS_DB": "6"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != ":7000" || c.Redis.DB != 6 {
		t.Errorf("got addr %q db %d, want :7000 and 6", c.HTTP.Addr, c.Redis.DB)
	}
}

func TestValidateNamesTheSetting(t *testing.T) {
	for key, val := range map[string]string{
		"SECKILL_SNOWFLAKE_NODE":       "1024",
		"SECKILL_ORDER_MAX_NUMBER":     "0",
		"SECKILL_MYSQL_DSN":            "not a dsn",
		"SECKILL_OUTBOX_INTERVAL":      "0s",
		"SECKILL_CONSUMER_CONCURRENCY": "0",
	} {
		_, err := Load("", env(map[string]string{key: val}))
		want := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(key, "SECKILL_"), "_", "."))
		want = want[:strings.Index(want, ".")] // the section, e.g. "snowflake"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=%s: error %v should name %s", key, val, err, want)
		}
	}
}

func TestStringMasksSecrets(t *testing.T) {
	c, err := Load("", env(map[string]string{
		"SECKILL_MYSQL_DSN":      "app:pw123@tcp(db:3306)/seckill",
		"SECKILL_REDIS_PASSWORD": "redispw",
		"SECKILL_ADMIN_TOKEN":    "tok456",
	}))
	if err != nil {
		t.Fatal(err)
	}
	s := c.String()
	for _, secret := range []string{"pw123", "redispw", "tok456"} {
		if strings.Contains(s, secret) {
			t.Errorf("String() leaks %q: %s", secret, s)
		}
	}
}

// The timeouts depend on one another: an order's work after its Redis
// reservation (order.write_budget) must end before the stock Redis lost is
// rebuilt, before the answer must be written, before a pending
// Idempotency-Key claim expires and before shutdown stops waiting for it.
// Each broken relation is an error naming both keys.
func TestValidateChecksTheRelationsBetweenTimeouts(t *testing.T) {
	for _, tc := range []struct {
		set  map[string]string
		want []string
	}{
		{map[string]string{"SECKILL_ORDER_WRITE_BUDGET": "11s"}, []string{"redis.rebuild_grace", "order.write_budget"}},
		{map[string]string{"SECKILL_REDIS_REBUILD_GRACE": "10s"}, []string{"redis.rebuild_grace", "order.write_budget"}},
		{map[string]string{"SECKILL_HTTP_WRITE_TIMEOUT": "10s"}, []string{"http.write_timeout", "order.write_budget"}},
		{map[string]string{"SECKILL_ORDER_V1_TIMEOUT": "15s"}, []string{"order.v1_timeout", "http.write_timeout"}},
		{map[string]string{"SECKILL_ORDER_V1_TIMEOUT": "6s"}, []string{"order.v1_timeout", "order.write_budget"}},
		{map[string]string{"SECKILL_ORDER_IDEMPOTENCY_PENDING_TTL": "10s"}, []string{"order.idempotency_pending_ttl", "order.write_budget"}},
		{map[string]string{"SECKILL_ORDER_IDEMPOTENCY_PENDING_TTL": "25h"}, []string{"order.idempotency_pending_ttl", "order.idempotency_ttl"}},
		{map[string]string{"SECKILL_HTTP_SHUTDOWN_TIMEOUT": "9s"}, []string{"http.shutdown_timeout", "order.write_budget"}},
		{map[string]string{"SECKILL_HTTP_READ_HEADER_TIMEOUT": "11s"}, []string{"http.read_header_timeout", "http.read_timeout"}},
	} {
		_, err := Load("", env(tc.set))
		if err == nil {
			t.Errorf("%v: no error, want one naming %v", tc.set, tc.want)
			continue
		}
		for _, key := range tc.want {
			if !strings.Contains(err.Error(), key) {
				t.Errorf("%v: error %q does not name %s", tc.set, err, key)
			}
		}
	}
	// Moved together, the same relations hold.
	c, err := Load("", env(map[string]string{
		"SECKILL_ORDER_WRITE_BUDGET": "20s", "SECKILL_REDIS_REBUILD_GRACE": "21s", "SECKILL_HTTP_WRITE_TIMEOUT": "25s",
		"SECKILL_HTTP_SHUTDOWN_TIMEOUT": "20s", "SECKILL_ORDER_IDEMPOTENCY_PENDING_TTL": "1m", "SECKILL_ORDER_V1_TIMEOUT": "10s",
	}))
	if err != nil {
		t.Fatalf("consistent timeouts rejected: %v", err)
	}
	if c.Order.WriteBudget != 20*time.Second || c.Redis.RebuildGrace != 21*time.Second || c.HTTP.WriteTimeout != 25*time.Second ||
		c.HTTP.ShutdownTimeout != 20*time.Second || c.Order.IdempotencyPendingTTL != time.Minute || c.Order.V1Timeout != 10*time.Second {
		t.Errorf("timeouts not applied: %+v", c)
	}
}

// Every timeout must be a positive duration: zero would mean "no timeout"
// to net/http and go-redis, and a negative one makes no sense.
func TestValidateRejectsZeroTimeouts(t *testing.T) {
	for _, key := range []string{
		"http.read_header_timeout", "http.read_timeout", "http.write_timeout", "http.idle_timeout", "http.shutdown_timeout",
		"order.write_budget", "order.v1_timeout", "order.idempotency_pending_ttl", "consumer.apply_timeout",
		"redis.dial_timeout", "redis.read_timeout", "redis.write_timeout", "redis.pool_timeout",
	} {
		for _, val := range []string{"0s", "-1s"} {
			_, err := Load("", env(map[string]string{EnvName(key): val}))
			if err == nil || !strings.Contains(err.Error(), key) {
				t.Errorf("%s=%s: error %v should name %s", EnvName(key), val, err, key)
			}
		}
	}
}

// The timeouts that used to be fixed in the code keep their values as defaults.
func TestTimeoutDefaults(t *testing.T) {
	c, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][2]time.Duration{
		"http.read_header_timeout":      {c.HTTP.ReadHeaderTimeout, 5 * time.Second},
		"http.read_timeout":             {c.HTTP.ReadTimeout, 10 * time.Second},
		"http.write_timeout":            {c.HTTP.WriteTimeout, 15 * time.Second},
		"http.idle_timeout":             {c.HTTP.IdleTimeout, 2 * time.Minute},
		"http.shutdown_timeout":         {c.HTTP.ShutdownTimeout, 10 * time.Second},
		"order.write_budget":            {c.Order.WriteBudget, 10 * time.Second},
		"order.v1_timeout":              {c.Order.V1Timeout, 5 * time.Second},
		"order.idempotency_pending_ttl": {c.Order.IdempotencyPendingTTL, 30 * time.Second},
		"consumer.apply_timeout":        {c.Consumer.ApplyTimeout, 30 * time.Second},
		"redis.dial_timeout":            {c.Redis.DialTimeout, 2 * time.Second},
		"redis.read_timeout":            {c.Redis.ReadTimeout, time.Second},
		"redis.write_timeout":           {c.Redis.WriteTimeout, time.Second},
		"redis.pool_timeout":            {c.Redis.PoolTimeout, 2 * time.Second},
		"redis.rebuild_grace":           {c.Redis.RebuildGrace, 11 * time.Second},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %v, want %v", name, got[0], got[1])
		}
	}
}

// A key the service does not know in a -config file is a mistake (a typo
// would otherwise leave the default in force without a word): Load names
// every such key and the file.
func TestUnknownKeysInTheFileAreAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := "http:\n  addr: \":7000\"\n  write_timout: 20s\nredis:\n  db: 5\nsnowflak:\n  node: 3\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, env(nil))
	if err == nil {
		t.Fatal("a file with unknown keys was accepted")
	}
	for _, want := range []string{"http.write_timout", "snowflak.node", path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "redis.db") || strings.Contains(err.Error(), "http.addr") {
		t.Errorf("error %q names a known key", err)
	}
	// A section given a plain value where the defaults hold keys is unknown too.
	if err := os.WriteFile(path, []byte("http: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, env(nil)); err == nil {
		t.Error(`"http: 5" was accepted`)
	}
	// A section left empty is no key at all.
	if err := os.WriteFile(path, []byte("http:\n  addr: \":7000\"\nredis:\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(path, env(nil)); err != nil || c.HTTP.Addr != ":7000" {
		t.Errorf("a file with an empty section: %v %q", err, c.HTTP.Addr)
	}
	// The environment is read for known keys only: others are none of ours.
	if _, err := Load("", env(map[string]string{"SECKILL_HTTP_WRITE_TIMOUT": "1s"})); err != nil {
		t.Errorf("an unknown environment variable: %v", err)
	}
}

// Unset, snowflake.node is -1: each instance leases a free node in Redis
// (for snowflake.lease_ttl, renewed) instead of every instance taking node 1.
func TestSnowflakeNodeDefaultsToAutomatic(t *testing.T) {
	c, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Snowflake.Node != -1 || c.Snowflake.LeaseTTL != 15*time.Second {
		t.Errorf("snowflake defaults: node %d, lease ttl %v; want -1 (auto) and 15s", c.Snowflake.Node, c.Snowflake.LeaseTTL)
	}
	for val, ok := range map[string]bool{"-1": true, "0": true, "1023": true, "-2": false, "1024": false} {
		_, err := Load("", env(map[string]string{"SECKILL_SNOWFLAKE_NODE": val}))
		if (err == nil) != ok || (err != nil && !strings.Contains(err.Error(), "snowflake.node")) {
			t.Errorf("snowflake.node %s: error %v", val, err)
		}
	}
	for val, ok := range map[string]bool{"1s": true, "1m": true, "999ms": false, "0s": false} {
		_, err := Load("", env(map[string]string{"SECKILL_SNOWFLAKE_LEASE_TTL": val}))
		if (err == nil) != ok || (err != nil && !strings.Contains(err.Error(), "snowflake.lease_ttl")) {
			t.Errorf("snowflake.lease_ttl %s: error %v", val, err)
		}
	}
}

// The standalone mode and a run on real servers in the same folder must
// not share the embedded nsqd's queues: one run's leftover messages name
// orders of its own database.
func TestEmbeddedNSQDFolderIsPerDatabase(t *testing.T) {
	standalone, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	real, err := Load("", env(map[string]string{"SECKILL_MYSQL_DSN": "root@tcp(127.0.0.1:3306)/seckill"}))
	if err != nil {
		t.Fatal(err)
	}
	other, err := Load("", env(map[string]string{"SECKILL_MYSQL_DSN": "root@tcp(127.0.0.1:3306)/shop2"}))
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]bool{standalone.EmbeddedNSQDDir(): true, real.EmbeddedNSQDDir(): true, other.EmbeddedNSQDDir(): true}
	if len(dirs) != 3 {
		t.Errorf("folders shared: %v", dirs)
	}
	if d := real.EmbeddedNSQDDir(); d != filepath.Join("data", "nsqd-127.0.0.1_3306-seckill") {
		t.Errorf("real servers: %s", d)
	}
	set, err := Load("", env(map[string]string{"SECKILL_NSQ_EMBEDDED_DATA_DIR": "/tmp/q"}))
	if err != nil || set.EmbeddedNSQDDir() != "/tmp/q" {
		t.Errorf("an explicit folder is kept: %v %s", err, set.EmbeddedNSQDDir())
	}
}

// A cluster is one list of seed nodes, exclusive with a single server; it
// has database 0 only, and a hash tag in the key prefix would pull every
// key into one slot.
func TestRedisClusterAddrs(t *testing.T) {
	c, err := Load("", env(map[string]string{"SECKILL_REDIS_CLUSTER_ADDRS": " 127.0.0.1:7000, 127.0.0.1:7001 ,,"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RedisClusterAddrs(); len(got) != 2 || got[0] != "127.0.0.1:7000" || got[1] != "127.0.0.1:7001" {
		t.Errorf("cluster addrs: %q", got)
	}
	if c, _ := Load("", env(nil)); len(c.RedisClusterAddrs()) != 0 {
		t.Errorf("default cluster addrs: %q, want none", c.RedisClusterAddrs())
	}
	for _, tc := range []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"SECKILL_REDIS_ADDR": "127.0.0.1:6379"}, "redis.addr/redis.cluster_addrs"},
		{map[string]string{"SECKILL_REDIS_DB": "2"}, "redis.db"},
		{map[string]string{"SECKILL_REDIS_KEY_PREFIX": "app{1}:"}, "redis.key_prefix"},
	} {
		tc.set["SECKILL_REDIS_CLUSTER_ADDRS"] = "127.0.0.1:7000"
		if _, err := Load("", env(tc.set)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.set, err, tc.want)
		}
	}
}
