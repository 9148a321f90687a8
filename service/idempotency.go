package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Outcomes remembers the answer given to each idempotency key, so a client
// retrying a request gets the same answer instead of a second order.
type Outcomes interface {
	// Claim marks key as being served. When it was claimed before, claimed
	// is false and prev holds the stored outcome (empty while still pending).
	Claim(ctx context.Context, key string) (prev []byte, claimed bool, err error)
	Settle(ctx context.Context, key string, outcome []byte) error
	Forget(ctx context.Context, key string) error
}

// ErrInProgress: a request with the same idempotency key is being served.
var ErrInProgress = errors.New("a request with this idempotency key is in progress")

// MaxIdempotencyKeyLen bounds the Idempotency-Key header.
const MaxIdempotencyKeyLen = 128

// outcome is what is stored per key: the order, or the error's code. An
// order whose write may or may not have committed is stored with Unknown
// and where it would be, so that a retry can look it up.
type outcome struct {
	Order   *Order      `json:"order,omitempty"`
	Error   string      `json:"error,omitempty"`
	Unknown bool        `json:"unknown,omitempty"`
	At      *OrderTable `json:"at,omitempty"`
}

// settledErrors are the answers that stay true on a retry; anything else
// (a dependency down) is forgotten so the retry is served afresh.
var settledErrors = map[string]error{
	"sold_out": ErrSoldOut, "not_started": ErrNotStarted, "ended": ErrEnded, "not_found": ErrNotFound,
}

// PlaceOrderOnce is PlaceOrder under an idempotency key, scoped to the user:
// the same key gets the same order or the same refusal, never a second order.
func (s *Service) PlaceOrderOnce(ctx context.Context, version string, req OrderRequest, key string) (Order, error) {
	if key == "" {
		return s.PlaceOrder(ctx, version, req)
	}
	if err := s.validate(req); err != nil {
		return Order{}, err
	}
	if len(key) > MaxIdempotencyKeyLen {
		return Order{}, invalid("Idempotency-Key must have at most %d characters", MaxIdempotencyKeyLen)
	}
	scoped := fmt.Sprintf("%d:%s", req.UserID, key)
	prev, claimed, err := s.outcomes.Claim(ctx, scoped)
	if err != nil {
		return Order{}, err
	}
	if !claimed {
		o, err := s.replay(ctx, prev)
		if errors.Is(err, errRetryAfresh) {
			if err := s.outcomes.Forget(ctx, scoped); err != nil {
				return Order{}, err
			}
			return s.PlaceOrderOnce(ctx, version, req, key)
		}
		return o, err
	}
	o, err := s.PlaceOrder(ctx, version, req)
	ctx, cancel := afterReserve(ctx)
	defer cancel()
	var out outcome
	var unknown *UnknownOrder
	switch {
	case err == nil:
		out.Order = &o
	case errors.As(err, &unknown):
		out.Order, out.At, out.Unknown = &unknown.Order, &unknown.At, true
	default:
		for code, known := range settledErrors {
			if errors.Is(err, known) {
				out.Error = code
			}
		}
	}
	if out.Order == nil && out.Error == "" {
		if ferr := s.outcomes.Forget(ctx, scoped); ferr != nil {
			s.log.Warn("forget idempotency key", "err", ferr)
		}
		return o, err
	}
	b, _ := json.Marshal(out)
	if serr := s.outcomes.Settle(ctx, scoped, b); serr != nil {
		s.log.Warn("store idempotent outcome", "err", serr)
	}
	return o, err
}

// errRetryAfresh: the stored outcome was an order that was never written.
var errRetryAfresh = errors.New("retry afresh")

func (s *Service) replay(ctx context.Context, prev []byte) (Order, error) {
	if len(prev) == 0 {
		return Order{}, ErrInProgress
	}
	var out outcome
	if err := json.Unmarshal(prev, &out); err != nil {
		return Order{}, fmt.Errorf("stored outcome: %w", err)
	}
	if out.Unknown && out.Order != nil && out.At != nil {
		// Whether the order was written was unknown: look it up now.
		_, _, err := s.goods.OrderStatus(ctx, *out.At, out.Order.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			return Order{}, errRetryAfresh
		case err != nil:
			return Order{}, err
		}
	}
	if out.Order != nil {
		return *out.Order, nil
	}
	if err, ok := settledErrors[out.Error]; ok {
		return Order{}, err
	}
	return Order{}, fmt.Errorf("stored outcome %q", out.Error)
}
