package service

import (
	"errors"
	"fmt"
)

// The errors callers branch on. Wrapped errors carry details for the client.
var (
	ErrInvalid    = errors.New("invalid request")
	ErrNotFound   = errors.New("not found")
	ErrSoldOut    = errors.New("sold out")
	ErrNotStarted = errors.New("sale not started")
	ErrEnded      = errors.New("sale ended")
	// ErrNotReserved: a reservation sale admits only its first reservers.
	ErrNotReserved = errors.New("not among the first reservers")
	// ErrReservationsClosed: the goods takes no reservations (its sale has
	// begun, or has no start time).
	ErrReservationsClosed = errors.New("reservations closed")
	ErrLimitExceeded      = errors.New("per-user limit exceeded")
	ErrOrderCancelled     = errors.New("order cancelled")
	ErrOrderExpired       = errors.New("payment deadline passed")
	// ErrOrderRefused: the database refused to apply the order's sale.
	ErrOrderRefused = errors.New("order refused: its stock could not be confirmed")
	// ErrOrderPending: the order's sale is not confirmed by the database yet.
	ErrOrderPending = errors.New("order not confirmed yet")
	// ErrKeyMismatch: an idempotency key was reused for another request.
	ErrKeyMismatch = errors.New("idempotency key used with another request")
	// ErrInProgress: a request with the same idempotency key is being served.
	ErrInProgress = errors.New("a request with this idempotency key is in progress")
	// ErrAmbiguous: a write failed in a way that leaves unknown whether it
	// committed (the connection broke after the statement was sent).
	ErrAmbiguous = errors.New("outcome unknown")
	// ErrNotYet: the work depends on something not done yet; try again later.
	ErrNotYet         = errors.New("not yet")
	ErrStockNotLoaded = errors.New("stock not loaded in redis")
	// ErrStockSplit: the goods hash holds too few units, and the goods'
	// stock is split over buckets that may hold more (V14).
	ErrStockSplit = errors.New("stock split over buckets")
	// ErrNotSplittable: goods with a per-user limit are never split.
	ErrNotSplittable = errors.New("goods with a per-user limit are not split")
	// ErrNotSplit: the goods' stock is not split over buckets.
	ErrNotSplit    = errors.New("goods not split")
	ErrUnavailable = errors.New("dependency unavailable")
	// ErrMoving: the user's V7 logical database is frozen while it moves to
	// another host, for longer than a write waits; retry in a moment.
	ErrMoving = errors.New("the user's orders are moving to another host")
	// ErrAlreadyApplied: the order's stock log exists; the decrement is done.
	ErrAlreadyApplied = errors.New("stock already applied")
	// ErrStray: a message names no order as it describes it. Its letter
	// must not mark any order settled: the real order, if any, is found
	// and published again by the outbox sweep.
	ErrStray = errors.New("stray message")
	// ErrKeyHeld: an order placed under the same idempotency key by the same
	// user is in the table already.
	ErrKeyHeld = errors.New("an order holds this idempotency key")
	// ErrNotReplayable: a dead letter that is resolved, or names no topic,
	// cannot be replayed.
	ErrNotReplayable = errors.New("dead letter cannot be replayed")
	// ErrDuplicate: a unique key (an admin op id) was used before.
	ErrDuplicate = errors.New("duplicate")

	// The coupon domain's refusals.
	ErrOutOfStock      = errors.New("no coupon of this template is left")
	ErrCouponUsed      = errors.New("coupon used for another order")
	ErrCouponExpired   = errors.New("coupon expired")
	ErrThresholdNotMet = errors.New("order amount below the coupon's threshold")
	// ErrSlotTaken: another claim of the same user took the per-user-limit
	// slot a coupon row asked for.
	ErrSlotTaken = errors.New("per-user slot taken")
)

// Invalid is ErrInvalid with a sentence for the client.
func Invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// UnknownOrder is the error of an order whose row may or may not have been
// written: its units stay reserved (the outbox sweep publishes the order if
// it exists; the reconciliation gives the units back if not), and a retry
// under the same idempotency key looks the order up.
type UnknownOrder struct {
	Order Order
	At    OrderTable
	Err   error
}

func (e *UnknownOrder) Error() string { return fmt.Sprintf("order %d: %v", e.Order.ID, e.Err) }
func (e *UnknownOrder) Unwrap() error { return e.Err }
