package payment

import (
	"context"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/internal/fakes"
)

func TestClockStart(t *testing.T) {
	t.Parallel()
	m := service.StockMessage{OrderID: 1, GoodsID: 3, UserID: 5, Number: 1}
	for _, c := range []struct {
		name     string
		deadline time.Time // zero: none
		min, max time.Duration
	}{
		{"no deadline", time.Time{}, 0, 0},
		{"past", time.Now().Add(-time.Hour), 0, 0},
		{"ahead", time.Now().Add(2 * time.Hour), 2*time.Hour - time.Minute, 2 * time.Hour},
	} {
		rec := &fakes.Recorder{}
		pub := &fakeTimeouts{Rec: rec, DeferTimeoutFn: func(context.Context, service.StockMessage, time.Duration) error { return nil }}
		m := m
		if !c.deadline.IsZero() {
			m.Deadline = c.deadline.UnixMilli()
		}
		NewClock(pub, fakes.Log()).Start(ctx, m)
		d := rec.Of("DeferTimeout")
		if c.deadline.IsZero() {
			if len(d) != 0 {
				t.Errorf("%s: deferred %v, want nothing", c.name, d)
			}
			continue
		}
		if len(d) != 1 || d[0][0] != m {
			t.Fatalf("%s: deferred %v, want the message once", c.name, d)
		}
		if delay := d[0][1].(time.Duration); delay < c.min || delay > c.max {
			t.Errorf("%s: delay %v, want %v to %v", c.name, delay, c.min, c.max)
		}
	}
}

// A timeout that cannot be scheduled is left to the expiry sweep.
func TestClockStartWhenDeferFails(t *testing.T) {
	t.Parallel()
	rec := &fakes.Recorder{}
	pub := &fakeTimeouts{Rec: rec, DeferTimeoutFn: func(context.Context, service.StockMessage, time.Duration) error {
		return service.ErrUnavailable
	}}
	NewClock(pub, fakes.Log()).Start(ctx, service.StockMessage{OrderID: 1, GoodsID: 3, Number: 1, Deadline: 1})
	if n := rec.Count("DeferTimeout"); n != 1 {
		t.Errorf("%d deferrals, want 1", n)
	}
}

// A batch's clocks start in one call, only for the orders with a deadline.
func TestClockStartsABatchAtOnce(t *testing.T) {
	t.Parallel()
	rec := &fakes.Recorder{}
	pub := &fakeTimeouts{Rec: rec, DeferTimeoutFn: func(context.Context, service.StockMessage, time.Duration) error { return nil }}
	due := time.Now().Add(time.Hour).UnixMilli()
	NewClock(pub, fakes.Log()).Start(ctx,
		service.StockMessage{OrderID: 1, GoodsID: 3, Number: 1, Deadline: due},
		service.StockMessage{OrderID: 2, GoodsID: 3, Number: 1},
		service.StockMessage{OrderID: 3, GoodsID: 3, Number: 1, Deadline: due})
	if calls := rec.Of("DeferTimeouts"); len(calls) != 1 || calls[0][0] != 2 {
		t.Errorf("calls %v, want one of 2 messages", calls)
	}
	for i, d := range rec.Of("DeferTimeout") {
		if id := d[0].(service.StockMessage).OrderID; id != []int64{1, 3}[i] {
			t.Errorf("deferral %d is of order %d", i, id)
		}
	}
}
