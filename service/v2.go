package service

import "context"

// placeV2 reserves the units in Redis, writes the order and leaves MySQL's
// stock to the consumer: no hot row on the request path, so the order
// insert is the ceiling.
func (s *Service) placeV2(ctx context.Context, o Order) error {
	if err := s.reserve(ctx, o); err != nil {
		return err
	}
	ctx, cancel := afterReserve(ctx)
	defer cancel()
	if err := s.goods.InsertOrder(ctx, o); err != nil {
		s.release(ctx, o)
		return err
	}
	s.publish(ctx, o)
	return nil
}
