// Package harness is the one test harness of the end-to-end tests, the
// fault suite and the benchmark. On the servers internal/testenv hands out
// (fresh MySQL databases and a Redis key prefix, removed when the test
// ends) it runs nsqd, starts the service on 127.0.0.1:0 with them, talks to
// it over HTTP as its clients and operators do, publishes NSQ messages in
// their wire format, reads MySQL and Redis directly, and checks the sale's
// invariants there.
package harness

import (
	"log/slog"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/app"
	"github.com/go-seckill/seckill/internal/testenv"
)

// WaitFor polls cond every 50 ms until it holds (true) or d has passed
// (false).
func WaitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Eventually fails the test unless cond holds within timeout; msg (with
// args) says what was awaited.
func Eventually(tb testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	tb.Helper()
	if !WaitFor(timeout, cond) {
		tb.Fatalf("not within %v: "+msg, append([]any{timeout}, args...)...)
	}
}

// Logger is the service's logger writing to the test's log until the test
// ends.
func Logger(tb testing.TB) *slog.Logger { return app.NewLogger(testenv.LogWriter(tb)) }
