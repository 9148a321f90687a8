package ordering

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-seckill/seckill/service"
)

// Async accept and poll: the versions that declare AsyncAccept answer an
// order request with a token once its units are reserved and the request
// is on nsqd; WriteAccepted, fed by the accept topic's consumer, turns
// requests into orders in batches; RescueAccepted writes those whose
// message was lost; Acceptance tells the client where its token stands.
// (The promise and the two places a request lives: service/accept.go.)

// AcceptLedger moves the stock of accepted requests (package ledger).
type AcceptLedger interface {
	Accept(ctx context.Context, t service.Token, a service.Accepted) (prior string, err error)
	AcceptStates(ctx context.Context, ts []service.Token) ([]service.AcceptState, error)
	SettleAccepted(ctx context.Context, ts []service.Token, as []service.Accepted) error
	FailAccepted(ctx context.Context, t service.Token, n int64, reason string) error
	AcceptedRecords(ctx context.Context, goodsID int64, each func([]service.Accepted) error) error
	AcceptedUnits(ctx context.Context, goodsIDs []int64) (map[int64]int64, error)
	// ApplySales applies orders' decrements to MySQL, each exactly once,
	// as the stock consumer does, and says how each went.
	ApplySales(ctx context.Context, ms []service.StockMessage) []error
}

// AcceptPublisher sends accepted requests to the writers.
type AcceptPublisher interface {
	PublishAccepted(ctx context.Context, a service.Accepted) error
}

// AcceptOptions tune async accept.
type AcceptOptions struct {
	// PollAfter is how long a client should wait between polls.
	PollAfter time.Duration
	// RescueAfter is how old a pending request must be before the sweep
	// writes it from its Redis record: its message is then taken as lost.
	RescueAfter time.Duration
	// MaxAge is how long a request may wait for its order when Redis has
	// lost its record: a message older than that fails as expired instead
	// of reserving its units again (its failure's record would be gone).
	MaxAge time.Duration
}

type accepter struct {
	ledger AcceptLedger
	pub    AcceptPublisher
	batch  BatchOrders
	stock  BatchPublisher
	opts   AcceptOptions
}

// EnableAsyncAccept lets the versions that declare AsyncAccept take
// requests; without it they answer 503.
func (p *Placer) EnableAsyncAccept(l AcceptLedger, pub AcceptPublisher, orders BatchOrders, stock BatchPublisher, opts AcceptOptions) {
	p.accepts = &accepter{ledger: l, pub: pub, batch: orders, stock: stock, opts: opts}
}

// asyncVersion is the version named, which must accept asynchronously.
func (p *Placer) asyncVersion(version string, req service.OrderRequest) (service.Version, error) {
	v, err := p.check(version, req)
	switch {
	case err != nil:
		return v, err
	case !v.AsyncAccept:
		return v, fmt.Errorf("%w: %s does not accept asynchronously", service.ErrNotFound, version)
	case p.accepts == nil:
		return v, fmt.Errorf("%w: async accept is not wired", service.ErrUnavailable)
	}
	return v, nil
}

// Accept reserves req's units, records the request beside them and hands
// it to the writers; the answer is its token, pending. Under an
// idempotency key the same request gets the same token.
func (p *Placer) Accept(ctx context.Context, version string, req service.OrderRequest, key string) (service.Acceptance, error) {
	v, err := p.asyncVersion(version, req)
	if err != nil {
		return service.Acceptance{}, err
	}
	if len(key) > MaxIdempotencyKeyLen {
		return service.Acceptance{}, service.Invalid("Idempotency-Key must have at most %d characters", MaxIdempotencyKeyLen)
	}
	// The flag answers only requests without a key: a retry under its key
	// must get its first answer (its token), which Redis keeps, even once
	// the goods has sold out.
	set, gen := p.flags.Check(req.GoodsID)
	if set && key == "" {
		return service.Acceptance{}, service.ErrSoldOut
	}
	if _, err := p.pricesOf(v).Price(ctx, req.GoodsID); err != nil {
		return service.Acceptance{}, err
	}
	t := service.Token{GoodsID: req.GoodsID, UserID: req.UserID, AcceptedAt: time.Now().UTC().Truncate(time.Millisecond), ID: p.tokenID(req, key)}
	a := service.Accepted{Token: t.String(), Number: req.Number, Route: v.Route(req.UserID)}
	prior, err := p.accepts.ledger.Accept(ctx, t, a)
	switch {
	case errors.Is(err, service.ErrSoldOut):
		p.flags.Set(req.GoodsID, gen)
		return service.Acceptance{}, err
	case errors.Is(err, service.ErrUnavailable):
		// Redis's answer was lost: the script may have run. Ending the
		// request makes the 503 true (a recorded one gives its units back
		// and is never written); when Redis cannot be told either, the
		// sweep may write it, which a retry under the same key finds.
		actx, cancel := p.ledger.AfterReserve(ctx)
		defer cancel()
		p.endUnavailable(actx, t, a, err)
		return service.Acceptance{}, err
	case err != nil:
		return service.Acceptance{}, err
	case prior != "":
		return p.pending(prior), nil // accepted before under this key
	}
	// Past the reservation the work goes on when the client hangs up, as
	// an order's does: the request is handed over or ended.
	ctx, cancel := p.ledger.AfterReserve(ctx)
	defer cancel()
	if err := p.accepts.pub.PublishAccepted(ctx, a); err != nil {
		// The request may be on nsqd after all (a reply lost): its
		// recorded failure makes the writer drop it.
		p.endUnavailable(ctx, t, a, err)
		return service.Acceptance{}, fmt.Errorf("%w: hand the request to the writers: %w", service.ErrUnavailable, err)
	}
	return p.pending(a.Token), nil
}

// endUnavailable ends a request answered 503 (cause): its units go back
// if Redis holds them, and its recorded failure makes any copy of it that
// reached nsqd be dropped. If even that cannot be recorded, the sweep may
// write its order from its record, which a retry under the same key finds.
func (p *Placer) endUnavailable(ctx context.Context, t service.Token, a service.Accepted, cause error) {
	if err := p.accepts.ledger.FailAccepted(ctx, t, a.Number, "unavailable"); err != nil {
		p.log.Warn("request answered 503 but not ended; the sweep may write its order", "token", a.Token, "err", cause, "fail", err)
	}
}

func (p *Placer) pending(token string) service.Acceptance {
	return service.Acceptance{Token: token, Status: service.AcceptPending, PollAfterMs: p.accepts.opts.PollAfter.Milliseconds()}
}

// tokenID is a new request's id: a fresh snowflake id, or under an
// idempotency key a digest of the key and the request's goods and buyer,
// so that a retry finds the first request.
func (p *Placer) tokenID(req service.OrderRequest, key string) string {
	if key == "" {
		return strconv.FormatInt(p.ids.NewID(), 10)
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%d|%d|%s", req.GoodsID, req.UserID, key))
	return "k" + hex.EncodeToString(sum[:20])
}

func (p *Placer) pricesOf(v service.Version) Prices {
	if v.CachedGoods && p.opts.CachedGoods != nil {
		return p.opts.CachedGoods
	}
	return p.prices
}

// Acceptance tells where the request of token stands: pending, ordered
// (with its order) or failed (with why). ErrNotFound for a token no
// request had, or one whose trace is gone.
func (p *Placer) Acceptance(ctx context.Context, version, token string) (service.Acceptance, error) {
	t, err := service.ParseToken(token)
	if err != nil {
		return service.Acceptance{}, err
	}
	v, err := p.asyncVersion(version, service.OrderRequest{UserID: t.UserID, GoodsID: t.GoodsID, Number: 1})
	if err != nil {
		return service.Acceptance{}, err
	}
	states, err := p.accepts.ledger.AcceptStates(ctx, []service.Token{t})
	switch {
	case err != nil:
		return service.Acceptance{}, err
	case states[0].Failure != "":
		return service.Acceptance{Token: token, Status: service.AcceptFailed, Reason: states[0].Failure}, nil
	case states[0].Pending != nil:
		return p.pending(token), nil
	}
	o, err := p.orders.OrderByKey(ctx, v.Place(t.UserID, p.opts.Layout), t.UserID, t.OrderKey())
	switch {
	case err == nil:
		o.Version = v.Name
		return service.Acceptance{Token: token, Status: service.AcceptOrdered, Order: &o}, nil
	case !errors.Is(err, service.ErrNotFound):
		return service.Acceptance{}, err
	case time.Since(t.AcceptedAt) < p.accepts.opts.MaxAge:
		// Redis lost its record; its message reserves it again.
		return p.pending(token), nil
	}
	return service.Acceptance{}, fmt.Errorf("%w: token %s", service.ErrNotFound, token)
}

// acceptedOrder is an accepted request ready to be written as an order.
type acceptedOrder struct {
	i     int // its index in the batch
	token service.Token
	a     service.Accepted
	order service.Order
}

// WriteAccepted turns accepted requests into orders of version, batched
// per order table, and says how each went: nil when it is settled
// (ordered, or failed with its units back), an error when it should be
// tried again; one wrapping ErrInvalid never gets better. Redis is read
// once for the whole batch and written once for the orders written.
func (p *Placer) WriteAccepted(ctx context.Context, version string, as []service.Accepted) []error {
	errs := make([]error, len(as))
	v, ok := service.FindVersion(version)
	if !ok || !v.AsyncAccept || p.accepts == nil {
		for i := range errs {
			errs[i] = fmt.Errorf("%w: %s does not accept asynchronously", service.ErrUnavailable, version)
		}
		return errs
	}
	var idx []int
	var tokens []service.Token
	for i, a := range as {
		t, err := service.ParseToken(a.Token)
		if err != nil || a.Number < 1 || a.Number > p.opts.MaxNumber {
			errs[i] = service.Invalid("accepted request %q of %d units", a.Token, a.Number)
			continue
		}
		idx, tokens = append(idx, i), append(tokens, t)
	}
	if len(tokens) == 0 {
		return errs
	}
	states, err := p.accepts.ledger.AcceptStates(ctx, tokens)
	if err != nil {
		for _, i := range idx {
			errs[i] = err
		}
		return errs
	}
	tables := map[service.OrderTable][]acceptedOrder{}
	for j, i := range idx {
		t, a := tokens[j], as[i]
		ready, err := p.prepareAccepted(ctx, v, t, a, states[j])
		if err != nil || !ready {
			errs[i] = err
			continue
		}
		o, err := p.acceptedOrder(ctx, v, t, a)
		if err != nil {
			errs[i] = err
			continue
		}
		at := v.Place(t.UserID, p.opts.Layout)
		tables[at] = append(tables[at], acceptedOrder{i: i, token: t, a: a, order: o})
	}
	var written []acceptedOrder
	var sales []service.StockMessage
	route := int64(-1)
	for at, batch := range tables {
		w, ms := p.writeAcceptedBatch(ctx, at, batch, errs)
		written, sales = append(written, w...), append(sales, ms...)
		if len(ms) > 0 && route < 0 {
			route = batch[0].a.Route
		}
	}
	p.applyWritten(ctx, sales, route)
	p.settleWritten(ctx, written, errs)
	return errs
}

// applyWritten applies the sales of the orders the writer has just written
// to MySQL itself, in one batch, as the stock consumer would: the writer
// runs behind the buyer already, so sending each order over nsqd to be
// applied by another batch would only add a publish, a delivery and an
// acknowledgement per order. Those it could not apply go the usual way,
// as stock messages, so the consumer retries, refuses or gives up on each
// as it does any; when that publish fails too, the outbox sweep finds them
// (an order without its stock log). Each sale is applied once whichever
// path it takes: the stock log is unique per order.
func (p *Placer) applyWritten(ctx context.Context, ms []service.StockMessage, route int64) {
	if len(ms) == 0 {
		return
	}
	var left []service.StockMessage
	for i, err := range p.accepts.ledger.ApplySales(ctx, ms) {
		if err != nil {
			left = append(left, ms[i])
		}
	}
	if len(left) == 0 {
		return
	}
	if err := p.accepts.stock.PublishBatch(ctx, left, route); err != nil {
		p.log.Warn("sales of accepted orders neither applied nor sent; the outbox sweep will send them", "orders", len(left), "err", err)
	}
}

// prepareAccepted says whether the request still waits for its order:
// pending in Redis, or lost by Redis, not written and young enough to
// reserve its units again. A request that failed, or whose order exists,
// is settled.
func (p *Placer) prepareAccepted(ctx context.Context, v service.Version, t service.Token, a service.Accepted, st service.AcceptState) (ready bool, err error) {
	l := p.accepts.ledger
	switch {
	case st.Failure != "":
		return false, nil
	case st.Pending != nil:
		return true, nil
	}
	// Written already (its record settled), or Redis lost the record.
	_, err = p.orders.OrderByKey(ctx, v.Place(t.UserID, p.opts.Layout), t.UserID, t.OrderKey())
	switch {
	case err == nil:
		return false, nil
	case !errors.Is(err, service.ErrNotFound):
		return false, err
	case time.Since(t.AcceptedAt) > p.accepts.opts.MaxAge:
		return false, l.FailAccepted(ctx, t, a.Number, "expired")
	}
	// The stock Redis holds now was rebuilt from the database, which never
	// counted this request: its units are reserved again, at the time it
	// was accepted (inside the sale window).
	prior, err := l.Accept(ctx, t, a)
	switch {
	case err == nil && prior == "":
		return true, nil
	case err == nil:
		return false, fmt.Errorf("%w: request %s recorded again meanwhile", service.ErrUnavailable, a.Token)
	case errors.Is(err, service.ErrUnavailable), errors.Is(err, service.ErrStockNotLoaded):
		return false, err
	}
	return false, l.FailAccepted(ctx, t, a.Number, service.ReasonOf(err))
}

// acceptedOrder is the order an accepted request becomes: its id made
// now, just before its write, and its payment clock starting now.
func (p *Placer) acceptedOrder(ctx context.Context, v service.Version, t service.Token, a service.Accepted) (service.Order, error) {
	price, err := p.pricesOf(v).Price(ctx, t.GoodsID)
	if err != nil {
		return service.Order{}, err
	}
	return service.Order{ID: p.ids.NewID(), UserID: t.UserID, GoodsID: t.GoodsID, Number: a.Number, Amount: price * a.Number,
		Version: v.Name, PayDeadline: time.Now().Add(p.opts.PayTimeout).UTC().Truncate(time.Millisecond), Key: t.OrderKey()}, nil
}

// writeAcceptedBatch writes one table's orders in one INSERT (each alone
// when the batch is refused). It returns the requests whose orders are
// written (by it, or by an earlier delivery or the sweep), for settling,
// and the sales of the orders it wrote, to apply; the others' outcomes are
// in errs.
func (p *Placer) writeAcceptedBatch(ctx context.Context, at service.OrderTable, batch []acceptedOrder, errs []error) (written []acceptedOrder, sales []service.StockMessage) {
	orders := make([]service.Order, len(batch))
	for j, b := range batch {
		orders[j] = b.order
	}
	// Not sent or unknown: each is tried again, under its key.
	outcome := insertBatch(ctx, p.accepts.batch, p.orders, at, orders)
	for j, b := range batch {
		err := outcome[j]
		switch {
		case err == nil:
			sales = append(sales, service.MessageOf(b.order, at))
			written = append(written, b)
		case errors.Is(err, service.ErrKeyHeld):
			// Written by an earlier delivery or the sweep, whose sale was
			// applied or sent, or the outbox sweep sends it.
			written = append(written, b)
		case errors.Is(err, service.ErrUnavailable):
			errs[b.i] = err
		default:
			// Refused by the database for good: it will never be an order.
			p.log.Warn("accepted request refused by the database; its units go back", "token", b.a.Token, "err", err)
			errs[b.i] = p.accepts.ledger.FailAccepted(ctx, b.token, b.a.Number, "refused")
		}
	}
	return written, sales
}

// settleWritten takes the records of the requests whose orders are
// written off Redis, in one round trip; when that fails, each is tried
// again (its retry finds its order under its key).
func (p *Placer) settleWritten(ctx context.Context, written []acceptedOrder, errs []error) {
	if len(written) == 0 {
		return
	}
	ts := make([]service.Token, len(written))
	as := make([]service.Accepted, len(written))
	for j, w := range written {
		ts[j], as[j] = w.token, w.a
	}
	err := p.accepts.ledger.SettleAccepted(ctx, ts, as)
	for _, w := range written {
		errs[w.i] = err
	}
}

// RescueAccepted writes, as orders of version, the requests pending for
// longer than RescueAfter among goodsIDs: their messages are taken as
// lost (an nsqd that died with them). A message that still comes finds
// its order written. It says how many it settled.
func (p *Placer) RescueAccepted(ctx context.Context, version string, goodsIDs []int64) (int, error) {
	if p.accepts == nil {
		return 0, nil
	}
	units, err := p.accepts.ledger.AcceptedUnits(ctx, goodsIDs)
	if err != nil {
		return 0, err
	}
	settled := 0
	for goodsID := range units {
		var old []service.Accepted
		err := p.accepts.ledger.AcceptedRecords(ctx, goodsID, func(recs []service.Accepted) error {
			for _, a := range recs {
				if t, err := service.ParseToken(a.Token); err == nil && time.Since(t.AcceptedAt) > p.accepts.opts.RescueAfter {
					old = append(old, a)
				}
			}
			return nil
		})
		if err != nil {
			return settled, err
		}
		for i, err := range p.WriteAccepted(ctx, version, old) {
			if err != nil {
				p.log.Warn("accepted request not written by the sweep; the next pass tries again", "token", old[i].Token, "err", err)
				continue
			}
			settled++
		}
	}
	return settled, nil
}
