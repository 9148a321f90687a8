package ordering

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	}
	if out := storedOutcome(t, w, "42:k1"); out.Order == nil || !sameOrder(*out.Order, first) || out.Unknown {
		t.Errorf("stored %+v, want the order", out)
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
	if _, claimed, _ := w.outcomes.Claim(ctx, "7:k"); !claimed {
		t.Fatal("could not claim")
	}
	_, err := w.placer.PlaceOrderOnce(ctx, "V6", service.OrderRequest{UserID: 7, GoodsID: 3, Number: 1}, "k")
	if err != service.ErrInProgress {
		t.Errorf("got %v, want in progress", err)
	}
	if got := w.rec.Only(append(sellCalls, "Outcomes.Forget", "Outcomes.Settle")...); len(got) != 0 {
		t.Errorf("calls %v, want none: the claim is another request's", got)
	}
	if b, ok := w.outcomes.Stored("7:k"); !ok || len(b) != 0 {
		t.Errorf("the pending claim became %q (present %v)", b, ok)
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

// Refusals that stay true are stored and replayed without placing again.
func TestSettledRefusalsAreReplayed(t *testing.T) {
	t.Parallel()
	for code, refusal := range map[string]error{
		"sold_out": service.ErrSoldOut, "not_started": service.ErrNotStarted,
		"ended": service.ErrEnded, "not_found": service.ErrNotFound,
	} {
		t.Run(code, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.ledger.ReserveFn = func(context.Context, service.Order) error { return fmt.Errorf("goods 3: %w", refusal) }
			req := service.OrderRequest{UserID: 4, GoodsID: 3, Number: 1}
			for i := range 3 {
				if _, err := w.placer.PlaceOrderOnce(ctx, "V5", req, "k"); !errors.Is(err, refusal) {
					t.Errorf("request %d: %v, want %v", i, err, refusal)
				}
			}
			if n := w.rec.Count("Ledger.Reserve"); n != 1 {
				t.Errorf("%d reservations, want 1", n)
			}
			if n := w.rec.Count("Outcomes.Forget"); n != 0 {
				t.Errorf("the key was forgotten %d times", n)
			}
			if out := storedOutcome(t, w, "4:k"); out.Error != code || out.Order != nil {
				t.Errorf("stored %+v, want error %q", out, code)
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

// An order whose write may or may not have committed is stored as unknown
// with where it would be; a retry looks it up.
func TestUnknownOrderIsLookedUpOnRetry(t *testing.T) {
	t.Parallel()
	req := service.OrderRequest{UserID: 159, GoodsID: 3, Number: 1}
	at := service.OrderTable{Host: 2, Table: 16}
	errDown := fmt.Errorf("lookup: %w", service.ErrUnavailable)
	// unknownFirst makes the first insert's outcome unknown; later ones succeed.
	unknownFirst := func(t *testing.T) (*world, service.Order) {
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
		out := storedOutcome(t, w, "159:k")
		if !out.Unknown || out.At == nil || *out.At != at || out.Order == nil || !sameOrder(*out.Order, unknown.Order) {
			t.Fatalf("stored %+v, want order 1 unknown at %+v", out, at)
		}
		return w, unknown.Order
	}

	t.Run("found", func(t *testing.T) {
		t.Parallel()
		w, first := unknownFirst(t)
		w.orders.OrderStatusFn = func(context.Context, service.OrderTable, int64) (int, int64, error) {
			return service.StatusUnpaid, 159, nil
		}
		o, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k")
		if err != nil || !sameOrder(o, first) {
			t.Errorf("got %+v, %v, want the first order %+v", o, err, first)
		}
		if look := w.rec.Of("Orders.OrderStatus"); len(look) != 1 || look[0][0] != at || look[0][1] != int64(1) {
			t.Errorf("looked up %v, want order 1 at %+v", look, at)
		}
		if n := w.rec.Count("Ledger.Reserve"); n != 1 {
			t.Errorf("%d reservations, want 1", n)
		}
	})
	t.Run("not found", func(t *testing.T) {
		t.Parallel()
		w, first := unknownFirst(t)
		w.orders.OrderStatusFn = func(context.Context, service.OrderTable, int64) (int, int64, error) {
			return 0, 0, service.ErrNotFound
		}
		o, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k")
		if err != nil || o.ID == first.ID || o.ID != 2 {
			t.Fatalf("got %+v, %v, want a new order 2", o, err)
		}
		if n := w.rec.Count("Ledger.Reserve"); n != 2 {
			t.Errorf("%d reservations, want 2", n)
		}
		if out := storedOutcome(t, w, "159:k"); out.Unknown || out.Order == nil || out.Order.ID != 2 {
			t.Errorf("stored %+v, want order 2", out)
		}
		if again, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); err != nil || !sameOrder(again, o) {
			t.Errorf("next retry: %+v, %v, want order 2", again, err)
		}
		if n := w.rec.Count("Orders.OrderStatus"); n != 1 {
			t.Errorf("%d lookups, want 1: order 2 is known", n)
		}
	})
	t.Run("lookup error", func(t *testing.T) {
		t.Parallel()
		w, _ := unknownFirst(t)
		w.orders.OrderStatusFn = func(context.Context, service.OrderTable, int64) (int, int64, error) {
			return 0, 0, errDown
		}
		if _, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); err != errDown {
			t.Errorf("got %v, want the lookup's error", err)
		}
		if n := w.rec.Count("Ledger.Reserve"); n != 1 {
			t.Errorf("%d reservations, want 1", n)
		}
		if out := storedOutcome(t, w, "159:k"); !out.Unknown {
			t.Errorf("stored %+v, want the unknown order kept for the next retry", out)
		}
	})
}

// A store that keeps answering "unknown, not found" to every claim ends the
// request with an error after a few rounds.
func TestClaimLoopIsBounded(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	blob, _ := json.Marshal(outcome{Order: &service.Order{ID: 77, UserID: 5}, Unknown: true, At: &service.OrderTable{Table: 1}})
	w.outcomes.ClaimFn = func(context.Context, string) ([]byte, bool, error) { return blob, false, nil }
	w.outcomes.ForgetFn = func(context.Context, string) error { return nil }
	w.orders.OrderStatusFn = func(context.Context, service.OrderTable, int64) (int, int64, error) {
		return 0, 0, service.ErrNotFound
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
	if n := w.rec.Count("Outcomes.Claim"); n != maxClaims {
		t.Errorf("%d claims, want %d", n, maxClaims)
	}
	if got := w.rec.Only(sellCalls...); len(got) != 0 {
		t.Errorf("calls %v, want no placement", got)
	}
}

// The store of outcomes failing: a failed claim places nothing; a failed
// settle still answers the order placed.
func TestOutcomeStoreFailures(t *testing.T) {
	t.Parallel()
	req := service.OrderRequest{UserID: 5, GoodsID: 3, Number: 1}

	w := newWorld(t)
	w.outcomes.ClaimFn = func(context.Context, string) ([]byte, bool, error) { return nil, false, service.ErrUnavailable }
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
	w.outcomes.ClaimFn = func(context.Context, string) ([]byte, bool, error) { return []byte("{"), false, nil }
	if _, err := w.placer.PlaceOrderOnce(ctx, "V6", req, "k"); err == nil {
		t.Error("a stored outcome that does not decode was answered as an order")
	}
	if got := w.rec.Only(sellCalls...); len(got) != 0 {
		t.Errorf("undecodable outcome: calls %v, want none", got)
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
