package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxNameLen bounds a goods name, in characters.
const MaxNameLen = 100

// CreateGoods puts new goods on sale with their stock and sale window in
// MySQL and Redis.
func (s *Service) CreateGoods(ctx context.Context, ng NewGoods) (Goods, error) {
	ng.Name = strings.TrimSpace(ng.Name)
	switch {
	case ng.Name == "" || utf8.RuneCountInString(ng.Name) > MaxNameLen:
		return Goods{}, invalid("name must have 1 to %d characters", MaxNameLen)
	case ng.Stock < 0:
		return Goods{}, invalid("stock must not be negative")
	case ng.PerUserLimit < 0:
		return Goods{}, invalid("per_user_limit must not be negative (0 is no limit)")
	case ng.StartAt != nil && ng.EndAt != nil && !ng.EndAt.After(*ng.StartAt):
		return Goods{}, invalid("end_at must come after start_at")
	}
	g, err := s.goods.CreateGoods(ctx, ng)
	if err != nil {
		return Goods{}, err
	}
	if err := s.stock.Put(ctx, g); err != nil {
		return Goods{}, fmt.Errorf("goods %d created in mysql but not loaded in redis: %w", g.ID, err)
	}
	return g, nil
}

// AddStock adds n units to a running sale, once per opID: MySQL first, so
// Redis never offers units MySQL does not have, then Redis. A replayed opID
// changes nothing and reports replayed; it also finishes a Redis step that
// failed the first time.
func (s *Service) AddStock(ctx context.Context, goodsID, n int64, opID string) (g Goods, replayed bool, err error) {
	switch {
	case goodsID < 1:
		return Goods{}, false, invalid("id must be a positive integer")
	case n < 1:
		return Goods{}, false, invalid("add_stock must be a positive integer: stock is only ever added")
	case len(opID) > 64:
		return Goods{}, false, invalid("op_id must have at most 64 characters")
	}
	if opID == "" {
		opID = fmt.Sprintf("auto-%d", s.ids.NewID())
	}
	err = s.goods.AddStock(ctx, goodsID, n, opID)
	replayed = errors.Is(err, ErrDuplicate)
	if err != nil && !replayed {
		return Goods{}, false, err
	}
	if err := s.stock.Add(ctx, goodsID, n, opID); err != nil && !errors.Is(err, ErrStockNotLoaded) {
		return Goods{}, replayed, fmt.Errorf("stock added in mysql, not yet in redis (repeat with op_id %q): %w", opID, err)
	}
	s.stockIsBack(ctx, goodsID)
	g, err = s.goods.Goods(ctx, goodsID)
	return g, replayed, err
}

// Goods is what a shopper sees: Stock is what may still be bought, from
// Redis while it holds the goods, else from MySQL.
func (s *Service) Goods(ctx context.Context, id int64) (Goods, error) {
	g, err := s.goods.Goods(ctx, id)
	if err != nil {
		return Goods{}, err
	}
	if stock, ok, err := s.stock.Stock(ctx, id); err == nil && ok {
		g.Stock = stock
	}
	return g, nil
}

// ShopperGoods lists every goods with the stock a shopper may still buy,
// read from Redis in one round trip.
func (s *Service) ShopperGoods(ctx context.Context) ([]Goods, error) {
	gs, err := s.goods.ListGoods(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(gs))
	for i, g := range gs {
		ids[i] = g.ID
	}
	stocks, err := s.stock.Stocks(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range gs {
		if stock, ok := stocks[gs[i].ID]; ok {
			gs[i].Stock = stock
		}
	}
	return gs, nil
}

// ListGoods lists every goods, as MySQL holds it.
func (s *Service) ListGoods(ctx context.Context) ([]Goods, error) { return s.goods.ListGoods(ctx) }

// Stats puts one goods' stock as Redis and MySQL see it side by side.
func (s *Service) Stats(ctx context.Context, id int64) (Stats, error) {
	g, err := s.goods.Goods(ctx, id)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{GoodsID: id, MySQLStock: g.Stock, MySQLSale: g.Sale}
	if stock, ok, err := s.stock.Stock(ctx, id); err != nil {
		return Stats{}, err
	} else if ok {
		st.RedisStock = &stock
	}
	counts, err := s.goods.Counts(ctx, id)
	st.Orders, st.StockLogs, st.Returns, st.DeadLetters = counts.Orders, counts.StockLogs, counts.Returns, counts.DeadLetters
	return st, err
}

// RestoreMissingStock loads into Redis the stock of every goods it does not
// hold (an embedded Redis after a restart, a Redis restarted empty) from the
// database's truth: goods.stock less the units of orders whose decrement has
// not reached it yet. A missing key is never read as zero stock. Run it when
// no instance is selling: orders reserved in the lost Redis but not yet
// written would be counted as unsold.
func (s *Service) RestoreMissingStock(ctx context.Context) (restored []int64, err error) {
	gs, err := s.goods.ListGoods(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		if _, ok, err := s.stock.Stock(ctx, g.ID); err != nil || ok {
			if err != nil {
				return restored, err
			}
			continue
		}
		ok, err := s.restore(ctx, g.ID)
		if err != nil {
			return restored, err
		}
		if ok {
			restored = append(restored, g.ID)
		}
	}
	return restored, nil
}

// Ready reports the first dependency that does not answer.
func (s *Service) Ready(ctx context.Context) error {
	for name, ping := range map[string]func(context.Context) error{
		"mysql": s.goods.Ping, "redis": s.stock.Ping, "nsqd": s.pub.Ping,
	} {
		if err := ping(ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}
