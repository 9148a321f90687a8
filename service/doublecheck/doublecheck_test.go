package doublecheck

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/internal/fakes"
)

// world is the checker's surroundings: which orders are settled, the
// checks in flight (delivered by hand), and what was republished and
// dead-lettered.
type world struct {
	settled     map[int64]bool
	checks      []Check // sent, not yet delivered
	delays      []time.Duration
	routes      []int64
	republished []service.StockMessage
	letters     []string // reasons
	events      []string
	pubErr      error
	checkErr    error
}

func (w *world) Settled(_ context.Context, ids []int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	for _, id := range ids {
		out[id] = w.settled[id]
	}
	return out, nil
}

func (w *world) DeferCheck(_ context.Context, c Check, delay time.Duration, route int64) error {
	if w.checkErr != nil {
		return w.checkErr
	}
	w.checks, w.delays, w.routes = append(w.checks, c), append(w.delays, delay), append(w.routes, route)
	return nil
}

func (w *world) DeadLetter(_ context.Context, m service.StockMessage, body []byte, reason string) error {
	if !strings.Contains(string(body), `"order_id":7`) || m.OrderID != 7 {
		return errors.New("the letter must name the order and carry its stock message")
	}
	w.letters = append(w.letters, reason)
	return nil
}

func newWorld(t *testing.T) (*world, *Checker) {
	t.Helper()
	w := &world{settled: map[int64]bool{}}
	pub := &fakes.Publisher{PublishFn: func(_ context.Context, m service.StockMessage, route int64) error {
		if route != 42 {
			t.Errorf("republished through route %d, want the version's 42", route)
		}
		if w.pubErr != nil {
			return w.pubErr
		}
		w.republished = append(w.republished, m)
		return nil
	}}
	c := New(w, pub, w, w, Options{Delay: time.Second, MaxRepublish: MaxRepublish, Count: func(e string) { w.events = append(w.events, e) }}, fakes.Log())
	return w, c
}

var order = service.StockMessage{OrderID: 7, GoodsID: 1, UserID: 42, Number: 1, Host: 1, Table: 3}

// deliver hands the oldest check in flight to the checker.
func deliver(t *testing.T, w *world, c *Checker) {
	t.Helper()
	if len(w.checks) == 0 {
		t.Fatal("no check in flight")
	}
	ch := w.checks[0]
	w.checks = w.checks[1:]
	if err := c.Check(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
}

// A decrement never confirmed is republished exactly MaxRepublish times,
// then handed to a person with the reason; the chain of checks ends there.
func TestAnUnconfirmedDecrementIsRepublishedThreeTimesThenDeadLettered(t *testing.T) {
	w, c := newWorld(t)
	c.Schedule(context.Background(), order, 42)
	for len(w.checks) > 0 {
		deliver(t, w, c)
	}
	if len(w.republished) != MaxRepublish || len(w.letters) != 1 {
		t.Fatalf("republished %d, letters %v; want %d and one", len(w.republished), w.letters, MaxRepublish)
	}
	if !strings.Contains(w.letters[0], "not confirmed after 3 republishes") {
		t.Fatalf("reason %q", w.letters[0])
	}
	want := []string{Sent, Sent, Republished, Sent, Republished, Sent, Republished, DeadLettered}
	if !slices.Equal(w.events, want) {
		t.Fatalf("events %v, want %v", w.events, want)
	}
	for i, r := range w.routes {
		if r != 43 || w.delays[i] != time.Second {
			t.Fatalf("check %d went through route %d after %s; want the nsqd after the decrement's (43) after the delay", i, r, w.delays[i])
		}
	}
}

// A decrement confirmed before its check (the normal case), or after a
// republish, ends the chain: nothing more is sent, republished or lettered.
func TestAConfirmedDecrementEndsTheChecks(t *testing.T) {
	for _, republishes := range []int{0, 1, 2} {
		w, c := newWorld(t)
		c.Schedule(context.Background(), order, 42)
		for range republishes {
			deliver(t, w, c)
		}
		w.settled[order.OrderID] = true
		deliver(t, w, c)
		if len(w.checks) != 0 || len(w.republished) != republishes || len(w.letters) != 0 {
			t.Fatalf("after %d republishes: checks %d, republished %d, letters %v", republishes, len(w.checks), len(w.republished), w.letters)
		}
		if w.events[len(w.events)-1] != Confirmed {
			t.Fatalf("events %v", w.events)
		}
	}
}

// The next check is sent before the republish: when the check cannot be
// sent nothing is done and the error asks for the check again; when the
// republish fails the next check still comes and tries again, so no round
// republishes twice and the count of republishes stays within the limit.
func TestFailuresNeitherBreakTheChainNorRepublishTwice(t *testing.T) {
	w, c := newWorld(t)
	c.Schedule(context.Background(), order, 42)
	first := w.checks[0]
	w.checks = nil
	w.checkErr = errors.New("nsqd down")
	if err := c.Check(context.Background(), first); err == nil || len(w.republished) != 0 {
		t.Fatalf("err %v, republished %d: want an error and nothing republished", err, len(w.republished))
	}
	w.checkErr, w.pubErr = nil, errors.New("nsqd down")
	if err := c.Check(context.Background(), first); err != nil || len(w.checks) != 1 {
		t.Fatalf("err %v, checks %d: a failed republish leaves the next check to try", err, len(w.checks))
	}
	w.pubErr = nil
	for len(w.checks) > 0 {
		deliver(t, w, c)
	}
	if len(w.republished) != MaxRepublish-1 || len(w.letters) != 1 {
		t.Fatalf("republished %d, letters %d", len(w.republished), len(w.letters))
	}
}

// A check that is not one (no due time, no order) is refused as invalid,
// so that the consumer dead-letters it instead of retrying it for ever.
func TestAnInvalidCheckIsRefused(t *testing.T) {
	_, c := newWorld(t)
	for _, ch := range []Check{{Stock: order}, {DueMs: 1}} {
		if err := c.Check(context.Background(), ch); !errors.Is(err, service.ErrInvalid) {
			t.Fatalf("%+v: %v", ch, err)
		}
	}
}
