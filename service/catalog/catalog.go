// Package catalog puts goods on sale and shows them: to admins as MySQL
// holds them, to shoppers with the stock they may still buy.
package catalog

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/go-seckill/seckill/service"
)

// MaxNameLen bounds a goods name, in characters.
const MaxNameLen = 100

// Goods is the goods table.
type Goods interface {
	CreateGoods(ctx context.Context, g service.NewGoods) (service.Goods, error)
	Goods(ctx context.Context, id int64) (service.Goods, error)
	ListGoods(ctx context.Context) ([]service.Goods, error)
	// EditGoods sets goods' name and sale window, calling apply with the
	// new values while the row is locked and before it commits: an error
	// from apply leaves the row as it was.
	EditGoods(ctx context.Context, id int64, name string, w service.SaleWindow, apply func(service.Goods) error) (service.Goods, error)
	// Stats reads the goods' MySQL stock, sale and the counting fields of
	// Stats (orders over every table, sale and return stock logs, dead
	// letters).
	Stats(ctx context.Context, goodsID int64) (service.Stats, error)
}

// Ledger loads and adds stock, and reads what Redis offers.
type Ledger interface {
	Put(ctx context.Context, g service.Goods) error
	AddStock(ctx context.Context, goodsID, n int64, opID string) (replayed bool, err error)
	Stock(ctx context.Context, goodsID int64) (stock int64, ok bool, err error)
	// Buckets are a split goods' buckets; none when it is not split.
	Buckets(ctx context.Context, goodsID int64) ([]service.Bucket, error)
}

// Stocks reads many goods' Redis stock in one round trip.
type Stocks interface {
	// Stocks leaves out the goods Redis does not hold.
	Stocks(ctx context.Context, goodsIDs []int64) (map[int64]int64, error)
}

// Windows puts a goods' sale window where the reservation reads it, and
// its name where the shopper reads take it; ErrStockNotLoaded when that
// store does not hold the goods now.
type Windows interface {
	SetNameAndWindow(ctx context.Context, goodsID int64, name string, w service.SaleWindow) error
}

// IDs makes unique ids, for op ids an admin did not give.
type IDs interface{ NewID() int64 }

// Catalog is the goods on sale.
type Catalog struct {
	goods   Goods
	ledger  Ledger
	stocks  Stocks
	windows Windows
	ids     IDs
}

// New wires a catalog.
func New(goods Goods, ledger Ledger, stocks Stocks, windows Windows, ids IDs) *Catalog {
	return &Catalog{goods: goods, ledger: ledger, stocks: stocks, windows: windows, ids: ids}
}

// MaxPrice bounds a unit's price, in cents (10^8 yuan): times any order's
// units it stays far inside a BIGINT.
const MaxPrice = 10_000_000_000

// CreateGoods puts new goods on sale with their stock and sale window in
// MySQL and Redis.
func (c *Catalog) CreateGoods(ctx context.Context, ng service.NewGoods) (service.Goods, error) {
	ng.Name = strings.TrimSpace(ng.Name)
	switch {
	case ng.Name == "" || utf8.RuneCountInString(ng.Name) > MaxNameLen:
		return service.Goods{}, service.Invalid("name must have 1 to %d characters", MaxNameLen)
	case ng.Price < 0 || ng.Price > MaxPrice:
		return service.Goods{}, service.Invalid("price must be cents from 0 to %d", MaxPrice)
	case ng.Stock < 0:
		return service.Goods{}, service.Invalid("stock must not be negative")
	case ng.PerUserLimit < 0:
		return service.Goods{}, service.Invalid("per_user_limit must not be negative (0 is no limit)")
	case ng.StartAt != nil && ng.EndAt != nil && !ng.EndAt.After(*ng.StartAt):
		return service.Goods{}, service.Invalid("end_at must come after start_at")
	case ng.Checkout == "":
		ng.Checkout = service.CheckoutOrder
	case ng.Checkout != service.CheckoutOrder && ng.Checkout != service.CheckoutSeckill:
		return service.Goods{}, service.Invalid("checkout must be %q or %q", service.CheckoutOrder, service.CheckoutSeckill)
	}
	g, err := c.goods.CreateGoods(ctx, ng)
	if err != nil {
		return service.Goods{}, err
	}
	if err := c.ledger.Put(ctx, g); err != nil {
		return service.Goods{}, fmt.Errorf("goods %d created in mysql but not loaded in redis: %w", g.ID, err)
	}
	return g, nil
}

// EditGoods renames goods and moves their sale window. The database row
// stays locked while the new window goes to Redis, where every version's
// reservation checks it, and commits after: once the edit is answered no
// order is taken outside the new window, and concurrent edits reach Redis
// in the database's order. When Redis does not hold the goods (its stock
// is being rebuilt from the database) nothing changes and the answer is
// ErrStockNotLoaded; when the commit fails after Redis took the window,
// the error says to repeat the edit, which sets the same values.
func (c *Catalog) EditGoods(ctx context.Context, id int64, name string, w service.SaleWindow) (service.Goods, error) {
	name = strings.TrimSpace(name)
	switch {
	case id < 1:
		return service.Goods{}, service.Invalid("id must be a positive integer")
	case name == "" || utf8.RuneCountInString(name) > MaxNameLen:
		return service.Goods{}, service.Invalid("name must have 1 to %d characters", MaxNameLen)
	case w.StartAt != nil && w.EndAt != nil && !w.EndAt.After(*w.StartAt):
		return service.Goods{}, service.Invalid("end_at must come after start_at")
	}
	return c.goods.EditGoods(ctx, id, name, w, func(g service.Goods) error {
		return c.windows.SetNameAndWindow(ctx, g.ID, g.Name, g.SaleWindow)
	})
}

// AddStock adds n units to a running sale, once per opID (one is made when
// empty). A replayed opID changes nothing and reports replayed.
func (c *Catalog) AddStock(ctx context.Context, goodsID, n int64, opID string) (g service.Goods, replayed bool, err error) {
	switch {
	case goodsID < 1:
		return service.Goods{}, false, service.Invalid("id must be a positive integer")
	case n < 1:
		return service.Goods{}, false, service.Invalid("add_stock must be a positive integer: stock is only ever added")
	case len(opID) > 64:
		return service.Goods{}, false, service.Invalid("op_id must have at most 64 characters")
	}
	if opID == "" {
		opID = fmt.Sprintf("auto-%d", c.ids.NewID())
	}
	if replayed, err = c.ledger.AddStock(ctx, goodsID, n, opID); err != nil {
		return service.Goods{}, replayed, err
	}
	g, err = c.goods.Goods(ctx, goodsID)
	return g, replayed, err
}

// Goods is what a shopper sees: Stock is what may still be bought, from
// Redis while it holds the goods, else from MySQL.
func (c *Catalog) Goods(ctx context.Context, id int64) (service.Goods, error) {
	g, err := c.goods.Goods(ctx, id)
	if err != nil {
		return service.Goods{}, err
	}
	if stock, ok, err := c.ledger.Stock(ctx, id); err == nil && ok {
		g.Stock = stock
	}
	return g, nil
}

// ShopperGoods lists every goods with the stock a shopper may still buy,
// read from Redis in one round trip.
func (c *Catalog) ShopperGoods(ctx context.Context) ([]service.Goods, error) {
	gs, err := c.goods.ListGoods(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(gs))
	for i, g := range gs {
		ids[i] = g.ID
	}
	stocks, err := c.stocks.Stocks(ctx, ids)
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
func (c *Catalog) ListGoods(ctx context.Context) ([]service.Goods, error) {
	return c.goods.ListGoods(ctx)
}

// Stats puts one goods' stock as Redis and MySQL see it side by side.
func (c *Catalog) Stats(ctx context.Context, id int64) (service.Stats, error) {
	st, err := c.goods.Stats(ctx, id)
	if err != nil {
		return service.Stats{}, err
	}
	if stock, ok, err := c.ledger.Stock(ctx, id); err != nil {
		return service.Stats{}, err
	} else if ok {
		st.RedisStock = &stock
	}
	if st.Buckets, err = c.ledger.Buckets(ctx, id); err != nil {
		return service.Stats{}, err
	}
	for _, b := range st.Buckets {
		if b.Stock != nil && st.RedisStock != nil {
			*st.RedisStock += *b.Stock
		}
	}
	return st, nil
}
