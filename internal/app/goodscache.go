package app

import (
	"context"
	"fmt"

	"github.com/maypok86/otter/v2/stats"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/go-seckill/seckill/consumer"
	"github.com/go-seckill/seckill/metrics"
	"github.com/go-seckill/seckill/service/goodscache"
	"github.com/go-seckill/seckill/store"
)

// V9's goods cache: wired on Redis, kept by the "goods changed" broadcast.

// newGoodsCache makes the cache; memory records its in-memory level.
func (a *App) newGoodsCache(memory *stats.Counter) *goodscache.Cache {
	cfg := a.cfg.GoodsCache
	return goodscache.New(a.redis, a.recatalog, goodscache.Options{
		MaxSize: cfg.MaxSize, TTL: cfg.TTL, StockTTL: cfg.StockTTL, AbsentTTL: cfg.AbsentTTL, Stats: memory,
	}, a.log)
}

// recatalog makes Redis hold the catalog again after it lost its data: the
// goods index and details from the database, and the rebuild of every
// goods hash it lost (after the rebuild's grace, as an order finding one
// missing would). Background work of the rebuild path, never a read's.
func (a *App) recatalog(ctx context.Context) error {
	gs, err := a.database.ListGoods(ctx)
	if err != nil {
		return err
	}
	if err := a.redis.Catalog(ctx, gs); err != nil {
		return err
	}
	started, err := a.ledger.Repairs().RebuildMissing(ctx)
	if len(started) > 0 {
		a.log.Warn("redis had lost goods; rebuilding them from the database after the grace", "goods", started)
	}
	return err
}

// listenGoodsChanges drops this instance's copy of each goods another
// instance announces changed.
func (a *App) listenGoodsChanges(cache *goodscache.Cache, nsqds, lookupds []string) (err error) {
	a.goodsChg, err = consumer.StartGoodsChanges(cache.Changed, consumer.Options{
		Topic: a.cfg.NSQ.GoodsChangeTopic, Channel: fmt.Sprintf("instance-%d-%s#ephemeral", a.lease.Node(), randomToken()[:8]),
		NSQDs: nsqds, Lookupds: lookupds, Concurrency: 1, NSQLog: store.NSQLogger(a.log), Lag: a.lag(a.cfg.NSQ.GoodsChangeTopic),
	})
	return err
}

// goodsCacheCollector reports the goods cache's lookups by level: memory
// (this instance's) and redis (the loads memory missed).
type goodsCacheCollector struct {
	memory  *stats.Counter
	cache   *goodscache.Cache
	lookups *prometheus.Desc
}

func newGoodsCacheCollector(memory *stats.Counter, cache *goodscache.Cache) *goodsCacheCollector {
	return &goodsCacheCollector{memory: memory, cache: cache,
		lookups: prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "goods_cache", "lookups_total"),
			"Lookups of V9's goods cache by level (memory, then redis for memory's misses) and result (hit, miss: "+
				"an unknown id or goods Redis lost).", []string{"level", "result"}, nil),
	}
}

func (c *goodsCacheCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.lookups }

func (c *goodsCacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.memory.Snapshot()
	hits, misses := c.cache.RedisLookups()
	for _, v := range []struct {
		level, result string
		n             uint64
	}{{"memory", "hit", s.Hits}, {"memory", "miss", s.Misses}, {"redis", "hit", uint64(hits)}, {"redis", "miss", uint64(misses)}} {
		ch <- prometheus.MustNewConstMetric(c.lookups, prometheus.CounterValue, float64(v.n), v.level, v.result)
	}
}
