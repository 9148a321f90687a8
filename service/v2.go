package service

import "context"

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
		s.release(ctx, o)
		return err
	}
	s.publish(ctx, stockMessage(o, at), route)
	return nil
}
