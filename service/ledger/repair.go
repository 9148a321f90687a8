package ledger

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/go-seckill/seckill/service"
)

// TruthsAndPending reads each goods' truth and the pending movements it
// holds: those whose record says Redis does not hold them yet, which a
// repair or rebuild of Redis from the truth must mark, so that their own
// steps add nothing afterwards. A reading is not Exact when a movement was
// recorded while the truth was read (see truthsAndPending).
func (l *Repairs) TruthsAndPending(ctx context.Context, goodsIDs []int64) ([]service.TruthReading, error) {
	return l.truthsAndPending(ctx, goodsIDs, 1)
}

// Repair adds delta to goods' Redis stock only if Redis still holds
// expected, so a concurrent sale or another instance's repair is never
// overwritten. The truth the new stock comes from includes the pending
// movements ops and returns: the same step sets their markers, so that a
// retry of one of them adds nothing, and then their records say Redis
// holds them and the markers go. Stock that comes back is announced.
//
// For split goods, expected counts the buckets (see Stock) and the repair
// goes to the hash: the compare is on the hash with what the buckets hold
// now taken off, so a sale from a bucket since the read fails it as one
// from the hash would, and an allotment, which moves units without
// changing the sum, does not.
func (l *Repairs) Repair(ctx context.Context, goodsID, expected, delta int64, ops []string, returns []int64) (bool, error) {
	split, err := l.splitHeld(ctx, goodsID, false)
	if err != nil {
		return false, err
	}
	if delta < 0 && split > 0 {
		// Units come off the hash only: those in buckets go back to it
		// first, or the hash could go below zero while the buckets sell
		// the excess.
		if split, err = l.drainBuckets(ctx, goodsID); err != nil {
			return false, err
		}
	}
	repaired, err := l.mends.Repair(ctx, goodsID, expected-split, delta, ops, returns)
	if err != nil || !repaired {
		return repaired, err
	}
	if err := l.settle(ctx, goodsID, ops, returns); err != nil {
		l.log.Warn("repaired; the markers of the movements it stood in for stay until the next pass", "goods_id", goodsID, "err", err)
	}
	if delta > 0 {
		l.stockIsBack(ctx, goodsID)
	}
	return true, nil
}

// Tidy settles the markers movements left in goods' Redis hash: a step
// whose record could not be updated after Redis applied it, a process that
// died in between, markers of movements recorded before their records said
// whether Redis holds them. A marker says Redis holds its movement, so its
// record can say so, and then the marker can go. Only markers are read, a
// chunk at a time; while no movement is in flight there are none.
func (l *Repairs) Tidy(ctx context.Context, goodsID int64) error {
	return l.moves.Markers(ctx, goodsID, func(ops []string, returns []int64) error {
		return l.settle(ctx, goodsID, ops, returns)
	})
}

// BuyerDrifts compares each buyer's units of goods in Redis with the
// database's (units of live orders), in bounded steps, and calls each for
// every buyer whose counts differ.
func (l *Repairs) BuyerDrifts(ctx context.Context, goodsID int64, each func(service.BuyerUnits) error) error {
	return l.mends.BuyerDrifts(ctx, goodsID, func(units func(userID, units int64) error) error {
		return l.userUnits(ctx, goodsID, units)
	}, each)
}

// repairChunk is how many buyers one repair step sets.
const repairChunk = 500

// RepairBuyers sets buyers' units of goods in Redis to the database's,
// each only if Redis still holds the units read, and says how many it
// set. A buyer's cancelled orders whose return Redis has not given yet
// are marked in the same step: the new units already leave them out, so
// their returns' retries must change nothing; their records then say
// Redis holds them.
func (l *Repairs) RepairBuyers(ctx context.Context, goodsID int64, fixes []service.BuyerUnits) (int, error) {
	repaired := 0
	for part := range slices.Chunk(fixes, repairChunk) {
		users := make([]int64, len(part))
		for i, f := range part {
			users[i] = f.UserID
		}
		unreturned, err := l.truths.CancelledUnreturned(ctx, goodsID, users)
		if err != nil {
			return repaired, err
		}
		done, err := l.mends.RepairBuyers(ctx, goodsID, part, unreturned)
		if err != nil {
			return repaired, err
		}
		repaired += len(done)
		var returns []int64
		for _, u := range done {
			returns = append(returns, unreturned[u]...)
		}
		if err := l.settle(ctx, goodsID, nil, returns); err != nil {
			l.log.Warn("buyers repaired; the markers of the returns they stood in for stay until the next pass", "goods_id", goodsID, "err", err)
		}
	}
	return repaired, nil
}

// reconcileLockTTL bounds how long the reconciliation of one goods keeps
// its lock when its instance dies mid-pass: the other instances' passes
// wait that long. A pass longer than this (millions of buyers) may meet
// another instance's; the compare-and-add still keeps each repair right.
const reconcileLockTTL = 10 * time.Second

// LockGoods takes goods' reconciliation lock across instances.
func (l *Repairs) LockGoods(ctx context.Context, goodsID int64) (unlock func(), ok bool, err error) {
	return l.locker.Lock(ctx, fmt.Sprintf("reconcile:%d", goodsID), reconcileLockTTL)
}

// stockNotLoaded answers for goods Redis holds no stock for: not found, or
// not loaded while a rebuild is started.
func (l *Ledger) stockNotLoaded(ctx context.Context, goodsID int64) error {
	if _, err := l.truths.Goods(ctx, goodsID); err != nil {
		return err
	}
	l.startRebuild(goodsID)
	return service.ErrStockNotLoaded
}

// startRebuild rebuilds goods' lost Redis stock in the background, unless
// this instance is at it already. The rebuild ends with the ledger's life.
func (l *core) startRebuild(goodsID int64) {
	if _, busy := l.rebuilds.LoadOrStore(goodsID, true); busy {
		return
	}
	l.running.Add(1)
	go func() {
		defer l.running.Done()
		defer l.rebuilds.Delete(goodsID)
		if err := l.rebuild(goodsID); err != nil && l.life.Err() == nil {
			l.log.Error("rebuild of lost redis stock failed; it is retried on the next order", "goods_id", goodsID, "err", err)
		}
	}()
}

// rebuild restores goods' Redis stock once, across instances, after Redis
// lost it (restarted empty, flushed, failed over). It waits RebuildGrace
// first: no reservation can be taken while the key is missing, and by then
// every reservation taken before the loss has become an order, which the
// truth counts, or has failed.
func (l *core) rebuild(goodsID int64) error {
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
func (l *core) restore(ctx context.Context, goodsID int64) (bool, error) {
	g, err := l.truths.Goods(ctx, goodsID)
	if err != nil {
		return false, err
	}
	st := service.RestoredStock{}
	split, inBuckets, err := l.inBuckets(ctx, goodsID)
	if err != nil {
		return false, err
	}
	readings, err := l.truthsAndPending(ctx, []int64{goodsID}, rebuildAttempts)
	if err != nil {
		return false, err
	}
	st.Stock, st.PendingOps, st.PendingReturns = readings[0].Truth, readings[0].Ops, readings[0].Returns
	// A split goods' hash holds what its buckets do not, and names them
	// again; never below zero (buckets above the truth are the
	// reconciliation's to see).
	st.Stock, st.Split = max(st.Stock-inBuckets, 0), split
	if !readings[0].Exact {
		l.log.Warn("movements of stock kept coming while the truth was read; the rebuild marks them all, and the reconciliation adds back any the truth missed", "goods_id", goodsID)
	}
	if g.PerUserLimit > 0 {
		st.UserUnits = func(each func(userID, units int64) error) error {
			return l.truths.UserUnits(ctx, goodsID, each)
		}
	}
	restored, err := l.mends.Restore(ctx, g, st)
	if restored {
		if err := l.settle(ctx, goodsID, st.PendingOps, st.PendingReturns); err != nil {
			l.log.Warn("rebuilt; the markers of the movements it stood in for stay until the reconciliation", "goods_id", goodsID, "err", err)
		}
	}
	return restored, err
}

// rebuildAttempts is how often a rebuild reads the truth again when
// movements keep coming meanwhile.
const rebuildAttempts = 3

// truthsAndPending reads each goods' truth and the pending movements it
// holds: those whose record says Redis does not hold them yet, which a
// cache loaded with the truth must mark so that their own steps add
// nothing. The pending movements are read before and after the truth. One
// pending in both was recorded before the truth was read, so the truth
// holds it; one that appears only after may have been recorded after the
// truth's snapshot, and nothing tells. Then the reads of that goods are
// repeated, up to attempts times; its reading is not Exact when that
// never settled, and the movements returned are all those pending after
// the truth: marking one the truth lacks makes Redis sell less until the
// reconciliation adds it back, never more. (The two reads bracket the
// truth's snapshot without sharing it, so that the truth keeps its one
// definition.) The truths of the goods are read together, which costs far
// less than one goods at a time (see TruthOfEach).
func (l *core) truthsAndPending(ctx context.Context, goodsIDs []int64, attempts int) ([]service.TruthReading, error) {
	readings := make([]service.TruthReading, len(goodsIDs))
	todo := make([]int, len(goodsIDs)) // indexes of the goods not read exactly yet
	for i := range todo {
		todo[i] = i
	}
	for range attempts {
		if len(todo) == 0 {
			break
		}
		before := make([]service.TruthReading, len(todo))
		ids := make([]int64, len(todo))
		for k, i := range todo {
			var err error
			ids[k] = goodsIDs[i]
			if before[k].Ops, before[k].Returns, err = l.records.PendingMovements(ctx, ids[k]); err != nil {
				return nil, err
			}
		}
		truths, err := l.truths.TruthOfEach(ctx, ids)
		if err != nil {
			return nil, err
		}
		next := todo[:0]
		for k, i := range todo {
			r := &readings[i]
			r.Truth = truths[k]
			if r.Ops, r.Returns, err = l.records.PendingMovements(ctx, ids[k]); err != nil {
				return nil, err
			}
			if r.Exact = within(r.Ops, before[k].Ops) && within(r.Returns, before[k].Returns); !r.Exact {
				next = append(next, i)
			}
		}
		todo = next
	}
	return readings, nil
}

// within says every element of some is in all.
func within[T comparable](some, all []T) bool {
	in := make(map[T]bool, len(all))
	for _, v := range all {
		in[v] = true
	}
	for _, v := range some {
		if !in[v] {
			return false
		}
	}
	return true
}

// RebuildMissing starts the rebuild of every goods Redis holds no stock
// for, as an order finding it missing would: under the rebuild lock, after
// the grace, so that another instance selling meanwhile loses nothing. It
// returns the goods whose rebuild it started; until it ends they answer
// stock_not_loaded. This is what an instance sharing Redis runs at start.
func (l *Repairs) RebuildMissing(ctx context.Context) (started []int64, err error) {
	err = l.eachMissing(ctx, func(goodsID int64) error {
		l.startRebuild(goodsID)
		started = append(started, goodsID)
		return nil
	})
	return started, err
}

// eachMissing calls fn with every goods Redis holds no stock for.
func (l *core) eachMissing(ctx context.Context, fn func(goodsID int64) error) error {
	gs, err := l.truths.ListGoods(ctx)
	if err != nil {
		return err
	}
	for _, g := range gs {
		_, ok, err := l.gate.Stock(ctx, g.ID)
		if err != nil {
			return err
		}
		if !ok {
			if err := fn(g.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// RestoreMissing loads into Redis, at once, the stock of every goods it
// does not hold from the database's truth. A missing key is never read as
// zero stock. Only for a Redis no other instance sells from (the embedded
// one, empty after each start): with a shared Redis, orders reserved by
// another instance but not yet written would be counted as unsold, so
// RebuildMissing waits them out instead.
func (l *Repairs) RestoreMissing(ctx context.Context) (restored []int64, err error) {
	err = l.eachMissing(ctx, func(goodsID int64) error {
		ok, err := l.restore(ctx, goodsID)
		if ok {
			restored = append(restored, goodsID)
		}
		return err
	})
	return restored, err
}
