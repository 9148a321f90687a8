package main_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/service"
)

// doubleCheckEnv is an env whose V10 checks come quickly and whose outbox
// sweep stays out of the way, so that every republish is the check's.
func doubleCheckEnv(t *testing.T, maxRepublish int) *harness.Env {
	t.Helper()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_DOUBLECHECK_DELAY"] = "300ms"
	e.Settings["SECKILL_DOUBLECHECK_MAX_REPUBLISH"] = fmt.Sprint(maxRepublish)
	e.Settings["SECKILL_OUTBOX_GRACE"] = "10m"
	e.Settings["SECKILL_OUTBOX_LATE_HORIZON"] = "20m"
	return e
}

// doubleChecks reads the instance's count of check events of kind.
func doubleChecks(t *testing.T, in *harness.Instance, event string) int {
	t.Helper()
	f := in.Scrape(t)["seckill_doublecheck_events_total"]
	if f == nil {
		t.Fatal("no seckill_doublecheck_events_total metric")
	}
	for _, m := range f.Metric {
		if harness.Labels(m)["event"] == event {
			return int(m.GetCounter().GetValue())
		}
	}
	return 0
}

// placeV10 places one-unit V10 orders for users 1..n and returns their ids.
func placeV10(t *testing.T, in *harness.Instance, goodsID int64, n int) []int64 {
	t.Helper()
	var ids []int64
	for u := int64(1); u <= int64(n); u++ {
		code, o := in.Order(t, "V10", u, goodsID, 1)
		if code != http.StatusOK && code != http.StatusCreated {
			t.Fatalf("order of user %d: %d", u, code)
		}
		ids = append(ids, o.ID)
	}
	return ids
}

// The consumer is held back while V10's checks come: each check finds its
// decrement unconfirmed and republishes it, though the first message is
// only late. Once the consumer runs, every copy arrives and each order's
// stock is applied exactly once, and the checks that follow find it
// confirmed and stop.
func TestDoubleCheckRepublishingALateDecrementAppliesItOnce(t *testing.T) {
	t.Parallel()
	e := doubleCheckEnv(t, 50)
	in := e.Start(t)
	g := in.CreateGoods(t, 10)
	e.PauseStockConsumer(t, true)
	ids := placeV10(t, in, g.ID, 5)
	harness.Eventually(t, 30*time.Second, func() bool { return doubleChecks(t, in, "republished") >= 2*len(ids) },
		"the checks republish every late decrement")
	e.PauseStockConsumer(t, false)
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: ids})
	harness.Eventually(t, 30*time.Second, func() bool { return doubleChecks(t, in, "confirmed") >= len(ids) },
		"every order's last check finds its decrement confirmed")
	if n := doubleChecks(t, in, "dead_lettered"); n != 0 {
		t.Fatalf("%d decrements dead-lettered; every one was applied", n)
	}
	// Copies republished at once may share a message: what counts is that
	// every message the topic took, copies included, was delivered and
	// finished, and that the stock still counts each order once.
	harness.Eventually(t, 30*time.Second, func() bool {
		var taken, finished uint64
		idle := true
		for _, n := range e.NSQDs {
			c, err := harness.NSQDChannel(n.HTTPAddr(), in.Config.NSQ.Topic, in.Config.NSQ.Channel)
			if err != nil {
				t.Fatal(err)
			}
			taken, finished, idle = taken+c.MessageCount, finished+c.Finished(), idle && c.Idle()
		}
		return idle && taken > uint64(len(ids)) && finished == taken
	}, "the republished copies of every order are delivered and finished too")
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: ids})
}

// emptyStockChannel drops every stock message waiting on the env's nsqd:
// decrements lost as if nsqd had crashed.
func emptyStockChannel(t *testing.T, e *harness.Env, in *harness.Instance) {
	t.Helper()
	for _, n := range e.NSQDs {
		u := "http://" + n.HTTPAddr() + "/channel/empty?topic=" + url.QueryEscape(in.Config.NSQ.Topic) + "&channel=" + url.QueryEscape(in.Config.NSQ.Channel)
		resp, err := http.Post(u, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("empty channel: %s", resp.Status)
		}
	}
}

// Decrements lost for good: after three republishes, lost as well, each
// check hands its order to a person as a dead letter of the stock topic,
// with the reason. Replaying a letter, twice at once and then again,
// applies the order's stock exactly once.
func TestDoubleCheckDeadLettersALostDecrementAndItsReplayAppliesOnce(t *testing.T) {
	t.Parallel()
	e := doubleCheckEnv(t, 3)
	in := e.Start(t)
	g := in.CreateGoods(t, 10)
	e.PauseStockConsumer(t, true)
	ids := placeV10(t, in, g.ID, 3)
	harness.Eventually(t, 30*time.Second, func() bool { return doubleChecks(t, in, "dead_lettered") == len(ids) },
		"every unconfirmed decrement is dead-lettered after three republishes")
	emptyStockChannel(t, e, in)
	e.PauseStockConsumer(t, false)
	if n := doubleChecks(t, in, "republished"); n != 3*len(ids) {
		t.Fatalf("%d republishes for %d orders, want 3 each", n, len(ids))
	}

	var list struct {
		DeadLetters []struct {
			ID      int64  `json:"id"`
			OrderID string `json:"order_id"`
			Topic   string `json:"topic"`
			Reason  string `json:"reason"`
			Status  string `json:"status"`
			Applied *bool  `json:"sale_applied"`
		} `json:"dead_letters"`
	}
	if code := in.Call(t, http.MethodGet, "/admin/dead-letters?status=open", nil, &list); code != http.StatusOK || len(list.DeadLetters) != len(ids) {
		t.Fatalf("list: %d %+v", code, list)
	}
	for _, l := range list.DeadLetters {
		if l.Topic != in.Config.NSQ.Topic || !strings.Contains(l.Reason, "not confirmed after 3 republishes") || l.OrderID == "" ||
			l.Applied == nil || *l.Applied {
			t.Fatalf("letter %+v: want the stock topic, the order, the reason and its stock not applied", l)
		}
	}
	snap, err := e.Snapshot(t.Context(), g.ID)
	if err != nil || snap.SaleUnits != 0 {
		t.Fatalf("stock applied before any replay: %v %s", err, snap)
	}

	for _, l := range list.DeadLetters {
		var wg sync.WaitGroup
		acted := make(chan bool, 2)
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var out struct {
					Acted bool `json:"acted"`
				}
				if code := in.Call(t, http.MethodPost, fmt.Sprintf("/admin/dead-letters/%d/replay", l.ID), map[string]string{"by": "ops"}, &out); code != http.StatusOK {
					t.Errorf("replay %d: %d", l.ID, code)
				}
				acted <- out.Acted
			}()
		}
		wg.Wait()
		if a, b := <-acted, <-acted; a == b {
			t.Fatalf("two replays at once of letter %d: acted %v and %v, want exactly one", l.ID, a, b)
		}
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: ids, DeadLetters: int64(len(ids))})
	for _, l := range list.DeadLetters {
		var now struct {
			Status  string `json:"status"`
			Applied *bool  `json:"sale_applied"`
		}
		if in.Call(t, http.MethodGet, fmt.Sprintf("/admin/dead-letters/%d", l.ID), nil, &now); now.Status != "replayed" || now.Applied == nil || !*now.Applied {
			t.Fatalf("letter %d after its replay: %+v, want replayed with its stock applied", l.ID, now)
		}
		in.Call(t, http.MethodPost, fmt.Sprintf("/admin/dead-letters/%d/replay", l.ID), nil, nil)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: ids, DeadLetters: int64(len(ids))})
}

// An order with a dead letter and no sale (V10's check gave up on it while
// the consumer lagged) is still applied by the copy of its message that
// comes after all, also in a batch that meets a duplicate: the batch drops
// the orders already applied, not those merely dead-lettered.
func TestALateCopyOfADeadLetteredOrderIsApplied(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	g := in.CreateGoods(t, 10)
	applied := sellWithoutMessage(t, e, g.ID, 1)
	e.PublishStock(t, applied)
	e.AwaitSettled(t, g.ID, time.Minute)
	lettered := sellWithoutMessage(t, e, g.ID, 2)
	if _, err := e.DB(0).Exec("INSERT INTO dead_letters (order_id, goods_id, topic, body, reason) VALUES (?, ?, ?, '{}', 'decrement not confirmed after 3 republishes')",
		lettered.OrderID, g.ID, in.Config.NSQ.Topic); err != nil {
		t.Fatal(err)
	}
	// Its one copy among many duplicates: it lands in a batch with some.
	copies := make([]service.StockMessage, 0, 201)
	for i := range 201 {
		if i == 100 {
			copies = append(copies, lettered)
		} else {
			copies = append(copies, applied)
		}
	}
	e.PauseStockConsumer(t, true)
	e.PublishStock(t, copies...)
	e.PauseStockConsumer(t, false)
	harness.Eventually(t, 20*time.Second, func() bool {
		snap, err := e.Snapshot(t.Context(), g.ID)
		return err == nil && snap.Sales[lettered.OrderID] == 1
	}, "the dead-lettered order's late message applies it")
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: []int64{applied.OrderID, lettered.OrderID}, DeadLetters: 1})
}
