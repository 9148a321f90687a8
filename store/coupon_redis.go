package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/service/coupon"
)

// The coupon sub-stocks and the template cache in Redis. The sub-stocks
// are sub-stocks like a goods' buckets (see substocks.go): one-key scripts,
// each on the master of its sub-stock's slot.

// CouponStocks are the coupon sub-stocks: coupon.SubStocks.
type CouponStocks struct{ subStocks }

// CouponStocks gives the coupon sub-stocks on this Redis.
func (r *Redis) CouponStocks() CouponStocks { return CouponStocks{subStocks{r, CouponStockKey}} }

// Take takes n units of sub-stock tag if it holds that many.
func (s CouponStocks) Take(ctx context.Context, tag string, n int64) (bool, error) {
	return s.take(ctx, tag, n)
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
