package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/service"
)

// A split goods (V14): its stock spread over buckets, sub-stocks on the
// Redis masters (substocks.go), in front of the goods hash, which stays the
// ledger's home. The hash's field buckets ("<bucket_max>|<tag>,<tag>...")
// says the goods is split. Units move from the hash to a bucket (an
// allotment) and back (a recall) across slots, so each movement is two
// one-key steps under a marker, each applied once:
//
//   - allotment: the hash takes m off stock and records allot:<op> =
//     "<tag>:<m>"; the bucket adds m under its marker op:<op>, with the
//     goods' sale window; the hash's record goes. A record left behind (a
//     process died between) is completed by CompleteAllots.
//   - recall: the bucket takes its whole stock, goes off line and records
//     recall:<op> = m; the hash adds m under back:<op> (a prefix of its
//     own: op: and ret: are the ledger's, settled against MySQL); the
//     bucket's record goes.

const (
	bucketsField = "buckets"
	allotMarker  = "allot:"
	recallMarker = "recall:"
	backMarker   = "back:"
)

// splitScript records the split ARGV[1] in the goods hash unless it has
// one: {1, split} when it recorded it, {0, split} with the split there;
// {-2} for a missing hash, {-5} for goods with a per-user limit, which are
// never split (the limit lives beside the hash).
var splitScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'stock', 'limit', 'buckets')
if not f[1] then return {-2, ''} end
if f[3] then return {0, f[3]} end
if tonumber(f[2] or '0') > 0 then return {-5, ''} end
redis.call('HSET', KEYS[1], 'buckets', ARGV[1])
return {1, ARGV[1]}
`)

// allotScript is an allotment's first step: it takes m = min(ARGV[1],
// stock) off the hash's stock and records allot:<ARGV[2]> = "<ARGV[3]>:<m>".
// It returns {m, stock left}; {-2, 0} for a missing hash.
var allotScript = redis.NewScript(`
local s = redis.call('HGET', KEYS[1], 'stock')
if not s then return {-2, 0} end
local m = math.min(tonumber(ARGV[1]), tonumber(s))
if m <= 0 or redis.call('HSETNX', KEYS[1], 'allot:' .. ARGV[2], ARGV[3] .. ':' .. m) == 0 then return {0, tonumber(s)} end
return {m, redis.call('HINCRBY', KEYS[1], 'stock', -m)}
`)

// recallScript is a recall's first step, on the bucket: it takes the whole
// stock, sets online = 0 and records recall:<ARGV[1]> = m, once: a copy
// returns the m recorded.
var recallScript = redis.NewScript(`
local prior = redis.call('HGET', KEYS[1], 'recall:' .. ARGV[1])
if prior then return tonumber(prior) end
local m = tonumber(redis.call('HGET', KEYS[1], 'stock') or '0')
redis.call('HSET', KEYS[1], 'stock', 0, 'online', 0, 'recall:' .. ARGV[1], m)
return m
`)

func (b GoodsBuckets) hash(goodsID int64) []string { return []string{GoodsKey(b.r.prefix, goodsID)} }

// FormatSplit and ParseSplit are the split as the hash's field holds it.
func FormatSplit(s service.Split) string {
	return strconv.FormatInt(s.BucketMax, 10) + "|" + strings.Join(s.Tags, ",")
}

func ParseSplit(v string) (service.Split, bool) {
	m, tags, ok := strings.Cut(v, "|")
	n, err := strconv.ParseInt(m, 10, 64)
	if !ok || err != nil || tags == "" {
		return service.Split{}, false
	}
	return service.Split{Tags: strings.Split(tags, ","), BucketMax: n}, true
}

// Split records s in the goods hash unless it has a split: the split the
// goods has, and whether it is this one, new. ErrStockNotLoaded for a
// missing hash, ErrLimitExceeded for goods with a per-user limit.
func (b GoodsBuckets) Split(ctx context.Context, goodsID int64, s service.Split) (service.Split, bool, error) {
	res, err := splitScript.Run(ctx, b.r.c, b.hash(goodsID), FormatSplit(s)).Slice()
	if err != nil {
		return service.Split{}, false, unavailable(err)
	}
	code, _ := res[0].(int64)
	switch code {
	case scriptNotLoaded:
		return service.Split{}, false, service.ErrStockNotLoaded
	case scriptLimit:
		return service.Split{}, false, service.ErrLimitExceeded
	}
	v, _ := res[1].(string)
	got, ok := ParseSplit(v)
	if !ok {
		return service.Split{}, false, fmt.Errorf("goods %d: malformed split %q", goodsID, v)
	}
	return got, code == 1, nil
}

// SplitOf reads the goods' split from its hash; ok is false when it is not
// split (or Redis does not hold it).
func (b GoodsBuckets) SplitOf(ctx context.Context, goodsID int64) (service.Split, bool, error) {
	return splitOf(ctx, b.r.c, b.r.prefix, goodsID)
}

func splitOf(ctx context.Context, c redis.UniversalClient, prefix string, goodsID int64) (service.Split, bool, error) {
	v, err := c.HGet(ctx, GoodsKey(prefix, goodsID), bucketsField).Result()
	if errors.Is(err, redis.Nil) {
		return service.Split{}, false, nil
	}
	if err != nil {
		return service.Split{}, false, unavailable(err)
	}
	s, ok := ParseSplit(v)
	return s, ok, nil
}

// Allotment is a movement of units from the goods hash to one bucket.
type Allotment struct {
	Op    string
	Tag   string
	Units int64
}

// StartAllot is an allotment's first step: up to want units off the
// hash's stock, recorded under a new op. It returns the allotment (Units 0:
// the hash had none, nothing recorded) and the stock the hash has left.
func (b GoodsBuckets) StartAllot(ctx context.Context, goodsID int64, tag string, want int64) (Allotment, int64, error) {
	op, err := randomToken()
	if err != nil {
		return Allotment{}, 0, err
	}
	res, err := allotScript.Run(ctx, b.r.c, b.hash(goodsID), want, op, tag).Int64Slice()
	if err != nil {
		return Allotment{}, 0, unavailable(err)
	}
	if res[0] == scriptNotLoaded {
		return Allotment{}, 0, service.ErrStockNotLoaded
	}
	return Allotment{Op: op, Tag: tag, Units: res[0]}, res[1], nil
}

// CompleteAllot is the rest of allotment a: the bucket adds its units
// (once, under its marker), with the goods' sale window and, when online,
// on line; then the hash's record goes. Safe to run again, and alongside a
// copy. Nothing when Redis lost the hash: the record went with it, and
// the rebuild counts the units as the truth's.
func (b GoodsBuckets) CompleteAllot(ctx context.Context, goodsID int64, a Allotment, online bool) error {
	fields, err := b.bucketFields(ctx, goodsID, online)
	if err != nil {
		return err
	}
	if _, err := b.add(ctx, a.Tag, a.Units, a.Op, fields...); err != nil {
		return err
	}
	return unavailable(b.r.c.HDel(ctx, GoodsKey(b.r.prefix, goodsID), allotMarker+a.Op).Err())
}

// bucketFields are the fields a bucket takes from the goods hash with
// units: the sale window (absent fields deleted), and online = 1 when asked.
// ErrStockNotLoaded when Redis lost the hash: its window is unknown, and a
// bucket is never given units without it.
func (b GoodsBuckets) bucketFields(ctx context.Context, goodsID int64, online bool) ([]any, error) {
	w, err := b.r.c.HMGet(ctx, GoodsKey(b.r.prefix, goodsID), "stock", "start_ms", "end_ms").Result()
	if err != nil {
		return nil, unavailable(err)
	}
	if w[0] == nil {
		return nil, fmt.Errorf("%w: goods %d", service.ErrStockNotLoaded, goodsID)
	}
	fields := []any{"start_ms", strOf(w[1]), "end_ms", strOf(w[2])}
	if online {
		fields = append(fields, "online", 1)
	}
	return fields, nil
}

func strOf(v any) string {
	s, _ := v.(string)
	return s
}

// PendingAllots lists the allotments the goods hash records as started
// and not completed.
func (b GoodsBuckets) PendingAllots(ctx context.Context, goodsID int64) ([]Allotment, error) {
	var out []Allotment
	err := b.scan(ctx, GoodsKey(b.r.prefix, goodsID), allotMarker, func(op, v string) {
		tag, n, ok := strings.Cut(v, ":")
		units, err := strconv.ParseInt(n, 10, 64)
		if ok && err == nil {
			out = append(out, Allotment{Op: op, Tag: tag, Units: units})
		}
	})
	return out, err
}

// CompleteAllots completes every pending allotment of the goods, and says
// how many units they moved.
func (b GoodsBuckets) CompleteAllots(ctx context.Context, goodsID int64) (int64, error) {
	pending, err := b.PendingAllots(ctx, goodsID)
	var moved int64
	for _, a := range pending {
		if err := b.CompleteAllot(ctx, goodsID, a, false); err != nil {
			return moved, err
		}
		moved += a.Units
	}
	return moved, err
}

// scan calls each with the op and value of every field of key named
// marker<op>, a chunk at a time.
func (b GoodsBuckets) scan(ctx context.Context, key, marker string, each func(op, v string)) error {
	var cursor uint64
	for {
		kv, next, err := b.r.c.HScan(ctx, key, cursor, marker+"*", chunk).Result()
		if err != nil {
			return unavailable(err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if op, ok := strings.CutPrefix(kv[i], marker); ok {
				each(op, kv[i+1])
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// Recall takes bucket tag off line and moves its units back to the goods
// hash (see the recall above); it says how many.
func (b GoodsBuckets) Recall(ctx context.Context, goodsID int64, tag string) (int64, error) {
	op, err := randomToken()
	if err != nil {
		return 0, err
	}
	m, err := recallScript.Run(ctx, b.r.c, b.key(tag), op).Int64()
	if err != nil {
		return 0, unavailable(err)
	}
	return m, b.completeRecall(ctx, goodsID, tag, op, m)
}

func (b GoodsBuckets) completeRecall(ctx context.Context, goodsID int64, tag, op string, m int64) error {
	// A hash Redis lost takes nothing: its rebuild counts what the buckets
	// hold, and this bucket holds none now; the record goes either way.
	if err := addScript.Run(ctx, b.r.c, b.hash(goodsID), m, backMarker+op).Err(); err != nil {
		return unavailable(err)
	}
	return unavailable(b.r.c.HDel(ctx, GoodsBucketKey(b.r.prefix, tag), recallMarker+op).Err())
}

// CompleteRecalls completes the recalls the buckets of s record as
// started.
func (b GoodsBuckets) CompleteRecalls(ctx context.Context, goodsID int64, s service.Split) error {
	for _, tag := range s.Tags {
		type recall struct {
			op string
			m  int64
		}
		var pending []recall
		err := b.scan(ctx, GoodsBucketKey(b.r.prefix, tag), recallMarker, func(op, v string) {
			if m, err := strconv.ParseInt(v, 10, 64); err == nil {
				pending = append(pending, recall{op, m})
			}
		})
		if err != nil {
			return err
		}
		for _, p := range pending {
			if err := b.completeRecall(ctx, goodsID, tag, p.op, p.m); err != nil {
				return err
			}
		}
	}
	return nil
}

// Online puts bucket tag back on line, with the goods' sale window; the
// units come with the next allotment.
func (b GoodsBuckets) Online(ctx context.Context, goodsID int64, tag string) error {
	op, err := randomToken()
	if err != nil {
		return err
	}
	fields, err := b.bucketFields(ctx, goodsID, true)
	if err != nil {
		return err
	}
	_, err = b.add(ctx, tag, 0, op, fields...)
	return err
}

// States reads each bucket's units and whether it is on line.
func (b GoodsBuckets) States(ctx context.Context, s service.Split) ([]service.Bucket, error) {
	cmds := make([]*redis.SliceCmd, len(s.Tags))
	_, err := b.r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, tag := range s.Tags {
			cmds[i] = p.HMGet(ctx, GoodsBucketKey(b.r.prefix, tag), "stock", "online")
		}
		return nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]service.Bucket, len(s.Tags))
	for i, cmd := range cmds {
		out[i] = service.Bucket{Index: i, Tag: s.Tags[i], Online: true}
		f := cmd.Val()
		if v, ok := f[0].(string); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				out[i].Stock = &n
			}
		}
		if v, ok := f[1].(string); ok && v == "0" {
			out[i].Online = false
		}
	}
	return out, nil
}

// SplitHeld is what a split goods holds outside its hash's stock: the
// units in its buckets (one its master lost holds none) and in allotments
// started and not completed. 0 for goods that are not split. One home for
// every reader of Redis's whole stock (the reconciliation, the rebuild,
// the tests' snapshots).
func SplitHeld(ctx context.Context, c redis.UniversalClient, prefix string, goodsID int64) (int64, error) {
	s, ok, err := splitOf(ctx, c, prefix, goodsID)
	if err != nil || !ok {
		return 0, err
	}
	return heldInSplit(ctx, c, prefix, goodsID, s)
}

// heldInSplit is SplitHeld of goods whose split s was read already.
func heldInSplit(ctx context.Context, c redis.UniversalClient, prefix string, goodsID int64, s service.Split) (int64, error) {
	// The allotments first: one completed between the two reads is then
	// counted twice, never missed, and Redis reads high for a moment, which
	// a repair would answer by selling less, never more.
	b := GoodsBuckets{subStocks{&Redis{c: c, prefix: prefix}, GoodsBucketKey}}
	pending, err := b.PendingAllots(ctx, goodsID)
	if err != nil {
		return 0, err
	}
	levels, err := b.Levels(ctx, s.Tags)
	if err != nil {
		return 0, err
	}
	var held int64
	for _, l := range levels {
		if l != nil {
			held += *l
		}
	}
	for _, a := range pending {
		held += a.Units
	}
	return held, nil
}

// SplitHeld is SplitHeld on this Redis.
func (b GoodsBuckets) SplitHeld(ctx context.Context, goodsID int64) (int64, error) {
	return SplitHeld(ctx, b.r.c, b.r.prefix, goodsID)
}

// Allot moves up to want units from the goods hash to bucket tag, both
// steps (on line when online); it says how many moved and what the hash
// has left.
func (b GoodsBuckets) Allot(ctx context.Context, goodsID int64, tag string, want int64, online bool) (moved, left int64, err error) {
	a, left, err := b.StartAllot(ctx, goodsID, tag, want)
	if err != nil || a.Units == 0 {
		return 0, left, err
	}
	return a.Units, left, b.CompleteAllot(ctx, goodsID, a, online)
}
