package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/service"
)

// Accepted requests (V13) are kept in their goods' hash, beside the stock
// they hold: a field acc:<id> per request ("<number>|<token>") and the
// field accepted, the units they hold together. A flush or failover that
// loses the stock loses them with it, never one without the other. A
// request that failed leaves its reason under a key of its own (with the
// goods' hash tag) for a day, for the client's polls.

const (
	acceptedField  = "accepted"
	acceptedMarker = "acc:"
	// endTTL is how long a request's outcome is kept: longer than any
	// request waits on nsqd (accept.max_age, at most 12h).
	endTTL = 24 * time.Hour
	// endOrdered is the outcome of a request whose order is written.
	endOrdered = "ordered"
)

// AcceptEndKey holds how the accepted request id of a goods ended.
func AcceptEndKey(prefix string, goodsID int64, id string) string {
	return GoodsKey(prefix, goodsID) + "_acceptend:" + id
}

func (r *Redis) acceptKeys(t service.Token) []string {
	return append(r.keys(t.GoodsID), AcceptEndKey(r.prefix, t.GoodsID, t.ID))
}

// Results of acceptScript besides a stock level.
const (
	scriptAcceptedBefore = -7
	scriptEndedBefore    = -8
)

// acceptScript records the request ARGV[4] (field) = ARGV[5] (record) of
// ARGV[1] units for user ARGV[3] at ARGV[2], reserving its units, unless
// the request is recorded already (pending: {-7, record}) or ended
// ({-8, outcome|record}).
var acceptScript = redis.NewScript(reserveLua + `
local prior = redis.call('HGET', KEYS[1], ARGV[4])
if prior then return {-7, prior} end
local ended = redis.call('GET', KEYS[3])
if ended then return {-8, ended} end
local n = tonumber(ARGV[1])
local res = reserve(n, ARGV[2], ARGV[3])
if res < 0 then return {res, ''} end
redis.call('HSET', KEYS[1], ARGV[4], ARGV[5])
redis.call('HINCRBY', KEYS[1], 'accepted', n)
return {res, ''}
`)

// settleAcceptedScript takes the record ARGV[1] of ARGV[2] units off once
// its order is written; the units stay sold. With ARGV[3] (the outcome
// "ordered|record" of a request made under an idempotency key) it keeps
// the outcome in KEYS[2] for ARGV[4] seconds.
var settleAcceptedScript = redis.NewScript(`
if ARGV[3] then redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4]) end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'accepted', -tonumber(ARGV[2]))
  return 1
end
return 0
`)

// failAcceptedScript records the failure ARGV[4] ("reason|record") of the
// request ARGV[1] and, if its record is there, gives its ARGV[2] units of
// user ARGV[3] back: 1 when it gave them.
var failAcceptedScript = redis.NewScript(`
redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
local n = tonumber(ARGV[2])
redis.call('HINCRBY', KEYS[1], 'accepted', -n)
if tonumber(redis.call('HGET', KEYS[1], 'limit') or '0') > 0 then
  redis.call('HINCRBY', KEYS[2], ARGV[3], -n)
end
redis.call('HINCRBY', KEYS[1], 'stock', n)
return 1
`)

func acceptField(t service.Token) string { return acceptedMarker + t.ID }

func acceptRecord(a service.Accepted) string {
	return strconv.FormatInt(a.Number, 10) + "|" + a.Token
}

// parseAcceptRecord reads a record back; ok is false for a malformed one.
func parseAcceptRecord(s string) (service.Accepted, bool) {
	n, token, ok := strings.Cut(s, "|")
	num, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil {
		return service.Accepted{}, false
	}
	return service.Accepted{Token: token, Number: num}, true
}

// Accept reserves a's units and records a, in one step. When the
// request's id is recorded already, nothing moves: prior is the token it
// was accepted under (pending or failed), or ErrKeyMismatch when it asked
// for another number. Concurrent accepts share a pipeline (coalescer): a
// stampede costs a round trip per batch, not per request.
func (r *Redis) Accept(ctx context.Context, t service.Token, a service.Accepted) (prior string, err error) {
	call := scriptCall{keys: r.acceptKeys(t), args: []any{a.Number, t.AcceptedAt.UnixMilli(), t.UserID, acceptField(t), acceptRecord(a)}}
	res, err := r.accepts.do(call).Slice()
	if err != nil {
		return "", unavailable(err)
	}
	code, _ := res[0].(int64)
	val, _ := res[1].(string)
	if code == scriptEndedBefore {
		_, val, _ = strings.Cut(val, "|") // the outcome's record
	}
	if code == scriptAcceptedBefore || code == scriptEndedBefore {
		rec, ok := parseAcceptRecord(val)
		switch {
		case !ok:
			return "", fmt.Errorf("malformed acceptance record %q", val)
		case rec.Number != a.Number:
			return "", service.ErrKeyMismatch
		}
		return rec.Token, nil
	}
	return "", reserveResult(code)
}

// AcceptStates tells where each request of ts stands in Redis: its
// record while pending, or its failure; neither when its order is written,
// or Redis never had it or lost it. One round trip for them all.
func (r *Redis) AcceptStates(ctx context.Context, ts []service.Token) ([]service.AcceptState, error) {
	recs := make([]*redis.StringCmd, len(ts))
	ends := make([]*redis.StringCmd, len(ts))
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range ts {
			recs[i] = p.HGet(ctx, GoodsKey(r.prefix, t.GoodsID), acceptField(t))
			ends[i] = p.Get(ctx, AcceptEndKey(r.prefix, t.GoodsID, t.ID))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(err)
	}
	out := make([]service.AcceptState, len(ts))
	for i := range ts {
		// The outcome first: a request that ended between the two reads
		// had its record read before.
		if outcome, err := ends[i].Result(); err == nil {
			if outcome, _, _ = strings.Cut(outcome, "|"); outcome != endOrdered {
				out[i].Failure = outcome
			}
			continue
		}
		if s, err := recs[i].Result(); err == nil {
			if a, ok := parseAcceptRecord(s); ok {
				out[i].Pending = &a
			}
		}
	}
	return out, nil
}

// SettleAccepted takes the records of the requests as off once their
// orders are written (as[i] is ts[i]'s); the outcome of a request made
// under an idempotency key is kept for its retries. One round trip for
// them all.
func (r *Redis) SettleAccepted(ctx context.Context, ts []service.Token, as []service.Accepted) error {
	calls := make([]scriptCall, len(ts))
	for i, t := range ts {
		args := []any{acceptField(t), as[i].Number}
		if t.Keyed() {
			args = append(args, endOrdered+"|"+acceptRecord(as[i]), int64(endTTL/time.Second))
		}
		calls[i] = scriptCall{keys: []string{GoodsKey(r.prefix, t.GoodsID), AcceptEndKey(r.prefix, t.GoodsID, t.ID)}, args: args}
	}
	return r.runPipelined(ctx, settleAcceptedScript, calls)
}

// scriptCall is one run of a script: its keys and arguments.
type scriptCall struct {
	keys []string
	args []any
}

// maxScriptBatch bounds the scripts of one pipeline.
const maxScriptBatch = 256

// runPipelined runs script once per call in one pipeline; the first
// error of a call, if any.
func (r *Redis) runPipelined(ctx context.Context, script *redis.Script, calls []scriptCall) error {
	for _, cmd := range r.pipelineScript(ctx, script, calls) {
		if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return unavailable(err)
		}
	}
	return nil
}

// pipelineScript runs script once per call in one pipeline of EVALSHA
// and returns each call's answer. A call the server answers NOSCRIPT (a
// restarted Redis, a new master) did not run, and is run again on its
// own, which loads the script.
func (r *Redis) pipelineScript(ctx context.Context, script *redis.Script, calls []scriptCall) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(calls))
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = script.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	if err == nil {
		return cmds
	}
	for i, c := range calls {
		if err := cmds[i].Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			cmds[i] = script.Run(ctx, r.c, c.keys, c.args...)
		}
	}
	return cmds
}

// FailAccepted records why t will never be an order and gives its units
// back if Redis holds them; gave says it did.
func (r *Redis) FailAccepted(ctx context.Context, t service.Token, n int64, reason string) (gave bool, err error) {
	outcome := reason + "|" + acceptRecord(service.Accepted{Token: t.String(), Number: n})
	res, err := failAcceptedScript.Run(ctx, r.c, r.acceptKeys(t), acceptField(t), n, t.UserID, outcome, int64(endTTL/time.Second)).Int64()
	return res == 1, unavailable(err)
}

// AcceptedRecords calls each with goods' accepted requests, a chunk at a
// time.
func (r *Redis) AcceptedRecords(ctx context.Context, goodsID int64, each func([]service.Accepted) error) error {
	key := GoodsKey(r.prefix, goodsID)
	var cursor uint64
	for {
		kv, next, err := r.c.HScan(ctx, key, cursor, acceptedMarker+"*", chunk).Result()
		if err != nil {
			return unavailable(err)
		}
		var recs []service.Accepted
		for i := 1; i < len(kv); i += 2 {
			if a, ok := parseAcceptRecord(kv[i]); ok {
				recs = append(recs, a)
			}
		}
		if len(recs) > 0 {
			if err := each(recs); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// AcceptedUnits is the units accepted and not yet written, per goods of
// goodsIDs that has any.
func (r *Redis) AcceptedUnits(ctx context.Context, goodsIDs []int64) (map[int64]int64, error) {
	cmds := make([]*redis.StringCmd, len(goodsIDs))
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range goodsIDs {
			cmds[i] = p.HGet(ctx, GoodsKey(r.prefix, id), acceptedField)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(err)
	}
	out := map[int64]int64{}
	for i, c := range cmds {
		if n, err := c.Int64(); err == nil && n != 0 {
			out[goodsIDs[i]] = n
		}
	}
	return out, nil
}

// Held is the stock goods' hash holds for the database's truth: the units
// on sale and those accepted but not yet written as orders (which the
// truth does not count yet). ok is false when Redis holds none.
func (r *Redis) Held(ctx context.Context, goodsID int64) (int64, bool, error) {
	f, err := r.c.HMGet(ctx, GoodsKey(r.prefix, goodsID), "stock", acceptedField).Result()
	if err != nil {
		return 0, false, unavailable(err)
	}
	if f[0] == nil {
		return 0, false, nil
	}
	var held int64
	for _, v := range f {
		if s, ok := v.(string); ok {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, false, fmt.Errorf("goods %d: %w", goodsID, err)
			}
			held += n
		}
	}
	return held, true, nil
}
