package ordering

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-seckill/seckill/service"
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

// MaxIdempotencyKeyLen bounds the Idempotency-Key header.
const MaxIdempotencyKeyLen = 128

// maxClaims bounds how often one request claims its key afresh after a
// stored outcome turned out to stand for no order.
const maxClaims = 3

// outcome is what is stored per key: the order, or the error's code. An
// order whose write may or may not have committed is stored with Unknown
// and where it would be, so that a retry can look it up.
type outcome struct {
	Order   *service.Order      `json:"order,omitempty"`
	Error   string              `json:"error,omitempty"`
	Unknown bool                `json:"unknown,omitempty"`
	At      *service.OrderTable `json:"at,omitempty"`
}

// settledErrors are the answers that stay true on a retry; anything else
// (a dependency down) is forgotten so the retry is served afresh.
var settledErrors = map[string]error{
	"sold_out": service.ErrSoldOut, "not_started": service.ErrNotStarted, "ended": service.ErrEnded, "not_found": service.ErrNotFound,
}

// PlaceOrderOnce is PlaceOrder under an idempotency key, scoped to the user:
// the same key gets the same order or the same refusal, never a second order.
func (p *Placer) PlaceOrderOnce(ctx context.Context, version string, req service.OrderRequest, key string) (service.Order, error) {
	if key == "" {
		return p.PlaceOrder(ctx, version, req)
	}
	v, err := p.check(version, req)
	if err != nil {
		return service.Order{}, err
	}
	if len(key) > MaxIdempotencyKeyLen {
		return service.Order{}, service.Invalid("Idempotency-Key must have at most %d characters", MaxIdempotencyKeyLen)
	}
	scoped := fmt.Sprintf("%d:%s", req.UserID, key)
	for range maxClaims {
		prev, claimed, err := p.outcomes.Claim(ctx, scoped)
		if err != nil {
			return service.Order{}, err
		}
		if claimed {
			return p.placeClaimed(ctx, v, req, scoped)
		}
		o, err := p.replay(ctx, prev)
		if !errors.Is(err, errRetryAfresh) {
			return o, err
		}
		if err := p.outcomes.Forget(ctx, scoped); err != nil {
			return service.Order{}, err
		}
	}
	return service.Order{}, service.ErrInProgress
}

// placeClaimed places the order of a key this request claimed and stores
// the answer, unless it may change on a retry.
func (p *Placer) placeClaimed(ctx context.Context, v service.Version, req service.OrderRequest, scoped string) (service.Order, error) {
	o, err := p.placeNew(ctx, v, req)
	ctx, cancel := p.ledger.AfterReserve(ctx)
	defer cancel()
	var out outcome
	var unknown *service.UnknownOrder
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
		if ferr := p.outcomes.Forget(ctx, scoped); ferr != nil {
			p.log.Warn("forget idempotency key", "err", ferr)
		}
		return o, err
	}
	b, _ := json.Marshal(out)
	if serr := p.outcomes.Settle(ctx, scoped, b); serr != nil {
		p.log.Warn("store idempotent outcome", "err", serr)
	}
	return o, err
}

// errRetryAfresh: the stored outcome was an order that was never written.
var errRetryAfresh = errors.New("retry afresh")

func (p *Placer) replay(ctx context.Context, prev []byte) (service.Order, error) {
	if len(prev) == 0 {
		return service.Order{}, service.ErrInProgress
	}
	var out outcome
	if err := json.Unmarshal(prev, &out); err != nil {
		return service.Order{}, fmt.Errorf("stored outcome: %w", err)
	}
	if out.Unknown && out.Order != nil && out.At != nil {
		// Whether the order was written was unknown: look it up now.
		_, _, err := p.orders.OrderStatus(ctx, *out.At, out.Order.ID)
		switch {
		case errors.Is(err, service.ErrNotFound):
			return service.Order{}, errRetryAfresh
		case err != nil:
			return service.Order{}, err
		}
	}
	if out.Order != nil {
		return *out.Order, nil
	}
	if err, ok := settledErrors[out.Error]; ok {
		return service.Order{}, err
	}
	return service.Order{}, fmt.Errorf("stored outcome %q", out.Error)
}
