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
	// Claim marks key as being served, storing pending for a short while.
	// When it was claimed before, claimed is false and prev holds what the
	// key stores.
	Claim(ctx context.Context, key string, pending []byte) (prev []byte, claimed bool, err error)
	// Reclaim claims key again, storing pending, only if it still stores
	// prev: of retries racing to serve a key afresh, one wins.
	Reclaim(ctx context.Context, key string, prev, pending []byte) (bool, error)
	Settle(ctx context.Context, key string, outcome []byte) error
	Forget(ctx context.Context, key string) error
	// Get is what key stores; nil when nothing.
	Get(ctx context.Context, key string) ([]byte, error)
}

// MaxIdempotencyKeyLen bounds the Idempotency-Key header.
const MaxIdempotencyKeyLen = 128

// maxRounds bounds how often one request reads a key's outcome again after
// it changed under it.
const maxRounds = 3

// outcome is what is stored per key: the request it answers, and the order
// or the refusal, or Pending while the first request is served. An order
// whose write may or may not have committed is stored with Unknown, so that
// a retry can look it up.
type outcome struct {
	Request request             `json:"request"`
	Pending bool                `json:"pending,omitempty"`
	Order   *service.Order      `json:"order,omitempty"`
	Error   string              `json:"error,omitempty"`
	Unknown bool                `json:"unknown,omitempty"`
	At      *service.OrderTable `json:"at,omitempty"`
}

// request is what a key's requests must agree on (the key is the user's).
type request struct {
	Version string `json:"version"`
	GoodsID int64  `json:"goods_id"`
	Number  int64  `json:"number"`
}

func requestOf(v service.Version, req service.OrderRequest) request {
	return request{Version: v.Name, GoodsID: req.GoodsID, Number: req.Number}
}

// settledErrors are the refusals that stay true on a retry. Sold out and
// not started change when stock comes back or the sale opens, and an
// unknown goods id may be created later: those, and anything else (a
// dependency down), are forgotten so that the retry is served afresh.
var settledErrors = map[string]error{"ended": service.ErrEnded}

// PlaceOrderOnce is PlaceOrder under an idempotency key, scoped to the user:
// the same key gets the same order or the same refusal, never a second
// order; the key reused for another request is refused.
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
	scoped := scopedKey(req.UserID, key)
	this := requestOf(v, req)
	pending, _ := json.Marshal(outcome{Request: this, Pending: true})
	prev, claimed, err := p.outcomes.Claim(ctx, scoped, pending)
	for round := 1; ; round++ {
		switch {
		case err != nil:
			return service.Order{}, err
		case claimed:
			return p.placeClaimed(ctx, v, req, key, scoped, this)
		case round > maxRounds:
			// The key's answer keeps changing under this request.
			return service.Order{}, service.ErrInProgress
		}
		o, rerr := p.replay(ctx, prev, this)
		if !errors.Is(rerr, errRetryAfresh) {
			return o, rerr
		}
		// The stored outcome stands for no order: serve the key afresh,
		// unless another retry got there first.
		claimed, err = p.outcomes.Reclaim(ctx, scoped, prev, pending)
		if err == nil && !claimed {
			prev, claimed, err = p.outcomes.Claim(ctx, scoped, pending)
		}
	}
}

// PriorOrder is the order a key was already answered with for req, when
// it was. The edge's limits refuse from what they remember of a goods (a
// stock gate closed), which is no answer for a retry whose first attempt
// was sold an order, its answer perhaps lost: the handler asks here first.
// Anything else the key stores (pending, a refusal, a write of unknown
// outcome) is found false, and the request goes the usual way.
func (p *Placer) PriorOrder(ctx context.Context, version string, req service.OrderRequest, key string) (service.Order, bool, error) {
	v, err := p.check(version, req)
	if err != nil || key == "" || len(key) > MaxIdempotencyKeyLen {
		return service.Order{}, false, nil
	}
	stored, err := p.outcomes.Get(ctx, scopedKey(req.UserID, key))
	if err != nil || stored == nil {
		return service.Order{}, false, err
	}
	var out outcome
	if err := json.Unmarshal(stored, &out); err != nil {
		return service.Order{}, false, nil // PlaceOrderOnce says what is wrong with it
	}
	if out.Order == nil || out.Pending || out.Unknown || out.Request != requestOf(v, req) {
		return service.Order{}, false, nil
	}
	return *out.Order, true, nil
}

// placeClaimed places the order of a key this request claimed and stores
// the answer, unless it may change on a retry.
func (p *Placer) placeClaimed(ctx context.Context, v service.Version, req service.OrderRequest, key, scoped string, this request) (service.Order, error) {
	o, err := p.placeNew(ctx, v, req, key)
	ctx, cancel := p.ledger.AfterReserve(ctx)
	defer cancel()
	out := outcome{Request: this}
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

func (p *Placer) replay(ctx context.Context, prev []byte, this request) (service.Order, error) {
	var out outcome
	if err := json.Unmarshal(prev, &out); err != nil {
		return service.Order{}, fmt.Errorf("stored outcome: %w", err)
	}
	switch {
	case out.Request != this && out.Request != (request{}):
		// (An answer stored before requests were recorded has none.)
		return service.Order{}, service.ErrKeyMismatch
	case out.Pending:
		return service.Order{}, service.ErrInProgress
	case out.Unknown && out.Order != nil && out.At != nil:
		return p.settleUnknown(ctx, *out.Order, *out.At)
	case out.Order != nil:
		return *out.Order, nil
	}
	if err, ok := settledErrors[out.Error]; ok {
		return service.Order{}, err
	}
	return service.Order{}, fmt.Errorf("stored outcome %q", out.Error)
}

// settleUnknown learns whether an order whose write had an unknown outcome
// exists. "Not found" is no proof (the server may still finish the write),
// so the order is fenced with a void row first: once fenced it never will
// exist, and the key may place another. Its reserved units are left to the
// reconciliation, which gives back reservations with no order: giving them
// back here too would count them twice.
func (p *Placer) settleUnknown(ctx context.Context, o service.Order, at service.OrderTable) (service.Order, error) {
	ctx, cancel := p.ledger.WriteWithin(ctx)
	defer cancel()
	_, status, err := p.orders.VoidOrder(ctx, at, o)
	switch {
	case err != nil:
		return service.Order{}, err
	case status == service.StatusVoid:
		return service.Order{}, errRetryAfresh
	}
	return o, nil
}

// scopedKey is a user's idempotency key as stored: each user's keys are
// their own.
func scopedKey(userID int64, key string) string { return fmt.Sprintf("%d:%s", userID, key) }
