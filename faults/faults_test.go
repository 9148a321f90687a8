package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/internal/testenv"
	domain "github.com/go-seckill/seckill/service"
)

// The service's default stock topic and channel (nsq.topic, nsq.channel).
const (
	stockTopic   = "seckill_stock"
	stockChannel = "stock_apply"
)

// settleWithin bounds every recovery: from the end of a fault, every order's
// stock must be applied once and Redis must equal MySQL within it.
const settleWithin = 30 * time.Second

// TestFaults runs each scenario against its own databases, Redis prefix,
// nsqd and service processes, then logs the table of results
// (docs/RELIABILITY.md holds the table of a real run).
func TestFaults(t *testing.T) {
	// Without MariaDB or Redis every scenario would skip (or fail under CI)
	// alike: find out once.
	testenv.Redis(t)
	testenv.MySQL(t)

	scenarios := []struct {
		num, id, name string
		run           func(t *testing.T) result
	}{
		{"1", "ServiceKilled", "service SIGKILLed mid-load, restarted", serviceKilled("/order")},
		{"1b", "ServiceKilledGroupCommit", "as 1, orders written in batches (V11)", serviceKilled("/orderV11")},
		{"2", "NSQDKilled", "nsqd SIGKILLed mid-load, restarted", nsqdKilled},
		{"3", "NSQDDown", "nsqd down while orders are placed", nsqdDown},
		{"4", "MySQLDown", "MySQL refusing connections for 2 s", mysqlDown("/orderV4")},
		{"4c", "MySQLDownGroupCommit", "as 4, orders written in batches (V11)", mysqlDown("/orderV11")},
		{"4b", "MySQLDownNearSellOut", "MySQL refusing connections for 2 s, sold out just after", mysqlDownNearSellOut},
		{"5", "RedisKeysLost", "Redis loses the goods' keys mid-sale", redisKeysLost},
		{"6", "DuplicateMessages", "stock messages duplicated, out of order", duplicateMessages},
		{"7", "ConsumerKilled", "consumer SIGKILLed mid-drain (commit, no ack)", consumerKilled},
		{"8", "IdempotentRetries", "client retries with one Idempotency-Key", idempotentRetries},
		{"9", "Overload", "10× overload past max in-flight", overload},
		{"10", "PaymentRacesTimeout", "payment racing its timeout", paymentRacesTimeout},
		{"11", "LimitsRedisDown", "V8: the Redis of the shared limits down for 2 s", limitsRedisDown},
		{"12", "RedisDownForV9Reads", "Redis unreachable for 2 s under V9 reads and orders", redisDownForReads},
		{"13", "NSQDKilledOfTwoSweep", "one of two nsqd SIGKILLed mid-sale: V6, outbox sweep", nsqdKilledOfTwo(bySweep)},
		{"14", "NSQDKilledOfTwoCheck", "one of two nsqd SIGKILLed mid-sale: V10, double check alone", nsqdKilledOfTwo(byCheck)},
		{"15", "ConsumerPausedSweep", "consumer paused 12 s mid-sale: V6, outbox sweep", consumerPaused(bySweep)},
		{"16", "ConsumerPausedCheck", "consumer paused 12 s mid-sale: V10, double check and sweep", consumerPaused(byCheck)},
		{"17", "AcceptServiceKilled", "V13: service SIGKILLed while requests are accepted, restarted", acceptServiceKilled},
		{"18", "AcceptNSQDKilled", "V13: nsqd SIGKILLed while requests are accepted, restarted", acceptNSQDKilled},
		{"19", "SplitServiceKilled", "V14: service SIGKILLed while buckets are refilled, restarted", splitServiceKilled},
		{"20", "ShareInstanceKilled", "V15: one of three instances SIGKILLed mid-sale", shareInstanceKilled},
	}
	// Failures the service is known to have: skipped unless asked for.
	known := map[string]string{}
	runKnown := os.Getenv("SECKILL_TEST_KNOWN_FAULTS") == "1"
	var rows []result
	for _, sc := range scenarios {
		var r result
		ran, skipped := false, false
		ok := t.Run(sc.id, func(t *testing.T) {
			ran = true
			defer func() { skipped = t.Skipped() }()
			if known[sc.id] != "" && !runKnown {
				t.Skipf("known: %s (SECKILL_TEST_KNOWN_FAULTS=1 runs it)", known[sc.id])
			}
			r = sc.run(t)
		})
		if !ran { // not selected by -run
			continue
		}
		r.num, r.name, r.held = sc.num, sc.name, ok && !skipped
		if skipped {
			r.note = "skipped, known: " + known[sc.id]
		}
		rows = append(rows, r)
	}
	t.Log("fault scenarios:\n" + table("orders accepted", rows))
}

// 1. The service is SIGKILLed under load and restarted with the same
// configuration. Just before the kill the second order host stalls, so the
// requests in flight hold a Redis reservation and have no order: Redis is
// then below the truth until reconciliation repairs it. Accepted orders are
// all stored; the outbox sweep and the consumer apply every decrement; then
// the sale goes on and sells exactly the stock. With group commit (1b) the
// kill also drops the batches being gathered: their buyers had no answer.
func serviceKilled(path string) func(t *testing.T) result {
	return func(t *testing.T) result { return serviceKilledOn(t, path) }
}

func serviceKilledOn(t *testing.T, path string) result {
	e := newEnv(t)
	px := e.mysqlProxy()
	s := e.service("seckill", map[string]string{"SECKILL_MYSQL_SHARDS": e.DSNs[0] + "," + px.via(t, e.DSNs[1])})
	s.start()
	const stock = 3000
	g := s.CreateGoods(t, stock).ID
	l := startLoad(s, g, loadSpec{path: path, workers: 32, dur: 20 * time.Second})
	harness.WaitFor(10*time.Second, func() bool { return l.count("before 201") >= 1000 })
	px.stall()
	time.Sleep(300 * time.Millisecond) // every worker reaches a user of the stalled host
	l.setPhase("killed")
	s.kill()
	l.stop()
	px.down() // the stalled inserts never reach MySQL
	if err := px.up(); err != nil {
		t.Fatal(err)
	}
	lost := int64(-1) // reservations without an order, while nothing runs
	if snap, err := e.Snapshot(context.Background(), g); err == nil && snap.Redis != nil {
		lost = stock - snap.Units - *snap.Redis
	}

	restart := time.Now()
	s.start()
	if lost <= 0 {
		t.Errorf("no reservation was lost at the kill (%d): the scenario did not test reconciliation", lost)
	}
	snap := e.settle(g, stock, l.orders())
	rec := time.Since(restart)

	rest := startLoad(s, g, loadSpec{path: "/order", workers: 32, dur: 10 * time.Second, untilSoldOut: true})
	rest.wait()
	accepted := append(l.orders(), rest.orders()...)
	final := e.settle(g, stock, accepted)
	if final.Units != stock {
		t.Errorf("sold %d units of %d after recovery: %s", final.Units, stock, rest.summary())
	}
	return result{accepted: len(accepted), recovery: rec,
		note: fmt.Sprintf("%d reservations lost at the kill, restored by reconciliation; %d orders stored without an answer; then sold out exactly",
			lost, len(snap.Orders)-len(l.orders()))}
}

// 2. nsqd is SIGKILLed under load and restarted a second later on the same
// ports. Orders go on being accepted (failed publishes are the outbox
// sweep's); messages nsqd held in memory are lost and republished.
func nsqdKilled(t *testing.T) result {
	e := newEnv(t)
	s := e.service("seckill", nil)
	s.start()
	const stock = 100_000
	g := s.CreateGoods(t, stock).ID
	l := startLoad(s, g, loadSpec{path: "/order", workers: 32, dur: 10 * time.Second})
	back := e.nsqd.killUnder(l)
	l.stop()

	if n := l.count("nsqd down 201"); n == 0 {
		t.Errorf("no order accepted while nsqd was down: %s", l.summary())
	}
	if n := l.count("nsqd down ") - l.count("nsqd down 201"); n > 0 {
		t.Errorf("%d orders refused while only nsqd was down: %s", n, l.summary())
	}
	e.settle(g, stock, l.orders())
	rec := time.Since(back)
	accepted := e.resumes(s, g, stock, l.orders())
	return result{accepted: len(accepted), recovery: rec,
		note: fmt.Sprintf("%d accepted while nsqd was down", l.count("nsqd down 201"))}
}

// 3. nsqd is down while orders are placed, then started again: every order
// is accepted, none is published, and the outbox sweep publishes them all
// once nsqd is back.
func nsqdDown(t *testing.T) result {
	e := newEnv(t)
	s := e.service("seckill", nil)
	s.start()
	const stock = 100_000
	g := s.CreateGoods(t, stock).ID
	e.nsqd.kill()
	l := startLoad(s, g, loadSpec{path: "/orderV2", workers: 32, dur: 1500 * time.Millisecond})
	l.setPhase("nsqd down")
	l.wait()
	e.nsqd.start()
	back := time.Now()

	if n := l.count("nsqd down ") - l.count("nsqd down 201"); n > 0 || len(l.orders()) == 0 {
		t.Errorf("orders must be accepted while only nsqd is down: %s", l.summary())
	}
	e.settle(g, stock, l.orders())
	rec := time.Since(back)
	accepted := e.resumes(s, g, stock, l.orders())
	return result{accepted: len(accepted), recovery: rec, note: "all published by the outbox sweep"}
}

// serviceBehindProxy starts the service with every MySQL connection, to the
// primary and to both order hosts, going through one TCP proxy.
func (e *env) serviceBehindProxy() (*proxy, *service) {
	px := e.mysqlProxy()
	primary := px.via(e.t, e.DSNs[0])
	s := e.service("seckill", map[string]string{
		"SECKILL_MYSQL_DSN":    primary,
		"SECKILL_MYSQL_SHARDS": primary + "," + px.via(e.t, e.DSNs[1]),
	})
	s.start()
	return px, s
}

// 4. Every MySQL connection of the service goes through a TCP proxy, which
// refuses connections and cuts open ones for two seconds. Orders answer 503
// with Retry-After and give their reservation back; once MySQL is back,
// orders are accepted again and everything settles. With group commit (4c)
// a cut connection leaves a whole batch's outcome unknown, and each of its
// orders is settled on its own.
func mysqlDown(path string) func(t *testing.T) result {
	return func(t *testing.T) result { return mysqlDownOn(t, path) }
}

func mysqlDownOn(t *testing.T, path string) result {
	e := newEnv(t)
	px, s := e.serviceBehindProxy()
	const stock = 100_000
	g := s.CreateGoods(t, stock).ID
	l := startLoad(s, g, loadSpec{path: path, workers: 32, dur: 10 * time.Second})
	time.Sleep(time.Second)
	l.setPhase("mysql down")
	px.down()
	time.Sleep(2 * time.Second)
	l.setPhase("mysql back")
	if err := px.up(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	l.stop()

	down503 := l.count("mysql down 503")
	if down503 == 0 {
		t.Errorf("no 503 while MySQL was down: %s", l.summary())
	}
	if other := l.count("mysql down ") - down503 - l.count("mysql down 201"); other > 0 {
		t.Errorf("%d answers other than 201 or 503 while MySQL was down: %s", other, l.summary())
	}
	if l.noRetryAfter > 0 {
		t.Errorf("%d answers 503 without Retry-After", l.noRetryAfter)
	}
	snap := e.settle(g, stock, l.orders())
	rec := time.Since(back)
	accepted := e.resumes(s, g, stock, l.orders())
	return result{accepted: len(accepted), recovery: rec,
		note: fmt.Sprintf("%d answered 503 during the outage; %d stored and answered 503 outcome_unknown; %d stored although refused",
			down503, l.storedUnknown(snap), l.storedRefused(snap))}
}

// 4b. As 4, with a sale that sells out within a second of MySQL's return.
// An INSERT whose connection is cut may have been committed by MySQL: the
// service cannot tell, so it keeps the reservation and answers 503
// outcome_unknown with the order id. Giving the units back instead would
// let Redis sell them twice once the sale sells out. The kept units of
// orders that were not written come back by reconciliation once the drift
// stops moving (here: after the sell-out).
func mysqlDownNearSellOut(t *testing.T) result {
	e := newEnv(t)
	px, s := e.serviceBehindProxy()
	const stock = 4000
	g := s.CreateGoods(t, stock).ID
	l := startLoad(s, g, loadSpec{path: "/orderV4", workers: 32, dur: 15 * time.Second, untilSoldOut: true})
	harness.WaitFor(5*time.Second, func() bool { return l.count("before 201") >= stock*5/8 })
	l.setPhase("mysql down")
	px.down()
	time.Sleep(2 * time.Second)
	l.setPhase("mysql back")
	if err := px.up(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	l.wait()
	snap := e.settle(g, stock, l.orders())
	rec := time.Since(back)
	if n := l.storedRefused(snap); n > 0 {
		t.Errorf("%d orders stored although their request was refused", n)
	}
	return result{accepted: len(l.orders()), recovery: rec,
		note: fmt.Sprintf("%d stored and answered 503 outcome_unknown; %d orders for a stock of %d; %d dead letters",
			l.storedUnknown(snap), len(snap.Orders), stock, snap.DeadLetters)}
}

// 5. Redis loses every key of the deployment mid-sale (as a restart without
// persistence would; the Redis is shared, so only the test's prefix is
// deleted). Orders answer 503 stock_not_loaded until an instance rebuilds
// the stock from the database; the sale then sells exactly the stock.
func redisKeysLost(t *testing.T) result {
	e := newEnv(t)
	s := e.service("seckill", nil)
	s.start()
	const stock = 3000
	g := s.CreateGoods(t, stock).ID
	l := startLoad(s, g, loadSpec{path: "/order", workers: 32, dur: 20 * time.Second, untilSoldOut: true})
	harness.WaitFor(5*time.Second, func() bool { return l.count("before 201") >= 800 })
	l.setPhase("keys lost")
	lostAt := time.Now()
	ctx := context.Background()
	rdb := e.Redis()
	var keys []string
	iter := rdb.Scan(ctx, 0, e.Prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	err := iter.Err()
	if err == nil && len(keys) > 0 {
		err = rdb.Del(ctx, keys...).Err()
	}
	if err != nil {
		t.Fatal(err)
	}
	rebuilt := harness.WaitFor(10*time.Second, func() bool { return rdb.Exists(ctx, e.GoodsKey(g)).Val() == 1 })
	rec := time.Since(lostAt)
	l.setPhase("rebuilt")
	if !rebuilt {
		t.Errorf("stock not rebuilt in Redis within 10 s: %s", l.summary())
	}
	l.wait()

	if l.count("keys lost 503 stock_not_loaded") == 0 {
		t.Errorf("no 503 stock_not_loaded while the stock was missing: %s", l.summary())
	}
	snap := e.settle(g, stock, l.orders())
	if snap.Units != stock {
		t.Errorf("sold %d units of %d: %s", snap.Units, stock, l.summary())
	}
	return result{accepted: len(l.orders()), recovery: rec,
		note: fmt.Sprintf("recovery: until the stock was rebuilt; %d answered 503 stock_not_loaded; sold out exactly",
			l.count("keys lost 503 stock_not_loaded"))}
}

// 6. The stock message of every accepted order is published again straight
// to nsqd while the sale runs, newest first, so duplicates and originals
// reach the consumer interleaved and out of order (often in one batch);
// 300 of them twice more after the sale, shuffled. Each order's stock is
// applied once.
func duplicateMessages(t *testing.T) result {
	e := newEnv(t)
	s := e.service("seckill", nil)
	s.start()
	const stock = 100_000
	g := s.CreateGoods(t, stock).ID
	published := 0
	duplicate := func(batch []order) {
		bodies := make([][]byte, len(batch))
		for i, o := range batch {
			// The message the service publishes: the order, where its
			// version placed it (two order hosts, every order table).
			at := domain.BestVersion().Place(o.UserID, domain.Layout{Tables: domain.MaxOrderTables, Hosts: 2})
			bodies[i], _ = json.Marshal(domain.StockMessage{OrderID: o.ID, GoodsID: g, UserID: o.UserID, Number: 1, Host: at.Host, Table: at.Table})
		}
		harness.Publish(t, e.nsqd.tcp, stockTopic, bodies...)
		published += len(bodies)
	}
	l := startLoad(s, g, loadSpec{path: "/order", workers: 16, dur: 1500 * time.Millisecond})
	for done, running := 0, true; running; {
		select {
		case <-l.done:
			running = false
		case <-time.After(100 * time.Millisecond):
		}
		batch := l.orders()[done:]
		done += len(batch)
		slices.Reverse(batch)
		duplicate(batch)
	}
	again := l.orders()
	rand.Shuffle(len(again), func(i, j int) { again[i], again[j] = again[j], again[i] })
	again = again[:min(len(again), 300)]
	duplicate(append(again, again...))
	last := time.Now()

	var st harness.ChannelStats
	var err error
	drained := harness.WaitFor(settleWithin, func() bool {
		st, err = e.nsqd.channel(stockTopic, stockChannel)
		return err == nil && st.Depth == 0 && st.InFlightCount == 0
	})
	if !drained {
		t.Errorf("nsqd channel not drained within %v: %+v", settleWithin, st)
	}
	snap := e.settle(g, stock, l.orders())
	rec := time.Since(last)
	return result{accepted: len(l.orders()), recovery: rec,
		note: fmt.Sprintf("%d duplicates published; nsqd delivered %d messages for %d orders",
			published, st.MessageCount, len(snap.Orders))}
}

// 7. A consumer is SIGKILLed while it drains a backlog: batches it
// committed but had not acknowledged come back (after nsqd's message
// timeout, 3 s here) to the restarted consumer, find their stock log and
// change nothing. The outbox sweep is held off (grace 1 min) so that every
// redelivery comes from nsqd itself.
func consumerKilled(t *testing.T) result {
	e := newEnv(t, "--msg-timeout=3s")
	front := e.service("front", map[string]string{
		"SECKILL_CONSUMER_ENABLED": "false", "SECKILL_OUTBOX_GRACE": "1m",
	})
	front.start()
	const stock = 100_000
	g := front.CreateGoods(t, stock).ID
	l := startLoad(front, g, loadSpec{path: "/orderV2", workers: 32, dur: 2500 * time.Millisecond})
	l.wait()
	orders := len(l.orders())

	worker := e.service("consumer", map[string]string{"SECKILL_OUTBOX_GRACE": "1m"})
	worker.launch()
	applied := func() (n int) {
		_ = e.DB(0).QueryRow("SELECT COUNT(*) FROM goods_stock_logs WHERE goods_id = ?", g).Scan(&n)
		return n
	}
	for deadline := time.Now().Add(20 * time.Second); applied() < orders/4 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	worker.kill()
	time.Sleep(200 * time.Millisecond) // a COMMIT MySQL had received completes
	atKill := applied()
	if atKill == 0 || atKill >= orders {
		t.Errorf("the consumer was killed with %d of %d orders applied: not mid-drain", atKill, orders)
	}

	restart := time.Now()
	worker.start()
	e.AwaitSettled(t, g, settleWithin)
	var st harness.ChannelStats
	drained := harness.WaitFor(settleWithin, func() bool {
		var err error
		st, err = e.nsqd.channel(stockTopic, stockChannel)
		return err == nil && st.Depth == 0 && st.InFlightCount == 0
	})
	rec := time.Since(restart)
	if !drained {
		t.Errorf("nsqd channel not drained within %v: %+v", settleWithin, st)
	}
	e.settle(g, stock, l.orders())
	// The messages the killed consumer did not acknowledge came to the
	// restarted one (a message may hold the sales of several orders
	// published together), those whose sales it had committed too.
	return result{accepted: orders, recovery: rec,
		note: fmt.Sprintf("killed with %d of %d applied; the restarted consumer finished %d messages, %d redelivered after nsqd's message timeout",
			atKill, orders, st.Finished(), st.TimeoutCount)}
}

// 8. Clients retry with the same Idempotency-Key, many at once and again
// after the answer: each key gets one order, every 201 for a key carries
// the same order id, and a twin sent while the first is served is told
// 409 request_in_progress.
func idempotentRetries(t *testing.T) result {
	e := newEnv(t)
	s := e.service("seckill", nil)
	s.start()
	const stock, keys, twins = 1000, 20, 8
	g := s.CreateGoods(t, stock).ID
	type client struct {
		key  string
		user int64
		ids  map[int64]int // order id -> 201s
	}
	var (
		mu    sync.Mutex
		codes = map[string]int{}
		wg    sync.WaitGroup
	)
	send := func(c *client) int {
		code, a := s.OrderWithKey(t, "", c.key, c.user, g)
		mu.Lock()
		defer mu.Unlock()
		codes[strings.TrimSpace(fmt.Sprint(code, " ", a.Error))]++
		if code == http.StatusCreated {
			c.ids[a.ID]++
		}
		return code
	}
	cs := make([]*client, keys)
	for k := range cs {
		cs[k] = &client{key: fmt.Sprintf("retry-%d", k), user: users.Add(1), ids: map[int64]int{}}
		for range twins {
			wg.Add(1)
			go func() { defer wg.Done(); send(cs[k]) }()
		}
	}
	wg.Wait()
	var accepted []order
	for _, c := range cs {
		if code := send(c); code != http.StatusCreated {
			t.Errorf("key %s: a retry after the answer got %d, want the replayed 201", c.key, code)
		}
		if len(c.ids) != 1 {
			t.Errorf("key %s: order ids %v, want exactly one", c.key, c.ids)
		}
		for id := range c.ids {
			accepted = append(accepted, order{ID: id, UserID: c.user})
		}
	}
	for code := range codes {
		if code != "201" && code != "409 request_in_progress" {
			t.Errorf("answers %v: want only 201 and 409 request_in_progress", codes)
			break
		}
	}
	last := time.Now()
	snap := e.settle(g, stock, accepted)
	rec := time.Since(last)
	if len(snap.Orders) != keys {
		t.Errorf("%d orders stored for %d idempotency keys", len(snap.Orders), keys)
	}
	return result{accepted: len(accepted), recovery: rec,
		note: fmt.Sprintf("%d keys × (%d at once + 1 after): %d answered 201 with the key's order, %d answered 409 request_in_progress",
			keys, twins, codes["201"], codes["409 request_in_progress"])}
}

// 9. Ten times more concurrent clients than http.max_in_flight admits:
// the excess is answered 503 busy with Retry-After at once, and admitted
// orders stay correct.
func overload(t *testing.T) result {
	e := newEnv(t)
	s := e.service("seckill", map[string]string{"SECKILL_HTTP_MAX_IN_FLIGHT": "16"})
	s.start()
	const stock = 100_000
	g := s.CreateGoods(t, stock).ID
	l := startLoad(s, g, loadSpec{path: "/order", workers: 160, dur: 2 * time.Second})
	l.wait()
	end := time.Now()

	busy := l.count("before 503 busy")
	if busy == 0 {
		t.Errorf("no request shed at 10× max in-flight: %s", l.summary())
	}
	if l.noRetryAfter > 0 {
		t.Errorf("%d answers 503 without Retry-After", l.noRetryAfter)
	}
	// An admitted order whose dependency failed (a starved MySQL pool on a
	// machine running other suites too) answers 503 unavailable and sells
	// nothing, or, when its INSERT ran past the write budget, 503
	// outcome_unknown: its order may exist. settle's invariants check both;
	// anything else is wrong.
	unavailable := l.count("before 503 unavailable")
	unknown := l.count("before 503 outcome_unknown")
	if other := l.count("before ") - busy - unavailable - unknown - l.count("before 201"); other > 0 {
		t.Errorf("%d answers neither 201 nor 503: %s", other, l.summary())
	}
	if unavailable+unknown > 0 {
		t.Logf("%d admitted orders answered 503 unavailable, %d outcome_unknown: %s", unavailable, unknown, l.summary())
	}
	snap := e.settle(g, stock, l.orders())
	if n := l.storedRefused(snap); n > 0 {
		t.Errorf("%d orders stored although their request was refused", n)
	}
	rec := time.Since(end)
	return result{accepted: len(l.orders()), recovery: rec,
		note: fmt.Sprintf("%d shed with 503 busy (p50 %v, p99 %v); admitted p50 %v, p99 %v", busy,
			ms(percentile(l.busy, 50)), ms(percentile(l.busy, 99)),
			ms(percentile(l.admitted, 50)), ms(percentile(l.admitted, 99)))}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", d.Seconds()*1000) }

// resumes checks the sale goes on after recovery: a short load gets orders
// accepted, and once they settle the invariants hold over every order.
func (e *env) resumes(s *service, g, stock int64, before []order) []order {
	e.t.Helper()
	l := startLoad(s, g, loadSpec{path: "/order", workers: 8, dur: 500 * time.Millisecond})
	l.wait()
	if len(l.orders()) == 0 {
		e.t.Errorf("no order accepted after recovery: %s", l.summary())
	}
	all := append(before, l.orders()...)
	e.settle(g, stock, all)
	return all
}

// 10. Payments racing their timeout: orders with a 1 s deadline are paid
// from 100 ms before to 100 ms after it, while the deferred timeout messages
// and the expiry sweep (every 100 ms) cancel what is unpaid. Each order must
// end paid with its stock sold, or cancelled with its stock returned exactly
// once, never both; a payment after the cancellation is refused.
func paymentRacesTimeout(t *testing.T) result {
	e := newEnv(t)
	s := e.service("seckill", map[string]string{
		"SECKILL_ORDER_PAY_TIMEOUT":           "1s",
		"SECKILL_ORDER_EXPIRY_SWEEP_INTERVAL": "100ms",
		"SECKILL_ORDER_EXPIRY_SWEEP_GRACE":    "0s",
	})
	s.start()
	const stock, n = 1000, 200
	g := s.CreateGoods(t, stock).ID
	orders := make([]harness.OrderAnswer, 0, n)
	ids := make([]int64, 0, n)
	for range n {
		code, o := s.Order(t, "", users.Add(1), g, 1)
		if code != http.StatusCreated {
			t.Fatalf("order: %d %q", code, o.Error)
		}
		orders, ids = append(orders, o), append(ids, o.ID)
	}
	var mu sync.Mutex
	answers := map[string]int{}
	paid := map[int64]bool{}
	var wg sync.WaitGroup
	for i, o := range orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(o.PayDeadline.Add(time.Duration(i%21-10) * 10 * time.Millisecond)))
			code, errCode := s.Pay(t, o.ID, o.UserID)
			mu.Lock()
			defer mu.Unlock()
			answers[strings.TrimSpace(fmt.Sprint(code, " ", errCode))]++
			if code == http.StatusOK {
				paid[o.ID] = true
			}
		}()
	}
	wg.Wait()
	end := time.Now()

	// Settled: every order has its sale log, every cancelled one its return,
	// every order is paid or cancelled, and Redis equals MySQL.
	var snap harness.Snapshot
	settled := harness.WaitFor(settleWithin, func() bool {
		var err error
		snap, err = e.Snapshot(context.Background(), g)
		return err == nil && snap.Settled() &&
			snap.Count(domain.StatusPaid)+snap.Count(domain.StatusCancelled) == n
	})
	rec := time.Since(end)
	if !settled {
		t.Errorf("not settled %v after the race: %s", settleWithin, snap)
	}
	snap = e.CheckInvariants(t, g, harness.Sale{Initial: stock, Accepted: ids, Within: settleWithin})
	for _, o := range orders {
		want := domain.StatusCancelled
		if paid[o.ID] {
			want = domain.StatusPaid
		}
		if snap.Status[o.ID] != want {
			t.Errorf("order %d: status %d, but its payment was answered paid=%v", o.ID, snap.Status[o.ID], paid[o.ID])
		}
	}
	if snap.Sale != int64(len(paid)) || snap.Stock != stock-int64(len(paid)) {
		t.Errorf("after the race: %s, want sale %d and stock %d", snap, len(paid), stock-len(paid))
	}
	for a := range answers {
		if a != "200" && a != "409 order_cancelled" && a != "409 order_expired" {
			t.Errorf("payment answers %v", answers)
			break
		}
	}
	return result{accepted: n, recovery: rec,
		note: fmt.Sprintf("%d paid, %d cancelled with their stock returned once; payments answered %v", len(paid), n-len(paid), answers)}
}
