package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/internal/testenv"
)

// leaseRedis is a client of the test Redis and the test's own key prefix.
func leaseRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	addr, prefix := testenv.Redis(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c, prefix
}

// lease takes a lease that the end of the test releases.
func lease(t *testing.T, c *redis.Client, prefix string, want int64, ttl time.Duration) *NodeLease {
	t.Helper()
	l, err := LeaseNode(context.Background(), c, prefix, want, ttl)
	if err != nil {
		t.Fatalf("lease node %d: %v", want, err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
	return l
}

func lost(l *NodeLease) bool {
	select {
	case <-l.Lost():
		return true
	default:
		return false
	}
}

// Two instances asking for any node get different ones, each held in Redis
// for the lease's TTL.
func TestNodeLeaseAutoTakesDifferentFreeNodes(t *testing.T) {
	c, prefix := leaseRedis(t)
	a := lease(t, c, prefix, -1, 15*time.Second)
	b := lease(t, c, prefix, -1, 15*time.Second)
	if a.Node() == b.Node() {
		t.Fatalf("both instances got snowflake node %d", a.Node())
	}
	for _, l := range []*NodeLease{a, b} {
		if l.Node() < 0 || l.Node() > 1023 {
			t.Errorf("node %d is outside 0..1023", l.Node())
		}
		ttl, err := c.PTTL(context.Background(), leaseKey(prefix, l.Node())).Result()
		if err != nil || ttl <= 0 || ttl > 15*time.Second {
			t.Errorf("node %d: key TTL %v (%v), want within (0, 15s]", l.Node(), ttl, err)
		}
	}
}

// Asking for any node walks all of them: with every node but one held, it
// gets that one; with all held, it fails.
func TestNodeLeaseAutoFindsTheLastFreeNodeAndFailsWhenNoneIs(t *testing.T) {
	c, prefix := leaseRedis(t)
	ctx := context.Background()
	const free = 517
	pipe := c.Pipeline()
	for n := int64(0); n < 1024; n++ {
		if n != free {
			pipe.Set(ctx, leaseKey(prefix, n), "someone-else", time.Minute)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	l := lease(t, c, prefix, -1, 15*time.Second)
	if l.Node() != free {
		t.Fatalf("got node %d, want the only free one, %d", l.Node(), free)
	}
	if other, err := LeaseNode(ctx, c, prefix, -1, 15*time.Second); err == nil {
		other.Release(ctx)
		t.Fatalf("got node %d with every node held", other.Node())
	}
}

// An instance asking for a node another running instance holds fails with
// an error that says what to do.
func TestNodeLeaseOfAHeldNodeFails(t *testing.T) {
	c, prefix := leaseRedis(t)
	first := lease(t, c, prefix, 7, 15*time.Second)
	if first.Node() != 7 {
		t.Fatalf("asked for node 7, got %d", first.Node())
	}
	second, err := LeaseNode(context.Background(), c, prefix, 7, 15*time.Second)
	if err == nil {
		second.Release(context.Background())
		t.Fatal("a second instance leased node 7 while the first holds it")
	}
	const want = "snowflake node 7 is held by another running instance; give each instance its own snowflake.node or leave it unset (auto)"
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	var held *NodeHeldError
	if !errors.As(err, &held) || held.Node != 7 {
		t.Errorf("error %v is no *NodeHeldError for node 7", err)
	}
	if _, err := LeaseNode(context.Background(), c, prefix, 1024, 15*time.Second); err == nil {
		t.Error("node 1024 was leased")
	}
}

// Release frees the node at once (not after the TTL), may be called again,
// and the node can then be taken by another instance.
func TestNodeLeaseReleaseFreesTheNode(t *testing.T) {
	c, prefix := leaseRedis(t)
	ctx := context.Background()
	first, err := LeaseNode(ctx, c, prefix, 7, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(ctx); err != nil {
		t.Errorf("a second Release: %v", err)
	}
	if n, _ := c.Exists(ctx, leaseKey(prefix, 7)).Result(); n != 0 {
		t.Error("the key is still there after Release")
	}
	second := lease(t, c, prefix, 7, 15*time.Second)
	if second.Node() != 7 || lost(first) || lost(second) {
		t.Errorf("after release: node %d, lost %v/%v", second.Node(), lost(first), lost(second))
	}
}

// Renewal keeps the node past the TTL for as long as the lease runs.
func TestNodeLeaseRenewalKeepsTheNodePastItsTTL(t *testing.T) {
	c, prefix := leaseRedis(t)
	const ttl = 500 * time.Millisecond
	l := lease(t, c, prefix, -1, ttl)
	time.Sleep(3 * ttl)
	ctx := context.Background()
	if pttl, err := c.PTTL(ctx, leaseKey(prefix, l.Node())).Result(); err != nil || pttl <= 0 {
		t.Fatalf("after 3 TTLs the key has TTL %v (%v): not renewed", pttl, err)
	}
	if lost(l) {
		t.Fatal("a renewed lease reports itself lost")
	}
	if other, err := LeaseNode(ctx, c, prefix, l.Node(), ttl); err == nil {
		other.Release(ctx)
		t.Fatal("another instance leased the renewed node")
	}
}

// A lease whose key another instance now holds is lost: Lost() is closed
// within the TTL, and Release leaves the other instance's key alone. A key
// that merely vanished (Redis restarted empty) is taken back instead.
func TestNodeLeaseIsLostWhenAnotherInstanceHoldsItsKey(t *testing.T) {
	c, prefix := leaseRedis(t)
	ctx := context.Background()
	const ttl = 500 * time.Millisecond
	l := lease(t, c, prefix, -1, ttl)
	key := leaseKey(prefix, l.Node())
	token, err := c.Get(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}

	if err := c.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl)
	if got, _ := c.Get(ctx, key).Result(); got != token || lost(l) {
		t.Fatalf("a vanished key: holds %q (want %q), lost %v; want it taken back", got, token, lost(l))
	}

	if err := c.Set(ctx, key, "another-instance", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-time.After(ttl):
		t.Fatal("Lost() not closed within the TTL after another instance took the node")
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(ctx, key).Result(); got != "another-instance" {
		t.Errorf("Release of a lost lease changed the other instance's key to %q", got)
	}
}

// The live instances are the leases held, on one server and on a cluster,
// where the leases' keys spread over the masters.
func TestLiveInstancesCountsTheLeasesHeld(t *testing.T) {
	ctx := context.Background()
	for name, r := range map[string]*Redis{"server": openTestRedis(t), "cluster": openClusterRedis(t)} {
		var ls []*NodeLease
		for n := range int64(3) {
			l, err := r.LeaseNode(ctx, 100+n*37, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Release(ctx) })
			ls = append(ls, l)
		}
		if live, err := r.LiveInstances(ctx); err != nil || live != 3 {
			t.Errorf("%s: %d live instances (%v), want 3", name, live, err)
		}
		if err := ls[1].Release(ctx); err != nil {
			t.Fatal(err)
		}
		if live, err := r.LiveInstances(ctx); err != nil || live != 2 {
			t.Errorf("%s: %d live instances after one stopped (%v), want 2", name, live, err)
		}
	}
}
