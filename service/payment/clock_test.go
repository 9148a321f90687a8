package payment

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/internal/fakes"
)

func deferNothing(context.Context, []service.StockMessage, time.Duration) error { return nil }

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
		pub := &fakeTimeouts{Rec: rec, DeferTimeoutFn: deferNothing}
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
		if len(d) != 1 || !slices.Equal(d[0][0].([]service.StockMessage), []service.StockMessage{m}) {
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
	pub := &fakeTimeouts{Rec: rec, DeferTimeoutFn: func(context.Context, []service.StockMessage, time.Duration) error {
		return service.ErrUnavailable
	}}
	NewClock(pub, fakes.Log()).Start(ctx, service.StockMessage{OrderID: 1, GoodsID: 3, Number: 1, Deadline: 1})
	if n := rec.Count("DeferTimeout"); n != 1 {
		t.Errorf("%d deferrals, want 1", n)
	}
}

// A batch's clocks start in one call, in one message for the orders whose
// deadlines are close, delivered at the latest of them; orders without a
// deadline start none.
func TestClockStartsABatchInOneMessage(t *testing.T) {
	t.Parallel()
	rec := &fakes.Recorder{}
	pub := &fakeTimeouts{Rec: rec, DeferTimeoutFn: deferNothing}
	due := time.Now().Add(time.Hour)
	later := due.Add(300 * time.Millisecond).UnixMilli()
	before := time.Now()
	NewClock(pub, fakes.Log()).Start(ctx,
		service.StockMessage{OrderID: 1, GoodsID: 3, Number: 1, Deadline: later},
		service.StockMessage{OrderID: 2, GoodsID: 3, Number: 1},
		service.StockMessage{OrderID: 3, GoodsID: 3, Number: 1, Deadline: due.UnixMilli()})
	after := time.Now()
	calls := rec.Of("DeferTimeouts")
	if len(calls) != 1 || !slices.Equal(calls[0][0].([]int), []int{2}) {
		t.Fatalf("calls %v, want one of one message of 2 orders", calls)
	}
	d := rec.Of("DeferTimeout")[0]
	var ids []int64
	for _, m := range d[0].([]service.StockMessage) {
		ids = append(ids, m.OrderID)
	}
	if !slices.Equal(ids, []int64{3, 1}) {
		t.Errorf("the message holds orders %v, want 3 and 1 by deadline", ids)
	}
	// The delay runs to the later deadline from a moment during Start.
	at := time.UnixMilli(later)
	if delay := d[1].(time.Duration); delay < at.Sub(after) || delay > at.Sub(before) {
		t.Errorf("delay %v, want the later deadline's, between %v and %v", delay, at.Sub(after), at.Sub(before))
	}
}

// Deadlines further apart than ClockSpread go in separate messages, and no
// message holds more than MaxClocks orders; every order is in exactly one.
func TestClocksGroupByDeadline(t *testing.T) {
	t.Parallel()
	base := time.Now().Add(15 * time.Minute).UnixMilli()
	var ms []service.StockMessage
	id := int64(0)
	add := func(n int, at int64) {
		for range n {
			id++
			ms = append(ms, service.StockMessage{OrderID: id, GoodsID: 1, Number: 1, Deadline: at})
		}
	}
	add(3, base+ClockSpread.Milliseconds()+1) // past the first group's spread
	add(2, base)
	add(1, base+ClockSpread.Milliseconds()) // within it, at its edge
	add(MaxClocks+5, base+10_000)
	add(1, 0) // no deadline
	groups := Clocks(ms)
	var sizes []int
	seen := map[int64]int{}
	for _, g := range groups {
		sizes = append(sizes, len(g))
		first := g[0].Deadline
		for _, m := range g {
			seen[m.OrderID]++
			if time.Duration(m.Deadline-first)*time.Millisecond > ClockSpread {
				t.Errorf("order %d's deadline is %d ms after its message's first", m.OrderID, m.Deadline-first)
			}
		}
	}
	if want := []int{3, 3, MaxClocks, 5}; !slices.Equal(sizes, want) {
		t.Errorf("messages of %v orders, want %v", sizes, want)
	}
	for _, m := range ms {
		if want := map[bool]int{true: 1, false: 0}[m.Deadline != 0]; seen[m.OrderID] != want {
			t.Errorf("order %d is in %d messages, want %d", m.OrderID, seen[m.OrderID], want)
		}
	}
}
