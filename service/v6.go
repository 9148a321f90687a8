package service

import (
	"context"
	"errors"
)

// placeV6 is V5 behind an in-memory sold-out flag per goods: once Redis
// says sold out, this instance answers 409 without a network call until
// stock comes back (every instance hears of it by broadcast) or the flag's
// TTL ends. The flag only ever refuses; a sale always goes through Redis.
func (s *Service) placeV6(ctx context.Context, o Order) error {
	set, gen := s.soldOut.check(o.GoodsID)
	if set {
		return ErrSoldOut
	}
	err := s.placeV5(ctx, o)
	if errors.Is(err, ErrSoldOut) {
		s.soldOut.set(o.GoodsID, gen)
	}
	return err
}
