package store_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/store"
)

// A cache-only tier of goods keys over several Redis nodes by consistent
// hashing (go-redis's Ring, rendezvous hashing of the key's hash tag):
// adding a fourth node to three moves about a quarter of the keys, 1/N,
// not the 3/4 a modulo would. Measured on real redis-server processes.
func TestRingAddingANodeMovesAboutOneNthOfTheKeys(t *testing.T) {
	addrs := testenv.RedisServers(t, 4)
	shards := func(n int) map[string]string {
		m := map[string]string{}
		for i, a := range addrs[:n] {
			m["node"+string(rune('a'+i))] = a
		}
		return m
	}
	ctx := context.Background()
	ring := redis.NewRing(&redis.RingOptions{Addrs: shards(3)})
	defer ring.Close()
	const keys = 10_000
	const prefix = "v9h:ring:"
	p := ring.Pipeline()
	for id := int64(1); id <= keys; id++ {
		p.Set(ctx, store.GoodsKey(prefix, id), id, 0)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	held := map[string]int64{}
	for _, a := range addrs[:3] {
		c := redis.NewClient(&redis.Options{Addr: a})
		held[a] = c.DBSize(ctx).Val()
		c.Close()
	}
	t.Logf("keys per node over 3 nodes: %v", held)

	ring.SetAddrs(shards(4))
	cmds := make([]*redis.StringCmd, keys)
	p = ring.Pipeline()
	for id := int64(1); id <= keys; id++ {
		cmds[id-1] = p.Get(ctx, store.GoodsKey(prefix, id))
	}
	_, _ = p.Exec(ctx) // a moved key is a miss (redis.Nil) on its new node
	moved := 0
	for _, cmd := range cmds {
		switch err := cmd.Err(); {
		case err == redis.Nil:
			moved++
		case err != nil:
			t.Fatal(err)
		}
	}
	n := 4.0
	fraction := float64(moved) / keys
	t.Logf("adding a 4th node moved %d of %d keys: %.3f (1/N = %.3f)", moved, keys, fraction, 1/n)
	if fraction < 0.5/n || fraction > 1.5/n {
		t.Errorf("moved fraction %.3f, want within [%.3f, %.3f]", fraction, 0.5/n, 1.5/n)
	}
}
