package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/service"
)

// The goods as the shopper reads see them: each goods' hash carries its
// details (name, price, checkout, created_ms) beside the stock, window and limit the
// scripts use, so one HMGET answers a read and the rebuild of a lost hash
// restores the details with the stock. The index lists the ids; the
// catalog marker says both are whole.

// detailFields are the hash fields of a goods' details.
func detailFields(g service.Goods) []any {
	return []any{"name", g.Name, "price", g.Price, "checkout", g.Checkout, "created_ms", g.CreatedAt.UnixMilli()}
}

// shownFields are the fields a read takes, in this order.
var shownFields = []string{"stock", "start_ms", "end_ms", "limit", "name", "price", "created_ms", "checkout"}

// ShownGoods reads a goods' details and stock from Redis: found false for
// an id Redis does not know while it holds the catalog;
// ErrStockNotLoaded when Redis lost the goods (its id is in the index, or
// the catalog marker is gone: a flush), which the rebuild restores.
func (r *Redis) ShownGoods(ctx context.Context, id int64) (service.Goods, bool, error) {
	var fields *redis.SliceCmd
	var indexed *redis.FloatCmd
	var catalog *redis.IntCmd
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		fields = p.HMGet(ctx, GoodsKey(r.prefix, id), shownFields...)
		indexed = p.ZScore(ctx, GoodsIndexKey(r.prefix), strconv.FormatInt(id, 10))
		catalog = p.Exists(ctx, GoodsCatalogKey(r.prefix))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return service.Goods{}, false, unavailable(err)
	}
	v := fields.Val()
	if v[0] == nil {
		if indexed.Err() == nil || catalog.Val() == 0 {
			return service.Goods{}, false, fmt.Errorf("%w: goods %d", service.ErrStockNotLoaded, id)
		}
		return service.Goods{}, false, nil
	}
	num := func(i int) int64 {
		s, _ := v[i].(string)
		n, _ := strconv.ParseInt(s, 10, 64)
		return n
	}
	at := func(i int) *time.Time {
		if v[i] == nil {
			return nil
		}
		t := time.UnixMilli(num(i)).UTC()
		return &t
	}
	name, _ := v[4].(string)
	checkout, _ := v[7].(string)
	if checkout == "" { // a hash loaded before goods had a checkout
		checkout = service.CheckoutOrder
	}
	return service.Goods{ID: id, Name: name, Price: num(5), Stock: num(0), PerUserLimit: num(3), Checkout: checkout,
		SaleWindow: service.SaleWindow{StartAt: at(1), EndAt: at(2)}, CreatedAt: time.UnixMilli(num(6)).UTC()}, true, nil
}

// GoodsIDs lists the ids in the index; whole is false when the catalog
// marker is gone (Redis lost its data and the list may lack goods).
func (r *Redis) GoodsIDs(ctx context.Context) (ids []int64, whole bool, err error) {
	var members *redis.StringSliceCmd
	var catalog *redis.IntCmd
	_, err = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		members = p.ZRange(ctx, GoodsIndexKey(r.prefix), 0, -1)
		catalog = p.Exists(ctx, GoodsCatalogKey(r.prefix))
		return nil
	})
	if err != nil {
		return nil, false, unavailable(err)
	}
	for _, m := range members.Val() {
		if id, err := strconv.ParseInt(m, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	return ids, catalog.Val() == 1, nil
}

// indexGoods puts goods' ids in the index.
func (r *Redis) indexGoods(ctx context.Context, ids ...int64) error {
	zs := make([]redis.Z, len(ids))
	for i, id := range ids {
		zs[i] = redis.Z{Score: float64(id), Member: strconv.FormatInt(id, 10)}
	}
	return unavailable(r.c.ZAdd(ctx, GoodsIndexKey(r.prefix), zs...).Err())
}

// detailsScript sets the details fields ARGV of a goods hash only when it
// exists: a missing one is left to the rebuild, which writes them whole.
var detailsScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`)

// Catalog makes Redis hold the catalog of gs, every goods the database
// holds: each held hash gets its details (hashes loaded before they were
// kept there), every id goes in the index, and the marker says the
// catalog is whole. Run at start and after Redis lost its data; a hash
// Redis lost is the rebuild's.
func (r *Redis) Catalog(ctx context.Context, gs []service.Goods) error {
	for part := range slices.Chunk(gs, chunk) {
		_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, g := range part {
				detailsScript.Eval(ctx, p, []string{GoodsKey(r.prefix, g.ID)}, detailFields(g)...)
			}
			return nil
		})
		if err != nil {
			return unavailable(err)
		}
		ids := make([]int64, len(part))
		for i, g := range part {
			ids[i] = g.ID
		}
		if err := r.indexGoods(ctx, ids...); err != nil {
			return err
		}
	}
	return unavailable(r.c.Set(ctx, GoodsCatalogKey(r.prefix), 1, 0).Err())
}
