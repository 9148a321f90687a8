package store

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Outcomes keeps the answers given to idempotency keys in Redis: a claim
// for pending, an answer for ttl.
type Outcomes struct {
	r       *Redis
	pending time.Duration
	ttl     time.Duration
}

// Outcomes stores idempotency outcomes: a claim lives pending (no longer
// than an order's own work, so that a claim whose instance died does not
// answer "in progress" for long), a settled answer ttl.
func (r *Redis) Outcomes(pending, ttl time.Duration) *Outcomes {
	return &Outcomes{r: r, pending: pending, ttl: ttl}
}

func (o *Outcomes) key(k string) string { return o.r.prefix + "idem:" + k }

// claimScript stores ARGV[1] under KEYS[1] for ARGV[2] ms unless the key
// exists, and returns what it holds then (nil when claimed).
var claimScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])
`)

func (o *Outcomes) Claim(ctx context.Context, key string, pending []byte) ([]byte, bool, error) {
	prev, err := claimScript.Run(ctx, o.r.c, []string{o.key(key)}, pending, o.pending.Milliseconds()).Text()
	if errors.Is(err, redis.Nil) {
		return nil, true, nil
	}
	return []byte(prev), false, unavailable(err)
}

// reclaimScript stores ARGV[2] for ARGV[3] ms only if KEYS[1] holds ARGV[1].
var reclaimScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

func (o *Outcomes) Reclaim(ctx context.Context, key string, prev, pending []byte) (bool, error) {
	n, err := reclaimScript.Run(ctx, o.r.c, []string{o.key(key)}, prev, pending, o.pending.Milliseconds()).Int()
	return n == 1, unavailable(err)
}

func (o *Outcomes) Settle(ctx context.Context, key string, outcome []byte) error {
	return unavailable(o.r.c.Set(ctx, o.key(key), outcome, o.ttl).Err())
}

func (o *Outcomes) Forget(ctx context.Context, key string) error {
	return unavailable(o.r.c.Del(ctx, o.key(key)).Err())
}

func (o *Outcomes) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := o.r.c.Get(ctx, o.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, unavailable(err)
}
