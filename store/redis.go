package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/service"
)

// Redis holds each goods' sellable stock in the hash goods_{id}, field stock.
// Its client is one server's or a Redis Cluster's: every script and
// transaction keeps its keys in one hash slot (see keys.go).
type Redis struct {
	c      redis.UniversalClient
	prefix string
	// accepts runs concurrent accept scripts (V13) in shared pipelines.
	accepts *coalescer[scriptCall, *redis.Cmd]
}

// Results the scripts return besides a stock level.
const (
	scriptSoldOut    = -1
	scriptNotLoaded  = -2
	scriptNotStarted = -3
	scriptEnded      = -4
	scriptLimit      = -5
	// scriptSplit: too little stock in the goods hash, and the goods is
	// split: its buckets may hold units (see goods_buckets.go).
	scriptSplit = -6
)

// reserveScript takes ARGV[1] units for user ARGV[3] if that many remain,
// the time ARGV[2] (Unix ms) is within the sale window (fields start_ms,
// end_ms, when set) and the user stays within the per-user limit (field
// limit; KEYS[2] holds each user's units). It never lets stock go below
// zero and tells a missing key (-2) from an empty one (-1), and an empty
// one whose goods is split over buckets (-6) from one that is not.
//
// Measured against the seed's HINCRBY-then-give-back (see redis_test.go's
// benchmarks): a little slower while stock lasts, faster once sold out (one
// call instead of two), and it never shows negative stock to readers nor
// creates the key of goods Redis has lost.
var reserveScript = redis.NewScript(reserveLua + `
return reserve(tonumber(ARGV[1]), ARGV[2], ARGV[3])
`)

// reserveLua defines reserve(n, now, user), the reservation's checks and
// decrement on the goods hash KEYS[1] and the buyers hash KEYS[2], for
// every script that reserves.
const reserveLua = `
local function reserve(n, now, user)
  local f = redis.call('HMGET', KEYS[1], 'stock', 'start_ms', 'end_ms', 'limit')
  local stock = f[1]
  if not stock then return -2 end
  now = tonumber(now)
  if f[2] and now < tonumber(f[2]) then return -3 end
  if f[3] and now > tonumber(f[3]) then return -4 end
  local limit = tonumber(f[4] or '0')
  if limit > 0 and tonumber(redis.call('HGET', KEYS[2], user) or '0') + n > limit then return -5 end
  if tonumber(stock) < n then
    if redis.call('HEXISTS', KEYS[1], 'buckets') == 1 then return -6 end
    return -1
  end
  if limit > 0 then redis.call('HINCRBY', KEYS[2], user, n) end
  return redis.call('HINCRBY', KEYS[1], 'stock', -n)
end
`

// releaseScript gives ARGV[1] units of user ARGV[2] back, but never creates
// a missing key. With ARGV[3] (an order id) it is the return of a cancelled
// order: it sets the order's marker ret:<id> and does nothing when the
// marker is there already (a copy of the return in flight, or a repair that
// stood in for it). The marker goes once the order's return record says
// Redis holds it.
var releaseScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
if ARGV[3] and redis.call('HSETNX', KEYS[1], 'ret:' .. ARGV[3], ARGV[1]) == 0 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'limit') or '0') > 0 then
  redis.call('HINCRBY', KEYS[2], ARGV[2], -tonumber(ARGV[1]))
end
return redis.call('HINCRBY', KEYS[1], 'stock', ARGV[1])
`)

// addScript adds ARGV[1] units under the marker field ARGV[2] (op:<op_id>
// for an admin's addition), as releaseScript does for returns: a copy in
// flight changes nothing.
var addScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
if redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[1]) == 0 then
  return tonumber(redis.call('HGET', KEYS[1], 'stock'))
end
return redis.call('HINCRBY', KEYS[1], 'stock', ARGV[1])
`)

// RedisOptions configure the client.
type RedisOptions struct {
	Addr string
	// ClusterAddrs, when set, are seed nodes of a Redis Cluster, used
	// instead of Addr (DB must be 0).
	ClusterAddrs []string
	Password     string
	DB           int
	PoolSize     int
	KeyPrefix    string
	// Zero timeouts take the values in brackets.
	DialTimeout  time.Duration // [2s]
	ReadTimeout  time.Duration // [1s]
	WriteTimeout time.Duration // [1s]
	// PoolTimeout is how long a command waits for a free connection before
	// failing fast instead of queueing without bound [2s].
	PoolTimeout time.Duration
	// Observer, if set, times every command.
	Observer Observer
}

// OpenRedis connects and checks the server answers: one server, or with
// ClusterAddrs a cluster (pool size and idle connections are then per node).
func OpenRedis(ctx context.Context, o RedisOptions) (*Redis, error) {
	var c redis.UniversalClient
	if len(o.ClusterAddrs) > 0 {
		if o.DB != 0 {
			return nil, errors.New("a Redis Cluster has database 0 only")
		}
		c = redis.NewClusterClient(&redis.ClusterOptions{
			// As below, no command is sent twice: the cluster client's
			// redirect loop also resends a command whose connection broke
			// or timed out (a master killed after it ran), so it follows no
			// redirect either. A MOVED after a failover fails that one
			// command (503, the ledger settles it) and reloads the slots.
			MaxRedirects: -1,
			Addrs:        o.ClusterAddrs,
			Password:     o.Password,
			PoolSize:     o.PoolSize,
			MinIdleConns: o.PoolSize / 4,
			DialTimeout:  cmp.Or(o.DialTimeout, 2*time.Second),
			ReadTimeout:  cmp.Or(o.ReadTimeout, time.Second),
			WriteTimeout: cmp.Or(o.WriteTimeout, time.Second),
			PoolTimeout:  cmp.Or(o.PoolTimeout, 2*time.Second),
		})
	} else {
		c = redis.NewClient(&redis.Options{
			// No command is sent again by the client: a command whose reply
			// came too late may have run, and a reservation or give-back
			// sent again would move its units twice. The ledger settles a
			// failed command itself (503, give-back, reconciliation).
			MaxRetries:   -1,
			Addr:         o.Addr,
			Password:     o.Password,
			DB:           o.DB,
			PoolSize:     o.PoolSize,
			MinIdleConns: o.PoolSize / 4,
			DialTimeout:  cmp.Or(o.DialTimeout, 2*time.Second),
			ReadTimeout:  cmp.Or(o.ReadTimeout, time.Second),
			WriteTimeout: cmp.Or(o.WriteTimeout, time.Second),
			PoolTimeout:  cmp.Or(o.PoolTimeout, 2*time.Second),
		})
	}
	if o.Observer != nil {
		c.AddHook(redisHook{o.Observer})
	}
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, unavailable(err)
	}
	r := &Redis{c: c, prefix: o.KeyPrefix}
	r.accepts = newCoalescer(maxScriptBatch, func(calls []scriptCall) []*redis.Cmd {
		return r.pipelineScript(context.Background(), acceptScript, calls)
	})
	return r, nil
}

// Close closes the pool.
func (r *Redis) Close() error { return r.c.Close() }

// LeaseNode leases a snowflake node for this instance: see LeaseNode.
func (r *Redis) LeaseNode(ctx context.Context, want int64, ttl time.Duration) (*NodeLease, error) {
	return LeaseNode(ctx, r.c, r.prefix, want, ttl)
}

// keys are the keys the goods scripts use: the goods hash (stock, sale
// window, limit) and the hash of each user's units for the per-user limit.
func (r *Redis) keys(goodsID int64) []string {
	return []string{GoodsKey(r.prefix, goodsID), BuyersKey(r.prefix, goodsID)}
}

func (r *Redis) Ping(ctx context.Context) error { return unavailable(r.c.Ping(ctx).Err()) }

func (r *Redis) Reserve(ctx context.Context, goodsID, userID, n int64, now time.Time) error {
	res, err := reserveScript.Run(ctx, r.c, r.keys(goodsID), n, now.UnixMilli(), userID).Int64()
	if err != nil {
		return unavailable(err)
	}
	return reserveResult(res)
}

// reserveResult is the error a reservation's result stands for; nil for
// a stock level.
func reserveResult(res int64) error {
	switch {
	case res == scriptSoldOut:
		return service.ErrSoldOut
	case res == scriptNotLoaded:
		return service.ErrStockNotLoaded
	case res == scriptNotStarted:
		return service.ErrNotStarted
	case res == scriptEnded:
		return service.ErrEnded
	case res == scriptLimit:
		return service.ErrLimitExceeded
	case res == scriptSplit:
		return service.ErrStockSplit
	}
	return nil
}

func (r *Redis) Release(ctx context.Context, goodsID, userID, n int64) error {
	return r.runOnKey(ctx, releaseScript, goodsID, n, userID)
}

func (r *Redis) Return(ctx context.Context, orderID, goodsID, userID, n int64) error {
	return r.runOnKey(ctx, releaseScript, goodsID, n, userID, orderID)
}

func (r *Redis) Add(ctx context.Context, goodsID, n int64, opID string) error {
	return r.runOnKey(ctx, addScript, goodsID, n, opMarker+opID)
}

func (r *Redis) runOnKey(ctx context.Context, s *redis.Script, goodsID int64, args ...any) error {
	res, err := s.Run(ctx, r.c, r.keys(goodsID), args...).Int64()
	if err != nil {
		return unavailable(err)
	}
	if res == scriptNotLoaded {
		return service.ErrStockNotLoaded
	}
	return nil
}

// Put loads new goods: stock, sale window, limit and details, replacing
// what the keys held, and lists the goods in the index. MULTI/EXEC on a
// cluster needs one slot: both keys share the goods' hash tag; the index
// is another slot's, written after.
func (r *Redis) Put(ctx context.Context, g service.Goods) error {
	keys := r.keys(g.ID)
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keys...)
		p.HSet(ctx, keys[0], goodsFields(g, g.Stock)...)
		return nil
	})
	if err != nil {
		return unavailable(err)
	}
	return r.indexGoods(ctx, g.ID)
}

// windowScript sets the sale window fields start_ms (ARGV[1]) and end_ms
// (ARGV[2]) of a goods hash, deleting a field whose value is empty, and
// its name (ARGV[3]), only
// when the hash exists: a missing one is being rebuilt from the database,
// and writing into it would make a hash without stock that the rebuild
// would then refuse to replace.
var windowScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
local names = {'start_ms', 'end_ms'}
for i = 1, 2 do
  if ARGV[i] == '' then redis.call('HDEL', KEYS[1], names[i]) else redis.call('HSET', KEYS[1], names[i], ARGV[i]) end
end
redis.call('HSET', KEYS[1], 'name', ARGV[3])
return 0
`)

// SetNameAndWindow puts goods' sale window in its hash, where the
// reservation script reads it, and its name, where the shopper reads take
// it; ErrStockNotLoaded when Redis does not hold the goods.
func (r *Redis) SetNameAndWindow(ctx context.Context, goodsID int64, name string, w service.SaleWindow) error {
	ms := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	n, err := windowScript.Run(ctx, r.c, []string{GoodsKey(r.prefix, goodsID)}, ms(w.StartAt), ms(w.EndAt), name).Int64()
	if err != nil {
		return unavailable(err)
	}
	if n == scriptNotLoaded {
		return fmt.Errorf("%w: goods %d", service.ErrStockNotLoaded, goodsID)
	}
	// A split goods' buckets check the window themselves: each gets it
	// too, by the same script (a bucket its master lost gets it with its
	// next allotment).
	s, ok, err := splitOf(ctx, r.c, r.prefix, goodsID)
	if err != nil || !ok {
		return err
	}
	for _, tag := range s.Tags {
		if err := windowScript.Run(ctx, r.c, []string{GoodsBucketKey(r.prefix, tag)}, ms(w.StartAt), ms(w.EndAt), name).Err(); err != nil {
			return unavailable(err)
		}
	}
	return nil
}

// goodsFields are the hash fields of a goods key.
func goodsFields(g service.Goods, stock int64) []any {
	fields := append([]any{"stock", stock, "limit", g.PerUserLimit}, detailFields(g)...)
	if g.StartAt != nil {
		fields = append(fields, "start_ms", g.StartAt.UnixMilli())
	}
	if g.EndAt != nil {
		fields = append(fields, "end_ms", g.EndAt.UnixMilli())
	}
	return fields
}

func (r *Redis) Stock(ctx context.Context, goodsID int64) (int64, bool, error) {
	n, err := r.c.HGet(ctx, GoodsKey(r.prefix, goodsID), "stock").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, unavailable(err)
	}
	return n, true, nil
}

// Stocks reads the units goods have on sale, for the shoppers' pages and
// the local shares: a split goods' hash stock plus what its buckets hold
// (one more read for those only; its hash may hold none).
func (r *Redis) Stocks(ctx context.Context, goodsIDs []int64) (map[int64]int64, error) {
	cmds := make([]*redis.SliceCmd, len(goodsIDs))
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range goodsIDs {
			cmds[i] = p.HMGet(ctx, GoodsKey(r.prefix, id), "stock", bucketsField)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(err)
	}
	out := make(map[int64]int64, len(goodsIDs))
	for i, cmd := range cmds {
		f := cmd.Val()
		v, ok := f[0].(string)
		if !ok {
			continue // Redis holds no stock for it
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		if tags, ok := f[1].(string); ok {
			if split, ok := ParseSplit(tags); ok {
				held, err := heldInSplit(ctx, r.c, r.prefix, goodsIDs[i], split)
				if err != nil {
					return nil, err
				}
				n += held
			}
		}
		out[goodsIDs[i]] = n
	}
	return out, nil
}
