package service

import (
	"context"
	"errors"
)

// placeV2 reserves the units in Redis, writes the order and leaves MySQL's
// stock to the consumer: no hot row on the request path, so the order
// insert is the ceiling.
func (s *Service) placeV2(ctx context.Context, o Order) error {
	return s.sell(ctx, o, OrderTable{}, 0)
}

// sell is the Redis-first path V2 and later share; the versions differ in
// where the order row goes and which nsqd carries its message.
func (s *Service) sell(ctx context.Context, o Order, at OrderTable, route int64) error {
	if err := s.reserve(ctx, o); err != nil {
		return err
	}
	ctx, cancel := afterReserve(ctx)
	defer cancel()
	if err := s.goods.InsertOrder(ctx, o, at); err != nil {
		if err = s.failedWrite(ctx, o, at, err); err != nil {
			return err
		}
	}
	s.publish(ctx, stockMessage(o, at), route)
	return nil
}

// failedWrite settles a reservation whose order write failed: given back
// when the order surely does not exist, kept when that is unknown, so that
// a write that did commit never leaves Redis offering its units again. It
// returns nil when the order turns out to exist.
func (s *Service) failedWrite(ctx context.Context, o Order, at OrderTable, err error) error {
	if errors.Is(err, ErrAmbiguous) {
		_, _, lerr := s.goods.OrderStatus(ctx, at, o.ID)
		switch {
		case lerr == nil:
			return nil // it was written after all
		case !errors.Is(lerr, ErrNotFound):
			s.log.Warn("order write outcome unknown; its units stay reserved until the reconciliation settles them", "order_id", o.ID, "err", err)
			return &UnknownOrder{Order: o, At: at, Err: err}
		}
	}
	s.release(ctx, o)
	return err
}
