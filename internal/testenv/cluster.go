package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterMasters is how many masters a test cluster has: enough for a key
// to live elsewhere than its neighbour, few enough for two cores.
const clusterMasters = 3

// Cluster is a real Redis Cluster of three masters (no replicas) on
// loopback ports, its data in temporary folders.
type Cluster struct {
	bin    string
	nodes  []*clusterNode
	client *redis.ClusterClient
	owner  []int // slot -> node index, as created (no slot moves afterwards)
	shared bool
}

type clusterNode struct {
	port int
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has ended
}

// RedisCluster starts a cluster of the test's own, stopped at its end. A
// test that kills masters needs its own; others share one
// (SharedRedisCluster). Under CI=true a missing redis-server fails the
// test; elsewhere it skips.
func RedisCluster(tb testing.TB) *Cluster {
	tb.Helper()
	bin := redisServer(tb)
	root := tb.TempDir()
	c, err := startCluster(bin, root)
	if c != nil {
		// Registered after TempDir's own cleanup, so it runs first: the
		// servers are gone before their folders are removed.
		tb.Cleanup(c.stop)
	}
	if err != nil {
		tb.Fatalf("redis cluster: %v", err)
	}
	return c
}

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// SharedRedisCluster is one cluster for every test of the package that
// asks for it (starting one takes a second or two), with a key prefix of
// the test's own whose keys are deleted when the test ends. It lives as
// long as the test binary: its servers are killed when the binary exits
// (see spawn), and its folder is removed by the next run that finds its
// process gone. Kill and Restart are refused on it.
func SharedRedisCluster(tb testing.TB) (c *Cluster, prefix string) {
	tb.Helper()
	bin := redisServer(tb)
	shared.once.Do(func() {
		sweepSharedDirs()
		root, err := os.MkdirTemp("", sharedDirPrefix)
		if err != nil {
			shared.err = err
			return
		}
		_ = os.WriteFile(filepath.Join(root, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o600)
		shared.c, shared.err = startCluster(bin, root)
		if shared.c != nil {
			shared.c.shared = true
		}
	})
	if shared.err != nil {
		tb.Fatalf("shared redis cluster: %v", shared.err)
	}
	prefix = Name("test:") + ":"
	tb.Cleanup(func() { shared.c.DeletePrefix(prefix) })
	return shared.c, prefix
}

const sharedDirPrefix = "seckill-redis-cluster-"

// sweepSharedDirs removes the folders of shared clusters whose test
// binary has exited.
func sweepSharedDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedDirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if processGone(pid) {
			os.RemoveAll(d)
		}
	}
}

func redisServer(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		_, err = exec.LookPath("redis-cli")
	}
	if err != nil {
		what := "redis-server and redis-cli (for a Redis Cluster)"
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s are required under CI: %v", what, err)
		}
		tb.Skipf("%s not found (%v); install them with: apt-get install redis-server", what, err)
	}
	return bin
}

func startCluster(bin, root string) (*Cluster, error) {
	c := &Cluster{bin: bin}
	for i := range clusterMasters {
		n := &clusterNode{dir: filepath.Join(root, strconv.Itoa(i))}
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			return c, err
		}
		c.nodes = append(c.nodes, n)
		if err := c.startOnFreePort(n); err != nil {
			return c, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return c, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.waitHealthy(ctx); err != nil {
		return c, err
	}
	if err := c.readSlots(ctx); err != nil {
		return c, err
	}
	c.client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), PoolSize: 16})
	return c, c.client.Ping(ctx).Err()
}

// startOnFreePort starts n on a loopback port whose cluster bus port
// (port + 10000) is free too, and tries other ports when another process
// took one in between.
func (c *Cluster) startOnFreePort(n *clusterNode) error {
	var err error
	for range 10 {
		if n.port, err = freeBusPort(); err != nil {
			return err
		}
		if err = c.startNode(n); err == nil {
			return nil
		}
	}
	return err
}

func freeBusPort() (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if port+10000 > 65535 {
			l.Close()
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		l.Close()
		if err != nil {
			continue
		}
		bus.Close()
		return port, nil
	}
	return 0, errors.New("no free loopback port with a free cluster bus port")
}

// startNode starts n's redis-server on its port and folder (the same ones
// again on a restart: nodes.conf and the append-only file bring back its
// identity and data) and waits until it answers.
func (c *Cluster) startNode(n *clusterNode) error {
	cmd := exec.Command(c.bin,
		"--port", strconv.Itoa(n.port), "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--dir", n.dir, "--appendonly", "yes", "--save", "",
		"--logfile", "redis.log",
		// A master that dies is seen failing in 2 s, not the default 15 s;
		// and the others keep serving their own slots meanwhile, rather than
		// refusing every key for a few missing ones.
		"--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "no")
	exited := make(chan struct{})
	if err := spawn(cmd); err != nil {
		return err
	}
	go func() { cmd.Wait(); close(exited) }()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()

	probe := redis.NewClient(&redis.Options{Addr: n.addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer probe.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
			return fmt.Errorf("redis-server on port %d exited: %s", n.port, tail(string(log)))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := probe.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			n.kill()
			return fmt.Errorf("redis-server on port %d does not answer: %v", n.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n")
}

func (n *clusterNode) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// kill sends SIGKILL and waits for the process to end.
func (n *clusterNode) kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// waitHealthy waits until every node sees every slot served: state ok and
// no slot failing or suspected.
func (c *Cluster) waitHealthy(ctx context.Context) error {
	var last string
	for {
		healthy := true
		for _, n := range c.nodes {
			info, err := nodeCommand(ctx, n.addr(), "CLUSTER", "INFO")
			if err != nil {
				healthy, last = false, err.Error()
				break
			}
			s := fmt.Sprint(info)
			if !strings.Contains(s, "cluster_state:ok") || !strings.Contains(s, "cluster_slots_ok:16384") ||
				!strings.Contains(s, "cluster_known_nodes:"+strconv.Itoa(len(c.nodes))) {
				healthy, last = false, n.addr()+": "+s
				break
			}
		}
		if healthy {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not healthy: %s", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func nodeCommand(ctx context.Context, addr string, args ...any) (any, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 500 * time.Millisecond})
	defer c.Close()
	return c.Do(ctx, args...).Result()
}

// readSlots records which node serves each slot.
func (c *Cluster) readSlots(ctx context.Context) error {
	probe := redis.NewClient(&redis.Options{Addr: c.nodes[0].addr()})
	defer probe.Close()
	ranges, err := probe.ClusterSlots(ctx).Result()
	if err != nil {
		return err
	}
	c.owner = make([]int, 16384)
	for i := range c.owner {
		c.owner[i] = -1
	}
	for _, r := range ranges {
		if len(r.Nodes) == 0 {
			continue
		}
		_, port, _ := net.SplitHostPort(r.Nodes[0].Addr)
		for i, n := range c.nodes {
			if strconv.Itoa(n.port) == port {
				for s := r.Start; s <= r.End; s++ {
					c.owner[s] = i
				}
			}
		}
	}
	return nil
}

// Addrs are the masters' addresses, 127.0.0.1:port, in the order of the
// indexes Kill, Restart and MasterOf use.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr()
	}
	return addrs
}

// Client is a cluster client of the test cluster, closed with it.
func (c *Cluster) Client() *redis.ClusterClient { return c.client }

// MasterOf is the index of the master that serves key's slot.
func (c *Cluster) MasterOf(key string) int { return c.owner[keySlot(key)] }

// Kill ends master i at once (SIGKILL), as a crash would: its keys fail
// until Restart, the other masters keep serving theirs.
func (c *Cluster) Kill(tb testing.TB, i int) {
	tb.Helper()
	if c.shared {
		tb.Fatal("Kill on the shared cluster: start a cluster of the test's own with RedisCluster")
	}
	c.nodes[i].kill()
}

// Restart starts master i again on its port and folder and waits until
// every node sees every slot served again.
func (c *Cluster) Restart(tb testing.TB, i int) {
	tb.Helper()
	if c.shared {
		tb.Fatal("Restart on the shared cluster: start a cluster of the test's own with RedisCluster")
	}
	var err error
	for range 20 { // the port may still be held for a moment after the kill
		if err = c.startNode(c.nodes[i]); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("restart master %d: %v", i, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.waitHealthy(ctx); err != nil {
		tb.Fatalf("restart master %d: %v", i, err)
	}
	c.client.ReloadState(ctx)
}

// RestartEmpty starts master i again as Restart does, without its data:
// its append-only files (and any snapshot) are removed first, its cluster
// configuration stays, so it serves the same slots holding no key, as a
// master that lost its disk and rejoined would. A running master is
// killed first.
func (c *Cluster) RestartEmpty(tb testing.TB, i int) {
	tb.Helper()
	if c.shared {
		tb.Fatal("RestartEmpty on the shared cluster: start a cluster of the test's own with RedisCluster")
	}
	n := c.nodes[i]
	n.kill()
	for _, name := range []string{"appendonlydir", "appendonly.aof", "dump.rdb"} {
		if err := os.RemoveAll(filepath.Join(n.dir, name)); err != nil {
			tb.Fatalf("wipe master %d: %v", i, err)
		}
	}
	c.Restart(tb, i)
}

// DeletePrefix deletes every key under prefix, on every master.
func (c *Cluster) DeletePrefix(prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		iter := m.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			m.Del(ctx, iter.Val())
		}
		return iter.Err()
	})
}

func (c *Cluster) stop() {
	if c.client != nil {
		c.client.Close()
	}
	for _, n := range c.nodes {
		n.kill()
	}
}

// spawn starts cmd from one OS thread that lives as long as the test
// binary, so that the parent-death signal (set on Linux) kills the servers
// when the binary exits however it exits (a panic, a timeout), and never
// earlier: that signal follows the thread that started the process, not
// the process.
func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.req = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread never exits
			for f := range spawner.req {
				f()
			}
		}()
	})
	setParentDeathSignal(cmd)
	errc := make(chan error, 1)
	spawner.req <- func() { errc <- cmd.Start() }
	return <-errc
}

var spawner struct {
	once sync.Once
	req  chan func()
}

// keySlot is the key's Redis Cluster slot: CRC16 (XMODEM) of its hash tag,
// or of the whole key without one, modulo 16384 (store.KeySlot, which this
// package cannot import: the store's tests import this one).
func keySlot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			key = key[open+1 : open+1+end]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}
