// Package payment pays orders, cancels those unpaid at their deadline and
// starts each order's payment clock once its sale is applied.
package payment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-seckill/seckill/service"
)

// Orders changes the status of order rows.
type Orders interface {
	// PayOrder marks the user's order paid if it is unpaid and its deadline
	// is after now; CancelOrder marks it cancelled if it is unpaid and its
	// deadline is not after now. One conditional update each: of a payment
	// and a timeout racing, exactly one wins.
	PayOrder(ctx context.Context, at service.OrderTable, id, userID int64, now time.Time) (bool, error)
	CancelOrder(ctx context.Context, at service.OrderTable, id int64, now time.Time) (bool, error)
	// OrderStatus reads an order's status; ErrNotFound when it is not there.
	OrderStatus(ctx context.Context, at service.OrderTable, id int64) (status int, userID int64, err error)
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

// Payments pays and cancels orders.
type Payments struct {
	orders Orders
	ledger Ledger
	layout service.Layout
	log    *slog.Logger
}

// New wires payments; layout tells where a user's orders may be.
func New(orders Orders, ledger Ledger, layout service.Layout, log *slog.Logger) *Payments {
	return &Payments{orders: orders, ledger: ledger, layout: layout, log: log}
}

// Pay marks the user's order paid. Paying twice is fine; paying a cancelled
// order, or after its deadline, is refused, and so is an order whose sale
// the database has not confirmed (pending) or refused. The user id routes
// to the order: every version's placement of the user's orders is looked at.
func (p *Payments) Pay(ctx context.Context, orderID, userID int64) error {
	if orderID < 1 || userID < 1 {
		return service.Invalid("order id and user_id must be positive integers")
	}
	for _, at := range service.TablesOf(userID, p.layout) {
		status, owner, err := p.orders.OrderStatus(ctx, at, orderID)
		switch {
		case errors.Is(err, service.ErrNotFound):
			continue
		case err != nil:
			return err
		case owner != userID, status == service.StatusVoid:
			return service.ErrNotFound
		case status == service.StatusUnpaid:
			return p.payUnpaid(ctx, at, orderID, userID)
		}
		return statusError(status)
	}
	return service.ErrNotFound
}

// confirmWait is how long a payment waits for the database to confirm an
// order's sale: the consumer applies it within milliseconds unless it lags.
var confirmWait = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, time.Second}

// payUnpaid pays an order found unpaid, once the database confirmed its
// sale, waiting a little for it; ErrOrderPending when it does not come.
func (p *Payments) payUnpaid(ctx context.Context, at service.OrderTable, orderID, userID int64) error {
	for attempt := 0; ; attempt++ {
		applied, err := p.orders.SaleApplied(ctx, orderID)
		if err != nil {
			return err
		}
		if applied {
			break
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
	paid, err := p.orders.PayOrder(ctx, at, orderID, userID, time.Now())
	if err != nil || paid {
		return err
	}
	// Not paid now: paid meanwhile, cancelled, or past its deadline.
	status, _, err := p.orders.OrderStatus(ctx, at, orderID)
	if err != nil {
		return err
	}
	if status == service.StatusUnpaid {
		return service.ErrOrderExpired
	}
	return statusError(status)
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
	return p.ledger.ReturnOrder(ctx, m)
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
