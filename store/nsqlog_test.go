package store

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// nsq's lines are logged at the level they carry, without the level word.
func TestNSQLoggerLevels(t *testing.T) {
	for _, c := range []struct {
		line, level, msg string
	}{
		{"INF    1 [seckill_stock/stock_apply] (127.0.0.1:4150) connecting to nsqd", "INFO", "1 [seckill_stock/stock_apply] (127.0.0.1:4150) connecting to nsqd"},
		{"WRN    2 (127.0.0.1:4150) sending command - write: broken pipe", "WARN", "2 (127.0.0.1:4150) sending command - write: broken pipe"},
		{"ERR    3 (127.0.0.1:4150) IO error - EOF", "ERROR", "3 (127.0.0.1:4150) IO error - EOF"},
		{"DBG    4 heartbeat received", "DEBUG", "4 heartbeat received"},
		{"WARNING: client(127.0.0.1:5000) - heartbeat timeout", "WARN", "client(127.0.0.1:5000) - heartbeat timeout"},
		{"ERROR: failed to persist metadata", "ERROR", "failed to persist metadata"},
		{"FATAL: listen (127.0.0.1:4150) failed", "ERROR", "listen (127.0.0.1:4150) failed"},
		{"INFO: TOPIC(seckill_stock): created", "INFO", "TOPIC(seckill_stock): created"},
		{"something else\n", "INFO", "something else"},
	} {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if err := NSQLogger(log).Output(2, c.line); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if !strings.Contains(out, "level="+c.level+" ") || !strings.Contains(out, c.msg) || !strings.Contains(out, "component=nsq") {
			t.Errorf("%q logged as %q; want level %s and message %q", c.line, out, c.level, c.msg)
		}
	}
}
