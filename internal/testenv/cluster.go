package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/rediscluster"
)

// Cluster is a real Redis Cluster of three masters (no replicas) on
// loopback ports, its data in temporary folders (internal/rediscluster),
// with Kill and Restart that fail the test.
type Cluster struct {
	*rediscluster.Cluster
	shared bool
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
	if err != nil {
		tb.Fatalf("redis cluster: %v", err)
	}
	// Registered after TempDir's own cleanup, so it runs first: the
	// servers are gone before their folders are removed.
	tb.Cleanup(c.Stop)
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
// (see rediscluster.Start), and its folder is removed by the next run that
// finds its process gone. Kill and Restart are refused on it.
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
	bin, err := rediscluster.Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("required under CI: %v", err)
		}
		tb.Skip(err)
	}
	return bin
}

// startCluster starts a cluster whose masters keep an append-only file,
// so that Restart brings a master back with its data.
func startCluster(bin, root string) (*Cluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := rediscluster.Start(ctx, bin, rediscluster.Options{Dir: root, AppendOnly: true})
	if err != nil {
		return nil, err
	}
	return &Cluster{Cluster: c}, nil
}

// Kill ends master i at once (SIGKILL), as a crash would: its keys fail
// until Restart, the other masters keep serving theirs.
func (c *Cluster) Kill(tb testing.TB, i int) {
	tb.Helper()
	if c.shared {
		tb.Fatal("Kill on the shared cluster: start a cluster of the test's own with RedisCluster")
	}
	c.Cluster.Kill(i)
}

// Restart starts master i again on its port and folder and waits until
// every node sees every slot served again.
func (c *Cluster) Restart(tb testing.TB, i int) {
	tb.Helper()
	if c.shared {
		tb.Fatal("Restart on the shared cluster: start a cluster of the test's own with RedisCluster")
	}
	if err := c.Cluster.Restart(context.Background(), i); err != nil {
		tb.Fatal(err)
	}
}

// RestartEmpty starts master i again as Restart does, without its data, as
// a master that lost its disk and rejoined would: it serves the same slots
// holding no key. A running master is killed first.
func (c *Cluster) RestartEmpty(tb testing.TB, i int) {
	tb.Helper()
	if c.shared {
		tb.Fatal("RestartEmpty on the shared cluster: start a cluster of the test's own with RedisCluster")
	}
	if err := c.Cluster.Wipe(i); err != nil {
		tb.Fatalf("wipe master %d: %v", i, err)
	}
	c.Restart(tb, i)
}
