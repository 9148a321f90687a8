package ordering

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
)

// storedOutcome decodes what the key holds.
func storedOutcome(t *testing.T, w *world, key string) outcome {
	t.Helper()
	b, ok := w.outcomes.Stored(key)
	if !ok || len(b) == 0 {
		t.Fatalf("key %q holds no outcome (present %v)", key, ok)
	}
	var out outcome
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("key %q: %v", key, err)
	}
	return out
}

// pendingOf is the pending claim of a request for version, goods and number.
func pendingOf(t *testing.T, version string, goodsID, number int64) []byte {
	t.Helper()
	b, err := json.Marshal(outcome{Request: request{Version: version, GoodsID: goodsID, Number: number}, Pending: true})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The same key of the same user gets the same order, placed once.
func TestSameKeySameUserPlacesOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	req := service.OrderRequest{UserID: 42, GoodsID: 3, Number: 2}
	first, err := w.placer.PlaceOrderOnce(ctx, "V5", req, "k1")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		again, err := w.placer.PlaceOrderOnce(ctx, "V5", req, "k1")
		if err != nil || !sameOrder(again, first) {
			t.Errorf("replay: %+v, %v, want %+v", again, err, first)
		}
	}
	want := []string{"Ledger.Reserve", "Orders.InsertOrder", "Publish"}
	if got := w.rec.Only(sellCalls...); !slices.Equal(got, want) {
		t.Errorf("calls %v, want one placement %v", got, want)
	}
	if n := w.rec.Count("IDs.NewID"); n != 1 {
		t.Errorf("%d order ids made, want 1", n)
	}
	for _, args := range w.rec.Of("Outcomes.Claim") {
		if args[0] != "42:k1" {
			t.Errorf("claimed %q, want the key scoped to the user, 42:k1", args[0])
		}
		if args[1] != string(pendingOf(t, "V5", 3, 2)) {
			t.Errorf("claimed with %s, want the request pending", args[1])
		}
	}
	out := storedOutcome(t, w, "42:k1")
	if out.Order == nil || !sameOrder(*out.Order, first) || out.Unknown || out.Pending {
		t.Errorf("stored %+v, want the order", out)
	}
	if out.Request != (request{Version: "V5", GoodsID: 3, Number: 2}) {
		t.Errorf("stored for request %+v, want V5, goods 3, 2 units", out.Request)
	}
}

// A key is the user's: another user's same key is another request.
func TestSameKeyOtherUserPlacesAgain(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, errA := w.placer.PlaceOrderOnce(ctx, "V6", service.OrderRequest{UserID: 1, GoodsID: 3, Number: 1}, "k")
	b, errB := w.placer.PlaceOrderOnce(ctx, "V6", service.OrderRequest{UserID: 2, GoodsID: 3, Number: 1}, "k")
	if errA != nil || errB != nil || a.ID == b.ID || a.UserID != 1 || b.UserID != 2 {
		t.Fatalf("got %+v (%v) and %+v (%v), want two orders", a, errA, b, errB)
	}
	if n := w.rec.Count("Ledger.Reserve"); n != 2 {
		t.Errorf("%d reservations, want 2", n)
	}
}

// A key too long is refused before anything is claimed.
func TestLongKeyIsInvalidWithoutClaim(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	req := service.OrderRequest{UserID: 1, GoodsID: 3, Number: 1}
	_, err := w.placer.PlaceOrderOnce(ctx, "V6", req, strings.Repeat("k", MaxIdempotencyKeyLen+1))
	if !errors.Is(err, service.ErrInvalid) {
		t.Errorf("got %v, want invalid", err)
	}
	if calls := w.rec.Names(); len(calls) != 0 {
		t.Errorf("calls %v, want none", calls)
	}
	if _, err := w.placer.PlaceOrderOnce(ctx, "V6", req, strings.Repeat("k", MaxIdempotencyKeyLen)); err != nil {
		t.Errorf("a key of %d characters: %v", MaxIdempotencyKeyLen, err)
	}
}

// A key another request is serving is answered in progress, and left to it.
func TestPendingClaimIsInProgress(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	pending := pendingOf(t, "V6", 3, 1)
	w.outcomes.Store("7:k", pending)
	_, err := w.placer.PlaceOrderOnce(ctx, "V6", service.OrderRequest{UserID: 7, GoodsID: 3, Number: 1}, "k")
	if err != service.ErrInProgress {
		t.Errorf("got %v, want in progress", err)
	}
	if got := w.rec.Only(append(sellCalls, "Outcomes.Forget", "Outcomes.Settle", "Outcomes.Reclaim")...); len(got) != 0 {
		t.Errorf("calls %v, want none: the claim is another request's", got)
	}
	if b, ok := w.outcomes.Stored("7:k"); !ok || !bytes.Equal(b, pending) {
		t.Errorf("the pending claim became %q (present %v)", b, ok)
	}
}

// A key answers one request: the same key with another version, goods or
// number is refused, whatever the key holds (an order, a refusal, a claim
// pending), and what it holds stays.
func TestKeyReusedForAnotherRequest(t *testing.T) {
	t.Parallel()
	req := service.OrderRequest{UserID: 8, GoodsID: 3, Number: 1}
	others := []struct {
		version string
		req     service.OrderRequest
	}{
		{"V5", req},
		{"V6", service.OrderRequest{UserID: 8, GoodsID: 4, Number: 1}},
		{"V6", service.OrderRequest{UserID: 8, GoodsID: 3, Number: 2}},
	}
	for _, held := range []string{"order", "ended", "pending"} {
		t.Run(held, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			switch held {
			case "order":
				if _, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); err != nil {
					t.Fatal(err)
				}
			case "ended":
				w.ledger.ReserveFn = func(context.Context, service.Order) error { return service.ErrEnded }
				if _, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); err != service.ErrEnded {
					t.Fatalf("got %v, want ended", err)
				}
			case "pending":
				w.outcomes.Store("8:k", pendingOf(t, "V6", 3, 1))
			}
			stored, _ := w.outcomes.Stored("8:k")
			calls := len(w.rec.Only(sellCalls...))
			for _, o := range others {
				if _, err := w.placer.PlaceOrderOnce(ctx, o.version, o.req, "k"); err != service.ErrKeyMismatch {
					t.Errorf("%s %+v: %v, want the key refused for another request", o.version, o.req, err)
				}
			}
			if got := w.rec.Only(sellCalls...); len(got) != calls {
				t.Errorf("calls %v, want no placement for another request", got[calls:])
			}
			if n := w.rec.Count("Outcomes.Forget") + w.rec.Count("Outcomes.Reclaim"); n != 0 {
				t.Errorf("%d forgets or reclaims of the key", n)
			}
			if b, _ := w.outcomes.Stored("8:k"); !bytes.Equal(b, stored) {
				t.Errorf("the key holds %s, want what it held, %s", b, stored)
			}
		})
	}
}

// Two requests racing with one key: the one that claimed it places the
// order; the other is told to wait; a later one gets the order.
func TestConcurrentSameKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	reserving, release := make(chan struct{}), make(chan struct{})
	w.ledger.ReserveFn = func(context.Context, service.Order) error {
		close(reserving)
		<-release
		return nil
	}
	req := service.OrderRequest{UserID: 9, GoodsID: 3, Number: 1}
	type answer struct {
		o   service.Order
		err error
	}
	first := make(chan answer)
	go func() {
		o, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k")
		first <- answer{o, err}
	}()
	<-reserving
	if _, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); err != service.ErrInProgress {
		t.Errorf("while the first is served: %v, want in progress", err)
	}
	close(release)
	a := <-first
	if a.err != nil {
		t.Fatal(a.err)
	}
	if o, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); err != nil || !sameOrder(o, a.o) {
		t.Errorf("after: %+v, %v, want %+v", o, err, a.o)
	}
	if n := w.rec.Count("Ledger.Reserve"); n != 1 {
		t.Errorf("%d reservations, want 1", n)
	}
}

// A refusal that stays true (the sale ended) is stored and replayed without
// placing again.
func TestEndedIsReplayed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.ledger.ReserveFn = func(context.Context, service.Order) error { return fmt.Errorf("goods 3: %w", service.ErrEnded) }
	req := service.OrderRequest{UserID: 4, GoodsID: 3, Number: 1}
	for i := range 3 {
		if _, err := w.placer.PlaceOrderOnce(ctx, "V5", req, "k"); !errors.Is(err, service.ErrEnded) {
			t.Errorf("request %d: %v, want ended", i, err)
		}
	}
	if n := w.rec.Count("Ledger.Reserve"); n != 1 {
		t.Errorf("%d reservations, want 1", n)
	}
	if n := w.rec.Count("Outcomes.Forget"); n != 0 {
		t.Errorf("the key was forgotten %d times", n)
	}
	if out := storedOutcome(t, w, "4:k"); out.Error != "ended" || out.Order != nil {
		t.Errorf("stored %+v, want error %q", out, "ended")
	}
}

// Refusals that may change (stock comes back, the sale opens, the goods are
// created) are not kept: the key is forgotten, and a retry is served afresh.
func TestRefusalsThatMayChangeAreForgotten(t *testing.T) {
	t.Parallel()
	for name, refusal := range map[string]error{
		"sold out": service.ErrSoldOut, "not started": service.ErrNotStarted, "not found": service.ErrNotFound,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			refusing := 2
			w.ledger.ReserveFn = func(context.Context, service.Order) error {
				if refusing > 0 {
					refusing--
					return fmt.Errorf("goods 3: %w", refusal)
				}
				return nil
			}
			req := service.OrderRequest{UserID: 4, GoodsID: 3, Number: 1}
			for i := range 2 {
				if _, err := w.placer.PlaceOrderOnce(ctx, "V5", req, "k"); !errors.Is(err, refusal) {
					t.Errorf("request %d: %v, want %v", i, err, refusal)
				}
				if _, ok := w.outcomes.Stored("4:k"); ok {
					t.Errorf("request %d: the refusal is kept", i)
				}
			}
			o, err := w.placer.PlaceOrderOnce(ctx, "V5", req, "k")
			if err != nil || o.ID != 3 {
				t.Errorf("once the refusal changed: %+v, %v, want order 3", o, err)
			}
			if n := w.rec.Count("Ledger.Reserve"); n != 3 {
				t.Errorf("%d reservations, want every request served afresh", n)
			}
			if n := w.rec.Count("Outcomes.Forget"); n != 2 {
				t.Errorf("the key was forgotten %d times, want 2", n)
			}
		})
	}
}

// A dependency down is no answer: the key is forgotten and a retry places.
func TestUnavailableForgetsTheKey(t *testing.T) {
	t.Parallel()
	for _, down := range []error{service.ErrUnavailable, service.ErrStockNotLoaded} {
		w := newWorld(t)
		failures := 1
		w.ledger.ReserveFn = func(context.Context, service.Order) error {
			if failures > 0 {
				failures--
				return fmt.Errorf("reserve: %w", down)
			}
			return nil
		}
		req := service.OrderRequest{UserID: 4, GoodsID: 3, Number: 1}
		if _, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); !errors.Is(err, down) {
			t.Fatalf("got %v, want %v", err, down)
		}
		if forgot := w.rec.Of("Outcomes.Forget"); len(forgot) != 1 || forgot[0][0] != "4:k" {
			t.Errorf("%v: forgot %v, want 4:k", down, forgot)
		}
		if _, ok := w.outcomes.Stored("4:k"); ok {
			t.Errorf("%v: the key is still held", down)
		}
		o, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k")
		if err != nil || o.ID != 2 || w.rec.Count("Ledger.Reserve") != 2 {
			t.Errorf("%v: retry got %+v, %v after %d reservations, want order 2 placed afresh", down, o, err, w.rec.Count("Ledger.Reserve"))
		}
	}
}

// unknownFirst places req under key k with the first insert's outcome
// unknown (later inserts succeed) and returns the order, stored as unknown
// at at.
func unknownFirst(t *testing.T, req service.OrderRequest, at service.OrderTable) (*world, service.Order) {
	t.Helper()
	w := newWorld(t)
	inserts := 0
	w.orders.InsertOrderFn = func(context.Context, service.Order, service.OrderTable) error {
		if inserts++; inserts == 1 {
			return service.ErrAmbiguous
		}
		return nil
	}
	w.ledger.SettleFailedWriteFn = func(_ context.Context, o service.Order, at service.OrderTable, err error) error {
		return &service.UnknownOrder{Order: o, At: at, Err: err}
	}
	_, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k")
	var unknown *service.UnknownOrder
	if !errors.As(err, &unknown) || unknown.Order.ID != 1 {
		t.Fatalf("got %v, want order 1 unknown", err)
	}
	key := fmt.Sprintf("%d:k", req.UserID)
	out := storedOutcome(t, w, key)
	if !out.Unknown || out.At == nil || *out.At != at || out.Order == nil || !sameOrder(*out.Order, unknown.Order) {
		t.Fatalf("stored %+v, want order 1 unknown at %+v", out, at)
	}
	return w, unknown.Order
}

// An order whose write may or may not have committed is stored as unknown
// with where it would be; a retry fences it with a void row, within the
// ledger's write bound. Written: the order is replayed. Fenced, by this
// retry or before: it never will be written, and the key is reclaimed
// against the outcome read and served afresh.
func TestUnknownOrderIsFencedOnRetry(t *testing.T) {
	t.Parallel()
	req := service.OrderRequest{UserID: 159, GoodsID: 3, Number: 1}
	at := service.OrderTable{Host: 2, Table: 16}
	type writeKey struct{}
	// fence makes the retries' VoidOrder answer voided, status, err, and
	// checks it runs within WriteWithin.
	fence := func(t *testing.T, w *world, voided bool, status int, err error) {
		w.ledger.WriteWithinFn = func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithCancel(context.WithValue(ctx, writeKey{}, true))
		}
		w.orders.VoidOrderFn = func(ctx context.Context, _ service.OrderTable, _ service.Order) (bool, int, error) {
			if ctx.Value(writeKey{}) != true {
				t.Error("fenced outside the ledger's write bound")
			}
			return voided, status, err
		}
	}

	for name, status := range map[string]int{
		"written, unpaid": service.StatusUnpaid, "written, paid": service.StatusPaid,
		"written, cancelled": service.StatusCancelled, "written, refused": service.StatusRefused,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w, first := unknownFirst(t, req, at)
			fence(t, w, false, status, nil)
			for range 2 {
				o, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k")
				if err != nil || !sameOrder(o, first) {
					t.Errorf("got %+v, %v, want the first order %+v", o, err, first)
				}
			}
			v := w.rec.Of("Orders.VoidOrder")
			if len(v) != 2 || v[0][0] != at || !sameOrder(v[0][1].(service.Order), first) {
				t.Errorf("fenced %v, want order 1 at %+v on each retry", v, at)
			}
			if n := w.rec.Count("Ledger.Reserve") + w.rec.Count("Outcomes.Reclaim"); n != 1 {
				t.Errorf("%d reservations and reclaims, want the first reservation alone", n)
			}
		})
	}
	for name, voided := range map[string]bool{"fenced now": true, "fenced before": false} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w, first := unknownFirst(t, req, at)
			unknown, _ := w.outcomes.Stored("159:k")
			fence(t, w, voided, service.StatusVoid, nil)
			o, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k")
			if err != nil || o.ID == first.ID || o.ID != 2 {
				t.Fatalf("got %+v, %v, want a new order 2", o, err)
			}
			r := w.rec.Of("Outcomes.Reclaim")
			if len(r) != 1 || r[0][0] != "159:k" || r[0][1] != string(unknown) || r[0][2] != string(pendingOf(t, "V6", 3, 1)) {
				t.Errorf("reclaims %v, want one of 159:k against the unknown order read", r)
			}
			if n := w.rec.Count("Ledger.Reserve"); n != 2 {
				t.Errorf("%d reservations, want 2", n)
			}
			if n := w.rec.Count("Ledger.SettleFailedWrite"); n != 1 {
				t.Errorf("%d settlements, want the first write's alone: the fenced order's units are the reconciliation's", n)
			}
			if out := storedOutcome(t, w, "159:k"); out.Unknown || out.Order == nil || out.Order.ID != 2 {
				t.Errorf("stored %+v, want order 2", out)
			}
			if again, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); err != nil || !sameOrder(again, o) {
				t.Errorf("next retry: %+v, %v, want order 2", again, err)
			}
			if n := w.rec.Count("Orders.VoidOrder"); n != 1 {
				t.Errorf("%d fences, want 1: order 2 is known", n)
			}
		})
	}
	t.Run("fence fails", func(t *testing.T) {
		t.Parallel()
		w, _ := unknownFirst(t, req, at)
		errDown := fmt.Errorf("fence: %w", service.ErrUnavailable)
		fence(t, w, false, 0, errDown)
		if _, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); err != errDown {
			t.Errorf("got %v, want the fence's error", err)
		}
		if n := w.rec.Count("Ledger.Reserve") + w.rec.Count("Outcomes.Reclaim"); n != 1 {
			t.Errorf("%d reservations and reclaims, want the first reservation alone", n)
		}
		if out := storedOutcome(t, w, "159:k"); !out.Unknown {
			t.Errorf("stored %+v, want the unknown order kept for the next retry", out)
		}
	})
}

// Two retries of one unknown order, both finding it fenced: of their
// reclaims, against the same outcome read, one wins and places the new
// order; the other is told the key is being served, and a later retry
// gets the new order.
func TestRetriesOfAnUnknownOrderRace(t *testing.T) {
	t.Parallel()
	req := service.OrderRequest{UserID: 159, GoodsID: 3, Number: 1}
	at := service.OrderTable{Host: 2, Table: 16}
	w, first := unknownFirst(t, req, at)
	unknown, _ := w.outcomes.Stored("159:k")

	arrived, bothIn := make(chan struct{}, 2), make(chan struct{})
	var fences atomic.Int32
	w.orders.VoidOrderFn = func(context.Context, service.OrderTable, service.Order) (bool, int, error) {
		arrived <- struct{}{}
		<-bothIn // both retries read the unknown order before either reclaims
		return fences.Add(1) == 1, service.StatusVoid, nil
	}
	release := make(chan struct{})
	w.ledger.ReserveFn = func(context.Context, service.Order) error {
		<-release // the winner is still serving the key
		return nil
	}
	type answer struct {
		o   service.Order
		err error
	}
	answers := make(chan answer, 2)
	for range 2 {
		go func() {
			o, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k")
			answers <- answer{o, err}
		}()
	}
	<-arrived
	<-arrived
	close(bothIn)
	wait := func() answer {
		select {
		case a := <-answers:
			return a
		case <-time.After(5 * time.Second):
			t.Fatal("a retry did not answer")
			return answer{}
		}
	}
	if a := wait(); a.err != service.ErrInProgress {
		t.Errorf("the retry that lost the reclaim: %+v, %v, want in progress", a.o, a.err)
	}
	close(release)
	won := wait()
	if won.err != nil || won.o.ID != 2 || won.o.ID == first.ID {
		t.Fatalf("the retry that won the reclaim: %+v, %v, want a new order 2", won.o, won.err)
	}
	r := w.rec.Of("Outcomes.Reclaim")
	if len(r) != 2 || r[0][1] != string(unknown) || r[1][1] != string(unknown) {
		t.Errorf("reclaims %v, want two, each against the unknown order read", r)
	}
	if again, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); err != nil || !sameOrder(again, won.o) {
		t.Errorf("a later retry: %+v, %v, want order 2", again, err)
	}
	if n := w.rec.Count("Ledger.Reserve"); n != 2 {
		t.Errorf("%d reservations, want 2: the first order's and the winner's", n)
	}
	if n := w.rec.Count("IDs.NewID"); n != 2 {
		t.Errorf("%d order ids made, want 2", n)
	}
}

// A retry whose reclaim finds the key changed reads it again: another
// retry already served it, and its order is the answer.
func TestReclaimLostToARetryThatFinished(t *testing.T) {
	t.Parallel()
	req := service.OrderRequest{UserID: 159, GoodsID: 3, Number: 1}
	w, _ := unknownFirst(t, req, service.OrderTable{Host: 2, Table: 16})
	w.orders.VoidOrderFn = func(context.Context, service.OrderTable, service.Order) (bool, int, error) {
		return false, service.StatusVoid, nil
	}
	other := service.Order{ID: 99, UserID: 159, GoodsID: 3, Number: 1, Version: "V6", PayDeadline: time.Now().UTC().Truncate(time.Millisecond)}
	served, _ := json.Marshal(outcome{Request: request{Version: "V6", GoodsID: 3, Number: 1}, Order: &other})
	reclaim := w.outcomes.ReclaimFn
	w.outcomes.ReclaimFn = func(ctx context.Context, key string, prev, pending []byte) (bool, error) {
		w.outcomes.Store(key, served) // the other retry got there first
		return reclaim(ctx, key, prev, pending)
	}
	o, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k")
	if err != nil || !sameOrder(o, other) {
		t.Errorf("got %+v, %v, want the other retry's order 99", o, err)
	}
	if n := w.rec.Count("Ledger.Reserve"); n != 1 {
		t.Errorf("%d reservations, want the first order's alone", n)
	}
}

// A store that keeps answering with an order fenced as void, and whose key
// another retry always reclaims first, ends the request after a few rounds.
func TestClaimLoopIsBounded(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	blob, _ := json.Marshal(outcome{Request: request{Version: "V6", GoodsID: 3, Number: 1},
		Order: &service.Order{ID: 77, UserID: 5}, Unknown: true, At: &service.OrderTable{Table: 1}})
	w.outcomes.ClaimFn = func(context.Context, string, []byte) ([]byte, bool, error) { return blob, false, nil }
	w.outcomes.ReclaimFn = func(context.Context, string, []byte, []byte) (bool, error) { return false, nil }
	w.orders.VoidOrderFn = func(context.Context, service.OrderTable, service.Order) (bool, int, error) {
		return false, service.StatusVoid, nil
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.placer.PlaceOrderOnce(ctx, "V6", service.OrderRequest{UserID: 5, GoodsID: 3, Number: 1}, "k")
		done <- err
	}()
	select {
	case err := <-done:
		if err != service.ErrInProgress {
			t.Errorf("got %v, want in progress", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the claim loop did not end")
	}
	if n := w.rec.Count("Outcomes.Reclaim"); n != maxRounds {
		t.Errorf("%d reclaims, want %d", n, maxRounds)
	}
	if n := w.rec.Count("Outcomes.Claim"); n != maxRounds+1 {
		t.Errorf("%d claims, want %d", n, maxRounds+1)
	}
	if got := w.rec.Only(sellCalls...); len(got) != 0 {
		t.Errorf("calls %v, want no placement", got)
	}
}

// The store of outcomes failing: a failed claim or reclaim places nothing;
// a failed settle still answers the order placed.
func TestOutcomeStoreFailures(t *testing.T) {
	t.Parallel()
	req := service.OrderRequest{UserID: 5, GoodsID: 3, Number: 1}

	w := newWorld(t)
	w.outcomes.ClaimFn = func(context.Context, string, []byte) ([]byte, bool, error) { return nil, false, service.ErrUnavailable }
	if _, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); err != service.ErrUnavailable {
		t.Errorf("claim failed: %v, want unavailable", err)
	}
	if got := w.rec.Only(sellCalls...); len(got) != 0 {
		t.Errorf("claim failed: calls %v, want none", got)
	}

	w = newWorld(t)
	w.outcomes.SettleFn = func(context.Context, string, []byte) error { return service.ErrUnavailable }
	if o, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); err != nil || o.ID != 1 {
		t.Errorf("settle failed: %+v, %v, want order 1", o, err)
	}

	w = newWorld(t)
	w.outcomes.ClaimFn = func(context.Context, string, []byte) ([]byte, bool, error) { return []byte("{"), false, nil }
	if _, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); err == nil {
		t.Error("a stored outcome that does not decode was answered as an order")
	}
	if got := w.rec.Only(sellCalls...); len(got) != 0 {
		t.Errorf("undecodable outcome: calls %v, want none", got)
	}

	w, _ = unknownFirst(t, service.OrderRequest{UserID: 5, GoodsID: 3, Number: 1}, service.OrderTable{Host: 2, Table: 1})
	w.orders.VoidOrderFn = func(context.Context, service.OrderTable, service.Order) (bool, int, error) {
		return true, service.StatusVoid, nil
	}
	w.outcomes.ReclaimFn = func(context.Context, string, []byte, []byte) (bool, error) { return false, service.ErrUnavailable }
	if _, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); err != service.ErrUnavailable {
		t.Errorf("reclaim failed: %v, want unavailable", err)
	}
	if n := w.rec.Count("Ledger.Reserve"); n != 1 {
		t.Errorf("reclaim failed: %d reservations, want the first order's alone", n)
	}
}

// No key is PlaceOrder: nothing is claimed.
func TestNoKeyClaimsNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	if _, err := w.placer.PlaceOrderOnce(ctx, "V6", service.OrderRequest{UserID: 5, GoodsID: 3, Number: 1}, ""); err != nil {
		t.Fatal(err)
	}
	if n := w.rec.Count("Outcomes.Claim"); n != 0 {
		t.Errorf("%d claims without a key", n)
	}
}

// A claim won in the last round is served: a request that wins the key
// never leaves it pending with nobody placing its order.
func TestAClaimWonInTheLastRoundIsServed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	blob, _ := json.Marshal(outcome{Request: request{Version: "V6", GoodsID: 3, Number: 1},
		Order: &service.Order{ID: 77, UserID: 5}, Unknown: true, At: &service.OrderTable{Table: 1}})
	w.outcomes.ClaimFn = func(context.Context, string, []byte) ([]byte, bool, error) { return blob, false, nil }
	reclaims := 0
	w.outcomes.ReclaimFn = func(context.Context, string, []byte, []byte) (bool, error) {
		reclaims++
		return reclaims == maxRounds, nil
	}
	w.outcomes.SettleFn = func(context.Context, string, []byte) error { return nil }
	w.orders.VoidOrderFn = func(context.Context, service.OrderTable, service.Order) (bool, int, error) {
		return false, service.StatusVoid, nil
	}
	o, err := w.placer.PlaceOrderOnce(ctx, "V6", service.OrderRequest{UserID: 5, GoodsID: 3, Number: 1}, "k")
	if err != nil || o.ID == 77 {
		t.Errorf("got order %d, %v; want a new order placed by the request that won the key", o.ID, err)
	}
}

// An answer stored before requests were recorded replays for any request.
func TestAnAnswerStoredWithoutItsRequestReplays(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	blob, _ := json.Marshal(outcome{Order: &service.Order{ID: 77, UserID: 5}})
	w.outcomes.ClaimFn = func(context.Context, string, []byte) ([]byte, bool, error) { return blob, false, nil }
	if o, err := w.placer.PlaceOrderOnce(ctx, "V6", service.OrderRequest{UserID: 5, GoodsID: 3, Number: 1}, "k"); err != nil || o.ID != 77 {
		t.Errorf("got %d, %v; want order 77 replayed", o.ID, err)
	}
}

// The database refusing an order row because an order of the user already
// holds its idempotency key (Redis lost its record of the key): the
// attempt's units go back, nothing is published, and the key's order,
// found where the version places the user's orders, is the answer.
func TestAKeyHeldInTheDatabaseAnswersWithItsOrder(t *testing.T) {
	t.Parallel()
	for _, v := range service.Versions() {
		w := newWorld(t)
		req := service.OrderRequest{UserID: 159, GoodsID: 3, Number: 1}
		at := v.Place(req.UserID, testOpts.Layout)
		held := service.Order{ID: 77, UserID: 159, GoodsID: 3, Number: 1, Key: "k"}
		w.orders.InsertOrderFn = func(context.Context, service.Order, service.OrderTable) error { return service.ErrKeyHeld }
		w.ledger.SellInOneTransactionFn = func(context.Context, service.Order) error { return service.ErrKeyHeld }
		w.ledger.GiveBackFn = func(context.Context, service.Order) {}
		w.orders.OrderByKeyFn = func(_ context.Context, got service.OrderTable, user int64, key string) (service.Order, error) {
			if got != at || user != 159 || key != "k" {
				t.Errorf("%s: looked for user %d key %q in %+v, want %+v", v.Name, user, key, got, at)
			}
			return held, nil
		}
		o, err := w.placer.PlaceOrderOnce(ctx, v.Name, req, "k")
		if err != nil || o.ID != 77 || o.Version != v.Name {
			t.Errorf("%s: got %+v, %v; want the key's order 77", v.Name, o, err)
		}
		gaveBack := w.rec.Count("Ledger.GiveBack")
		if v.Path == service.ReserveFirst && gaveBack != 1 || v.Path == service.InOneTransaction && gaveBack != 0 {
			t.Errorf("%s: %d give-backs; the reservation of a refused row goes back once, V1's was never taken", v.Name, gaveBack)
		}
		if n := w.rec.Count("Publish"); n != 0 {
			t.Errorf("%s: %d publishes of a row the database refused", v.Name, n)
		}
	}
}
