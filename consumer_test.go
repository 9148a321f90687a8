package main

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/store"
)

// sellWithoutMessage makes an accepted order the way V2 does, but publishes
// nothing: the order row and the Redis reservation exist, the message is lost.
func sellWithoutMessage(t *testing.T, in *instance, goodsID, userID int64) service.StockMessage {
	t.Helper()
	ctx := context.Background()
	o := service.Order{ID: testIDs.NewID(), UserID: userID, GoodsID: goodsID, Number: 1, PayDeadline: time.Now().Add(time.Hour).UTC()}
	if err := in.redis.Reserve(ctx, goodsID, userID, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := in.database.InsertOrder(ctx, o, service.OrderTable{}); err != nil {
		t.Fatal(err)
	}
	return service.StockMessage{OrderID: o.ID, GoodsID: goodsID, UserID: userID, Number: 1}
}

func publishRaw(t *testing.T, in *instance, bodies ...[]byte) {
	t.Helper()
	p, err := nsq.NewProducer(in.cfg.NSQDAddrs()[0], nsq.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	for _, b := range bodies {
		if err := p.Publish(in.cfg.NSQ.Topic, b); err != nil {
			t.Fatal(err)
		}
	}
}

// The same message delivered twice, also after the first was applied and
// out of order with others, changes MySQL stock once.
func TestDuplicateMessagesApplyOnce(t *testing.T) {
	e := newEnv(t)
	in := e.start()
	g := in.createGoods(t, 10)
	m1 := sellWithoutMessage(t, in, g.ID, 1)
	m2 := sellWithoutMessage(t, in, g.ID, 2)
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, m := range []service.StockMessage{m1, m2, m1, m2, m1} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = in.pub.Publish(ctx, m, 0) }()
	}
	wg.Wait()
	checkSettled(t, in.drained(t, g.ID), 10, 2)
	// Once more, long after: still applied once.
	if err := in.pub.Publish(ctx, m2, 0); err != nil {
		t.Fatal(err)
	}
	m3 := sellWithoutMessage(t, in, g.ID, 3)
	if err := in.pub.Publish(ctx, m3, 0); err != nil {
		t.Fatal(err)
	}
	checkSettled(t, in.drained(t, g.ID), 10, 3)
}

// A message that cannot be applied is written to the dead-letter table with
// its reason on the first attempt, and the consumer goes on.
func TestPoisonMessagesAreDeadLettered(t *testing.T) {
	e := newEnv(t)
	in := e.start()
	g := in.createGoods(t, 10)
	publishRaw(t, in, []byte("not json"), []byte(`{"order_id":-1,"goods_id":999,"number":1}`), []byte(`{"order_id":1,"goods_id":999,"number":1,"extra":true}`))
	m := sellWithoutMessage(t, in, g.ID, 1)
	if err := in.pub.Publish(context.Background(), m, 0); err != nil {
		t.Fatal(err)
	}
	checkSettled(t, in.drained(t, g.ID), 10, 1)
	db := in.database.DB()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM dead_letters WHERE reason <> ''").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters: %d, want 3", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An order whose message never reached nsqd (publish failed, or nsqd lost
// it) is found by the outbox sweep and applied.
func TestOutboxSweepRepublishesLostMessages(t *testing.T) {
	e := newEnv(t)
	e.settings["SECKILL_OUTBOX_GRACE"] = "500ms"
	in := e.start()
	g := in.createGoods(t, 10)
	for u := range int64(4) {
		sellWithoutMessage(t, in, g.ID, u+1)
	}
	checkSettled(t, in.drained(t, g.ID), 10, 4)
}

// A graceful shutdown in the middle of a load loses no accepted order: each
// one exists in MySQL, and after a restart its stock is applied once.
func TestGracefulShutdownMidLoadLosesNothing(t *testing.T) {
	e := newEnv(t)
	e.embeddedNSQD() // its queue must survive the restart on disk
	in := e.start()
	g := in.createGoods(t, 100000)
	var (
		mu       sync.Mutex
		accepted []int64
		wg       sync.WaitGroup
		stopLoad = make(chan struct{})
	)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); ; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				var a orderAnswer
				code := in.call(nopTB{t}, "POST", "/order"+service.Versions()[int(i)%len(service.Versions())],
					map[string]int64{"user_id": int64(w)*1_000_000 + i + 1, "goods_id": g.ID, "number": 1}, &a)
				if code == http.StatusCreated {
					mu.Lock()
					accepted = append(accepted, a.ID)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	in.stop()
	close(stopLoad)
	wg.Wait()
	if len(accepted) == 0 {
		t.Fatal("no order was accepted before the shutdown")
	}

	in = e.start()
	st := in.drained(t, g.ID)
	checkSettled(t, st, 100000, st.Orders)
	if st.Orders < int64(len(accepted)) {
		t.Errorf("%d orders in MySQL, %d accepted", st.Orders, len(accepted))
	}
	for _, id := range accepted {
		if n, err := in.database.CountOrder(context.Background(), id); err != nil || n != 1 {
			t.Errorf("accepted order %d: %d rows (%v)", id, n, err)
		}
	}
	t.Logf("accepted %d orders before the shutdown", len(accepted))
}

// nopTB lets requests fail quietly while the server goes away.
type nopTB struct{ testing.TB }

func (nopTB) Helper()                     {}
func (nopTB) Errorf(string, ...any)       {}
func (n nopTB) Fatal(args ...any)         { n.TB.Fatal(args...) }
func (n nopTB) Fatalf(f string, a ...any) { n.TB.Fatalf(f, a...) }

// testIDs makes order ids for orders the tests write themselves.
var testIDs = func() *store.IDs {
	ids, err := store.NewIDs(1023)
	if err != nil {
		panic(err)
	}
	return ids
}()

// A batch holding a message twice, and one seen before, still applies each
// order once: the batch falls back to one transaction per message.
func TestApplyStockBatchAppliesEachOrderOnce(t *testing.T) {
	e := newEnv(t)
	e.settings["SECKILL_CONSUMER_ENABLED"] = "false"
	in := e.start()
	g := in.createGoods(t, 10)
	ctx := context.Background()
	var ms []service.StockMessage
	for u := range int64(5) {
		ms = append(ms, sellWithoutMessage(t, in, g.ID, u+1))
	}
	for i, err := range in.svc.ApplyStockBatch(ctx, ms[:3]) {
		if err != nil {
			t.Errorf("first batch, message %d: %v", i, err)
		}
	}
	for i, err := range in.svc.ApplyStockBatch(ctx, []service.StockMessage{ms[3], ms[0], ms[3], ms[4], {}}) {
		if wantErr := i == 4; (err != nil) != wantErr {
			t.Errorf("second batch, message %d: %v", i, err)
		}
	}
	checkSettled(t, in.drained(t, g.ID), 10, 5)
}
