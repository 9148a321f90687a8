package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-seckill/seckill/service"
)

// Stock coming in: MySQL first, so Redis never offers units MySQL does
// not have, then Redis, each once per movement. The movement's record in
// MySQL says whether Redis holds it (cached); the Redis step runs while
// the record is held and only if it does not, and leaves a marker in Redis
// until the record says so. A repair of Redis that stands in for the
// movement sets the same marker and record, so the movement's retry and
// the repair never both count.

// AddStock adds n units to a running sale, once per opID. A replayed opID
// changes nothing and reports replayed; it also finishes a Redis step that
// failed the first time, with the units the first call recorded.
func (l *Ledger) AddStock(ctx context.Context, goodsID, n int64, opID string) (replayed bool, err error) {
	err = l.records.AddStock(ctx, goodsID, n, opID)
	replayed = errors.Is(err, service.ErrDuplicate)
	if err != nil && !replayed {
		return false, err
	}
	applied, err := l.records.CacheAddition(ctx, opID, func(recordedGoods, delta int64) error {
		goodsID = recordedGoods
		return l.moves.Add(ctx, recordedGoods, delta, opID)
	})
	switch {
	case errors.Is(err, service.ErrStockNotLoaded):
		// Redis lost the goods: its rebuild takes the addition from the truth.
	case err != nil:
		return replayed, fmt.Errorf("stock added in mysql, not yet in redis (repeat with op_id %q): %w", opID, err)
	case applied:
		l.forget(ctx, goodsID, []string{opID}, nil)
	}
	l.stockIsBack(ctx, goodsID)
	return replayed, nil
}

// ReturnOrder gives a cancelled order's units back to MySQL and Redis, each
// exactly once. It may be called again at any step and finishes what is
// left. ErrNotYet: the sale is not applied yet; call again later.
func (l *Ledger) ReturnOrder(ctx context.Context, m service.StockMessage) error {
	if err := l.records.ReturnSale(ctx, m); err != nil && !errors.Is(err, service.ErrAlreadyApplied) {
		return err
	}
	applied, err := l.records.CacheReturn(ctx, m.OrderID, func() error {
		return l.moves.Return(ctx, m.OrderID, m.GoodsID, m.UserID, m.Number)
	})
	switch {
	case errors.Is(err, service.ErrStockNotLoaded):
		// Redis lost the goods: its rebuild takes the return from the truth.
	case err != nil:
		return err
	case applied:
		l.forget(ctx, m.GoodsID, nil, []int64{m.OrderID})
	}
	l.stockIsBack(ctx, m.GoodsID)
	return nil
}

// forget deletes the markers of movements whose record now says Redis
// holds them. One left behind changes nothing; the reconciliation deletes
// it.
func (l *core) forget(ctx context.Context, goodsID int64, ops []string, returns []int64) {
	if err := l.moves.Forget(ctx, goodsID, ops, returns); err != nil {
		l.log.Warn("markers of finished movements stay in redis until the reconciliation deletes them", "goods_id", goodsID, "err", err)
	}
}

// settle records that Redis holds the movements whose markers it has, then
// deletes those markers. A failure leaves the markers, which keep copies of
// the movements from counting, for the next reconciliation to settle.
func (l *core) settle(ctx context.Context, goodsID int64, ops []string, returns []int64) error {
	if len(ops)+len(returns) == 0 {
		return nil
	}
	ops, returns, err := l.records.MarkCached(ctx, goodsID, ops, returns)
	if err != nil {
		return err
	}
	return l.moves.Forget(ctx, goodsID, ops, returns)
}
