// Package rediscluster starts a real Redis Cluster of a few masters (no
// replicas) as redis-server processes on free loopback ports, each with
// its data in a folder of its own, joined with `redis-cli --cluster
// create`. The tests use it through internal/testenv, the benchmark
// directly; it needs redis-server and redis-cli (the redis-server package).
package rediscluster

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
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultMasters is how many masters a cluster has unless told otherwise:
// enough for a key to live elsewhere than its neighbour, few enough for
// two cores.
const DefaultMasters = 3

// Options configure a cluster.
type Options struct {
	// Dir holds one folder per master (0, 1, ...): nodes.conf, the data,
	// redis.log. It must exist; the caller removes it after Stop.
	Dir string
	// Masters is the number of masters [DefaultMasters].
	Masters int
	// AppendOnly keeps every write in an append-only file, so that a
	// master restarted with Restart comes back with its data. Without it
	// nothing is written to disk, as with the Redis the tests and the
	// benchmark share.
	AppendOnly bool
	// PoolSize is the pool of Client, per master [16].
	PoolSize int
}

// Cluster is a running cluster. Every method may be called from several
// goroutines.
type Cluster struct {
	bin    string
	o      Options
	nodes  []*node
	client *redis.ClusterClient
	owner  []int // slot -> node index, as created (no slot moves afterwards)
}

type node struct {
	port int
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has ended
}

// Binary is the path of redis-server, once both it and redis-cli are found.
func Binary() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		_, err = exec.LookPath("redis-cli")
	}
	if err != nil {
		return "", fmt.Errorf("redis-server and redis-cli (for a Redis Cluster): %w; install them with: apt-get install redis-server", err)
	}
	return bin, nil
}

// Start starts the masters of a new cluster with the redis-server at bin,
// joins them and waits until every node sees every slot served. On an
// error it stops what it started. The servers are killed when the calling
// program exits, however it exits (on Linux; see spawn), if Stop was not
// called before.
func Start(ctx context.Context, bin string, o Options) (*Cluster, error) {
	if o.Masters <= 0 {
		o.Masters = DefaultMasters
	}
	if o.PoolSize <= 0 {
		o.PoolSize = 16
	}
	c := &Cluster{bin: bin, o: o}
	if err := c.start(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	for i := range c.o.Masters {
		n := &node{dir: filepath.Join(c.o.Dir, strconv.Itoa(i))}
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			return err
		}
		c.nodes = append(c.nodes, n)
		if err := c.startOnFreePort(n); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.waitHealthy(ctx); err != nil {
		return err
	}
	if err := c.readSlots(ctx); err != nil {
		return err
	}
	c.client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), PoolSize: c.o.PoolSize})
	return c.client.Ping(ctx).Err()
}

// startOnFreePort starts n on a loopback port whose cluster bus port
// (port + 10000) is free too, and tries other ports when another process
// took one in between.
func (c *Cluster) startOnFreePort(n *node) error {
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
// again on a restart: nodes.conf, and the append-only file when kept,
// bring back its identity and data) and waits until it answers.
func (c *Cluster) startNode(n *node) error {
	appendOnly := "no"
	if c.o.AppendOnly {
		appendOnly = "yes"
	}
	cmd := exec.Command(c.bin,
		"--port", strconv.Itoa(n.port), "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		// "always": a write is in the file before its answer is sent. With
		// the default "everysec" a busy disk lets Redis postpone the write
		// by up to two seconds after answering, and a SIGKILL then loses
		// writes the service was told had happened.
		"--dir", n.dir, "--appendonly", appendOnly, "--appendfsync", "always", "--save", "",
		"--logfile", "redis.log",
		// A master that dies is seen failing in 2 s, not the default 15 s;
		// and the others keep serving their own slots meanwhile, rather than
		// refusing every key for a few missing ones.
		"--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "no")
	exited := make(chan struct{})
	if err := spawn(cmd); err != nil {
		return err
	}
	go func() { _ = cmd.Wait(); close(exited) }()
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

func (n *node) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// kill sends SIGKILL and waits for the process to end.
func (n *node) kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// pid is the process id of n's server, 0 when none was started.
func (n *node) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
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

// PIDs are the process ids of the masters' servers.
func (c *Cluster) PIDs() []int {
	var pids []int
	for _, n := range c.nodes {
		if pid := n.pid(); pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Client is a cluster client, closed by Stop.
func (c *Cluster) Client() *redis.ClusterClient { return c.client }

// MasterOf is the index of the master that serves key's slot.
func (c *Cluster) MasterOf(key string) int { return c.owner[keySlot(key)] }

// Kill ends master i at once (SIGKILL), as a crash would: its keys fail
// until Restart, the other masters keep serving theirs.
func (c *Cluster) Kill(i int) { c.nodes[i].kill() }

// Restart starts master i again on its port and folder and waits until
// every node sees every slot served again.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	var err error
	for range 20 { // the port may still be held for a moment after the kill
		if err = c.startNode(c.nodes[i]); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("restart master %d: %w", i, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.waitHealthy(ctx); err != nil {
		return fmt.Errorf("restart master %d: %w", i, err)
	}
	c.client.ReloadState(ctx)
	return nil
}

// Wipe kills master i and removes its data (append-only files and any
// snapshot); its cluster configuration stays, so a Restart brings it back
// serving the same slots with no key.
func (c *Cluster) Wipe(i int) error {
	n := c.nodes[i]
	n.kill()
	for _, name := range []string{"appendonlydir", "appendonly.aof", "dump.rdb"} {
		if err := os.RemoveAll(filepath.Join(n.dir, name)); err != nil {
			return err
		}
	}
	return nil
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

// Stop closes the client and kills every master; the folders stay.
func (c *Cluster) Stop() {
	if c.client != nil {
		c.client.Close()
	}
	for _, n := range c.nodes {
		n.kill()
	}
}

// spawn starts cmd from one OS thread that lives as long as the program,
// so that the parent-death signal (set on Linux) kills the servers when
// the program exits however it exits (a panic, a test's timeout, a
// signal), and never earlier: that signal follows the thread that started
// the process, not the process.
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
// package cannot import: the store's tests import internal/testenv, which
// imports this one).
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
