package store

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/admission"
	"github.com/go-seckill/seckill/service"
)

// The keys of the limited orders' admission. A goods' keys share its hash
// tag, so that one script may read the early set and write a claim.

// EarlyKey is the set of users who ordered goods before its sale opened.
func EarlyKey(prefix string, goodsID int64) string { return GoodsKey(prefix, goodsID) + "_early" }

// ClaimKey marks a user's order of goods in flight.
func ClaimKey(prefix string, goodsID, userID int64) string {
	return GoodsKey(prefix, goodsID) + "_claim:" + strconv.FormatInt(userID, 10)
}

// GateKey counts the order attempts that passed goods' stock threshold.
func GateKey(prefix string, goodsID int64) string { return GoodsKey(prefix, goodsID) + "_gate" }

// CaptchaKey holds a captcha's digits.
func CaptchaKey(prefix, id string) string { return prefix + "captcha:" + id }

// RateKey is the name a rate bucket is kept under (redis_rate adds its own
// "rate:" before it).
func RateKey(prefix, name string) string { return prefix + name }

var _ admission.Store = (*Redis)(nil)
var _ admission.CaptchaStore = (*Redis)(nil)

// orderClaimScript admits one attempt of a user at a goods, in one round
// trip: it refuses an early user (1), a user with a claim (2) and, past
// ARGV[4] attempts counted by the gate KEYS[3], everyone (3); else it sets
// the claim KEYS[2] to ARGV[1] for ARGV[2] ms and counts the attempt (0).
// A refused attempt leaves neither a claim nor a count.
var orderClaimScript = redis.NewScript(`
if redis.call('SISMEMBER', KEYS[1], ARGV[3]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[4]) then return 3 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('INCR', KEYS[3])
return 0
`)

func (r *Redis) ClaimOrder(ctx context.Context, goodsID, userID int64, token string, ttl time.Duration, allowance int64) error {
	res, err := orderClaimScript.Run(ctx, r.c,
		[]string{EarlyKey(r.prefix, goodsID), ClaimKey(r.prefix, goodsID, userID), GateKey(r.prefix, goodsID)},
		token, ttl.Milliseconds(), userID, allowance).Int64()
	switch {
	case err != nil:
		return unavailable(err)
	case res == 1:
		return admission.ErrEarly
	case res == 2:
		return admission.ErrTwin
	case res == 3:
		return service.ErrSoldOut
	}
	return nil
}

// releaseClaimScript deletes the claim only while it is still ours: after
// its TTL another request may hold it.
var releaseClaimScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

func (r *Redis) ReleaseClaim(ctx context.Context, goodsID, userID int64, token string) error {
	return unavailable(releaseClaimScript.Run(ctx, r.c, []string{ClaimKey(r.prefix, goodsID, userID)}, token).Err())
}

func (r *Redis) MarkEarly(ctx context.Context, goodsID, userID int64, ttl time.Duration) error {
	key := EarlyKey(r.prefix, goodsID)
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, key, userID)
		p.PExpire(ctx, key, ttl)
		return nil
	})
	return unavailable(err)
}

// AllowRate takes a token of the GCRA bucket name.
func (r *Redis) AllowRate(ctx context.Context, name string, l redis_rate.Limit) (*redis_rate.Result, error) {
	res, err := redis_rate.NewLimiter(r.c).Allow(ctx, RateKey(r.prefix, name), l)
	return res, unavailable(err)
}

func (r *Redis) PutCaptcha(ctx context.Context, id string, digits []byte, ttl time.Duration) error {
	return unavailable(r.c.Set(ctx, CaptchaKey(r.prefix, id), digits, ttl).Err())
}

func (r *Redis) CaptchaDigits(ctx context.Context, id string, take bool) ([]byte, bool, error) {
	cmd := r.c.Get
	if take {
		cmd = r.c.GetDel
	}
	b, err := cmd(ctx, CaptchaKey(r.prefix, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, unavailable(err)
	}
	return b, true, nil
}

// reopenScript lowers the count of the gate KEYS[2] so that it lets at
// least floor(ARGV[2] × the stock of KEYS[1]) more attempts through under
// the allowance ARGV[1]: stock that came back gets its attempts.
var reopenScript = redis.NewScript(`
local stock = tonumber(redis.call('HGET', KEYS[1], 'stock') or '0')
local passed = tonumber(redis.call('GET', KEYS[2]) or '0')
local target = tonumber(ARGV[1]) - math.floor(tonumber(ARGV[2]) * stock)
if target < 0 then target = 0 end
if passed > target then redis.call('SET', KEYS[2], target) end
return 0
`)

func (r *Redis) ReopenGate(ctx context.Context, goodsID, allowance int64, factor float64) error {
	return unavailable(reopenScript.Run(ctx, r.c, []string{GoodsKey(r.prefix, goodsID), GateKey(r.prefix, goodsID)},
		allowance, factor).Err())
}
