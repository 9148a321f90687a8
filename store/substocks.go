package store

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sub-stocks: a stock split over keys of their own (a coupon template's
// sub-stocks, a goods' buckets), each key's tag chosen by SpreadTags so
// that they spread over the Redis masters. Every script touches one key,
// so each runs on the master of its sub-stock's slot. One set of scripts
// serves both kinds: a field a kind does not use (a coupon sub-stock has
// no sale window and is never off line) is absent and checks nothing.

// takeScript takes ARGV[1] units if the sub-stock holds that many: 1, else
// 0 (a missing sub-stock holds none). It never goes below zero. A sub-stock
// taken off line (field online = 0) refuses, and with ARGV[2] (the time,
// Unix ms) one outside its sale window (start_ms, end_ms) too: the caller
// then asks the stock behind it, which tells why.
var takeScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'stock', 'online', 'start_ms', 'end_ms')
local n = tonumber(ARGV[1])
if not f[1] or tonumber(f[1]) < n or f[2] == '0' then return 0 end
if ARGV[2] then
  local now = tonumber(ARGV[2])
  if (f[3] and now < tonumber(f[3])) or (f[4] and now > tonumber(f[4])) then return 0 end
end
redis.call('HINCRBY', KEYS[1], 'stock', -n)
return 1
`)

// giveBackScript returns ARGV[1] units, but never creates a sub-stock its
// master lost: reconciliation rebuilds that one from the truth.
var giveBackScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
return redis.call('HINCRBY', KEYS[1], 'stock', ARGV[1])
`)

// addStockScript adds ARGV[1] units under the marker op:<ARGV[2]>: a copy
// of the step (an admin's and a reconciliation's at once) adds nothing.
// ARGV[3..] are field, value pairs set with the units (a bucket's sale
// window and online flag), so that a sub-stock its master lost is never
// recreated without them; an empty value deletes its field. The markers
// stay: additions are few, and a marker deleted while a copy of its step
// is on the way would let that copy add again.
var addStockScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], 'op:' .. ARGV[2], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'stock', ARGV[1])
for i = 3, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
`)

// repairStockScript adds ARGV[2] only if the sub-stock still holds ARGV[1]
// (” for missing: then it is created), and never below zero.
var repairStockScript = redis.NewScript(`
local s = redis.call('HGET', KEYS[1], 'stock')
if ARGV[1] == '' then
  if s then return 0 end
elseif not s or tonumber(s) ~= tonumber(ARGV[1]) then
  return 0
end
local v = (tonumber(s) or 0) + tonumber(ARGV[2])
if v < 0 then return 0 end
redis.call('HSET', KEYS[1], 'stock', v)
return 1
`)

// GoodsBuckets are the buckets of split goods.
type GoodsBuckets struct{ subStocks }

// GoodsBuckets gives the goods' buckets on this Redis.
func (r *Redis) GoodsBuckets() GoodsBuckets { return GoodsBuckets{subStocks{r, GoodsBucketKey}} }

// Take takes n units from bucket tag if it holds them, is on line, and the
// sale is on.
func (b GoodsBuckets) Take(ctx context.Context, tag string, n int64) (bool, error) {
	return b.take(ctx, tag, n, time.Now().UnixMilli())
}

// subStocks are the sub-stocks whose key is keyOf(prefix, tag).
type subStocks struct {
	r     *Redis
	keyOf func(prefix, tag string) string
}

func (s subStocks) key(tag string) []string { return []string{s.keyOf(s.r.prefix, tag)} }

// take runs takeScript; args are its ARGV[2..].
func (s subStocks) take(ctx context.Context, tag string, n int64, args ...any) (bool, error) {
	ok, err := takeScript.Run(ctx, s.r.c, s.key(tag), append([]any{n}, args...)...).Int()
	return ok == 1, unavailable(err)
}

// GiveBack returns n units to sub-stock tag, unless its master lost it.
func (s subStocks) GiveBack(ctx context.Context, tag string, n int64) error {
	return unavailable(giveBackScript.Run(ctx, s.r.c, s.key(tag), n).Err())
}

// Add adds n units to sub-stock tag once per opID, setting fields with
// them (see addStockScript); added is false for a copy.
func (s subStocks) add(ctx context.Context, tag string, n int64, opID string, fields ...any) (added bool, err error) {
	res, err := addStockScript.Run(ctx, s.r.c, s.key(tag), append([]any{n, opID}, fields...)...).Int()
	return res == 1, unavailable(err)
}

// Add adds n units to sub-stock tag once per opID.
func (s subStocks) Add(ctx context.Context, tag string, n int64, opID string) error {
	_, err := s.add(ctx, tag, n, opID)
	return err
}

// Levels reads each sub-stock's units; nil for one its master lost.
func (s subStocks) Levels(ctx context.Context, tags []string) ([]*int64, error) {
	cmds := make([]*redis.StringCmd, len(tags))
	_, err := s.r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, tag := range tags {
			cmds[i] = p.HGet(ctx, s.keyOf(s.r.prefix, tag), "stock")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(err)
	}
	out := make([]*int64, len(tags))
	for i, cmd := range cmds {
		if n, err := cmd.Int64(); err == nil {
			out[i] = &n
		} else if !errors.Is(err, redis.Nil) {
			return nil, unavailable(err)
		}
	}
	return out, nil
}

// Repair adds delta to sub-stock tag only if it still holds expected
// (nil: missing, then it is created).
func (s subStocks) Repair(ctx context.Context, tag string, expected *int64, delta int64) (bool, error) {
	want := ""
	if expected != nil {
		want = strconv.FormatInt(*expected, 10)
	}
	ok, err := repairStockScript.Run(ctx, s.r.c, s.key(tag), want, delta).Int()
	return ok == 1, unavailable(err)
}

// Spread chooses n tags for sub-stocks, sub-stock i on master i mod
// masters (see SpreadTags).
func (s subStocks) Spread(ctx context.Context, n int, base string) ([]string, error) {
	tags, err := SpreadTags(ctx, s.r.c, n, base)
	return tags, unavailable(err)
}

// Masters is how many Redis masters hold data: 1 without a cluster.
func (s subStocks) Masters(ctx context.Context) (int, error) {
	cc, ok := s.r.c.(*redis.ClusterClient)
	if !ok {
		return 1, nil
	}
	ms, err := ClusterMasters(ctx, cc)
	if err != nil {
		return 0, unavailable(err)
	}
	return max(len(ms), 1), nil
}
