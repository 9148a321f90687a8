package main

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/go-seckill/seckill/service"
)

// newStandaloneEnv configures nothing but a data folder: SQLite files stand
// in for MySQL (two of them as order hosts), an in-process Redis for Redis
// and an embedded nsqd for NSQ.
func newStandaloneEnv(t *testing.T) *env {
	dir := t.TempDir()
	return &env{t: t, settings: map[string]string{
		"SECKILL_HTTP_ADDR":              "127.0.0.1:0",
		"SECKILL_STANDALONE_DATA_DIR":    dir,
		"SECKILL_MYSQL_SHARDS":           "sqlite:" + filepath.Join(dir, "seckill.db") + ",sqlite:" + filepath.Join(dir, "orders2.db"),
		"SECKILL_NSQ_EMBEDDED_DATA_DIR":  filepath.Join(dir, "nsqd"),
		"SECKILL_NSQ_EMBEDDED_TCP_ADDR":  "127.0.0.1:0",
		"SECKILL_NSQ_EMBEDDED_HTTP_ADDR": "127.0.0.1:0",
		"SECKILL_ADMIN_TOKEN":            testToken,
		"SECKILL_OUTBOX_INTERVAL":        "200ms",
		"SECKILL_OUTBOX_GRACE":           "3s",
		"SECKILL_SOLDOUT_TTL":            "1m",
	}}
}

// The shared stampede suite in the standalone mode: the same invariants,
// and the sale's state survives a restart.
func TestStandaloneModeSellsExactlyTheStockAndSurvivesARestart(t *testing.T) {
	e := newStandaloneEnv(t)
	in := e.start()
	if !in.cfg.IsStandalone() || in.miniRed == nil {
		t.Fatal("not in the standalone mode")
	}
	for _, v := range service.Versions() {
		t.Run(v, func(t *testing.T) {
			g := in.createGoods(t, 100)
			byStatus, ids := stampede(t, in, g.ID, 2000, v)
			checkAccepted(t, byStatus, ids, 100)
			checkSettled(t, in.drained(t, g.ID), 100, 100)
		})
	}
	half := in.createGoods(t, 10)
	for u := range int64(4) {
		if code, _ := in.order(t, "V6", u+1, half.ID, 1); code != http.StatusCreated {
			t.Fatalf("order: %d", code)
		}
	}
	in.stop()

	in = e.start() // a new in-process Redis: stock comes back from SQLite
	st := in.drained(t, half.ID)
	checkSettled(t, st, 10, 4)
	byStatus, ids := stampede(t, in, half.ID, 50, "V6")
	checkAccepted(t, byStatus, ids, 6)
	checkSettled(t, in.drained(t, half.ID), 10, 10)
}

// Payment and its timeout in the standalone mode: SQLite compares the
// deadlines as MySQL does.
func TestStandalonePaymentAndTimeout(t *testing.T) {
	e := newStandaloneEnv(t)
	e.settings["SECKILL_ORDER_PAY_TIMEOUT"] = "1s"
	e.settings["SECKILL_ORDER_EXPIRY_SWEEP_INTERVAL"] = "100ms"
	e.settings["SECKILL_ORDER_EXPIRY_SWEEP_GRACE"] = "0s"
	in := e.start()
	g := in.createGoods(t, 20)
	var unpaid []orderAnswer
	paid := 0
	for i, v := range service.Versions() {
		user := int64(i + 1)
		_, a := in.order(t, v, user, g.ID, 1)
		_, b := in.order(t, v, user, g.ID, 1)
		if status, code := in.pay(t, a.ID, user); status != http.StatusOK {
			t.Fatalf("%s: pay: %d %q", v, status, code)
		}
		paid++
		unpaid = append(unpaid, b)
	}
	in.settledWithCancels(t, g.ID, 20, paid, len(unpaid))
	if status, code := in.pay(t, unpaid[0].ID, unpaid[0].UserID); status != http.StatusConflict || code != "order_cancelled" {
		t.Errorf("paying a cancelled order: %d %q", status, code)
	}
}
