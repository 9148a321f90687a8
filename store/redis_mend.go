package store

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/service"
)

// Repairs of the goods' keys from the database's truth: the stock with
// the markers of the movements it stands in for, and the buyers' units.

// repairScript adds ARGV[2] to the stock only if the stock Redis holds
// for the truth (on sale, and accepted but not yet written: see Held)
// still is ARGV[1], and in the same step sets the markers ARGV[3..]: the
// movements whose units the new stock holds without their own step having
// run, so that a retry of one of them adds nothing. One marker at a time:
// no unpack, whose limit a long list would pass.
var repairScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'stock', 'accepted')
if not f[1] or tonumber(f[1]) + tonumber(f[2] or '0') ~= tonumber(ARGV[1]) then return 0 end
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
