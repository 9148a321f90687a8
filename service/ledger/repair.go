package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/go-seckill/seckill/service"
)

// Truth is what goods may still sell according to the database.
func (l *Ledger) Truth(ctx context.Context, goodsID int64) (int64, error) {
	return l.stock.Truth(ctx, goodsID)
}

// Repair adds delta to goods' Redis stock only if Redis still holds
// expected, so a concurrent sale or another instance's repair is never
// overwritten. Stock that comes back is announced.
func (l *Ledger) Repair(ctx context.Context, goodsID, expected, delta int64) (bool, error) {
	repaired, err := l.cache.Adjust(ctx, goodsID, expected, delta)
	if repaired && delta > 0 {
		l.stockIsBack(ctx, goodsID)
	}
	return repaired, err
}

// stockNotLoaded answers for goods Redis holds no stock for: not found, or
// not loaded while a rebuild is started.
func (l *Ledger) stockNotLoaded(ctx context.Context, goodsID int64) error {
	if _, err := l.stock.Goods(ctx, goodsID); err != nil {
		return err
	}
	if _, busy := l.rebuilds.LoadOrStore(goodsID, true); !busy {
		l.running.Add(1)
		go func() {
			defer l.running.Done()
			defer l.rebuilds.Delete(goodsID)
			if err := l.rebuild(goodsID); err != nil && l.life.Err() == nil {
				l.log.Error("rebuild of lost redis stock failed; it is retried on the next order", "goods_id", goodsID, "err", err)
			}
		}()
	}
	return service.ErrStockNotLoaded
}

// rebuild restores goods' Redis stock once, across instances, after Redis
// lost it (restarted empty, flushed, failed over). It waits RebuildGrace
// first: no reservation can be taken while the key is missing, and by then
// every reservation taken before the loss has become an order, which the
// truth counts, or has failed.
func (l *Ledger) rebuild(goodsID int64) error {
	ctx, cancel := context.WithTimeout(l.life, l.opts.RebuildGrace+time.Minute)
	defer cancel()
	unlock, ok, err := l.locker.Lock(ctx, fmt.Sprintf("rebuild:%d", goodsID), l.opts.RebuildGrace+30*time.Second)
	if err != nil || !ok {
		return err // another instance is rebuilding it
	}
	defer unlock()
	select {
	case <-time.After(l.opts.RebuildGrace):
	case <-ctx.Done():
		return ctx.Err()
	}
	restored, err := l.restore(ctx, goodsID)
	if restored {
		l.log.Warn("redis had lost the stock of goods; rebuilt it from the database", "goods_id", goodsID)
		l.stockIsBack(ctx, goodsID)
	}
	return err
}

// restore loads goods into Redis from the database's truth, with the units
// each user holds when the goods limit them, unless Redis holds it already.
func (l *Ledger) restore(ctx context.Context, goodsID int64) (bool, error) {
	g, err := l.stock.Goods(ctx, goodsID)
	if err != nil {
		return false, err
	}
	st := service.RestoredStock{}
	if st.Stock, err = l.stock.Truth(ctx, goodsID); err != nil {
		return false, err
	}
	// The applied changes after the stock: one committed in between is
	// marked applied without being counted, which sells less, never more;
	// the other order would let its replay count it twice.
	if st.AppliedOps, st.ReturnedOrders, err = l.stock.AppliedChanges(ctx, goodsID); err != nil {
		return false, err
	}
	if g.PerUserLimit > 0 {
		if st.UserUnits, err = l.stock.UserUnits(ctx, goodsID); err != nil {
			return false, err
		}
	}
	return l.cache.Restore(ctx, g, st)
}

// RestoreMissing loads into Redis the stock of every goods it does not
// hold (an embedded Redis after a restart, a Redis restarted empty) from
// the database's truth. A missing key is never read as zero stock. Run it
// when no instance is selling: orders reserved in the lost Redis but not
// yet written would be counted as unsold.
func (l *Ledger) RestoreMissing(ctx context.Context) (restored []int64, err error) {
	gs, err := l.stock.ListGoods(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		if _, ok, err := l.cache.Stock(ctx, g.ID); err != nil || ok {
			if err != nil {
				return restored, err
			}
			continue
		}
		ok, err := l.restore(ctx, g.ID)
		if err != nil {
			return restored, err
		}
		if ok {
			restored = append(restored, g.ID)
		}
	}
	return restored, nil
}
