package testenv

import (
	"context"
	"fmt"
	"testing"
)

// The cluster's map of keys to masters is the servers' own, a killed
// master fails only its keys, and a restarted one comes back with its data.
func TestRedisClusterKillAndRestart(t *testing.T) {
	t.Parallel()
	c := RedisCluster(t)
	ctx := context.Background()
	cl := c.Client()
	// A key on each master, and CLUSTER KEYSLOT agreeing with keySlot.
	keyOn := map[int]string{}
	for k := 0; len(keyOn) < len(c.Addrs()); k++ {
		key := fmt.Sprintf("k{%d}", k)
		slot, err := cl.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if int(slot) != keySlot(key) {
			t.Fatalf("slot of %s: server %d, keySlot %d", key, slot, keySlot(key))
		}
		keyOn[c.MasterOf(key)] = key
	}
	for _, key := range keyOn {
		if err := cl.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatal(err)
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
