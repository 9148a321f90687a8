// Package ordering places orders through the versions of the architecture
// and remembers the answer given to each idempotency key.
package ordering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/localshare"
	"github.com/go-seckill/seckill/service/soldout"
)

// Ledger moves the stock an order takes.
type Ledger interface {
	Reserve(ctx context.Context, o service.Order) error
	SellInOneTransaction(ctx context.Context, o service.Order) error
	SettleFailedWrite(ctx context.Context, o service.Order, at service.OrderTable, err error) error
	GiveBack(ctx context.Context, o service.Order)
	AfterReserve(ctx context.Context) (context.Context, context.CancelFunc)
	WriteWithin(ctx context.Context) (context.Context, context.CancelFunc)
}

// Orders stores order rows.
type Orders interface {
	InsertOrder(ctx context.Context, o service.Order, at service.OrderTable) error
	// VoidOrder fences an order whose write had an unknown outcome with a
	// void row under its id; status is the row's status afterwards (void
	// when fenced, by this call or another).
	VoidOrder(ctx context.Context, at service.OrderTable, o service.Order) (voided bool, status int, err error)
	// OrderByKey finds the user's order placed under an idempotency key in
	// table at; ErrNotFound when there is none.
	OrderByKey(ctx context.Context, at service.OrderTable, userID int64, key string) (service.Order, error)
}

// Publisher sends stock messages to the queue.
type Publisher interface {
	// Publish sends m to nsqd number route modulo their count, and to the
	// others in turn when that one fails.
	Publish(ctx context.Context, m service.StockMessage, route int64) error
}

// Prices tells one unit of goods' price in cents; ErrNotFound for unknown
// goods. Prices never change, so it may answer from memory.
type Prices interface {
	Price(ctx context.Context, goodsID int64) (int64, error)
}

// IDs makes order ids that grow with time.
type IDs interface{ NewID() int64 }

// Checks follow an order's stock message with a delayed check of its
// decrement (V10's double check).
type Checks interface {
	Schedule(ctx context.Context, m service.StockMessage, route int64)
}

// Options tune the placement of orders.
type Options struct {
	MaxNumber  int64          // most units one order may take
	Layout     service.Layout // order tables and hosts
	PayTimeout time.Duration  // how long an order may stay unpaid
	// CachedGoods answers the goods checks of the versions that take them
	// from the goods cache (Version.CachedGoods); nil: they use Prices.
	CachedGoods Prices
	// Checks schedules the double check of versions that have one; nil:
	// those versions sell without it, the outbox sweep alone delivering.
	Checks Checks
}

// Placer places orders.
type Placer struct {
	ledger   Ledger
	orders   Orders
	prices   Prices
	pub      Publisher
	ids      IDs
	outcomes Outcomes
	flags    *soldout.Flags
	opts     Options
	log      *slog.Logger
	commits  *committer         // nil until EnableGroupCommit
	admits   Admission          // nil until EnableReservations
	accepts  *accepter          // nil until EnableAsyncAccept
	shares   *localshare.Shares // nil until EnableLocalShare
}

// Admission says whether a reservation sale admits a user's order.
type Admission interface {
	Admit(ctx context.Context, goodsID, userID int64) error
}

// EnableReservations lets the versions that sell to reservers only ask a.
func (p *Placer) EnableReservations(a Admission) { p.admits = a }

// EnableLocalShare lets the versions that keep a local share of the stock
// (V15) sell through s; unwired, they sell without one.
func (p *Placer) EnableLocalShare(s *localshare.Shares) { p.shares = s }

// New wires a placer; flags are V6's sold-out flags of this instance.
func New(ledger Ledger, orders Orders, prices Prices, pub Publisher, ids IDs, outcomes Outcomes, flags *soldout.Flags, opts Options, log *slog.Logger) *Placer {
	return &Placer{ledger: ledger, orders: orders, prices: prices, pub: pub, ids: ids, outcomes: outcomes, flags: flags, opts: opts, log: log}
}

// PlaceOrder validates req and sells it through the named version.
func (p *Placer) PlaceOrder(ctx context.Context, version string, req service.OrderRequest) (service.Order, error) {
	v, err := p.check(version, req)
	if err != nil {
		return service.Order{}, err
	}
	return p.placeNew(ctx, v, req, "")
}

// check finds the version and validates the request.
func (p *Placer) check(version string, req service.OrderRequest) (service.Version, error) {
	v, ok := service.FindVersion(version)
	switch {
	case !ok:
		return v, fmt.Errorf("%w: order version %q", service.ErrNotFound, version)
	case req.UserID < 1:
		return v, service.Invalid("user_id must be a positive integer")
	case req.GoodsID < 1:
		return v, service.Invalid("goods_id must be a positive integer")
	case req.Number < 1 || req.Number > p.opts.MaxNumber:
		return v, service.Invalid("number must be between 1 and %d", p.opts.MaxNumber)
	}
	return v, nil
}

// placeNew gives a checked request its order id, amount and payment
// deadline and places it, under the idempotency key key when it has one. When the
// key's order is in the database already (Redis lost its record of the
// key), that order is the answer.
func (p *Placer) placeNew(ctx context.Context, v service.Version, req service.OrderRequest, key string) (service.Order, error) {
	price, err := p.pricesOf(v).Price(ctx, req.GoodsID)
	if err != nil {
		return service.Order{}, err
	}
	o := service.Order{ID: p.ids.NewID(), UserID: req.UserID, GoodsID: req.GoodsID, Number: req.Number, Amount: price * req.Number, Version: v.Name,
		PayDeadline: time.Now().Add(p.opts.PayTimeout).UTC().Truncate(time.Millisecond), Key: key}
	err = p.place(ctx, v, o)
	var held *heldKey
	switch {
	case errors.As(err, &held):
		return held.order, nil
	case err != nil:
		return service.Order{}, err
	}
	return o, nil
}

// heldKey carries the order found under the request's idempotency key.
type heldKey struct{ order service.Order }

func (h *heldKey) Error() string { return fmt.Sprintf("order %d holds the key", h.order.ID) }

// place runs version v's path for an order already validated and given
// its id.
func (p *Placer) place(ctx context.Context, v service.Version, o service.Order) error {
	if v.ReservedOnly {
		if p.admits == nil {
			return fmt.Errorf("%w: reservation sales are not wired", service.ErrUnavailable)
		}
		if err := p.admits.Admit(ctx, o.GoodsID, o.UserID); err != nil {
			return err
		}
	}
	if !v.SoldOutFlag {
		return p.shared(ctx, v, o)
	}
	set, gen := p.flags.Check(o.GoodsID)
	if set {
		return service.ErrSoldOut
	}
	err := p.shared(ctx, v, o)
	// A spent local share is no word from Redis: the next recompute may
	// grow it, and a flag would refuse buyers until its TTL.
	if errors.Is(err, service.ErrSoldOut) && !errors.Is(err, localshare.ErrShareSold) {
		p.flags.Set(o.GoodsID, gen)
	}
	return err
}

// shared sells o within this instance's share of the goods' stock when v
// keeps one: the unit is taken in memory before Redis is asked, and comes
// back to the share when the sale fails (Redis refused, the order's write
// failed and its units went back).
func (p *Placer) shared(ctx context.Context, v service.Version, o service.Order) error {
	if !v.LocalShare || p.shares == nil {
		return p.sell(ctx, v, o)
	}
	return p.shares.Sell(ctx, o.GoodsID, o.Number, func() error { return p.sell(ctx, v, o) })
}

func (p *Placer) sell(ctx context.Context, v service.Version, o service.Order) error {
	at := v.Place(o.UserID, p.opts.Layout)
	var err error
	if v.Path == service.InOneTransaction {
		err = p.ledger.SellInOneTransaction(ctx, o)
	} else {
		err = p.reserveFirst(ctx, v, o, at, v.Route(o.UserID))
		if err == nil && v.DoubleCheck && p.opts.Checks != nil {
			p.opts.Checks.Schedule(ctx, service.MessageOf(o, at), v.Route(o.UserID))
		}
	}
	if !errors.Is(err, service.ErrKeyHeld) {
		return err
	}
	// An order under this key is in the table: the database's record of the
	// key, for when Redis lost its own. Nothing of this attempt stands.
	held, err := p.orders.OrderByKey(ctx, at, o.UserID, o.Key)
	if err != nil {
		return err
	}
	held.Version = v.Name
	return &heldKey{order: held}
}

// reserveFirst reserves the units in Redis, writes the order where the
// version places it (alone, or in a batch with others when the version
// groups commits) and publishes its stock message to the nsqd its route
// picks; the consumer applies the decrement to MySQL.
func (p *Placer) reserveFirst(ctx context.Context, v service.Version, o service.Order, at service.OrderTable, route int64) error {
	if err := p.ledger.Reserve(ctx, o); err != nil {
		return err
	}
	ctx, cancel := p.ledger.AfterReserve(ctx)
	defer cancel()
	wctx, writeDone := p.ledger.WriteWithin(ctx)
	var err error
	published := false
	if v.GroupCommit && p.commits != nil && !at.Logical() {
		published, err = p.commits.write(wctx, o, at, route)
	} else {
		err = p.orders.InsertOrder(wctx, o, at)
	}
	writeDone()
	if errors.Is(err, service.ErrKeyHeld) {
		p.ledger.GiveBack(ctx, o) // the database refused the row: surely not written
		return err
	}
	if err != nil {
		if err = p.ledger.SettleFailedWrite(ctx, o, at, err); err != nil {
			return err
		}
	}
	if published {
		return nil // with its batch
	}
	// The order row is committed, so a failed publish loses nothing: the
	// outbox sweep finds the order without a stock log and publishes it.
	if err := p.pub.Publish(ctx, service.MessageOf(o, at), route); err != nil {
		p.log.Warn("publish failed; the outbox sweep will retry", "order_id", o.ID, "err", err)
	}
	return nil
}
