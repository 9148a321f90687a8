// Package testenv gives each test its own piece of the real servers: a fresh
// MySQL database and a Redis key prefix, removed when the test ends. Under
// CI=true a server that does not answer fails the test; elsewhere it skips
// with what to start. The store's tests use it directly; the end-to-end
// harness (internal/harness) builds on it.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
)

// Defaults match the README's run command; SECKILL_TEST_MYSQL_DSN (a DSN
// without a database) and SECKILL_TEST_REDIS_ADDR point tests elsewhere.
const (
	defaultMySQL = "root@tcp(127.0.0.1:3306)/"
	defaultRedis = "127.0.0.1:6379"
)

// Name returns a random name with prefix, for databases, keys and topics.
func Name(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// MySQLServer is the DSN of the test server, with no database selected.
func MySQLServer() string {
	if dsn := os.Getenv("SECKILL_TEST_MYSQL_DSN"); dsn != "" {
		return dsn
	}
	return defaultMySQL
}

// MySQL names a database that does not exist yet and drops it (if the code
// under test created it) when the test ends. It returns its DSN.
func MySQL(tb testing.TB) string {
	tb.Helper()
	cfg, err := mysql.ParseDSN(MySQLServer())
	if err != nil {
		tb.Fatalf("SECKILL_TEST_MYSQL_DSN: %v", err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = admin.PingContext(ctx)
		cancel()
	}
	if err != nil {
		unavailable(tb, "MariaDB/MySQL at "+cfg.Addr, err,
			"start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd")
	}
	name := Name("seckill_test_")
	tb.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS `" + name + "`"); err != nil {
			tb.Logf("drop test database %s: %v", name, err)
		}
		admin.Close()
	})
	cfg.DBName = name
	cfg.ParseTime = true
	return cfg.FormatDSN()
}

// Redis returns the server address and a key prefix of the test's own; every
// key under the prefix is deleted when the test ends.
func Redis(tb testing.TB) (addr, prefix string) {
	tb.Helper()
	addr = os.Getenv("SECKILL_TEST_REDIS_ADDR")
	if addr == "" {
		addr = defaultRedis
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		unavailable(tb, "Redis at "+addr, err,
			`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`)
	}
	prefix = Name("test:") + ":"
	tb.Cleanup(func() {
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return addr, prefix
}

func unavailable(tb testing.TB, what string, err error, start string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is required under CI and does not answer: %v", what, err)
	}
	tb.Skipf("%s does not answer (%v); start it with: %s", what, err, start)
}

// LogWriter forwards log lines to tb.Log until the test ends, then drops
// them: background goroutines may still log during shutdown.
func LogWriter(tb testing.TB) io.Writer {
	w := &logWriter{tb: tb}
	tb.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return w
}

type logWriter struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
