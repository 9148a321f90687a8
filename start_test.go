package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/go-seckill/seckill/internal/testenv"
)

// A start that fails stops what it had started and returns an error naming
// its cause, on one line (the command prints it as "seckill: <cause>"),
// without a panic.
func TestFailedStartNamesItsCause(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	redisAddr, prefix := testenv.Redis(t)
	settings := func() map[string]string {
		return map[string]string{
			"SECKILL_HTTP_ADDR":              "127.0.0.1:0",
			"SECKILL_MYSQL_DSN":              testenv.MySQL(t),
			"SECKILL_MYSQL_MAX_OPEN_CONNS":   "4",
			"SECKILL_REDIS_ADDR":             redisAddr,
			"SECKILL_REDIS_KEY_PREFIX":       prefix,
			"SECKILL_NSQ_EMBEDDED_DATA_DIR":  t.TempDir(),
			"SECKILL_NSQ_EMBEDDED_TCP_ADDR":  "127.0.0.1:0",
			"SECKILL_NSQ_EMBEDDED_HTTP_ADDR": "127.0.0.1:0",
			"SECKILL_ADMIN_TOKEN":            "token",
		}
	}
	for _, c := range []struct {
		name, key, value string
		cause            []string // the error names each
	}{
		{"HTTP address in use", "SECKILL_HTTP_ADDR", taken.Addr().String(), []string{"listen", taken.Addr().String(), "address already in use"}},
		{"MySQL down", "SECKILL_MYSQL_DSN", "root@tcp(127.0.0.1:1)/seckill_down", []string{"127.0.0.1:1", "connection refused"}},
		{"Redis down", "SECKILL_REDIS_ADDR", "127.0.0.1:1", []string{"redis", "127.0.0.1:1", "connection refused"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			vars := settings()
			vars[c.key] = c.value
			cfg, err := loadConfig("", func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("the failed start panicked: %v", r)
				}
			}()
			a, err := start(context.Background(), cfg, newLogger(testenv.LogWriter(t)))
			if err == nil {
				a.shutdown()
				t.Fatal("the start succeeded")
			}
			if a != nil {
				t.Errorf("a failed start returned an instance")
			}
			for _, want := range c.cause {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans several lines", err)
			}
		})
	}
}
