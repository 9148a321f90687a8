package goodscache

import (
	"context"
	"log/slog"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/catalog"
)

// Announcer tells every instance that a goods changed.
type Announcer interface {
	AnnounceGoods(ctx context.Context, goodsID int64) error
}

// Catalog answers the shopper reads from the cache and, after each admin
// write (which updates Redis), drops this instance's copy and announces
// the change to the others.
type Catalog struct {
	*catalog.Catalog
	cache    *Cache
	announce Announcer
	log      *slog.Logger
}

// NewCatalog decorates inner with the cache.
func NewCatalog(inner *catalog.Catalog, cache *Cache, announce Announcer, log *slog.Logger) *Catalog {
	return &Catalog{Catalog: inner, cache: cache, announce: announce, log: log}
}

// Goods is one goods from the cache; the Sale field is left zero (only
// MySQL counts it; admins read it in the stats).
func (c *Catalog) Goods(ctx context.Context, id int64) (service.Goods, error) {
	return c.cache.Goods(ctx, id)
}

// ShopperGoods lists the goods from the cache.
func (c *Catalog) ShopperGoods(ctx context.Context) ([]service.Goods, error) {
	return c.cache.List(ctx)
}

func (c *Catalog) CreateGoods(ctx context.Context, ng service.NewGoods) (service.Goods, error) {
	g, err := c.Catalog.CreateGoods(ctx, ng)
	if err == nil {
		c.changed(ctx, g.ID)
	}
	return g, err
}

func (c *Catalog) AddStock(ctx context.Context, goodsID, n int64, opID string) (service.Goods, bool, error) {
	g, replayed, err := c.Catalog.AddStock(ctx, goodsID, n, opID)
	if err == nil {
		c.changed(ctx, goodsID)
	}
	return g, replayed, err
}

func (c *Catalog) EditGoods(ctx context.Context, id int64, name string, w service.SaleWindow) (service.Goods, error) {
	g, err := c.Catalog.EditGoods(ctx, id, name, w)
	if err == nil {
		c.changed(ctx, id)
	}
	return g, err
}

// changed drops this instance's copy and tells the others. A lost
// announcement leaves the others on their copy for at most the cache's
// TTL (AbsentTTL for an id they saw unknown); the stock they show follows
// Redis within StockTTL regardless.
func (c *Catalog) changed(ctx context.Context, goodsID int64) {
	c.cache.Changed(goodsID)
	if err := c.announce.AnnounceGoods(context.WithoutCancel(ctx), goodsID); err != nil {
		c.log.Warn("goods change not announced; other instances see it within their cache's time", "goods_id", goodsID, "err", err)
	}
}
