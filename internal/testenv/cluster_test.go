package testenv

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The cluster's map of keys to masters is the servers' own, a killed
// master fails only its keys, and a restarted one comes back with its data.
func TestRedisClusterKillAndRestart(t *testing.T) {
	t.Parallel()
	c := RedisCluster(t)
	ctx := context.Background()
	cl := c.Client()
	// A key on each master, each served by the master MasterOf names: a
	// plain client of that master reads it without a redirection.
	keyOn := map[int]string{}
	for k := 0; len(keyOn) < len(c.Addrs()); k++ {
		key := fmt.Sprintf("k{%d}", k)
		keyOn[c.MasterOf(key)] = key
	}
	for m, key := range keyOn {
		if err := cl.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		direct := redis.NewClient(&redis.Options{Addr: c.Addrs()[m]})
		v, err := direct.Get(ctx, key).Result()
		direct.Close()
		if err != nil || v != "v" {
			t.Fatalf("get %s from master %d directly: %q, %v", key, m, v, err)
		}
	}
	c.Kill(t, 0)
	for m, key := range keyOn {
		err := cl.Get(ctx, key).Err()
		if (m == 0) != (err != nil) {
			t.Errorf("get %s on master %d with master 0 killed: %v", key, m, err)
		}
	}
	c.Restart(t, 0)
	for m, key := range keyOn {
		if v, err := cl.Get(ctx, key).Result(); err != nil || v != "v" {
			t.Errorf("get %s on master %d after the restart: %q, %v", key, m, v, err)
		}
	}
}
