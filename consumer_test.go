package main_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/service"
)

// sellWithoutMessage makes an accepted order the way V2 does, but publishes
// nothing: the order row is in the primary's orders table and the unit is
// taken from the goods' Redis stock; the message is lost.
func sellWithoutMessage(t *testing.T, e *harness.Env, goodsID, userID int64) service.StockMessage {
	t.Helper()
	ctx := context.Background()
	m := service.StockMessage{OrderID: harness.NewOrderID(), GoodsID: goodsID, UserID: userID, Number: 1}
	if err := e.Redis().HIncrBy(ctx, e.GoodsKey(goodsID), "stock", -m.Number).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DB(0).ExecContext(ctx, "INSERT INTO orders (id, user_id, goods_id, number, pay_deadline) VALUES (?, ?, ?, ?, ?)",
		m.OrderID, m.UserID, m.GoodsID, m.Number, time.Now().Add(time.Hour).UTC()); err != nil {
		t.Fatal(err)
	}
	return m
}

// The same message delivered twice, also after the first was applied and
// out of order with others, changes MySQL stock once.
func TestDuplicateMessagesApplyOnce(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	g := in.CreateGoods(t, 10)
	m1 := sellWithoutMessage(t, e, g.ID, 1)
	m2 := sellWithoutMessage(t, e, g.ID, 2)
	e.PublishStock(t, m1, m2, m1, m2, m1)
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: []int64{m1.OrderID, m2.OrderID}})
	// Once more, long after: still applied once.
	m3 := sellWithoutMessage(t, e, g.ID, 3)
	e.PublishStock(t, m2, m3)
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: []int64{m1.OrderID, m2.OrderID, m3.OrderID}})
}

// A message that cannot be applied is written to the dead-letter table with
// its reason on the first attempt, and the consumer goes on.
func TestPoisonMessagesAreDeadLettered(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	g := in.CreateGoods(t, 10)
	e.PublishRaw(t, in.Config.NSQ.Topic, []byte("not json"), []byte(`{"order_id":-1,"goods_id":999,"number":1}`), []byte(`{"order_id":1,"goods_id":999,"number":1,"extra":true}`))
	m := sellWithoutMessage(t, e, g.ID, 1)
	e.PublishStock(t, m)
	harness.Eventually(t, 10*time.Second, func() bool {
		var n int
		err := e.DB(0).QueryRow("SELECT COUNT(*) FROM dead_letters WHERE reason <> ''").Scan(&n)
		return err == nil && n == 3
	}, "three dead letters with their reason")
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: []int64{m.OrderID}, DeadLetters: 3})
}

// An order whose message never reached nsqd (publish failed, or nsqd lost
// it) is found by the outbox sweep and applied.
func TestOutboxSweepRepublishesLostMessages(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_OUTBOX_GRACE"] = "500ms"
	in := e.Start(t)
	g := in.CreateGoods(t, 10)
	var ids []int64
	for u := range int64(4) {
		ids = append(ids, sellWithoutMessage(t, e, g.ID, u+1).OrderID)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: ids})
}

// A graceful shutdown in the middle of a load loses no accepted order: each
// one exists in MySQL, and after a restart its stock is applied once.
func TestGracefulShutdownMidLoadLosesNothing(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.EmbeddedNSQD() // its queue must survive the restart on disk
	in := e.Start(t)
	g := in.CreateGoods(t, 100000)
	var (
		mu       sync.Mutex
		accepted []int64
		wg       sync.WaitGroup
		stopLoad = make(chan struct{})
	)
	versions := service.VersionNames()
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
				// Requests fail quietly while the server goes away.
				var a harness.OrderAnswer
				code, _ := in.Do(context.Background(), "POST", "/order"+versions[int(i)%len(versions)],
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
	in.Stop()
	close(stopLoad)
	wg.Wait()
	if len(accepted) == 0 {
		t.Fatal("no order was accepted before the shutdown")
	}

	e.Start(t)
	// Requests in flight at the shutdown may have stored orders that were
	// never answered: each must still be applied once.
	snap := e.CheckInvariants(t, g.ID, harness.Sale{Initial: 100000, Accepted: accepted, AllowUnanswered: true})
	t.Logf("accepted %d orders before the shutdown; %d stored", len(accepted), len(snap.Orders))
}

// A batch holding a message twice, and one seen before, still applies each
// order once: the batch falls back to one transaction per message. The
// stock channel is paused while each batch is published, so that the one
// applier takes the messages together; the empty message among them is
// dead-lettered.
func TestStockBatchesApplyEachOrderOnce(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_CONSUMER_CONCURRENCY"] = "1"
	e.Settings["SECKILL_OUTBOX_GRACE"] = "1m" // the messages published here alone
	in := e.Start(t)
	g := in.CreateGoods(t, 10)
	var ms []service.StockMessage
	var ids []int64
	for u := range int64(5) {
		m := sellWithoutMessage(t, e, g.ID, u+1)
		ms, ids = append(ms, m), append(ids, m.OrderID)
	}
	batch := func(msgs ...service.StockMessage) {
		t.Helper()
		e.PauseStockConsumer(t, true)
		e.PublishStock(t, msgs...)
		e.PauseStockConsumer(t, false)
	}
	batch(ms[:3]...)
	harness.Eventually(t, 10*time.Second, func() bool {
		snap, err := e.Snapshot(context.Background(), g.ID)
		return err == nil && len(snap.Sales) == 3
	}, "the first batch applied")
	batch(ms[3], ms[0], ms[3], ms[4], service.StockMessage{})
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: ids, DeadLetters: 1})
}
