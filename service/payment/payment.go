// Package payment pays orders, cancels those unpaid at their deadline and
// starts each order's payment clock once its sale is applied.
package payment

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/go-seckill/seckill/service"
)

// Orders changes the status of order rows.
type Orders interface {
	// PayOrder marks the user's order paid if it is unpaid and its deadline
	// is after now; CancelOrder marks it cancelled if it is unpaid and its
	// deadline is not after now. One conditional update each: of a payment
	// and a timeout racing, exactly one wins.
	// PayOrder also records the discount of the coupon redeemed for it.
	PayOrder(ctx context.Context, at service.OrderTable, id, userID int64, now time.Time, discount, couponID int64) (bool, error)
	CancelOrder(ctx context.Context, at service.OrderTable, id int64, now time.Time) (bool, error)
	// OrderStatus reads an order's status; ErrNotFound when it is not there.
	OrderStatus(ctx context.Context, at service.OrderTable, id int64) (status int, userID int64, err error)
	// OrderDetail reads an order row, void ones too; ErrNotFound when it is
	// not there. UserOrders reads up to limit of a user's orders in one
	// table, newest first, without void rows.
	OrderDetail(ctx context.Context, at service.OrderTable, id int64) (service.OrderDetail, error)
	UserOrders(ctx context.Context, at service.OrderTable, userID int64, limit int) ([]service.OrderDetail, error)
	// ExpiredOrders lists up to limit unpaid orders whose deadline is not
	// after before.
	ExpiredOrders(ctx context.Context, before time.Time, limit int) ([]service.StockMessage, error)
	// SaleApplied says whether the order's sale is applied to its goods' stock.
	SaleApplied(ctx context.Context, orderID int64) (bool, error)
}

// Ledger gives a cancelled order's units back.
type Ledger interface {
	// ReturnOrder gives the units back to MySQL and Redis, each once;
	// ErrNotYet while the order's sale is not applied.
	ReturnOrder(ctx context.Context, m service.StockMessage) error
}

// Coupons redeems a shopper's coupon against an order being paid.
type Coupons interface {
	// Redeem marks the user's coupon used by the order and says what it
	// takes off amount (cents; 0: no threshold to check). The same order
	// again answers as the first time.
	Redeem(ctx context.Context, couponID, userID, orderID, amount int64) (discount int64, err error)
	// Release makes a coupon that Redeem bound to orderID usable again;
	// bound to another order, or unused, it is left alone.
	Release(ctx context.Context, couponID, userID, orderID int64) error
	// ReleaseOrder makes every coupon of the user bound to orderID usable
	// again: the order was cancelled unpaid.
	ReleaseOrder(ctx context.Context, userID, orderID int64) error
}

// Payments pays and cancels orders.
type Payments struct {
	orders  Orders
	ledger  Ledger
	coupons Coupons
	layout  service.Layout
	log     *slog.Logger
}

// New wires payments; layout tells where a user's orders may be; coupons
// may be nil, and then a payment naming a coupon is refused.
func New(orders Orders, ledger Ledger, coupons Coupons, layout service.Layout, log *slog.Logger) *Payments {
	return &Payments{orders: orders, ledger: ledger, coupons: coupons, layout: layout, log: log}
}

// tablesOf lists the tables the user's orders may be in. Every lookup of
// an order by its buyer goes through here: a new placement (a shard map)
// changes this one function.
func (p *Payments) tablesOf(userID int64) []service.OrderTable {
	return service.TablesOf(userID, p.layout)
}

// find finds the user's order: its table and row. Another user's order, or
// a void row, is not found.
func (p *Payments) find(ctx context.Context, orderID, userID int64) (service.OrderTable, service.OrderDetail, error) {
	if orderID < 1 || userID < 1 {
		return service.OrderTable{}, service.OrderDetail{}, service.Invalid("order id and user_id must be positive integers")
	}
	for _, at := range p.tablesOf(userID) {
		o, err := p.orders.OrderDetail(ctx, at, orderID)
		switch {
		case errors.Is(err, service.ErrNotFound):
			continue
		case err != nil:
			return at, o, err
		case o.UserID != userID, o.Code == service.StatusVoid:
			return at, o, fmt.Errorf("%w: user %d has no order %d", service.ErrNotFound, userID, orderID)
		}
		o.Read(time.Now())
		return at, o, nil
	}
	return service.OrderTable{}, service.OrderDetail{}, fmt.Errorf("%w: user %d has no order %d", service.ErrNotFound, userID, orderID)
}

// Order is the user's order as it stands.
func (p *Payments) Order(ctx context.Context, orderID, userID int64) (service.OrderDetail, error) {
	_, o, err := p.find(ctx, orderID, userID)
	return o, err
}

// MaxUserOrders is the most orders UserOrders lists.
const MaxUserOrders = 100

// UserOrders lists the user's newest orders, at most MaxUserOrders, over
// every table a version places them in.
func (p *Payments) UserOrders(ctx context.Context, userID int64) ([]service.OrderDetail, error) {
	if userID < 1 {
		return nil, service.Invalid("user_id must be a positive integer")
	}
	now := time.Now()
	out := []service.OrderDetail{}
	seen := map[int64]bool{} // two placements may name one table (an order host that is the primary)
	for _, at := range p.tablesOf(userID) {
		os, err := p.orders.UserOrders(ctx, at, userID, MaxUserOrders)
		if errors.Is(err, service.ErrNotFound) {
			continue // a table not made yet (a logical database with no order) holds none
		}
		if err != nil {
			return nil, err
		}
		for _, o := range os {
			if !seen[o.ID] {
				seen[o.ID] = true
				o.Read(now)
				out = append(out, o)
			}
		}
	}
	// Snowflake ids grow with time: newest first is the largest id first.
	slices.SortFunc(out, func(a, b service.OrderDetail) int { return cmp.Compare(b.ID, a.ID) })
	return out[:min(len(out), MaxUserOrders)], nil
}

// Pay marks the user's order paid, with couponID (0: none) redeemed
// against its amount, and answers the order as it then stands. Paying
// twice is fine (the second answer is the first payment, whatever coupon
// it names); paying a cancelled order, or after its deadline, is refused,
// and so is an order whose sale the database has not confirmed (pending)
// or refused. The user id routes to the order: every version's placement
// of the user's orders is looked at.
//
// With a coupon the steps are: the order is found unpaid and its sale
// confirmed; the coupon is redeemed against it (a refusal leaves the order
// unpaid); the order is paid with the discount recorded in its row. When
// that conditional update fails (the deadline passed, or a timeout
// cancelled the order, in between) the coupon is released, usable again,
// unless the order was paid meanwhile with this very coupon. A crash
// between the redemption and the payment leaves the coupon bound to the
// unpaid order: paying again with it completes the payment (redeeming for
// the same order answers as the first time), and the order's cancellation
// at its deadline releases it.
func (p *Payments) Pay(ctx context.Context, orderID, userID, couponID int64) (service.OrderDetail, error) {
	if couponID < 0 {
		return service.OrderDetail{}, service.Invalid("coupon_id must be a positive integer")
	}
	if couponID > 0 && p.coupons == nil {
		return service.OrderDetail{}, service.Invalid("coupons are not available")
	}
	at, o, err := p.find(ctx, orderID, userID)
	if err != nil {
		return o, err
	}
	if o.Code != service.StatusUnpaid {
		return o, statusError(o.Code)
	}
	if err := p.confirmed(ctx, orderID); err != nil {
		return o, err
	}
	discount := int64(0)
	if couponID > 0 {
		if discount, err = p.coupons.Redeem(ctx, couponID, userID, orderID, o.Amount); err != nil {
			return o, err
		}
		discount = min(discount, o.Amount)
	}
	paid, err := p.orders.PayOrder(ctx, at, orderID, userID, time.Now(), discount, couponID)
	if err != nil {
		// The update's outcome may be unknown: the coupon stays bound to
		// the order, and paying again with it completes the payment.
		return o, err
	}
	if paid {
		o.Code, o.Discount, o.CouponID = service.StatusPaid, discount, couponID
		o.Read(time.Now())
		return o, nil
	}
	// Not paid by this update: paid meanwhile, cancelled, or past its
	// deadline. The row says which.
	cur, err := p.orders.OrderDetail(ctx, at, orderID)
	if err != nil {
		return o, err
	}
	cur.Read(time.Now())
	if couponID > 0 && (cur.Code != service.StatusPaid || cur.CouponID != couponID) {
		// This payment did not use the coupon: make it usable again.
		if err := p.coupons.Release(ctx, couponID, userID, orderID); err != nil {
			p.log.Warn("a coupon redeemed for an order not paid with it stays bound to it", "coupon_id", couponID, "order_id", orderID, "err", err)
		}
	}
	if cur.Code == service.StatusUnpaid {
		return cur, service.ErrOrderExpired
	}
	return cur, statusError(cur.Code)
}

// confirmWait is how long a payment waits for the database to confirm an
// order's sale: the consumer applies it within milliseconds unless it lags.
var confirmWait = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, time.Second}

// confirmed waits a little for the database to confirm an order's sale;
// ErrOrderPending when it does not come.
func (p *Payments) confirmed(ctx context.Context, orderID int64) error {
	for attempt := 0; ; attempt++ {
		applied, err := p.orders.SaleApplied(ctx, orderID)
		if err != nil || applied {
			return err
		}
		if attempt == len(confirmWait) {
			return service.ErrOrderPending
		}
		select {
		case <-time.After(confirmWait[attempt]):
		case <-ctx.Done():
			return service.ErrOrderPending
		}
	}
}

// statusError is what paying an order in status answers.
func statusError(status int) error {
	switch status {
	case service.StatusPaid:
		return nil
	case service.StatusCancelled:
		return service.ErrOrderCancelled
	case service.StatusRefused:
		return service.ErrOrderRefused
	}
	return service.ErrNotFound
}

// CancelUnpaid cancels an order still unpaid at its deadline and gives its
// units back to MySQL and Redis, each exactly once. An order is cancelled
// only once its sale is applied, so that its units come back exactly once
// whatever the order in which the sale and the timeout arrive. It may be
// called again for the same order at any step (a redelivered message, the
// sweep) and finishes what is left. ErrNotYet means: call again later;
// ErrInvalid: the message names no order.
func (p *Payments) CancelUnpaid(ctx context.Context, m service.StockMessage) error {
	if err := m.Validate(); err != nil {
		return err
	}
	status, _, err := p.orders.OrderStatus(ctx, m.At(), m.OrderID)
	switch {
	case errors.Is(err, service.ErrNotFound):
		return fmt.Errorf("%w: %w: no order %d in %s of host %d", service.ErrInvalid, service.ErrStray, m.OrderID, m.At().Name(), m.Host)
	case err != nil:
		return err
	case status == service.StatusPaid, status == service.StatusVoid, status == service.StatusRefused:
		return nil // the payment won, or the order holds no units
	case status == service.StatusUnpaid:
		err := p.cancel(ctx, m)
		if errors.Is(err, errPaidMeanwhile) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	if err := p.ledger.ReturnOrder(ctx, m); err != nil {
		return err
	}
	// A coupon is bound to an unpaid order when a payment redeemed it and
	// stopped before the order was paid (a crash, a write of unknown
	// outcome): the cancelled order gives it back, as it gives its units.
	if p.coupons != nil {
		return p.coupons.ReleaseOrder(ctx, m.UserID, m.OrderID)
	}
	return nil
}

// cancel cancels an unpaid order once its sale is applied and its deadline,
// as the database sees it, has passed.
func (p *Payments) cancel(ctx context.Context, m service.StockMessage) error {
	applied, err := p.orders.SaleApplied(ctx, m.OrderID)
	if err != nil {
		return err
	}
	if !applied {
		return fmt.Errorf("%w: the sale of order %d is not applied yet", service.ErrNotYet, m.OrderID)
	}
	cancelled, err := p.orders.CancelOrder(ctx, m.At(), m.OrderID, time.Now())
	if err != nil || cancelled {
		return err
	}
	status, _, err := p.orders.OrderStatus(ctx, m.At(), m.OrderID)
	switch {
	case err != nil:
		return err
	case status == service.StatusUnpaid:
		return service.ErrNotYet // its deadline, as the database sees it, is still ahead
	case status == service.StatusCancelled:
		return nil
	}
	return errPaidMeanwhile
}

// errPaidMeanwhile: the payment won the race with the timeout.
var errPaidMeanwhile = errors.New("paid meanwhile")

// expiredBatch is the most expired orders one sweep pass cancels.
const expiredBatch = 500

// SweepExpired cancels orders past their deadline by grace that no timeout
// message cancelled (nsqd lost it, or it was never scheduled). It returns
// how many it cancelled.
func (p *Payments) SweepExpired(ctx context.Context, grace time.Duration) (int, error) {
	orders, err := p.orders.ExpiredOrders(ctx, time.Now().Add(-grace), expiredBatch)
	if err != nil {
		return 0, err
	}
	done := 0
	for _, m := range orders {
		if err := p.CancelUnpaid(ctx, m); err != nil {
			if !errors.Is(err, service.ErrNotYet) {
				p.log.Warn("expiry sweep could not cancel an order", "order_id", m.OrderID, "err", err)
			}
			continue
		}
		done++
	}
	return done, nil
}
