package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-seckill/seckill/service"
)

// Accepts keep the requests accepted by V13 and not yet written as orders
// beside the stock they hold (see service/accept.go).
type Accepts interface {
	// Accept reserves the request's units and records it in one step;
	// when its id is recorded already nothing moves and prior is its token.
	Accept(ctx context.Context, t service.Token, a service.Accepted) (prior string, err error)
	// AcceptStates is each request's record while pending, or its
	// failure, in one round trip.
	AcceptStates(ctx context.Context, ts []service.Token) ([]service.AcceptState, error)
	// SettleAccepted takes the records off once their orders are written.
	SettleAccepted(ctx context.Context, ts []service.Token, as []service.Accepted) error
	// FailAccepted records the failure and gives the units back if the
	// record holds them.
	FailAccepted(ctx context.Context, t service.Token, n int64, reason string) (gave bool, err error)
	// AcceptedRecords streams the goods' pending requests, a chunk at a time.
	AcceptedRecords(ctx context.Context, goodsID int64, each func([]service.Accepted) error) error
	// AcceptedUnits is the units pending per goods that has any.
	AcceptedUnits(ctx context.Context, goodsIDs []int64) (map[int64]int64, error)
	// Held is the stock Redis holds for the truth: on sale plus accepted.
	Held(ctx context.Context, goodsID int64) (int64, bool, error)
}

// Accept takes the request's units from the Redis gate and records the
// request beside them, as Reserve does for an order.
func (l *Ledger) Accept(ctx context.Context, t service.Token, a service.Accepted) (string, error) {
	if l.accepts == nil {
		return "", fmt.Errorf("%w: async accept is not wired", service.ErrUnavailable)
	}
	prior, err := l.accepts.Accept(ctx, t, a)
	for range pulls {
		if !errors.Is(err, service.ErrStockSplit) {
			break
		}
		// The hash, where a request's record lives beside its units, is
		// short and the goods is split: units come from a bucket into the
		// hash, and the request is accepted from there. Another buyer may
		// take them first, which is a sale all the same; the pull itself
		// answers sold out once the buckets and the hash are empty.
		if err = l.pull(ctx, t, a.Number); err == nil {
			prior, err = l.accepts.Accept(ctx, t, a)
		}
	}
	switch {
	case errors.Is(err, service.ErrStockNotLoaded):
		return "", l.stockNotLoaded(ctx, t.GoodsID)
	case errors.Is(err, service.ErrStockSplit):
		// Others kept taking the units pulled: busy, not sold out (which
		// would set the sold-out flags).
		return "", fmt.Errorf("%w: units of split goods %d kept going to others", service.ErrUnavailable, t.GoodsID)
	}
	return prior, err
}

// pulls bounds the rounds of an accept of a split goods that brings units
// from its buckets into the hash; each round lost is a unit sold to
// another buyer.
const pulls = 64

// pull moves n units of split goods from its buckets to its hash, as a
// reservation and its give-back would.
func (l *Ledger) pull(ctx context.Context, t service.Token, n int64) error {
	o := service.Order{GoodsID: t.GoodsID, UserID: t.UserID, Number: n}
	if err := l.reserve(ctx, o, false); err != nil {
		return err
	}
	return l.gate.Release(ctx, t.GoodsID, t.UserID, n)
}

// AcceptStates tells where the requests stand in Redis.
func (l *Ledger) AcceptStates(ctx context.Context, ts []service.Token) ([]service.AcceptState, error) {
	return l.accepts.AcceptStates(ctx, ts)
}

// SettleAccepted marks the requests written: their units stay sold, now
// counted by their orders.
func (l *Ledger) SettleAccepted(ctx context.Context, ts []service.Token, as []service.Accepted) error {
	return l.accepts.SettleAccepted(ctx, ts, as)
}

// FailAccepted ends a request that will never be an order and puts its
// units back on sale, telling every instance.
func (l *Ledger) FailAccepted(ctx context.Context, t service.Token, n int64, reason string) error {
	gave, err := l.accepts.FailAccepted(ctx, t, n, reason)
	if gave {
		l.stockIsBack(ctx, t.GoodsID)
	}
	return err
}

// AcceptedRecords streams goods' pending requests.
func (l *Ledger) AcceptedRecords(ctx context.Context, goodsID int64, each func([]service.Accepted) error) error {
	return l.accepts.AcceptedRecords(ctx, goodsID, each)
}

// AcceptedUnits is the units pending per goods that has any.
func (l *Ledger) AcceptedUnits(ctx context.Context, goodsIDs []int64) (map[int64]int64, error) {
	return l.accepts.AcceptedUnits(ctx, goodsIDs)
}

// Stock is, for the reconciliation, the stock Redis holds for the truth:
// the units on sale and those of requests accepted but not yet written,
// which the truth does not count until their orders are. The repair's
// compare reads the same sum.
//
// A split goods' buckets and allotments in flight are added (see
// splitHeld), after the allotments a process left half-done are completed.
func (l *Repairs) Stock(ctx context.Context, goodsID int64) (int64, bool, error) {
	held, ok, err := l.hashHeld(ctx, goodsID)
	if err != nil || !ok {
		return held, ok, err
	}
	split, err := l.splitHeld(ctx, goodsID, true)
	return held + split, true, err
}

// hashHeld is the stock goods' hash holds for the truth.
func (l *core) hashHeld(ctx context.Context, goodsID int64) (int64, bool, error) {
	if l.accepts == nil {
		return l.gate.Stock(ctx, goodsID)
	}
	return l.accepts.Held(ctx, goodsID)
}

// userUnits streams each buyer's units the buyers hash should hold: those
// of live orders, and those of requests accepted but not yet written.
func (l *core) userUnits(ctx context.Context, goodsID int64, each func(userID, units int64) error) error {
	if err := l.truths.UserUnits(ctx, goodsID, each); err != nil || l.accepts == nil {
		return err
	}
	return l.accepts.AcceptedRecords(ctx, goodsID, func(recs []service.Accepted) error {
		for _, a := range recs {
			t, err := service.ParseToken(a.Token)
			if err != nil {
				continue
			}
			if err := each(t.UserID, a.Number); err != nil {
				return err
			}
		}
		return nil
	})
}
