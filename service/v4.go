package service

import "context"

// placeV4 is V3 with the order tables spread over the hosts of
// mysql.shards by user_id % hosts: one host's disk is no longer the ceiling.
// Goods and stock logs stay on the primary.
func (s *Service) placeV4(ctx context.Context, o Order) error {
	return s.sell(ctx, o, s.shardedTable(o.UserID), 0)
}

func (s *Service) shardedTable(userID int64) OrderTable {
	return OrderTable{Host: int(userID%int64(s.opts.OrderHosts)) + 1, Table: s.orderTable(userID)}
}
