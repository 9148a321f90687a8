package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-seckill/seckill/service"
)

// Stock going out: reservations in Redis first, then the sale in MySQL.

// Reserve takes the order's units from the Redis gate, which also holds the
// sale window and the per-user limit. A missing stock key is either unknown
// goods (ErrNotFound) or stock Redis has lost (ErrStockNotLoaded while it
// is rebuilt), never zero.
func (l *Ledger) Reserve(ctx context.Context, o service.Order) error {
	v, _ := service.FindVersion(o.Version)
	err := l.reserve(ctx, o, v.SplitStock)
	if errors.Is(err, service.ErrStockNotLoaded) {
		return l.stockNotLoaded(ctx, o.GoodsID)
	}
	return err
}

// GiveBack returns a reservation whose order surely does not exist, and
// tells every instance. If that fails too, Redis holds less than MySQL:
// the sale sells less, never more, until the reconciliation repairs it.
func (l *Ledger) GiveBack(ctx context.Context, o service.Order) {
	if err := l.gate.Release(ctx, o.GoodsID, o.UserID, o.Number); err != nil {
		l.log.Error("give back reservation failed; redis now undercounts", "order_id", o.ID, "goods_id", o.GoodsID, "number", o.Number, "err", err)
		return
	}
	l.stockIsBack(ctx, o.GoodsID)
}

// SellInOneTransaction is V1's sale: the conditional decrement of the goods
// row, the order and its stock log in one MySQL transaction, with the Redis
// gate passed inside it before commit, so that V1 and the Redis-first
// versions can sell one goods at the same time: every sale takes its units
// from Redis, which never goes below zero, and MySQL's conditional update
// guards the rest.
func (l *Ledger) SellInOneTransaction(ctx context.Context, o service.Order) error {
	txCtx, cancel := context.WithTimeout(ctx, l.opts.V1Timeout)
	defer cancel()
	reserved := false
	err := l.sales.SellInTx(txCtx, o, func() error {
		// Only the reservation here: the transaction holds its connection,
		// and the goods lookup of a missing key needs another one.
		err := l.reserve(txCtx, o, false)
		reserved = err == nil
		return err
	})
	if reserved && err != nil {
		// The transaction failed after the gate took the units.
		err = l.SettleFailedWrite(ctx, o, service.OrderTable{}, err)
	}
	switch {
	case err == nil:
		l.opts.Applied(ctx, service.MessageOf(o, service.OrderTable{}))
	case errors.Is(err, service.ErrStockNotLoaded):
		err = l.stockNotLoaded(ctx, o.GoodsID)
	case errors.Is(err, service.ErrSoldOut):
		// Zero rows decremented: sold out, or no such goods.
		if _, gerr := l.truths.Goods(ctx, o.GoodsID); errors.Is(gerr, service.ErrNotFound) {
			err = gerr
		}
	}
	return err
}

// AfterReserve keeps the work after a reservation going for the write
// budget when the client hangs up: a reservation is either turned into an
// order or given back. Half the budget is the order write's (WriteWithin),
// half the settling of a failed one (SettleFailedWrite), so that the work
// ends within the budget, which the rebuild of lost stock waits out.
func (l *Ledger) AfterReserve(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), l.opts.WriteBudget)
}

// WriteWithin bounds the order write to half the write budget.
func (l *Ledger) WriteWithin(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, l.opts.WriteBudget/2)
}

// SettleFailedWrite settles a reservation whose order write failed. A
// write the server refused never committed: the units go back. A write
// whose outcome is unknown may still commit, even after a lookup said "not
// found" (the server finishes statements whose client has gone), so the
// order is fenced with a void row under its id: when the fence is written,
// the order never will be and the units go back; when the order's row is
// there, the write succeeded and nil is returned. When not even the fence
// can be written, the units stay reserved and *UnknownOrder is returned:
// the reconciliation gives them back if the order never appears.
func (l *Ledger) SettleFailedWrite(ctx context.Context, o service.Order, at service.OrderTable, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.WriteBudget/2)
	defer cancel()
	if errors.Is(err, service.ErrAmbiguous) {
		voided, status, ferr := l.orders.VoidOrder(ctx, at, o)
		switch {
		case ferr != nil:
			l.log.Warn("order write outcome unknown; its units stay reserved until the reconciliation settles them", "order_id", o.ID, "err", err, "fence", ferr)
			return &service.UnknownOrder{Order: o, At: at, Err: err}
		case !voided && status != service.StatusVoid:
			return nil // it was written after all
		case !voided:
			// Fenced by another caller, who settles the units.
			return fmt.Errorf("%w: order %d was not written", service.ErrUnavailable, o.ID)
		}
		err = fmt.Errorf("%w: order %d was not written: %v", service.ErrUnavailable, o.ID, err)
	}
	l.GiveBack(ctx, o)
	return err
}

// ApplySales applies many orders' decrements to MySQL, each exactly once,
// in one transaction when it can: one multi-row stock-log insert and one
// conditional update per goods. A batch holding copies of a message or
// orders applied before (a redelivery, a republish) is tried once more
// without them. When the transaction still cannot commit whole (stock that
// cannot cover it, an error), every message is applied on its own, so each
// gets its own answer. An error wrapping ErrInvalid never gets better.
func (l *Ledger) ApplySales(ctx context.Context, ms []service.StockMessage) []error {
	errs := make([]error, len(ms))
	var batch []int // indexes into ms of the messages to apply
	for i, m := range ms {
		if errs[i] = m.Validate(); errs[i] == nil {
			batch = append(batch, i)
		}
	}
	batch, err := l.onlyPlacedOrders(ctx, ms, batch, errs)
	if err != nil {
		for _, i := range batch {
			errs[i] = err
		}
		return errs
	}
	if len(batch) > 1 {
		err := l.applyBatch(ctx, ms, batch)
		if errors.Is(err, service.ErrAlreadyApplied) {
			if batch = l.withoutApplied(ctx, ms, batch); len(batch) > 1 {
				err = l.applyBatch(ctx, ms, batch)
			}
		}
		if err == nil {
			return errs
		}
	}
	for _, i := range batch {
		errs[i] = l.applySale(ctx, ms[i])
	}
	return errs
}

// onlyPlacedOrders keeps in batch the messages whose order exists, in the
// table the message names, as the message describes it: a message is not a
// fact, and a stray one (another environment's queue, a forged or stale
// message, an order fenced as void or refused) must not move stock. The
// others get ErrInvalid in errs, so they are dead-lettered with the reason.
func (l *Ledger) onlyPlacedOrders(ctx context.Context, ms []service.StockMessage, batch []int, errs []error) ([]int, error) {
	if len(batch) == 0 {
		return batch, nil
	}
	msgs := make([]service.StockMessage, len(batch))
	for k, i := range batch {
		msgs[k] = ms[i]
	}
	rows, err := l.orders.OrderRows(ctx, msgs)
	if err != nil {
		return batch, err
	}
	var placed []int
	for _, i := range batch {
		m := ms[i]
		row, ok := rows[m.Ref()]
		switch {
		case !ok:
			errs[i] = fmt.Errorf("%w: %w: no order %d in %s of host %d", service.ErrInvalid, service.ErrStray, m.OrderID, m.At().Name(), m.Host)
		case !row.Matches(m):
			errs[i] = fmt.Errorf("%w: %w: order %d is %+v, not as the message says", service.ErrInvalid, service.ErrStray, m.OrderID, row)
		default:
			placed = append(placed, i)
		}
	}
	return placed, nil
}

func (l *Ledger) applyBatch(ctx context.Context, ms []service.StockMessage, batch []int) error {
	msgs := make([]service.StockMessage, len(batch))
	for k, i := range batch {
		msgs[k] = ms[i]
	}
	if err := l.sales.ApplySales(ctx, msgs); err != nil {
		return err
	}
	l.opts.Applied(ctx, msgs...)
	return nil
}

// applySale applies one order's decrement to MySQL exactly once. A message
// seen before is acknowledged without a second decrement.
func (l *Ledger) applySale(ctx context.Context, m service.StockMessage) error {
	err := l.sales.ApplySale(ctx, m)
	switch {
	case errors.Is(err, service.ErrAlreadyApplied):
		return nil
	case errors.Is(err, service.ErrSoldOut):
		// Redis sold units MySQL does not have: only possible if Redis was
		// wrong (lost writes, a manual edit). MySQL's guard held.
		return l.refuse(ctx, m, "mysql stock cannot cover it")
	case errors.Is(err, service.ErrLimitExceeded):
		// Redis let the user past the per-user limit (it had lost the
		// user's units); the database's guard held.
		return l.refuse(ctx, m, "it exceeds the per-user limit")
	case err != nil:
		return err
	}
	l.opts.Applied(ctx, m)
	return nil
}

// refuse marks the order refused, so that it is never paid and its buyer
// learns it, and returns the ErrInvalid that dead-letters its message.
func (l *Ledger) refuse(ctx context.Context, m service.StockMessage, why string) error {
	if err := l.orders.MarkRefused(ctx, m); err != nil {
		return err // retried: the refusal must be recorded
	}
	return fmt.Errorf("%w: order %d refused: %s", service.ErrInvalid, m.OrderID, why)
}

// withoutApplied drops from batch the copies of an earlier message and the
// orders already applied: for those there is nothing left to do. An order
// with a dead letter but no sale stays: its copy must apply it.
func (l *Ledger) withoutApplied(ctx context.Context, ms []service.StockMessage, batch []int) []int {
	ids := make([]int64, len(batch))
	for k, i := range batch {
		ids[k] = ms[i].OrderID
	}
	applied, err := l.sales.Applied(ctx, ids)
	if err != nil {
		return batch // one message at a time will sort it out
	}
	seen := map[int64]bool{}
	var rest []int
	for _, i := range batch {
		id := ms[i].OrderID
		if !seen[id] && !applied[id] {
			rest = append(rest, i)
		}
		seen[id] = true
	}
	return rest
}
