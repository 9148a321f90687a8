package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-seckill/seckill/service"
)

// Stock coming in: MySQL first, so Redis never offers units MySQL does
// not have, then Redis, each once per movement.

// AddStock adds n units to a running sale, once per opID. A replayed opID
// changes nothing and reports replayed; it also finishes a Redis step that
// failed the first time.
func (l *Ledger) AddStock(ctx context.Context, goodsID, n int64, opID string) (replayed bool, err error) {
	err = l.stock.AddStock(ctx, goodsID, n, opID)
	replayed = errors.Is(err, service.ErrDuplicate)
	if err != nil && !replayed {
		return false, err
	}
	if err := l.cache.Add(ctx, goodsID, n, opID); err != nil && !errors.Is(err, service.ErrStockNotLoaded) {
		return replayed, fmt.Errorf("stock added in mysql, not yet in redis (repeat with op_id %q): %w", opID, err)
	}
	l.stockIsBack(ctx, goodsID)
	return replayed, nil
}

// ReturnOrder gives a cancelled order's units back to MySQL and Redis, each
// exactly once. It may be called again at any step and finishes what is
// left. ErrNotYet: the sale is not applied yet; call again later.
func (l *Ledger) ReturnOrder(ctx context.Context, m service.StockMessage) error {
	if err := l.stock.ReturnSale(ctx, m); err != nil && !errors.Is(err, service.ErrAlreadyApplied) {
		return err
	}
	if err := l.cache.Return(ctx, m.OrderID, m.GoodsID, m.UserID, m.Number); err != nil && !errors.Is(err, service.ErrStockNotLoaded) {
		return err
	}
	l.stockIsBack(ctx, m.GoodsID)
	return nil
}
