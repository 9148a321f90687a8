package service

import "context"

// placeV5 is V4 publishing to the nsqd number user_id % nsqd (another one
// when that fails): one nsqd is no longer the ceiling.
func (s *Service) placeV5(ctx context.Context, o Order) error {
	return s.sell(ctx, o, s.shardedTable(o.UserID), o.UserID)
}
