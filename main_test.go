// The end-to-end tests: each starts the service (internal/app, as the
// command does) on 127.0.0.1:0 with databases, a Redis key prefix and nsqd
// of its own (internal/harness), and speaks to it only as its clients and
// operators can: over HTTP, with plain SQL on its schema, through the Redis
// key layout, and with NSQ messages in their wire format.
package main_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/go-seckill/seckill/internal/app"
	"github.com/go-seckill/seckill/internal/harness"
)

// A start that fails stops what it had started and returns an error naming
// its cause, on one line (the command prints it as "seckill: <cause>"),
// without a panic.
func TestFailedStartNamesItsCause(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, c := range []struct {
		name, key, value string
		cause            []string // the error names each
	}{
		{"HTTP address in use", "SECKILL_HTTP_ADDR", taken.Addr().String(), []string{"listen", taken.Addr().String(), "address already in use"}},
		{"MySQL down", "SECKILL_MYSQL_DSN", "root@tcp(127.0.0.1:1)/seckill_down", []string{"127.0.0.1:1", "connection refused"}},
		{"Redis down", "SECKILL_REDIS_ADDR", "127.0.0.1:1", []string{"redis", "127.0.0.1:1", "connection refused"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := harness.NewEnv(t)
			e.Settings[c.key] = c.value
			cfg := e.Config(t)
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("the failed start panicked: %v", r)
				}
			}()
			a, err := app.Start(context.Background(), cfg, harness.Logger(t))
			if err == nil {
				a.Shutdown()
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
