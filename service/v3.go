package service

import "context"

// placeV3 is V2 with orders spread over the order_N tables of the primary
// by the seed's user_id/10 % N + 1: one table's insert rate is no longer
// the ceiling.
func (s *Service) placeV3(ctx context.Context, o Order) error {
	return s.sell(ctx, o, OrderTable{Table: s.orderTable(o.UserID)}, 0)
}

func (s *Service) orderTable(userID int64) int {
	return int(userID/10%int64(s.opts.OrderTables)) + 1
}
