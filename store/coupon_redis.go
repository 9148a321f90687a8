package store

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/service/coupon"
)

// The coupon sub-stocks and the template cache in Redis. Every script
// touches one key, so each runs on the master of its sub-stock's slot.

// takeScript takes ARGV[1] units if the sub-stock holds that many: 1, else
// 0 (a missing sub-stock holds none). It never goes below zero.
var takeScript = redis.NewScript(`
local s = redis.call('HGET', KEYS[1], 'stock')
if not s or tonumber(s) < tonumber(ARGV[1]) then return 0 end
redis.call('HINCRBY', KEYS[1], 'stock', -tonumber(ARGV[1]))
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
// The markers stay: additions are few, and a marker deleted while a copy
// of its step is on the way would let that copy add again.
var addStockScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], 'op:' .. ARGV[2], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'stock', ARGV[1])
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

// CouponStocks are the coupon sub-stocks: coupon.SubStocks.
type CouponStocks struct{ r *Redis }

// CouponStocks gives the coupon sub-stocks on this Redis.
func (r *Redis) CouponStocks() CouponStocks { return CouponStocks{r} }

func (s CouponStocks) key(tag string) []string { return []string{CouponStockKey(s.r.prefix, tag)} }

func (s CouponStocks) Take(ctx context.Context, tag string, n int64) (bool, error) {
	ok, err := takeScript.Run(ctx, s.r.c, s.key(tag), n).Int()
	return ok == 1, unavailable(err)
}

func (s CouponStocks) GiveBack(ctx context.Context, tag string, n int64) error {
	return unavailable(giveBackScript.Run(ctx, s.r.c, s.key(tag), n).Err())
}

func (s CouponStocks) Add(ctx context.Context, tag string, n int64, opID string) error {
	return unavailable(addStockScript.Run(ctx, s.r.c, s.key(tag), n, opID).Err())
}

func (s CouponStocks) Levels(ctx context.Context, tags []string) ([]*int64, error) {
	cmds := make([]*redis.StringCmd, len(tags))
	_, err := s.r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, tag := range tags {
			cmds[i] = p.HGet(ctx, CouponStockKey(s.r.prefix, tag), "stock")
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

func (s CouponStocks) Repair(ctx context.Context, tag string, expected *int64, delta int64) (bool, error) {
	want := ""
	if expected != nil {
		want = strconv.FormatInt(*expected, 10)
	}
	ok, err := repairStockScript.Run(ctx, s.r.c, s.key(tag), want, delta).Int()
	return ok == 1, unavailable(err)
}

// absentTemplate is what the template cache holds for an unknown id.
const absentTemplate = "absent"

// templateJSON is a template as the cache holds it.
type templateJSON struct {
	ID           int64      `json:"id"`
	Name         string     `json:"name"`
	Type         string     `json:"type"`
	Value        int64      `json:"value"`
	Threshold    int64      `json:"threshold"`
	Stock        int64      `json:"stock"`
	PerUserLimit int        `json:"per_user_limit"`
	StartAt      *time.Time `json:"start_at"`
	EndAt        *time.Time `json:"end_at"`
	ValidForMs   int64      `json:"valid_for_ms"`
	SubStocks    int        `json:"sub_stocks"`
	Tags         []string   `json:"tags"`
	Ended        bool       `json:"ended"`
	CreatedAt    time.Time  `json:"created_at"`
}

func (r *Redis) CachedTemplate(ctx context.Context, id int64) (coupon.Template, bool, bool, error) {
	s, err := r.c.Get(ctx, CouponTemplateKey(r.prefix, id)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return coupon.Template{}, false, false, nil
	case err != nil:
		return coupon.Template{}, false, false, unavailable(err)
	case s == absentTemplate:
		return coupon.Template{}, false, true, nil
	}
	var j templateJSON
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return coupon.Template{}, false, false, nil // unreadable: a miss
	}
	return coupon.Template{ID: j.ID, Name: j.Name, Type: j.Type, Value: j.Value, Threshold: j.Threshold, Stock: j.Stock,
		PerUserLimit: j.PerUserLimit, StartAt: j.StartAt, EndAt: j.EndAt, ValidFor: time.Duration(j.ValidForMs) * time.Millisecond,
		SubStocks: j.SubStocks, Tags: j.Tags, Ended: j.Ended, CreatedAt: j.CreatedAt}, true, false, nil
}

func (r *Redis) CacheTemplate(ctx context.Context, t coupon.Template, ttl time.Duration) error {
	b, err := json.Marshal(templateJSON{ID: t.ID, Name: t.Name, Type: t.Type, Value: t.Value, Threshold: t.Threshold, Stock: t.Stock,
		PerUserLimit: t.PerUserLimit, StartAt: t.StartAt, EndAt: t.EndAt, ValidForMs: t.ValidFor.Milliseconds(),
		SubStocks: t.SubStocks, Tags: t.Tags, Ended: t.Ended, CreatedAt: t.CreatedAt})
	if err != nil {
		return err
	}
	return unavailable(r.c.Set(ctx, CouponTemplateKey(r.prefix, t.ID), b, ttl).Err())
}

func (r *Redis) CacheAbsent(ctx context.Context, id int64, ttl time.Duration) error {
	// NX: a template created meanwhile keeps its entry.
	return unavailable(r.c.SetNX(ctx, CouponTemplateKey(r.prefix, id), absentTemplate, ttl).Err())
}

func (r *Redis) DropTemplate(ctx context.Context, id int64) error {
	return unavailable(r.c.Del(ctx, CouponTemplateKey(r.prefix, id)).Err())
}

// Spread chooses n tags for a template's sub-stocks, sub-stock i on master
// i mod masters (see SpreadTags).
func (s CouponStocks) Spread(ctx context.Context, n int, base string) ([]string, error) {
	tags, err := SpreadTags(ctx, s.r.c, n, base)
	return tags, unavailable(err)
}

// Masters is how many Redis masters hold data: 1 without a cluster.
func (s CouponStocks) Masters(ctx context.Context) (int, error) {
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
