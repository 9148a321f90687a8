package testenv

import (
	"context"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/internal/rediscluster"
)

// RedisServers starts n plain redis-server processes (no persistence) on
// free loopback ports, as children killed at the test's end, and returns
// their addresses once each answers.
func RedisServers(tb testing.TB, n int) []string {
	tb.Helper()
	bin, err := rediscluster.Binary()
	if err != nil {
		unavailable(tb, "redis-server", err, "apt-get install redis-server")
	}
	addrs := make([]string, n)
	for i := range addrs {
		port, err := freePort()
		if err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no")
		if err := cmd.Start(); err != nil {
			tb.Fatalf("start redis-server: %v", err)
		}
		tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addrs[i] = "127.0.0.1:" + strconv.Itoa(port)
		probe := redis.NewClient(&redis.Options{Addr: addrs[i], MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		deadline := time.Now().Add(10 * time.Second)
		for probe.Ping(context.Background()).Err() != nil {
			if time.Now().After(deadline) {
				probe.Close()
				tb.Fatalf("redis-server on %s does not answer", addrs[i])
			}
			time.Sleep(20 * time.Millisecond)
		}
		probe.Close()
	}
	return addrs
}
