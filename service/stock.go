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
	// The applied changes after the stock: one committed in between is
	// marked applied without being counted, which sells less, never more;
	// the other order would let its replay count it twice.
	st := RestoredStock{Stock: stock}
	if st.AppliedOps, st.ReturnedOrders, err = s.goods.AppliedChanges(ctx, goodsID); err != nil {
		return false, err
	}
	if g.PerUserLimit > 0 {
		if st.UserUnits, err = s.goods.UserUnits(ctx, goodsID); err != nil {
			return false, err
		}
	}
	return s.stock.Restore(ctx, g, st)
}

// truth is what goods may still sell according to the database, with the
// goods themselves.
func (s *Service) truth(ctx context.Context, goodsID int64) (int64, Goods, error) {
	g, err := s.goods.Goods(ctx, goodsID)
	if err != nil {
		return 0, Goods{}, err
	}
	stock, err := s.goods.StockTruth(ctx, goodsID)
	return stock, g, err
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
// one conditional update per goods. A batch holding copies of a message or
// orders applied before (a redelivery, a republish) is tried once more
// without them. When the transaction still cannot commit whole (stock that
// cannot cover it, an error), every message is applied on its own, so each
// gets its own answer.
func (s *Service) ApplyStockBatch(ctx context.Context, ms []StockMessage) []error {
	errs := make([]error, len(ms))
	var batch []int // indexes into ms of the messages to apply
	for i, m := range ms {
		if errs[i] = validStockMessage(m); errs[i] == nil {
			batch = append(batch, i)
		}
	}
	if len(batch) > 1 {
		err := s.applyBatch(ctx, ms, batch)
		if errors.Is(err, ErrAlreadyApplied) {
			if batch = s.withoutApplied(ctx, ms, batch); len(batch) > 1 {
				err = s.applyBatch(ctx, ms, batch)
			}
		}
		if err == nil {
			return errs
		}
	}
	for _, i := range batch {
		errs[i] = s.ApplyStock(ctx, ms[i])
	}
	return errs
}

func (s *Service) applyBatch(ctx context.Context, ms []StockMessage, batch []int) error {
	msgs := make([]StockMessage, len(batch))
	for k, i := range batch {
		msgs[k] = ms[i]
	}
	if err := s.goods.ApplyStockBatch(ctx, msgs); err != nil {
		return err
	}
	for _, m := range msgs {
		s.scheduleTimeout(ctx, m)
	}
	return nil
}

// withoutApplied drops from batch the copies of an earlier message and the
// orders already settled: for those there is nothing left to do.
func (s *Service) withoutApplied(ctx context.Context, ms []StockMessage, batch []int) []int {
	ids := make([]int64, len(batch))
	for k, i := range batch {
		ids[k] = ms[i].OrderID
	}
	settled, err := s.goods.Settled(ctx, ids)
	if err != nil {
		return batch // one message at a time will sort it out
	}
	seen := map[int64]bool{}
	var rest []int
	for _, i := range batch {
		id := ms[i].OrderID
		if !seen[id] && !settled[id] {
			rest = append(rest, i)
		}
		seen[id] = true
	}
	return rest
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
				delete(s.sweepSent, o.OrderID)
				continue
			}
			if firstPending == 0 {
				firstPending = o.OrderID
			}
			// A consumer lagging behind the grace period would otherwise get
			// every pending order again on each pass: once per grace is enough.
			if sent, ok := s.sweepSent[o.OrderID]; ok && time.Since(sent) < s.opts.Grace {
				continue
			}
			if err := s.pub.Publish(ctx, o, o.OrderID); err != nil {
				return republished, err
			}
			s.sweepSent[o.OrderID] = time.Now()
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
