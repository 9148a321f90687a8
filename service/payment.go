package service

import (
	"context"
	"errors"
	"time"
)

// Pay marks the user's order paid. Paying twice is fine; paying a cancelled
// order, or after its deadline, is refused. The user id routes to the order:
// V1/V2 orders are in the orders table, V3's in the user's order_N of the
// primary, later versions' in the user's order_N of the user's host.
func (s *Service) Pay(ctx context.Context, orderID, userID int64) error {
	if orderID < 1 || userID < 1 {
		return invalid("order id and user_id must be positive integers")
	}
	tables := s.tablesOf(userID)
	for _, at := range tables {
		paid, err := s.goods.PayOrder(ctx, at, orderID, userID, time.Now())
		if err != nil || paid {
			return err
		}
	}
	// Not paid now: already paid, cancelled, expired, or not the user's.
	for _, at := range tables {
		status, owner, err := s.goods.OrderStatus(ctx, at, orderID)
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			return err
		case owner != userID:
			return ErrNotFound
		case status == StatusPaid:
			return nil
		case status == StatusCancelled:
			return ErrOrderCancelled
		}
		return ErrOrderExpired
	}
	return ErrNotFound
}

// tablesOf lists every table an order of userID may be in.
func (s *Service) tablesOf(userID int64) []OrderTable {
	tables := []OrderTable{{}, {Table: s.orderTable(userID)}}
	if sharded := s.shardedTable(userID); sharded != tables[1] {
		tables = append(tables, sharded)
	}
	return tables
}

// scheduleTimeout starts an applied order's payment clock: a deferred
// message that cancels it if still unpaid at its deadline. If the publish
// fails, the expiry sweep cancels it instead.
func (s *Service) scheduleTimeout(ctx context.Context, m StockMessage) {
	if m.Deadline == 0 {
		return
	}
	delay := time.Until(time.UnixMilli(m.Deadline))
	if err := s.pub.DeferTimeout(ctx, m, max(delay, 0)); err != nil {
		s.log.Warn("payment timeout not scheduled; the expiry sweep will cancel the order", "order_id", m.OrderID, "err", err)
	}
}

// CancelUnpaid cancels an order still unpaid at its deadline and gives its
// units back to MySQL and Redis, each exactly once. It may be called again
// for the same order at any step (a redelivered message, the sweep) and
// finishes what is left. ErrNotYet means: call again later.
func (s *Service) CancelUnpaid(ctx context.Context, m StockMessage) error {
	if err := validStockMessage(m); err != nil {
		return err
	}
	cancelled, err := s.goods.CancelOrder(ctx, m.At(), m.OrderID, time.Now())
	if err != nil {
		return err
	}
	if !cancelled {
		status, _, err := s.goods.OrderStatus(ctx, m.At(), m.OrderID)
		switch {
		case err != nil:
			return err
		case status == StatusPaid:
			return nil // the payment won
		case status == StatusUnpaid:
			return ErrNotYet // its deadline, as the database sees it, is still ahead
		}
	}
	// The sale must be applied before it can be undone; the outbox sweep
	// sees to that.
	if err := s.goods.ReturnStock(ctx, m); err != nil && !errors.Is(err, ErrAlreadyApplied) {
		return err
	}
	if err := s.stock.Return(ctx, m.OrderID, m.GoodsID, m.UserID, m.Number); err != nil && !errors.Is(err, ErrStockNotLoaded) {
		return err
	}
	s.stockIsBack(ctx, m.GoodsID)
	return nil
}

// SweepExpired cancels orders past their deadline that no timeout message
// cancelled (nsqd lost it, or it was never scheduled). It returns how many
// it cancelled.
func (s *Service) SweepExpired(ctx context.Context, grace time.Duration) (int, error) {
	orders, err := s.goods.ExpiredOrders(ctx, time.Now().Add(-grace), 500)
	if err != nil {
		return 0, err
	}
	done := 0
	for _, m := range orders {
		if err := s.CancelUnpaid(ctx, m); err != nil {
			if !errors.Is(err, ErrNotYet) {
				s.log.Warn("expiry sweep could not cancel an order", "order_id", m.OrderID, "err", err)
			}
			continue
		}
		done++
	}
	return done, nil
}
