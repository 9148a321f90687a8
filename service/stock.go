package service

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// reserve takes the order's units from the Redis gate, which also holds the
// sale window. A missing stock key is either unknown goods (404) or stock
// Redis has lost (503 while it is rebuilt), never zero.
func (s *Service) reserve(ctx context.Context, o Order) error {
	err := s.stock.Reserve(ctx, o.GoodsID, o.UserID, o.Number, time.Now())
	if errors.Is(err, ErrStockNotLoaded) {
		return s.stockNotLoaded(ctx, o.GoodsID)
	}
	return err
}

// stockNotLoaded answers for goods Redis holds no stock for: not found, or
// not loaded while a rebuild is started.
func (s *Service) stockNotLoaded(ctx context.Context, goodsID int64) error {
	if _, err := s.goods.Goods(ctx, goodsID); err != nil {
		return err
	}
	if _, busy := s.rebuilds.LoadOrStore(goodsID, true); !busy {
		go func() {
			defer s.rebuilds.Delete(goodsID)
			if err := s.rebuildStock(goodsID); err != nil {
				s.log.Error("rebuild of lost redis stock failed; it is retried on the next order", "goods_id", goodsID, "err", err)
			}
		}()
	}
	return ErrStockNotLoaded
}

// rebuildStock restores goods' Redis stock once, across instances, after
// Redis lost it (restarted empty, flushed, failed over). It waits
// RebuildGrace first: no reservation can be taken while the key is missing,
// and by then every reservation taken before the loss has become an order,
// which the truth counts, or has failed.
func (s *Service) rebuildStock(goodsID int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.RebuildGrace+time.Minute)
	defer cancel()
	unlock, ok, err := s.stock.Lock(ctx, fmt.Sprintf("rebuild:%d", goodsID), s.opts.RebuildGrace+30*time.Second)
	if err != nil || !ok {
		return err // another instance is rebuilding it
	}
	defer unlock()
	time.Sleep(s.opts.RebuildGrace)
	restored, err := s.restore(ctx, goodsID)
	if restored {
		s.log.Warn("redis had lost the stock of goods; rebuilt it from the database", "goods_id", goodsID)
		s.stockIsBack(ctx, goodsID)
	}
	return err
}

// restore loads goods into Redis from the database's truth, with the units
// each user holds when the goods limit them, unless Redis holds it already.
func (s *Service) restore(ctx context.Context, goodsID int64) (bool, error) {
	stock, g, err := s.truth(ctx, goodsID)
	if err != nil {
		return false, err
	}
	var units map[int64]int64
	if g.PerUserLimit > 0 {
		if units, err = s.goods.UserUnits(ctx, goodsID); err != nil {
			return false, err
		}
	}
	return s.stock.Restore(ctx, g, stock, units)
}

// truth is what goods may still sell according to the database: its stock
// less the units of orders whose decrement has not reached it. Pending is
// read first: a decrement applied in between is then subtracted twice, so
// the error, if any, sells less, never more.
func (s *Service) truth(ctx context.Context, goodsID int64) (int64, Goods, error) {
	pending, err := s.goods.PendingUnits(ctx, goodsID)
	if err != nil {
		return 0, Goods{}, err
	}
	g, err := s.goods.Goods(ctx, goodsID)
	if err != nil {
		return 0, Goods{}, err
	}
	return max(g.Stock-pending, 0), g, nil
}

// release gives a reservation back and tells every instance. If that
// fails too, Redis holds less than MySQL: the sale sells less, never more.
func (s *Service) release(ctx context.Context, o Order) {
	if err := s.stock.Release(ctx, o.GoodsID, o.UserID, o.Number); err != nil {
		s.log.Error("give back reservation failed; redis now undercounts", "order_id", o.ID, "goods_id", o.GoodsID, "number", o.Number, "err", err)
		return
	}
	s.stockIsBack(ctx, o.GoodsID)
}

// stockIsBack clears this instance's sold-out flag and has every other
// instance clear theirs. Call it only once the stock is back in Redis.
func (s *Service) stockIsBack(ctx context.Context, goodsID int64) {
	s.soldOut.clear(goodsID)
	if err := s.pub.AnnounceStockBack(ctx, goodsID); err != nil {
		s.log.Warn("stock-back broadcast failed; other instances' sold-out flags expire by their TTL", "goods_id", goodsID, "err", err)
	}
}

// StockBack is the broadcast arriving: goods has stock again somewhere.
func (s *Service) StockBack(goodsID int64) { s.soldOut.clear(goodsID) }

// publish sends the order's stock message. The order row is already
// committed, so a failed publish loses nothing: the outbox sweep finds the
// order without a stock log and publishes it again.
func (s *Service) publish(ctx context.Context, m StockMessage, route int64) {
	if err := s.pub.Publish(ctx, m, route); err != nil {
		s.log.Warn("publish failed; the outbox sweep will retry", "order_id", m.OrderID, "err", err)
	}
}

func stockMessage(o Order, at OrderTable) StockMessage {
	return StockMessage{OrderID: o.ID, GoodsID: o.GoodsID, UserID: o.UserID, Number: o.Number,
		Host: at.Host, Table: at.Table, Deadline: o.PayDeadline.UnixMilli()}
}

// ApplyStock applies one order's decrement to MySQL exactly once. A message
// seen before is acknowledged without a second decrement.
func (s *Service) ApplyStock(ctx context.Context, m StockMessage) error {
	if err := validStockMessage(m); err != nil {
		return err
	}
	err := s.goods.ApplyStock(ctx, m)
	switch {
	case errors.Is(err, ErrAlreadyApplied):
		return nil
	case errors.Is(err, ErrSoldOut):
		// Redis sold units MySQL does not have: only possible if Redis was
		// wrong (lost writes, a manual edit). MySQL's guard held; the order
		// needs an operator.
		return fmt.Errorf("%w: mysql stock cannot cover order %d", ErrInvalid, m.OrderID)
	case errors.Is(err, ErrLimitExceeded):
		// Redis let the user past the per-user limit (it had lost the
		// user's units); the database's guard held.
		return fmt.Errorf("%w: order %d exceeds the per-user limit", ErrInvalid, m.OrderID)
	case err != nil:
		return err
	}
	s.scheduleTimeout(ctx, m)
	return nil
}

// ApplyStockBatch applies many orders' decrements to MySQL, each exactly
// once, in one transaction when it can: one multi-row stock-log insert and
// one conditional update per goods. When that transaction cannot commit
// whole (a message seen before, stock that cannot cover the batch, an
// error), every message is applied on its own, so each gets its own answer.
func (s *Service) ApplyStockBatch(ctx context.Context, ms []StockMessage) []error {
	errs := make([]error, len(ms))
	valid := make([]StockMessage, 0, len(ms))
	for i, m := range ms {
		if errs[i] = validStockMessage(m); errs[i] == nil {
			valid = append(valid, m)
		}
	}
	if len(valid) == 0 {
		return errs
	}
	if len(valid) > 1 && s.goods.ApplyStockBatch(ctx, valid) == nil {
		for _, m := range valid {
			s.scheduleTimeout(ctx, m)
		}
		return errs
	}
	for i, m := range ms {
		if errs[i] == nil {
			errs[i] = s.ApplyStock(ctx, m)
		}
	}
	return errs
}

func validStockMessage(m StockMessage) error {
	if m.OrderID < 1 || m.GoodsID < 1 || m.Number < 1 {
		return invalid("stock message needs positive order_id, goods_id and number")
	}
	return nil
}

// DeadLetter records a message the consumer gives up on.
// m holds what could be decoded of body, possibly nothing.
func (s *Service) DeadLetter(ctx context.Context, m StockMessage, body []byte, reason string) error {
	s.log.Error("stock message dead-lettered", "order_id", m.OrderID, "goods_id", m.GoodsID, "reason", reason)
	return s.goods.DeadLetter(ctx, m, body, reason)
}

// SweepOutbox republishes the stock message of every order older than the
// grace period that has neither a stock log nor a dead letter: the stock log
// is the acknowledgement, so no outbox table and no extra write sits on the
// order path. It returns how many it republished.
func (s *Service) SweepOutbox(ctx context.Context) (int, error) {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	const batch = 500
	before := s.ids.FirstIDAt(time.Now().Add(-s.opts.Grace))
	after := s.sweepFrom
	firstPending := int64(0)
	republished := 0
	for {
		orders, err := s.goods.ScanOrders(ctx, after, before, batch)
		if err != nil || len(orders) == 0 {
			if err == nil {
				s.advanceSweep(firstPending, before)
			}
			return republished, err
		}
		ids := make([]int64, len(orders))
		for i, o := range orders {
			ids[i] = o.OrderID
		}
		settled, err := s.goods.Settled(ctx, ids)
		if err != nil {
			return republished, err
		}
		for _, o := range orders {
			if settled[o.OrderID] {
				continue
			}
			if firstPending == 0 {
				firstPending = o.OrderID
			}
			if err := s.pub.Publish(ctx, o, o.OrderID); err != nil {
				return republished, err
			}
			republished++
		}
		after = orders[len(orders)-1].OrderID
	}
}

// advanceSweep moves the watermark past every settled order: up to the first
// order still pending, or to the end of the window when none is.
func (s *Service) advanceSweep(firstPending, before int64) {
	if firstPending != 0 {
		s.sweepFrom = firstPending - 1
	} else {
		s.sweepFrom = before - 1
	}
}
