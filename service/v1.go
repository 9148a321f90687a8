package service

import (
	"context"
	"errors"
	"time"
)

// placeV1 sells in one MySQL transaction on the goods row: the conditional
// decrement locks the row until commit, so the row lock is the ceiling.
//
// V1 also passes the Redis gate inside that transaction, so that V1 and the
// Redis-first versions can sell one goods at the same time: every sale, of
// any version, takes its units from Redis, which never goes below zero, and
// MySQL's conditional update guards the rest.
func (s *Service) placeV1(ctx context.Context, o Order) error {
	reserved := false
	err := s.goods.SellInTx(ctx, o, func() error {
		// Only the reservation here: the transaction holds its connection,
		// and the goods lookup below needs another one.
		err := s.stock.Reserve(ctx, o.GoodsID, o.UserID, o.Number, time.Now())
		reserved = err == nil
		return err
	})
	if reserved && err != nil {
		// The transaction failed after the gate took the units.
		ctx, cancel := afterReserve(ctx)
		defer cancel()
		err = s.failedWrite(ctx, o, OrderTable{}, err)
	}
	if err == nil {
		// The sale is applied with the order: start the payment clock now.
		s.scheduleTimeout(ctx, stockMessage(o, OrderTable{}))
		return nil
	}
	switch {
	case errors.Is(err, ErrStockNotLoaded):
		return s.stockNotLoaded(ctx, o.GoodsID)
	case errors.Is(err, ErrSoldOut):
		// Zero rows decremented: sold out, or no such goods.
		if _, gerr := s.goods.Goods(ctx, o.GoodsID); errors.Is(gerr, ErrNotFound) {
			return gerr
		}
	}
	return err
}
