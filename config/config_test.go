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
