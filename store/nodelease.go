package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// snowflakeNodes is how many nodes 10 bits of an id hold (0..1023).
const snowflakeNodes = 1024

// minLeaseTTL keeps the renewal (every third of the TTL) meaningful.
const minLeaseTTL = 30 * time.Millisecond

// NodeLease holds one snowflake node in Redis for a running instance, so
// that no two instances sharing that Redis make ids with the same node.
// The key prefix+"snowflake:node:N" holds the lease's random token for the
// TTL, and the lease renews it every third of the TTL until Release.
//
// What it cannot see: two instances on different Redis servers (or key
// prefixes), and an instance cut off from Redis for longer than the TTL
// while another took its node and gave it back. The first is a deployment
// error; the second would also stop the instance from selling.
type NodeLease struct {
	c     redis.UniversalClient
	key   string
	token string
	node  int64
	ttl   time.Duration

	lost chan struct{} // closed when another instance holds the key
	stop context.CancelFunc
	done chan struct{} // closed when the renewal has stopped

	release    sync.Once
	releaseErr error
}

// NodeHeldError is the error of a lease on a node another instance holds.
type NodeHeldError struct{ Node int64 }

func (e *NodeHeldError) Error() string {
	return fmt.Sprintf("snowflake node %d is held by another running instance; "+
		"give each instance its own snowflake.node or leave it unset (auto)", e.Node)
}

// renewNodeScript extends the lease while KEYS[1] still holds our token
// ARGV[1], and takes the key back when it vanished (Redis restarted empty):
// 1 renewed, 2 taken back, 0 another instance holds it.
var renewNodeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
`)

// releaseNodeScript deletes KEYS[1] only while it holds our token ARGV[1].
var releaseNodeScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// LeaseNode takes snowflake node want (0..1023) for this instance, or with
// want < 0 the first free node, looked for from a random one so that
// instances starting together do not all race for node 0. The lease lives
// ttl and renews itself every ttl/3 until Release; Lost tells when another
// instance took it over.
func LeaseNode(ctx context.Context, client redis.UniversalClient, prefix string, want int64, ttl time.Duration) (*NodeLease, error) {
	if want >= snowflakeNodes {
		return nil, fmt.Errorf("snowflake node %d: must be within 0..%d, or negative for any free node", want, snowflakeNodes-1)
	}
	if ttl < minLeaseTTL {
		return nil, fmt.Errorf("snowflake node lease ttl %v: must be at least %v", ttl, minLeaseTTL)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	l := &NodeLease{c: client, token: hex.EncodeToString(b), ttl: ttl,
		lost: make(chan struct{}), done: make(chan struct{})}
	key := func(n int64) string { return leaseKey(prefix, n) }
	take := func(n int64) (bool, error) {
		ok, err := client.SetNX(ctx, key(n), l.token, ttl).Result()
		if err != nil {
			return false, fmt.Errorf("lease snowflake node %d: %w", n, err)
		}
		return ok, nil
	}

	l.node = -1
	if want >= 0 {
		ok, err := take(want)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &NodeHeldError{Node: want}
		}
		l.node = want
	} else {
		from := mrand.Int64N(snowflakeNodes)
		for i := range int64(snowflakeNodes) {
			n := (from + i) % snowflakeNodes
			ok, err := take(n)
			if err != nil {
				return nil, err
			}
			if ok {
				l.node = n
				break
			}
		}
		if l.node < 0 {
			return nil, fmt.Errorf("every snowflake node (0..%d) is held by a running instance", snowflakeNodes-1)
		}
	}
	l.key = key(l.node)

	renewCtx, stop := context.WithCancel(context.Background())
	l.stop = stop
	go l.renew(renewCtx)
	return l, nil
}

// Node is the leased snowflake node.
func (l *NodeLease) Node() int64 { return l.node }

// Lost is closed when a renewal finds the node held by another instance.
// The instance must then stop making ids with it.
func (l *NodeLease) Lost() <-chan struct{} { return l.lost }

// renew extends the lease every third of its TTL until ctx ends or the
// lease is lost. A renewal that fails (Redis unreachable) is tried again at
// the next tick: the key still lives out its TTL meanwhile.
func (l *NodeLease) renew(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		callCtx, cancel := context.WithTimeout(ctx, l.ttl/3)
		res, err := renewNodeScript.Run(callCtx, l.c, []string{l.key}, l.token, l.ttl.Milliseconds()).Int()
		cancel()
		if err == nil && res == 0 {
			close(l.lost)
			return
		}
	}
}

// Release stops the renewal, waits for it, and frees the node if this
// lease still holds it. Calling it again does nothing more and returns the
// first call's error.
func (l *NodeLease) Release(ctx context.Context) error {
	l.release.Do(func() {
		l.stop()
		<-l.done
		if err := releaseNodeScript.Run(ctx, l.c, []string{l.key}, l.token).Err(); err != nil {
			l.releaseErr = fmt.Errorf("release snowflake node %d: %w", l.node, err)
		}
	})
	return l.releaseErr
}

// leaseKey holds the lease of snowflake node n.
func leaseKey(prefix string, n int64) string {
	return nodeKeyPrefix(prefix) + strconv.FormatInt(n, 10)
}

// LiveInstances counts the running instances sharing this Redis and key
// prefix: the snowflake node leases held, one per instance. A killed
// instance counts until its lease's TTL ends. Every node's key is asked by
// name (EXISTS, in one pipeline): on a Redis Cluster the keys spread over
// the masters, where a SCAN would see one master's keys only, and by name
// each goes to the master of its slot; nor does the cost grow with the
// keys Redis holds besides, as a SCAN's would.
func (r *Redis) LiveInstances(ctx context.Context) (int, error) {
	cmds := make([]*redis.IntCmd, snowflakeNodes)
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for n := range cmds {
			cmds[n] = p.Exists(ctx, leaseKey(r.prefix, int64(n)))
		}
		return nil
	})
	if err != nil {
		return 0, unavailable(err)
	}
	live := 0
	for _, c := range cmds {
		live += int(c.Val())
	}
	return live, nil
}
