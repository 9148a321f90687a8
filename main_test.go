package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/store"
)

const testToken = "test-admin-token"

// env is one test's share of the real servers: its own database, Redis key
// prefix and nsqd data folder. Instances started from it share them, like
// restarts of one deployment.
type env struct {
	t        *testing.T
	settings map[string]string
	nsqds    []*store.EmbeddedNSQD
}

// newEnv gives the test two MySQL databases (the primary doubles as the
// first order host) and two nsqd, so every version runs as designed.
func newEnv(t *testing.T) *env {
	t.Helper()
	redisAddr, prefix := testenv.Redis(t)
	primary, second := testenv.MySQL(t), testenv.MySQL(t)
	nsqds := []*store.EmbeddedNSQD{startNSQD(t), startNSQD(t)}
	return &env{t: t, nsqds: nsqds, settings: map[string]string{
		"SECKILL_HTTP_ADDR":              "127.0.0.1:0",
		"SECKILL_MYSQL_DSN":              primary,
		"SECKILL_MYSQL_SHARDS":           primary + "," + second,
		"SECKILL_NSQ_NSQD":               nsqds[0].TCPAddr() + "," + nsqds[1].TCPAddr(),
		"SECKILL_SOLDOUT_TTL":            "1m", // only the broadcast clears flags in tests
		"SECKILL_MYSQL_MAX_OPEN_CONNS":   "32",
		"SECKILL_REDIS_ADDR":             redisAddr,
		"SECKILL_REDIS_KEY_PREFIX":       prefix,
		"SECKILL_NSQ_EMBEDDED_DATA_DIR":  t.TempDir(),
		"SECKILL_NSQ_EMBEDDED_TCP_ADDR":  "127.0.0.1:0",
		"SECKILL_NSQ_EMBEDDED_HTTP_ADDR": "127.0.0.1:0",
		"SECKILL_ADMIN_TOKEN":            testToken,
		"SECKILL_OUTBOX_INTERVAL":        "200ms",
		"SECKILL_OUTBOX_GRACE":           "3s",
		"SECKILL_CONSUMER_MAX_ATTEMPTS":  "5",
	}}
}

// startNSQD runs a real nsqd for the test.
func startNSQD(t *testing.T) *store.EmbeddedNSQD {
	t.Helper()
	n, err := store.StartNSQD(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", newLogger(testenv.LogWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Exit) // after the instances, which are cleaned up first
	return n
}

// embeddedNSQD has instances run their own nsqd, kept in the env's folder.
func (e *env) embeddedNSQD() { delete(e.settings, "SECKILL_NSQ_NSQD") }

func (e *env) lookup(key string) (string, bool) {
	v, ok := e.settings[key]
	return v, ok
}

// instance is one running service.
type instance struct {
	*app
	base   string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// start runs an instance until stop or the end of the test.
func (e *env) start() *instance {
	e.t.Helper()
	cfg, err := loadConfig("", e.lookup)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := start(ctx, cfg, newLogger(testenv.LogWriter(e.t)))
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	in := &instance{app: a, base: "http://" + a.addr(), cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- a.serve(ctx) }()
	e.t.Cleanup(in.stop)
	return in
}

// stop shuts the instance down gracefully and waits; calling it again is a no-op.
func (in *instance) stop() {
	in.once.Do(func() {
		in.cancel()
		if err := <-in.done; err != nil {
			panic(err)
		}
	})
}

var client = &http.Client{
	Timeout: 30 * time.Second,
	Transport: &http.Transport{
		MaxIdleConnsPerHost: 256,
		MaxConnsPerHost:     256,
	},
}

// call sends body as JSON and decodes the answer into out (when not nil).
func (in *instance) call(t testing.TB, method, path string, body any, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, in.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Errorf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

func (in *instance) createGoods(t testing.TB, stock int64) service.Goods {
	t.Helper()
	var g service.Goods
	if code := in.call(t, "POST", "/admin/goods", map[string]any{"name": "phone", "stock": stock}, &g); code != http.StatusCreated {
		t.Fatalf("create goods: status %d", code)
	}
	return g
}

type orderAnswer struct {
	service.Order
	Error string `json:"error"`
}

func (in *instance) order(t testing.TB, version string, userID, goodsID, number int64) (int, orderAnswer) {
	var a orderAnswer
	code := in.call(t, "POST", "/order"+version, map[string]int64{"user_id": userID, "goods_id": goodsID, "number": number}, &a)
	return code, a
}

func (in *instance) stats(t testing.TB, goodsID int64) service.Stats {
	t.Helper()
	var st service.Stats
	if code := in.call(t, "GET", fmt.Sprintf("/admin/goods/%d/stats", goodsID), nil, &st); code != http.StatusOK {
		t.Fatalf("stats: status %d", code)
	}
	return st
}

// drained waits until every order's decrement has reached MySQL and Redis
// agrees with it, then returns the stats; it fails the test after a minute.
func (in *instance) drained(t testing.TB, goodsID int64) service.Stats {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st := in.stats(t, goodsID)
		if st.StockLogs == st.Orders && st.RedisStock != nil && *st.RedisStock == st.MySQLStock {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer did not drain within a minute: %+v (redis %v)", st, deref(st.RedisStock))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// checkSettled asserts the invariants of a drained sale of initial units in
// which accepted orders of one unit each were accepted.
func checkSettled(t testing.TB, st service.Stats, initial, accepted int64) {
	t.Helper()
	want := service.Stats{
		GoodsID: st.GoodsID, RedisStock: st.RedisStock,
		MySQLStock: initial - accepted, MySQLSale: accepted, Orders: accepted, StockLogs: accepted,
	}
	if st != want || *st.RedisStock != initial-accepted {
		t.Errorf("after drain: got %+v redis=%v, want mysql_stock=%d sale=%d orders=%d stock_logs=%d redis=%d dead_letters=0",
			st, deref(st.RedisStock), want.MySQLStock, accepted, accepted, accepted, want.MySQLStock)
	}
}
