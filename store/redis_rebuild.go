package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/service"
)

// The rebuild of a goods' keys Redis lost: staged in bounded chunks, put
// in place by one script, or not at all.

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
	if st.Split != nil {
		fields = append(fields, bucketsField, FormatSplit(*st.Split))
	}
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
	return n == 1, r.indexGoods(ctx, g.ID)
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
