package store

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
)

// slowReplies forwards connections to addr and, once slow is set, holds
// the next reply longer than the client waits for it: the command ran, the
// client timed out.
type slowReplies struct {
	ln   net.Listener
	slow atomic.Bool
}

func newSlowReplies(t *testing.T, addr string) *slowReplies {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowReplies{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := s.Read(buf)
					if err != nil {
						return
					}
					if p.slow.CompareAndSwap(true, false) {
						time.Sleep(300 * time.Millisecond)
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// A command whose reply comes too late may have run: the client must not
// send it again, or a reservation takes its units twice and a give-back
// returns them twice (Redis then offers units MySQL does not have). The
// ledger settles the timed-out command itself.
func TestATimedOutStockScriptIsNotSentAgain(t *testing.T) {
	ctx := context.Background()
	addr, prefix := testenv.Redis(t)
	direct := openTestRedis(t)
	direct.prefix = prefix
	proxy := newSlowReplies(t, addr)
	r, err := OpenRedis(ctx, RedisOptions{Addr: proxy.ln.Addr().String(), PoolSize: 4, KeyPrefix: prefix, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := direct.Put(ctx, service.Goods{ID: 1, Stock: 10}); err != nil {
		t.Fatal(err)
	}
	stock := func() int64 {
		time.Sleep(time.Second) // the late replies drain
		n, _, err := direct.Stock(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Both scripts in the server's cache first, so that the slow calls
	// below run them with EVALSHA alone.
	if err := r.Reserve(ctx, 1, 7, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx, 1, 7, 1); err != nil {
		t.Fatal(err)
	}
	proxy.slow.Store(true)
	reserveErr := r.Reserve(ctx, 1, 7, 1, time.Now())
	after := stock()
	if after != 9 || reserveErr == nil {
		t.Errorf("stock %d after one timed-out reservation of 1 unit, answered %v; want 9 and an error: the script ran %d times", after, reserveErr, 10-after)
	}
	// The give-back's reply (or its new connection's greeting) comes too
	// late: it ran once or not at all, and says it failed.
	proxy.slow.Store(true)
	releaseErr := r.Release(ctx, 1, 7, 1)
	if n := stock(); n-after > 1 || n < after || releaseErr == nil {
		t.Errorf("stock %d after one timed-out give-back of 1 unit from %d, answered %v; want at most one run and an error", n, after, releaseErr)
	}
}
