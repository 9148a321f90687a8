package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/store"
)

// The service's default coupon topics and channel (nsq.coupon_expiry_topic,
// nsq.coupon_expiry_channel, nsq.coupon_change_topic).
const (
	couponExpiryTopic   = "seckill_coupon_expiry"
	couponExpiryChannel = "expire"
	couponChangeTopic   = "seckill_coupon_changes"
)

// TestCouponFaults runs the coupon scenarios, each against its own
// databases, Redis prefix (or Redis Cluster), nsqd and service processes,
// then logs their table (docs/RELIABILITY.md holds the table of a real
// run).
func TestCouponFaults(t *testing.T) {
	testenv.Redis(t)
	testenv.MySQL(t)
	scenarios := []struct {
		id  string
		run func(t *testing.T) []result // each row's number and name set
	}{
		{"ServiceKilledInClaimStorm", one("C1", "one of two instances SIGKILLed in a claim storm", serviceKilledInClaimStorm)},
		{"ClusterMasterKilled", clusterMasterKilled},
		{"DuplicateCouponMessages", one("C3", "expiry messages and template broadcasts duplicated, early and late", duplicateCouponMessages)},
		{"KeyedRetriesWithMySQLKills", one("C4", "retry storms under one key on two instances, MySQL connections killed", keyedRetriesWithMySQLKills)},
	}
	var rows []result
	for _, sc := range scenarios {
		var rs []result
		ran, skipped := false, false
		ok := t.Run(sc.id, func(t *testing.T) {
			ran = true
			defer func() { skipped = t.Skipped() }()
			rs = sc.run(t)
		})
		if !ran {
			continue
		}
		for _, r := range rs {
			r.held = ok && !skipped
			rows = append(rows, r)
		}
	}
	t.Log("coupon fault scenarios:\n" + table("coupons issued", rows))
}

// pairConns is the MySQL pool of each of two instances, per database: the
// server is shared with the rest of the tests.
var pairConns = strconv.Itoa(harness.MaxOpenConns)

// one makes a scenario of one row.
func one(num, name string, run func(t *testing.T) result) func(t *testing.T) []result {
	return func(t *testing.T) []result {
		r := run(t)
		r.num, r.name = num, name
		return []result{r}
	}
}

// startBoth starts instances at once and waits until each is ready (a
// start migrates the fresh databases: seconds, many more on a busy server).
func startBoth(t *testing.T, ss ...*service) {
	t.Helper()
	for _, s := range ss {
		s.launch()
	}
	for _, s := range ss {
		s.ready(60 * time.Second)
	}
}

// sellOut claims with fresh users through s until the template answers
// out_of_stock, and returns the coupons answered 201.
func sellOut(t *testing.T, s *service, tpl int64) map[int64]claimReq {
	t.Helper()
	st := startStorm(tpl, nil, 16, 30*time.Second, s)
	harness.WaitFor(31*time.Second, func() bool {
		select {
		case <-st.done:
			return true
		default:
			return st.count("before 409 out_of_stock") > 0
		}
	})
	st.stop()
	if st.count("before 409 out_of_stock") == 0 {
		t.Errorf("not sold out within 30 s: %s", st.summary())
	}
	return st.answered()
}

func merge(ms ...map[int64]claimReq) map[int64]claimReq {
	out := map[int64]claimReq{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// C1. Two instances share MySQL, Redis and nsqd; a storm of keyed claims
// (1,500 users, at most two coupons each) runs on one template of 1,500
// units in four sub-stocks, the coupons on the second database (V7's one
// host, through a proxy). A test transaction takes next-key locks over its
// coupon tables: reads go on, inserts wait, so the claims hold a unit at
// their write. Instance A is then SIGKILLed and the proxy's connections
// KILLed on the server (A's waiting inserts end, its units stay taken; B's
// claims cut so are retried), the locks go, and the storm goes on through B. Every claim that got no
// answer or a 503 is retried with its key through B. Every 201 is one
// row; a retry returns the key's coupon if it was recorded; issued ≤ stock
// at every reading; reconciliation (three passes asked for) gives back the
// units the kill stranded, so that the sub-stocks and the coupons make the
// stock exactly; the template then sells out exactly.
func serviceKilledInClaimStorm(t *testing.T) result {
	e := newEnv(t)
	px := e.mysqlProxy()
	// Reconciliation runs only when the test asks for a pass, so that the
	// units the kill strands can be counted first.
	// The coupons follow V7's shard map: its one host is the second
	// database, which both instances reach through the proxy (the map
	// names a host by its address, the same for every instance).
	couponHost := px.via(t, e.DSNs[1])
	e.AliasHost(couponHost, 1)
	a := e.service("seckill-a", map[string]string{"SECKILL_RECONCILE_INTERVAL": "1h", "SECKILL_MYSQL_MAX_OPEN_CONNS": pairConns,
		"SECKILL_MYSQL_SHARDS": e.DSNs[0] + "," + px.via(t, e.DSNs[1]), "SECKILL_MYSQL_V7_HOSTS": couponHost})
	b := e.service("seckill-b", map[string]string{"SECKILL_RECONCILE_INTERVAL": "1h", "SECKILL_MYSQL_MAX_OPEN_CONNS": pairConns,
		"SECKILL_MYSQL_V7_HOSTS": couponHost})
	startBoth(t, a, b)
	b.makeLogicalDBs(t)
	const stock = 1500
	tpl := b.createTemplate(t, map[string]any{"name": "storm", "type": "fixed", "value": 500, "stock": stock,
		"per_user_limit": 2, "sub_stocks": 4, "valid_for": "1h"})
	stopWatch := e.watchIssued(t, tpl)

	st := startStorm(tpl, newUsers(1500), 32, 20*time.Second, a, b)
	harness.WaitFor(10*time.Second, func() bool { return st.count("before 201") >= 400 })
	release, err := e.lockCouponInserts()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // claims reach a user of the locked host and wait at their write
	st.setPhase("A killed")
	st.setLive(b)
	a.kill()
	killed := e.killMySQLConns(px) // B's too: its claims cut so answer 503 or nothing, and are retried below
	release()
	time.Sleep(time.Second)
	st.stop()
	readings := stopWatch()
	after, err := e.couponSnapshot(context.Background(), tpl, true)
	if err != nil {
		t.Fatal(err)
	}
	stranded := after.stock - after.issued - after.subSum
	if stranded <= 0 {
		t.Errorf("the kill stranded no unit (%s): the scenario did not test reconciliation", after)
	}

	retried, replayed, fresh := st.retryPending(t, e, b)
	snap, rec := e.settleCoupons(t, b, tpl, st.answered(), true)
	if st.twice > 0 {
		t.Errorf("%d answers 201 named a coupon another claim got", st.twice)
	}
	rest := sellOut(t, b, tpl)
	final, _ := e.settleCoupons(t, b, tpl, merge(st.answered(), rest), false)
	if final.issued != stock || final.subSum != 0 {
		t.Errorf("after the sell-out: %s, want all %d issued", final, stock)
	}
	t.Logf("storm: %s", st.summary())
	return result{accepted: int(final.issued), recovery: rec,
		note: fmt.Sprintf("%d × 201 before the kill, %d through B after it (%d × 409 limit_exceeded in all); %d of A's MySQL connections KILLed; %d claims without an answer or with a 503 retried with their keys: %d got back the coupon recorded without an answer, %d a fresh one; %d units stranded at the kill, given back by reconciliation (%d issued + %d in sub-stocks = %d); issued ≤ stock at %d readings; then sold out exactly (%d of %d)",
			st.count("before 201"), st.count("A killed 201"), st.count("before 409 limit")+st.count("A killed 409 limit"), killed,
			retried, replayed, fresh, stranded, snap.issued, snap.subSum, snap.stock, readings, final.issued, stock)}
}

// C2, C2b. Two instances on a real three-master Redis Cluster; a template
// of three sub-stocks, one per master; keyed claims from fresh users.
// A master is SIGKILLed mid-storm for 2 s: claims go on from the other
// masters' sub-stocks (the 503s and the latency while it is down are
// measured), never over-issuing. Master 0 comes back with its append-only
// file (C2); then, in a second storm, master 1 comes back with its data
// removed (C2b: its sub-stock is gone, and reconciliation must create it
// again with the units the truth says). Every claim without an answer or
// with a 503 is retried with its key; after reconciliation
// sum(sub-stocks) + issued = stock exactly.
func clusterMasterKilled(t *testing.T) []result {
	cluster := testenv.RedisCluster(t)
	e := newEnv(t)
	e.Servers.UseRedisCluster(cluster.Addrs())
	prefix := e.Prefix
	t.Cleanup(func() { cluster.DeletePrefix(prefix) })
	onCluster := map[string]string{"SECKILL_REDIS_CLUSTER_ADDRS": strings.Join(cluster.Addrs(), ","), "SECKILL_MYSQL_MAX_OPEN_CONNS": pairConns}
	a, b := e.service("seckill-a", onCluster), e.service("seckill-b", onCluster)
	delete(a.vars, "SECKILL_REDIS_ADDR")
	delete(b.vars, "SECKILL_REDIS_ADDR")
	startBoth(t, a, b)
	const stock = 20_000
	tpl := b.createTemplate(t, map[string]any{"name": "cluster", "type": "fixed", "value": 500, "stock": stock,
		"per_user_limit": 1, "valid_for": "1h"})
	c, err := e.couponSnapshot(context.Background(), tpl, true)
	if err != nil {
		t.Fatal(err)
	}
	subOn := map[int]int{} // master -> its sub-stock
	for i, tag := range c.tags {
		subOn[cluster.MasterOf(store.CouponStockKey(e.Prefix, tag))] = i
	}
	if len(c.tags) != 3 || len(subOn) != 3 {
		t.Fatalf("sub-stocks %v on masters %v: want one on each of 3", c.tags, subOn)
	}
	answered := map[int64]claimReq{}
	round := func(num, name string, master int, empty bool) result {
		stopWatch := e.watchIssued(t, tpl)
		st := startStorm(tpl, nil, 24, 20*time.Second, a, b)
		harness.WaitFor(10*time.Second, func() bool { return st.count("before 201") >= 400 })
		level := int64(-1) // the killed master's sub-stock just before the kill
		if c, err := e.couponSnapshot(context.Background(), tpl, true); err == nil && c.subs[subOn[master]] != nil {
			level = *c.subs[subOn[master]]
		}
		st.setPhase("master down")
		cluster.Kill(t, master)
		time.Sleep(2 * time.Second)
		st.setPhase("master back")
		if empty {
			cluster.RestartEmpty(t, master)
			var c couponSnap
			harness.WaitFor(2*time.Second, func() bool {
				c, err = e.couponSnapshot(context.Background(), tpl, true)
				return err == nil && c.redisErr == nil
			})
			if err != nil || c.redisErr != nil || c.subs[subOn[master]] != nil {
				t.Errorf("master %d came back empty, yet its sub-stock reads %s (%v)", master, c, err)
			}
		} else {
			cluster.Restart(t, master)
		}
		back := time.Now()
		time.Sleep(500 * time.Millisecond)
		st.stop()
		readings := stopWatch()
		retried, replayed, fresh := st.retryPending(t, e, b)
		maps.Copy(answered, st.answered())
		snap, _ := e.settleCoupons(t, b, tpl, answered, true)
		rec := time.Since(back)
		down201, down503 := st.count("master down 201"), st.count("master down 503")
		if down201 == 0 {
			t.Errorf("no claim succeeded while master %d was down: %s", master, st.summary())
		}
		if st.twice > 0 {
			t.Errorf("%d answers 201 named a coupon another claim got", st.twice)
		}
		t.Logf("storm %s: %s", num, st.summary())
		note := fmt.Sprintf("master %d down 2 s: %d × 201, %d × 503, %d no answer, latency p50 %s p90 %s p99 %s (before: p50 %s p99 %s); %d retried with their keys (%d recorded before, %d fresh); issued ≤ stock at %d readings; %d issued + %d in sub-stocks = %d",
			master, down201, down503, st.count("master down no answer"),
			ms(st.latency("master down", 50)), ms(st.latency("master down", 90)), ms(st.latency("master down", 99)),
			ms(st.latency("before", 50)), ms(st.latency("before", 99)),
			retried, replayed, fresh, readings, snap.issued, snap.subSum, snap.stock)
		if empty {
			note += fmt.Sprintf("; its sub-stock (%d units just before the kill) lost, recreated by reconciliation", level)
		}
		return result{num: num, name: name, accepted: int(snap.issued), recovery: rec, note: note}
	}
	return []result{
		round("C2", "Redis Cluster master SIGKILLed mid-storm, restarted with its data", 0, false),
		round("C2b", "Redis Cluster master SIGKILLed mid-storm, back empty", 1, true),
	}
}

// C3. Duplicated and mistimed messages. 40 coupons valid for 2 s, 20 of
// them redeemed; the expiry message of each is published again three
// times at once with its true time (early: deferred until then), three
// times claiming to be due now (early and wrong: the row says otherwise),
// and three times more after the expiry (late), shuffled; the end message
// of a template ending in an hour three times, claiming it is due now
// (the template must not end); template-change
// broadcasts are published five times each while claims go on, and a
// stock addition is repeated under its op id. A used coupon never becomes
// expired, an unused one becomes expired, the counts in the stats agree
// with the rows, the addition counts once.
func duplicateCouponMessages(t *testing.T) result {
	e := newEnv(t)
	s := e.service("seckill", map[string]string{"SECKILL_COUPON_SWEEP_INTERVAL": "1h"})
	s.start()
	s.makeLogicalDBs(t)
	const stock, n = 100, 40
	tpl := s.createTemplate(t, map[string]any{"name": "expiring", "type": "fixed", "value": 500, "stock": stock,
		"per_user_limit": 1, "sub_stocks": 2, "valid_for": "2s"})
	type claimed struct {
		id, user int64
		at       int64 // expires_at, Unix ms
	}
	var cs []claimed
	answered := map[int64]claimReq{}
	for i, u := range newUsers(n) {
		var a struct {
			claimAnswer
			ExpiresAt time.Time `json:"expires_at"`
		}
		key := fmt.Sprintf("exp-%d", i)
		code, err := s.Do(context.Background(), "POST", "/coupons/claim", map[string]int64{"user_id": u, "template_id": tpl}, &a, "Idempotency-Key", key)
		if err != nil || code != http.StatusCreated {
			t.Fatalf("claim: %d %v %+v", code, err, a)
		}
		id, _ := strconv.ParseInt(a.CouponID, 10, 64)
		cs = append(cs, claimed{id: id, user: u, at: a.ExpiresAt.UnixMilli()})
		answered[id] = claimReq{user: u, key: key}
	}
	used := map[int64]bool{}
	for i, c := range cs[:n/2] {
		code, _ := s.Raw(t, "POST", fmt.Sprintf("/coupons/%d/redeem", c.id), "application/json",
			fmt.Sprintf(`{"user_id":%d,"order_id":"%d","amount":3000}`, c.user, 1000+i))
		if code != http.StatusOK {
			t.Fatalf("redeem %d: %d", c.id, code)
		}
		used[c.id] = true
	}
	expiry := func(c claimed, at int64) []byte {
		b, _ := json.Marshal(map[string]any{"coupon_id": strconv.FormatInt(c.id, 10), "user_id": c.user, "template_id": tpl, "at": at})
		return b
	}
	var early, late [][]byte
	now := time.Now().UnixMilli()
	for _, c := range cs {
		for range 3 {
			early = append(early, expiry(c, c.at), expiry(c, now))
			late = append(late, expiry(c, c.at))
		}
	}
	// A template that ends in an hour: its end message, three copies
	// claiming it is due now, must end nothing.
	endAt := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	later := s.createTemplate(t, map[string]any{"name": "ends later", "type": "fixed", "value": 500, "stock": 10,
		"end_at": endAt.Format(time.RFC3339Nano)})
	endEarly, _ := json.Marshal(map[string]any{"template_id": later, "at": now})
	early = append(early, endEarly, endEarly, endEarly)
	rand.Shuffle(len(early), func(i, j int) { early[i], early[j] = early[j], early[i] })
	rand.Shuffle(len(late), func(i, j int) { late[i], late[j] = late[j], late[i] })
	harness.Publish(t, e.nsqd.tcp, couponExpiryTopic, early...)

	// Template-change broadcasts, five copies each, while claims go on, and
	// an addition repeated under its op id.
	change, _ := json.Marshal(map[string]int64{"template_id": tpl})
	var wg sync.WaitGroup
	extra := map[int64]claimReq{}
	var mu sync.Mutex
	for i, u := range newUsers(10) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("during-%d", i)
			if code, a, err := s.claim(u, tpl, key); err == nil && code == http.StatusCreated {
				id, _ := strconv.ParseInt(a.CouponID, 10, 64)
				mu.Lock()
				extra[id] = claimReq{user: u, key: key}
				mu.Unlock()
			} else {
				t.Errorf("claim during the broadcasts: %s", outcome(code, a, err))
			}
		}()
	}
	for range 5 {
		harness.Publish(t, e.nsqd.tcp, couponChangeTopic, change)
	}
	wg.Wait()
	addedTimes := 0
	for range 3 {
		var r struct {
			Added bool `json:"added"`
		}
		if code := s.Call(t, "POST", fmt.Sprintf("/admin/coupon-templates/%d/stock", tpl), map[string]any{"add": 50, "op_id": "dup-op"}, &r); code != http.StatusOK {
			t.Errorf("addition: %d", code)
		}
		if r.Added {
			addedTimes++
		}
	}
	if addedTimes != 1 {
		t.Errorf("the addition under one op id was added %d times", addedTimes)
	}

	// Before the expiry: the early copies (at "now") changed nothing.
	time.Sleep(300 * time.Millisecond)
	before, err := e.couponSnapshot(context.Background(), tpl, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		want := couponUnused
		if used[c.id] {
			want = couponUsed
		}
		if got := before.status[c.id]; got != want && time.Now().UnixMilli() < c.at {
			t.Errorf("coupon %d before its expiry: status %d, want %d", c.id, got, want)
		}
	}
	var ended bool
	if err := e.DB(0).QueryRow("SELECT ended FROM coupon_templates WHERE id = ?", later).Scan(&ended); err != nil {
		t.Fatal(err)
	}
	if code, a, err := s.claim(users.Add(1), later, ""); ended || code != http.StatusCreated {
		t.Errorf("template %d ending at %v, after three end messages claiming it is due now: ended %v, a claim answered %s",
			later, endAt, ended, outcome(code, a, err))
	}
	// After it: late copies too.
	last := cs[len(cs)-1].at
	time.Sleep(time.Until(time.UnixMilli(last).Add(200 * time.Millisecond)))
	harness.Publish(t, e.nsqd.tcp, couponExpiryTopic, late...)
	published := len(early) + len(late)
	start := time.Now()
	var ch harness.ChannelStats
	// Drained but for the later template: its end message and the three
	// copies, deferred until its end, and the expiry of its one coupon.
	drained := harness.WaitFor(settleWithin, func() bool {
		ch, err = e.nsqd.channel(couponExpiryTopic, couponExpiryChannel)
		return err == nil && ch.Depth == 0 && ch.InFlightCount == 0 && ch.DeferredCount <= 5
	})
	if !drained {
		t.Errorf("expiry channel not drained within %v: %+v", settleWithin, ch)
	}
	snap, _ := e.settleCoupons(t, s, tpl, merge(answered, extra), true)
	rec := time.Since(start)
	expired := 0
	for _, c := range cs {
		switch st := snap.status[c.id]; {
		case used[c.id] && st != couponUsed:
			t.Errorf("used coupon %d has status %d after its expiry messages", c.id, st)
		case !used[c.id] && st != couponExpired:
			t.Errorf("unused coupon %d has status %d after its expiry messages, want expired", c.id, st)
		case !used[c.id]:
			expired++
		}
	}
	var stats struct {
		Stock   int64 `json:"stock"`
		Issued  int64 `json:"issued"`
		Used    int64 `json:"used"`
		Expired int64 `json:"expired"`
		Redis   int64 `json:"redis_remaining"`
	}
	if code := s.Call(t, "GET", fmt.Sprintf("/admin/coupon-templates/%d/stats", tpl), nil, &stats); code != http.StatusOK {
		t.Fatalf("stats: %d", code)
	}
	if stats.Stock != stock+50 || stats.Issued != snap.issued || stats.Used != int64(len(used)) || stats.Used != snap.used ||
		stats.Expired != snap.expired || stats.Issued+stats.Redis != stats.Stock {
		t.Errorf("stats %+v against the rows: %s (used %d)", stats, snap, len(used))
	}
	return result{accepted: int(snap.issued), recovery: rec,
		note: fmt.Sprintf("%d expiry copies published for %d coupons (%d at their time, %d early claiming now, %d late), and 3 end messages of a template ending in an hour claiming it was due: it did not end; nsqd delivered %d; %d used stayed used, %d unused expired; 5 copies of the change broadcast amid %d claims; an addition sent 3 times under one op id counted once; stats used %d, expired %d, issued %d + redis %d = stock %d",
			published, n, 3*n, 3*n, 3*n, ch.MessageCount, len(used), expired, len(extra), stats.Used, stats.Expired, stats.Issued, stats.Redis, stats.Stock)}
}

// C4. Retry storms under keys on two instances, every MySQL connection of
// which goes through a proxy, while coupon inserts are held on locks, the
// connections KILLed on the server and cut at the proxy, in a cycle (see
// below), so that some writes fail before, some after the server ran them,
// and some fences wait or fail too. In each of eight rounds 40 new users
// send one claim each under one key, eight at a time over both instances,
// and the keys of the round before are sent twice more; then each key once
// more, with the
// faults over. Every key ends with exactly one coupon, every 201 for a key
// names it, a twin never hears limit_exceeded (the key holds the user's
// one slot); the other claims give their units back, and after
// reconciliation sum(sub-stocks) + issued = stock.
func keyedRetriesWithMySQLKills(t *testing.T) result {
	e := newEnv(t)
	px := e.mysqlProxy()
	viaProxy := map[string]string{
		"SECKILL_MYSQL_DSN":            px.via(t, e.DSNs[0]),
		"SECKILL_MYSQL_SHARDS":         px.via(t, e.DSNs[0]) + "," + px.via(t, e.DSNs[1]),
		"SECKILL_MYSQL_MAX_OPEN_CONNS": pairConns,
	}
	e.AliasHost(px.via(t, e.DSNs[0]), 0) // the shard map names the primary by the proxy's address
	a, b := e.service("seckill-a", viaProxy), e.service("seckill-b", viaProxy)
	startBoth(t, a, b)
	const stock, perRound, twins, rounds = 1000, 40, 8, 8
	const keys = perRound * rounds
	tpl := b.createTemplate(t, map[string]any{"name": "retries", "type": "fixed", "value": 500, "stock": stock,
		"per_user_limit": 1, "sub_stocks": 4, "valid_for": "1h"})

	var (
		mu      sync.Mutex
		counts  = map[string]int{}
		ids     = make([]map[int64]int, keys) // per key, coupon id -> 201s
		reqs    = make([]claimReq, keys)
		kills   atomic.Int64
		cuts    atomic.Int64
		stopped = make(chan struct{})
		chaos   sync.WaitGroup
	)
	for k, u := range newUsers(keys) {
		reqs[k], ids[k] = claimReq{user: u, key: fmt.Sprintf("retry-%d", k)}, map[int64]int{}
	}
	send := func(s *service, k int, phase string) (int, int64) {
		code, ans, err := s.claim(reqs[k].user, tpl, reqs[k].key)
		id, _ := strconv.ParseInt(ans.CouponID, 10, 64)
		mu.Lock()
		defer mu.Unlock()
		counts[phase+" "+outcome(code, ans, err)]++
		if code == http.StatusCreated {
			ids[k][id]++
		}
		return code, id
	}
	// The faults, in a cycle of four 40 ms steps: inserts into the coupon
	// tables start waiting on locks; the instances' connections are KILLed
	// (waiting inserts end: unknown outcome for their claims, which fence,
	// and the fences wait too); every connection is cut at the proxy (a
	// waiting insert goes on in the server without its client); the locks
	// go, so fences and inserts orphaned by the cut run, in either order.
	chaos.Add(1)
	go func() {
		defer chaos.Done()
		var release []func()
		unlock := func() {
			for _, r := range release {
				r()
			}
			release = nil
		}
		defer unlock()
		for tick := 0; ; tick++ {
			select {
			case <-stopped:
				return
			case <-time.After(40 * time.Millisecond):
			}
			switch tick % 4 {
			case 0:
				if r, err := e.lockCouponInserts(); err == nil {
					release = append(release, r)
				}
			case 1:
				kills.Add(int64(e.killMySQLConns(px)))
			case 2:
				px.down()
				_ = px.up()
				cuts.Add(1)
			case 3:
				unlock()
			}
		}
	}()
	// Each round: the twins of its own keys, and two more retries of each
	// key of the round before, all at once.
	start := time.Now()
	for r := range rounds {
		var wg sync.WaitGroup
		fire := func(k, i int) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				send([]*service{a, b}[i%2], k, "faults")
			}()
		}
		for k := r * perRound; k < (r+1)*perRound; k++ {
			for i := range twins {
				fire(k, i)
			}
			if r > 0 {
				fire(k-perRound, 0)
				fire(k-perRound, 1)
			}
		}
		wg.Wait()
	}
	stormTook := time.Since(start)
	close(stopped)
	chaos.Wait()

	// With the faults over, reconciliation gives back the units of claims
	// whose outcome stayed unknown; then each key once more, until it has
	// its answer: its coupon.
	faulted, err := e.couponSnapshot(context.Background(), tpl, true)
	if err != nil {
		t.Fatal(err)
	}
	e.settleCoupons(t, b, tpl, nil, false)
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := int(next.Add(1)) - 1; k < keys; k = int(next.Add(1)) - 1 {
				code := 0
				for try := range 5 {
					if code, _ = send([]*service{a, b}[k%2], k, "after"); code != http.StatusServiceUnavailable && code != 0 {
						break
					}
					time.Sleep(time.Duration(try+1) * 100 * time.Millisecond)
				}
				if code != http.StatusCreated {
					t.Errorf("key %s: the retry after the faults answered %d", reqs[k].key, code)
				}
			}
		}()
	}
	wg.Wait()
	answered := map[int64]claimReq{}
	mu.Lock()
	for k, r := range reqs {
		if len(ids[k]) != 1 {
			t.Errorf("key %s of user %d: 201s named coupons %v, want one", r.key, r.user, ids[k])
		}
		for id := range ids[k] {
			answered[id] = r
		}
	}
	mu.Unlock()
	snap, rec := e.settleCoupons(t, b, tpl, answered, true)
	for k, r := range reqs {
		if got := snap.byKey[r.user][r.key]; len(got) != 1 {
			t.Errorf("key %s of user %d: coupons %v recorded, want one", reqs[k].key, r.user, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var other []string
	by := map[string]int{}
	for k, v := range counts {
		out := strings.SplitN(k, " ", 2)[1]
		by[out] += v
		if out != "201" && !strings.HasPrefix(out, "503 ") && out != "no answer" {
			other = append(other, fmt.Sprintf("%s ×%d", k, v))
		}
	}
	if len(other) > 0 {
		t.Errorf("answers to retries of one key that are neither its coupon nor a 503: %v", other)
	}
	t.Logf("answers: %v", counts)
	return result{accepted: int(snap.issued), recovery: rec,
		note: fmt.Sprintf("%d keys (%d a round, %d rounds), each sent %d at once and twice more in the next round, in %.1f s over 2 instances, %d MySQL connections KILLed, %d proxy cuts, inserts held on locks for 120 ms in every 160 ms: %d × 201, %d × 503 unavailable, %d × 503 outcome_unknown, %d no answer, %d other; after the faults, before reconciliation %d issued + %d in sub-stocks = %d (units of unknown outcomes held); after it and one retry per key (201, its coupon): 1 coupon per key, %d fence rows, %d issued + %d in sub-stocks = %d",
			keys, perRound, rounds, twins, stormTook.Seconds(), kills.Load(), cuts.Load(), by["201"], by["503 unavailable"], by["503 outcome_unknown"], by["no answer"],
			len(other), faulted.issued, faulted.subSum, faulted.issued+faulted.subSum, snap.voids, snap.issued, snap.subSum, snap.stock)}
}
