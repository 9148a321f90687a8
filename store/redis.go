package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/service"
)

// Redis holds each goods' sellable stock in the hash goods_{id}, field stock.
type Redis struct {
	c      *redis.Client
	prefix string
}

// Results the scripts return besides a stock level.
const (
	scriptSoldOut    = -1
	scriptNotLoaded  = -2
	scriptNotStarted = -3
	scriptEnded      = -4
	scriptLimit      = -5
)

// reserveScript takes ARGV[1] units for user ARGV[3] if that many remain,
// the time ARGV[2] (Unix ms) is within the sale window (fields start_ms,
// end_ms, when set) and the user stays within the per-user limit (field
// limit; KEYS[2] holds each user's units). It never lets stock go below
// zero and tells a missing key (-2) from an empty one (-1).
//
// Measured against the seed's HINCRBY-then-give-back (see redis_test.go's
// benchmarks): a little slower while stock lasts, faster once sold out (one
// call instead of two), and it never shows negative stock to readers nor
// creates the key of goods Redis has lost.
var reserveScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'stock', 'start_ms', 'end_ms', 'limit')
local stock = f[1]
if not stock then return -2 end
local now = tonumber(ARGV[2])
if f[2] and now < tonumber(f[2]) then return -3 end
if f[3] and now > tonumber(f[3]) then return -4 end
local n = tonumber(ARGV[1])
local limit = tonumber(f[4] or '0')
if limit > 0 and tonumber(redis.call('HGET', KEYS[2], ARGV[3]) or '0') + n > limit then return -5 end
if tonumber(stock) < n then return -1 end
if limit > 0 then redis.call('HINCRBY', KEYS[2], ARGV[3], n) end
return redis.call('HINCRBY', KEYS[1], 'stock', -n)
`)

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

// addScript adds ARGV[1] units under the marker op:<ARGV[2]>, as
// releaseScript does for returns: a copy in flight changes nothing.
var addScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
if redis.call('HSETNX', KEYS[1], 'op:' .. ARGV[2], ARGV[1]) == 0 then
  return tonumber(redis.call('HGET', KEYS[1], 'stock'))
end
return redis.call('HINCRBY', KEYS[1], 'stock', ARGV[1])
`)

// RedisOptions configure the client.
type RedisOptions struct {
	Addr      string
	Password  string
	DB        int
	PoolSize  int
	KeyPrefix string
	// Zero timeouts take the values in brackets.
	DialTimeout  time.Duration // [2s]
	ReadTimeout  time.Duration // [1s]
	WriteTimeout time.Duration // [1s]
	// PoolTimeout is how long a command waits for a free connection before
	// failing fast instead of queueing without bound [2s].
	PoolTimeout time.Duration
}

// OpenRedis connects and checks the server answers.
func OpenRedis(ctx context.Context, o RedisOptions) (*Redis, error) {
	c := redis.NewClient(&redis.Options{
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
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, unavailable(err)
	}
	return &Redis{c: c, prefix: o.KeyPrefix}, nil
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
	switch {
	case err != nil:
		return unavailable(err)
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
	return r.runOnKey(ctx, addScript, goodsID, n, opID)
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

// Put loads new goods: stock, sale window and limit, replacing what the
// keys held.
func (r *Redis) Put(ctx context.Context, g service.Goods) error {
	keys := r.keys(g.ID)
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keys...)
		p.HSet(ctx, keys[0], goodsFields(g, g.Stock)...)
		return nil
	})
	return unavailable(err)
}

// placeScript puts the goods and buyers hashes built in staging keys
// (KEYS[3], KEYS[4]) in place of KEYS[1] and KEYS[2], only if the goods key
// still does not exist; else it drops them. -1: the staged goods expired.
var placeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('DEL', KEYS[3], KEYS[4])
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('DEL', KEYS[4])
  return -1
end
redis.call('RENAME', KEYS[3], KEYS[1])
redis.call('PERSIST', KEYS[1])
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('RENAME', KEYS[4], KEYS[2])
  redis.call('PERSIST', KEYS[2])
else
  redis.call('DEL', KEYS[2])
end
return 1
`)

// stagingTTL is how long a staging key outlives its last write: a restore
// that dies midway leaves nothing for good.
const stagingTTL = time.Minute

// Restore loads goods as the database knows them, only if Redis holds no
// stock for them, in steps that cannot leave half a state: the goods hash
// (stock, sale window, limit, the markers of pending movements) and the
// buyers hash are built in staging keys in pipelined chunks, each user's
// units streamed in with HINCRBY, and one script puts both in place whole,
// or drops them when the goods were loaded meanwhile. Memory and every
// command stay bounded by the chunk, whatever the number of buyers.
func (r *Redis) Restore(ctx context.Context, g service.Goods, st service.RestoredStock) (bool, error) {
	keys := r.keys(g.ID)
	token, err := randomToken()
	if err != nil {
		return false, err
	}
	staged := []string{StagingKey(keys[0], token), StagingKey(keys[1], token)}
	restored, err := r.restore(ctx, keys, staged, g, st)
	if err != nil {
		// Best effort; the staging keys expire anyway.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		r.c.Del(cleanup, staged...)
		cancel()
	}
	return restored, err
}

func (r *Redis) restore(ctx context.Context, keys, staged []string, g service.Goods, st service.RestoredStock) (bool, error) {
	w := r.stage(ctx, staged...)
	fields := goodsFields(g, st.Stock)
	for _, f := range markerFields(st.PendingOps, st.PendingReturns) {
		fields = append(fields, f, 0)
	}
	for part := range slices.Chunk(fields, 2*chunk) {
		if err := w.add(func(p redis.Pipeliner) { p.HSet(ctx, staged[0], part...) }); err != nil {
			return false, err
		}
	}
	if st.UserUnits != nil {
		err := st.UserUnits(func(user, units int64) error {
			return w.add(func(p redis.Pipeliner) { p.HIncrBy(ctx, staged[1], strconv.FormatInt(user, 10), units) })
		})
		if err != nil {
			return false, err
		}
	}
	if err := w.flush(); err != nil {
		return false, err
	}
	n, err := placeScript.Run(ctx, r.c, append(slices.Clone(keys), staged...)).Int()
	switch {
	case err != nil:
		return false, unavailable(err)
	case n < 0:
		return false, unavailable(errors.New("the staged goods expired before they were put in place"))
	}
	return n == 1, nil
}

// staging writes keys that are not in place yet, a pipelined chunk of
// commands at a time; every chunk renews the keys' expiry.
type staging struct {
	ctx  context.Context
	p    redis.Pipeliner
	keys []string
	n    int // commands queued
}

func (r *Redis) stage(ctx context.Context, keys ...string) *staging {
	return &staging{ctx: ctx, p: r.c.Pipeline(), keys: keys}
}

// add queues a command, and sends the chunk when it is full.
func (s *staging) add(cmd func(p redis.Pipeliner)) error {
	cmd(s.p)
	if s.n++; s.n >= chunk {
		return s.flush()
	}
	return nil
}

func (s *staging) flush() error {
	if s.n == 0 {
		return nil
	}
	for _, k := range s.keys {
		s.p.PExpire(s.ctx, k, stagingTTL)
	}
	s.n = 0
	_, err := s.p.Exec(s.ctx)
	return unavailable(err)
}

// randomToken names staging and scratch keys of one run.
func randomToken() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// goodsFields are the hash fields of a goods key.
func goodsFields(g service.Goods, stock int64) []any {
	fields := []any{"stock", stock, "limit", g.PerUserLimit}
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

func (r *Redis) Stocks(ctx context.Context, goodsIDs []int64) (map[int64]int64, error) {
	cmds := make([]*redis.StringCmd, len(goodsIDs))
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range goodsIDs {
			cmds[i] = p.HGet(ctx, GoodsKey(r.prefix, id), "stock")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(err)
	}
	out := make(map[int64]int64, len(goodsIDs))
	for i, cmd := range cmds {
		if n, err := cmd.Int64(); err == nil {
			out[goodsIDs[i]] = n
		}
	}
	return out, nil
}

// repairScript adds ARGV[2] to the stock only if it still is ARGV[1], and
// in the same step sets the markers ARGV[3..]: the movements whose units
// the new stock holds without their own step having run, so that a retry
// of one of them adds nothing. One marker at a time: no unpack, whose
// limit a long list would pass.
var repairScript = redis.NewScript(`
local stock = redis.call('HGET', KEYS[1], 'stock')
if not stock or tonumber(stock) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HINCRBY', KEYS[1], 'stock', ARGV[2])
for i = 3, #ARGV do redis.call('HSETNX', KEYS[1], ARGV[i], 0) end
return 1
`)

// Adjust adds delta to the stock only if it still is expected.
func (r *Redis) Adjust(ctx context.Context, goodsID, expected, delta int64) (bool, error) {
	return r.Repair(ctx, goodsID, expected, delta, nil, nil)
}

// Repair adds delta to the stock only if it still is expected, and marks
// the admin operations ops and the returns of the orders returns as held.
func (r *Redis) Repair(ctx context.Context, goodsID, expected, delta int64, ops []string, returns []int64) (bool, error) {
	args := append([]any{expected, delta}, markerFields(ops, returns)...)
	n, err := repairScript.Run(ctx, r.c, []string{GoodsKey(r.prefix, goodsID)}, args...).Int()
	return n == 1, unavailable(err)
}

// Markers of movements in flight, in the goods hash: op:<op_id> for an
// admin addition, ret:<order_id> for a cancelled order's return.
const (
	opMarker  = "op:"
	retMarker = "ret:"
)

func markerFields(ops []string, returns []int64) []any {
	fields := make([]any, 0, len(ops)+len(returns))
	for _, op := range ops {
		fields = append(fields, opMarker+op)
	}
	for _, id := range returns {
		fields = append(fields, retMarker+strconv.FormatInt(id, 10))
	}
	return fields
}

// chunk is how many fields one Redis command of a bounded step carries.
const chunk = 1000

// Forget deletes the markers of movements whose record says Redis holds
// them; it never creates the key.
func (r *Redis) Forget(ctx context.Context, goodsID int64, ops []string, returns []int64) error {
	key := GoodsKey(r.prefix, goodsID)
	fields := markerFields(ops, returns)
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for part := range slices.Chunk(fields, chunk) {
			names := make([]string, len(part))
			for i, f := range part {
				names[i] = f.(string)
			}
			p.HDel(ctx, key, names...)
		}
		return nil
	})
	return unavailable(err)
}

// Markers scans the goods hash for markers and calls each with those of
// every scanned chunk (a marker may come twice).
func (r *Redis) Markers(ctx context.Context, goodsID int64, each func(ops []string, returns []int64) error) error {
	key := GoodsKey(r.prefix, goodsID)
	var cursor uint64
	for {
		kv, next, err := r.c.HScan(ctx, key, cursor, "", chunk).Result()
		if err != nil {
			return unavailable(err)
		}
		var ops []string
		var returns []int64
		for i := 0; i < len(kv); i += 2 {
			if op, ok := strings.CutPrefix(kv[i], opMarker); ok {
				ops = append(ops, op)
			} else if id, ok := strings.CutPrefix(kv[i], retMarker); ok {
				if n, err := strconv.ParseInt(id, 10, 64); err == nil {
					returns = append(returns, n)
				}
			}
		}
		if len(ops)+len(returns) > 0 {
			if err := each(ops, returns); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// BuyerDrifts compares each buyer's units in the buyers hash with units,
// the database's (streamed; a user may come more than once), and calls
// each for every buyer whose counts differ. The database's units are
// summed into a scratch hash beside the buyers hash in pipelined chunks;
// then both hashes are scanned a chunk at a time against each other. No
// command, script or map holds more than a chunk of buyers.
func (r *Redis) BuyerDrifts(ctx context.Context, goodsID int64, units func(each func(userID, units int64) error) error, each func(service.BuyerUnits) error) error {
	buyers := BuyersKey(r.prefix, goodsID)
	token, err := randomToken()
	if err != nil {
		return err
	}
	scratch := ScratchKey(buyers, token)
	defer func() {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		r.c.Del(cleanup, scratch)
		cancel()
	}()
	w := r.stage(ctx, scratch)
	err = units(func(user, n int64) error {
		return w.add(func(p redis.Pipeliner) { p.HIncrBy(ctx, scratch, strconv.FormatInt(user, 10), n) })
	})
	if err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	// Every buyer Redis counts, against the database.
	err = r.scanAgainst(ctx, buyers, scratch, func(user int64, cached int64, truth *int64) error {
		if t := deref(truth); t != cached {
			return each(service.BuyerUnits{UserID: user, Cached: cached, Truth: t})
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Every buyer of the database Redis does not count.
	return r.scanAgainst(ctx, scratch, buyers, func(user int64, truth int64, cached *int64) error {
		if cached == nil && truth != 0 {
			return each(service.BuyerUnits{UserID: user, Truth: truth})
		}
		return nil
	})
}

func deref(n *int64) int64 {
	if n == nil {
		return 0
	}
	return *n
}

// scanAgainst scans the hash key a chunk at a time and calls fn with each
// user's units there and in the hash other (nil: other has no such field).
func (r *Redis) scanAgainst(ctx context.Context, key, other string, fn func(user, units int64, otherUnits *int64) error) error {
	var cursor uint64
	for {
		kv, next, err := r.c.HScan(ctx, key, cursor, "", chunk).Result()
		if err != nil {
			return unavailable(err)
		}
		fields := make([]string, 0, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			fields = append(fields, kv[i])
		}
		var theirs []any
		if len(fields) > 0 {
			if theirs, err = r.c.HMGet(ctx, other, fields...).Result(); err != nil {
				return unavailable(err)
			}
		}
		for i, f := range fields {
			user, err1 := strconv.ParseInt(f, 10, 64)
			units, err2 := strconv.ParseInt(kv[2*i+1], 10, 64)
			if err1 != nil || err2 != nil {
				continue // not a buyer's count
			}
			var otherUnits *int64
			if s, ok := theirs[i].(string); ok {
				if n, err := strconv.ParseInt(s, 10, 64); err == nil {
					otherUnits = &n
				}
			}
			if err := fn(user, units, otherUnits); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// repairBuyersScript sets buyers' units: ARGV holds, per buyer, the user,
// the units the pass read, the units to set and a count k, then k order
// ids. Each buyer's units are set only if Redis still holds what the pass
// read (none counts as 0; 0 deletes the field), and then the markers of
// the buyer's k cancelled orders whose return Redis has not given back are
// set in the goods hash, so that those returns change nothing afterwards.
// Nothing happens for goods Redis does not hold. It returns the users set.
var repairBuyersScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local done = {}
local i = 1
while i <= #ARGV do
  local user, k = ARGV[i], tonumber(ARGV[i + 3])
  if tonumber(redis.call('HGET', KEYS[2], user) or '0') == tonumber(ARGV[i + 1]) then
    if tonumber(ARGV[i + 2]) == 0 then
      redis.call('HDEL', KEYS[2], user)
    else
      redis.call('HSET', KEYS[2], user, ARGV[i + 2])
    end
    for j = i + 4, i + 3 + k do redis.call('HSETNX', KEYS[1], 'ret:' .. ARGV[j], 0) end
    done[#done + 1] = user
  end
  i = i + 4 + k
end
return done
`)

// RepairBuyers sets each buyer's units to the truth where Redis still
// holds the units read, marking the returns of unreturned[user] in the
// same step, and says which users it set.
func (r *Redis) RepairBuyers(ctx context.Context, goodsID int64, fixes []service.BuyerUnits, unreturned map[int64][]int64) ([]int64, error) {
	var args []any
	for _, f := range fixes {
		args = append(args, f.UserID, f.Cached, f.Truth, len(unreturned[f.UserID]))
		for _, id := range unreturned[f.UserID] {
			args = append(args, id)
		}
	}
	if len(args) == 0 {
		return nil, nil
	}
	done, err := repairBuyersScript.Run(ctx, r.c, r.keys(goodsID), args...).StringSlice()
	if err != nil {
		return nil, unavailable(err)
	}
	users := make([]int64, 0, len(done))
	for _, u := range done {
		if n, err := strconv.ParseInt(u, 10, 64); err == nil {
			users = append(users, n)
		}
	}
	return users, nil
}

// unlockScript deletes a lock only if it still holds this holder's token.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Lock takes the lock name for ttl, across every instance sharing Redis.
func (r *Redis) Lock(ctx context.Context, name string, ttl time.Duration) (func(), bool, error) {
	key := r.prefix + "lock:" + name
	token := strconv.FormatInt(time.Now().UnixNano(), 36)
	ok, err := r.c.SetNX(ctx, key, token, ttl).Result()
	if err != nil || !ok {
		return nil, false, unavailable(err)
	}
	return func() { unlockScript.Run(context.Background(), r.c, []string{key}, token) }, true, nil
}
