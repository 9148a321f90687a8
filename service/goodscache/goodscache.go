// Package goodscache serves the goods to shoppers and V9's order checks
// from two levels the application maintains: this instance's memory (the
// hot set) in front of Redis, which holds every goods. No read goes
// through to MySQL: admin writes update Redis and announce the change to
// every instance, and a goods Redis lost is restored by the rebuild path
// while reads answer what this instance holds, or stock_not_loaded.
package goodscache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2/stats"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/tiered"
)

// Store is the second level: Redis.
type Store interface {
	// ShownGoods reads a goods' details and stock; found false for an
	// unknown id, ErrStockNotLoaded for goods Redis lost.
	ShownGoods(ctx context.Context, id int64) (g service.Goods, found bool, err error)
	// GoodsIDs lists every goods id; whole is false when Redis lost its
	// data and the list may lack some.
	GoodsIDs(ctx context.Context) (ids []int64, whole bool, err error)
}

// Options tune the cache; zero values take the defaults in brackets.
type Options struct {
	MaxSize int // goods kept in memory, the hot set [10000]
	// TTL is how long this instance keeps a goods after loading it; admin
	// changes are announced and seen at once [30s].
	TTL time.Duration
	// StockTTL is how old the stock shown grows while the goods are read:
	// the first read after it reloads the goods from Redis in the
	// background and answers the value held meanwhile, so a hot goods'
	// reads never wait for Redis. A goods nobody read for longer answers
	// its old stock once, at most TTL old [1s].
	StockTTL time.Duration
	// AbsentTTL is how long an unknown id is remembered as such [2s].
	AbsentTTL time.Duration
	// Stats, if set, records the in-memory level's hits and misses.
	Stats stats.Recorder
}

// Cache is the goods as the shoppers see them.
type Cache struct {
	store Store
	// recatalog makes Redis whole again after it lost its data: the index
	// and marker from the database, and the rebuild of every lost goods.
	// Background work, at most one run at a time.
	recatalog func(ctx context.Context) error
	goods     *tiered.Cache[int64, service.Goods]
	ids       *tiered.Cache[int, []int64] // one entry: every goods id
	log       *slog.Logger

	redisHits, redisMisses atomic.Int64

	mu           sync.Mutex
	recataloging bool
}

// New wires the cache on store; recatalog is run, in the background, when
// a read finds Redis lost goods.
func New(store Store, recatalog func(ctx context.Context) error, o Options, log *slog.Logger) *Cache {
	o.MaxSize = cmpOr(o.MaxSize, 10_000)
	o.TTL = cmpOr(o.TTL, 30*time.Second)
	o.StockTTL = cmpOr(o.StockTTL, time.Second)
	o.AbsentTTL = cmpOr(o.AbsentTTL, 2*time.Second)
	c := &Cache{store: store, recatalog: recatalog, log: log}
	c.goods = tiered.New(tiered.Options{MaxSize: o.MaxSize, TTL: o.TTL, AbsentTTL: o.AbsentTTL, RefreshAfter: o.StockTTL, Stats: o.Stats}, c.load)
	c.ids = tiered.New(tiered.Options{MaxSize: 1, TTL: o.TTL, RefreshAfter: o.StockTTL}, c.loadIDs)
	return c
}

func cmpOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func (c *Cache) load(ctx context.Context, id int64) (service.Goods, bool, error) {
	g, found, err := c.store.ShownGoods(ctx, id)
	if found {
		c.redisHits.Add(1)
	} else {
		c.redisMisses.Add(1)
	}
	if errors.Is(err, service.ErrStockNotLoaded) {
		c.startRecatalog()
	}
	return g, found, err
}

func (c *Cache) loadIDs(ctx context.Context, _ int) ([]int64, bool, error) {
	ids, whole, err := c.store.GoodsIDs(ctx)
	if err != nil {
		return nil, false, err
	}
	if !whole {
		c.startRecatalog()
		if len(ids) == 0 {
			return nil, false, fmt.Errorf("%w: redis lost the goods; they are being rebuilt", service.ErrStockNotLoaded)
		}
	}
	return ids, true, nil
}

// startRecatalog runs recatalog in the background unless it runs already.
func (c *Cache) startRecatalog() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recataloging || c.recatalog == nil {
		return
	}
	c.recataloging = true
	go func() {
		defer func() {
			c.mu.Lock()
			c.recataloging = false
			c.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.recatalog(ctx); err != nil {
			c.log.Warn("redis lost goods and they could not be listed for the rebuild; the next read tries again", "err", err)
		}
	}()
}

// Goods is one goods with the stock that may still be bought, at most
// StockTTL old; ErrNotFound for an unknown id.
func (c *Cache) Goods(ctx context.Context, id int64) (service.Goods, error) {
	g, found, err := c.goods.Get(ctx, id)
	if err != nil {
		return service.Goods{}, err
	}
	if !found {
		return service.Goods{}, fmt.Errorf("%w: goods %d", service.ErrNotFound, id)
	}
	return g, nil
}

// Price is one unit's price in cents, for the order checks.
func (c *Cache) Price(ctx context.Context, id int64) (int64, error) {
	g, err := c.Goods(ctx, id)
	return g.Price, err
}

// List is every goods, by id. Goods Redis lost are left out while they
// are rebuilt.
func (c *Cache) List(ctx context.Context) ([]service.Goods, error) {
	ids, _, err := c.ids.Get(ctx, 0)
	if err != nil {
		return nil, err
	}
	out := make([]service.Goods, 0, len(ids))
	for _, id := range ids {
		g, err := c.Goods(ctx, id)
		switch {
		case errors.Is(err, service.ErrNotFound) || errors.Is(err, service.ErrStockNotLoaded):
			continue
		case err != nil:
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// Changed drops this instance's copy of a goods (an absent entry too) and
// of the list: an admin changed or created it.
func (c *Cache) Changed(goodsID int64) {
	c.goods.Invalidate(goodsID)
	c.ids.InvalidateAll()
}

// RedisLookups counts the loads the Redis level answered (hits) and those
// it did not know or had lost (misses).
func (c *Cache) RedisLookups() (hits, misses int64) {
	return c.redisHits.Load(), c.redisMisses.Load()
}
