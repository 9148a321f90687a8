package stack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/dashboard"
	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/internal/stack"
	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/store"
)

// The load's shape: how long it runs, when seckill1 is killed, and how
// many clients of each kind send requests through nginx meanwhile.
const (
	loadFor      = 15 * time.Second
	killAfter    = 6 * time.Second
	orderClients = 8
	claimClients = 6
	payClients   = 2
)

// The whole deployment as processes (make stack): a mixed load through
// nginx (orders on V2, V4, V6 and /order on two goods, payments of some
// orders, admin stock additions to the goods and to a coupon template,
// coupon template creation, and claims under Idempotency-Keys retried on a
// failure) while seckill1 is killed with SIGKILL mid-load. nginx routes
// around it; then the sale's invariants are checked on both MariaDB
// servers and the Redis Cluster directly, the coupons' too, Prometheus is
// asked whether it scraped both instances, and the command's down leaves
// no process behind. The figures are logged (go test -v).
func TestMixedLoadThroughNginxWithAnInstanceKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack: not with -short")
	}
	requireTools(t)
	dir := t.TempDir()
	began := time.Now()
	st, err := stack.Up(context.Background(), stack.Options{Dir: dir, Attached: true, Log: testenv.LogWriter(t)})
	if err != nil {
		t.Fatal(err)
	}
	upTook := time.Since(began)
	groups := st.Groups()
	downByCommand := false
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range st.Services {
				t.Logf("--- the end of %s's log:\n%s", s.Name, tail(s.Log, 20))
			}
		}
		if !downByCommand {
			if err := st.Down(nil); err != nil {
				t.Error(err)
			}
		}
	})
	t.Logf("the stack is up in %v: nginx %s, prometheus %s", upTook.Round(100*time.Millisecond), st.NginxURL(), st.PrometheusURL())
	// The configuration made from deploy/prometheus passes promtool too.
	if out, err := exec.Command("promtool", "check", "config", filepath.Join(st.Service("prometheus").Dir, "prometheus.yml")).CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}

	c := harness.NewClient(st.NginxURL(), st.AdminToken)
	l := newLoad(t, c)
	l.prepare()
	loadBegan := time.Now()
	l.run(func() {
		// Killed once Prometheus holds its answers to the load.
		if !harness.WaitFor(15*time.Second, func() bool { return scrapedOrders(t, st, "seckill1") > 0 }) {
			t.Error("Prometheus scraped no order answers of seckill1 within 15 s of the kill's time")
		}
	}, func() {
		if err := st.Kill("seckill1"); err != nil {
			t.Error(err)
		}
	})
	loadEnded := time.Now()
	ordered, failed := l.awaitTokens(60 * time.Second)
	t.Logf("V13: %d tokens, %d ordered, failed %v, all ended %v after the load", len(l.tokens), ordered, failed, time.Since(loadEnded).Round(100*time.Millisecond))
	if len(l.tokens) == 0 || len(failed) > 0 {
		t.Errorf("V13: %d tokens, failed %v: a token's units were reserved when it was handed out, so each must end as an order", len(l.tokens), failed)
	}

	servers, err := harness.OpenServers(st.DSNs(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer servers.Close()
	servers.UseRedisCluster(st.RedisAddrs())
	// Reconciliation, as an operator would run it, gives back the units of
	// reservations the killed instance never wrote (a repair wants three
	// passes that see the same drift).
	stopPasses := l.reconcileEvery(500 * time.Millisecond)
	stopWatch := l.watch(servers, 5*time.Second)
	l.checkGoods(servers)
	stopWatch()
	t.Logf("goods settled %v after the load", time.Since(loadEnded).Round(100*time.Millisecond))
	l.checkCoupons(servers)
	stopPasses()
	settled := time.Since(loadEnded)
	checkPrometheus(t, st)
	checkDashboard(t, st, loadBegan, time.Now())
	l.report(upTook, settled)

	// The command's status reads the state; its down stops everything.
	cmd := buildCommand(t, dir)
	out, err := exec.Command(cmd, "-dir", dir, "status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), st.NginxURL()) || !strings.Contains(string(out), "seckill2") {
		t.Errorf("stack status: %v\n%s", err, out)
	}
	downByCommand = true
	began = time.Now()
	if out, err := exec.Command(cmd, "-dir", dir, "down").CombinedOutput(); err != nil {
		t.Errorf("stack down: %v\n%s", err, out)
	}
	if left := stack.Leftovers(groups); len(left) > 0 {
		t.Errorf("processes %v are left after stack down", left)
	}
	after, err := stack.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if running := after.Running(); len(running) > 0 {
		t.Errorf("after down, state.json says %v run", running)
	}
	t.Logf("stack down in %v", time.Since(began).Round(100*time.Millisecond))
}

// requireTools skips without the system's servers, and fails under CI=true.
func requireTools(t *testing.T) {
	t.Helper()
	var missing []string
	for _, name := range []string{"nginx", "prometheus", "promtool", "mariadbd", "mariadb-install-db", "redis-server", "redis-cli"} {
		if _, err := exec.LookPath(name); err == nil {
			continue
		}
		if !slices.ContainsFunc([]string{"/usr/sbin/", "/usr/bin/"}, func(d string) bool { _, err := os.Stat(d + name); return err == nil }) {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("%v not installed (apt-get install nginx prometheus mariadb-server redis-server)", missing)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// buildCommand builds internal/stack/cmd into dir/bin.
func buildCommand(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bin", "stackcmd")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd: %v\n%s", err, out)
	}
	return bin
}

// ------------------------------------------------------------------- load

// load is the mixed load and what it was answered.
type load struct {
	t *testing.T
	c *harness.Client

	big, hot           int64 // goods: one that lasts, one that sells out and is topped up
	bigStock, hotStock int64
	tpl1               int64 // a coupon template made before the load
	tpl2               int64 // one made during it

	mu       sync.Mutex
	start    time.Time
	killedAt time.Time
	answers  map[string]map[string]int // kind -> status and error code ("409 sold_out"; 0: no answer) -> count
	before   int                       // requests answered before the kill
	after    int                       // and after it
	failed   map[int]int               // after the kill: 502, 503, 504 and no answer, by status
	lastFail time.Duration             // the last failure, after the kill
	accepted map[int64][]int64         // goods -> orders answered 201, and those V13's tokens ended as
	tokens   map[string]int64          // V13's tokens answered 202 -> goods
	paid     map[int64]int64           // order -> user, paid with 200
	added    map[string]int64          // op id -> units, additions answered 200 and not replayed
	replays  int                       // additions answered as replays of an op id
	claims   map[string]string         // Idempotency-Key -> coupon id answered 201
	retried  int                       // claims sent again under their key
	found    int                       // of which a retry answered 201
	couponOp map[string]int64          // coupon additions answered 200
	tplLimit map[int64]int             // template -> per-user limit
}

func newLoad(t *testing.T, c *harness.Client) *load {
	return &load{t: t, c: c, answers: map[string]map[string]int{}, failed: map[int]int{},
		accepted: map[int64][]int64{}, tokens: map[string]int64{}, paid: map[int64]int64{}, added: map[string]int64{},
		claims: map[string]string{}, couponOp: map[string]int64{}, tplLimit: map[int64]int{}}
}

// send sends one request through nginx and counts its answer.
func (l *load) send(kind, method, path string, body, out any, header ...string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	code, data, err := l.c.Send(ctx, method, path, body, header...)
	if err != nil {
		code = 0
	}
	if out != nil && len(data) > 0 && code > 0 && code < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			l.t.Errorf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	answer := statusName(code)
	var e struct {
		Error string `json:"error"`
	}
	if code >= 400 && json.Unmarshal(data, &e) == nil && e.Error != "" {
		answer += " " + e.Error
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.answers[kind] == nil {
		l.answers[kind] = map[string]int{}
	}
	l.answers[kind][answer]++
	if l.killedAt.IsZero() {
		l.before++
	} else {
		l.after++
		if code == 0 || code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout {
			l.failed[code]++
			l.lastFail = max(l.lastFail, now.Sub(l.killedAt))
		}
	}
	return code
}

func (l *load) createGoods(stock int64) int64 {
	var g service.Goods
	if code := l.send("admin goods", "POST", "/admin/goods", map[string]any{"name": "stack", "stock": stock}, &g); code != http.StatusCreated {
		l.t.Fatalf("create goods: %d", code)
	}
	return g.ID
}

func (l *load) createTemplate(body map[string]any) int64 {
	var tpl struct {
		ID           int64 `json:"id"`
		PerUserLimit int   `json:"per_user_limit"`
	}
	if code := l.send("admin template", "POST", "/admin/coupon-templates", body, &tpl); code != http.StatusCreated || tpl.ID == 0 {
		l.t.Errorf("create template %v: %d", body, code)
		return 0
	}
	l.mu.Lock()
	l.tplLimit[tpl.ID] = tpl.PerUserLimit
	l.mu.Unlock()
	return tpl.ID
}

// prepare makes the goods and the first template through nginx.
func (l *load) prepare() {
	l.bigStock, l.hotStock = 20000, 150
	l.big, l.hot = l.createGoods(l.bigStock), l.createGoods(l.hotStock)
	// 3,000 units: one sub-stock on each master.
	l.tpl1 = l.createTemplate(map[string]any{"name": "stack 10 off", "type": "fixed", "value": 1000, "stock": 3000, "per_user_limit": 1})
	if l.tpl1 == 0 {
		l.t.FailNow()
	}
}

// run sends the load for loadFor, calling kill after killAfter and ready.
func (l *load) run(ready, kill func()) {
	l.start = time.Now()
	end := l.start.Add(loadFor)
	var wg sync.WaitGroup
	payQ := make(chan [2]int64, 1024)
	go func() {
		time.Sleep(killAfter)
		ready()
		l.mu.Lock()
		l.killedAt = time.Now()
		l.mu.Unlock()
		kill()
	}()
	versions := []string{"V2", "V4", "V6", "V13", ""}
	for w := range orderClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; time.Now().Before(end); n++ {
				v := versions[(w+n)%len(versions)]
				goods := l.big
				if rand.IntN(10) < 3 {
					goods = l.hot
				}
				user := rand.Int64N(1_000_000_000) + 1
				var a struct {
					harness.OrderAnswer
					Token string `json:"token"`
				}
				kind := "order " + v
				if v == "" {
					kind = "order /order"
				}
				code := l.send(kind, "POST", "/order"+v, map[string]int64{"user_id": user, "goods_id": goods, "number": 1}, &a)
				if code == http.StatusAccepted && a.Token != "" {
					l.mu.Lock()
					l.tokens[a.Token] = goods
					l.mu.Unlock()
				}
				if code == http.StatusCreated {
					l.mu.Lock()
					l.accepted[goods] = append(l.accepted[goods], a.ID)
					l.mu.Unlock()
					if rand.IntN(3) == 0 {
						select {
						case payQ <- [2]int64{a.ID, user}:
						default:
						}
					}
				}
			}
		}()
	}
	var payers sync.WaitGroup
	for range payClients {
		payers.Add(1)
		go func() {
			defer payers.Done()
			for p := range payQ {
				if code := l.send("pay", "POST", fmt.Sprintf("/orders/%d/pay", p[0]), map[string]int64{"user_id": p[1]}, nil); code == http.StatusOK {
					l.mu.Lock()
					l.paid[p[0]] = p[1]
					l.mu.Unlock()
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // the admin: stock additions, a template made mid-load
		defer wg.Done()
		var last string
		for n := 1; time.Now().Before(end); n++ {
			time.Sleep(400 * time.Millisecond)
			op := fmt.Sprintf("stack-add-%d", n)
			if n%4 == 0 {
				op = last // a replay: adds nothing
			}
			last = op
			var a harness.Added
			if code := l.send("admin add stock", "POST", "/admin/goods", map[string]any{"id": l.hot, "add_stock": 10, "op_id": op}, &a); code == http.StatusOK {
				l.mu.Lock()
				if a.Replayed {
					l.replays++
				} else {
					l.added[op] = 10
				}
				l.mu.Unlock()
			}
			if n%5 == 0 {
				cop := fmt.Sprintf("stack-coupon-add-%d", n)
				if code := l.send("admin add coupons", "POST", fmt.Sprintf("/admin/coupon-templates/%d/stock", l.tpl1), map[string]any{"add": 60, "op_id": cop}, nil); code == http.StatusOK {
					l.mu.Lock()
					l.couponOp[cop] = 60
					l.mu.Unlock()
				}
			}
			if n == 8 {
				id := l.createTemplate(map[string]any{"name": "stack flash", "type": "percent", "value": 10, "stock": 400, "per_user_limit": 2, "sub_stocks": 3})
				l.mu.Lock()
				l.tpl2 = id
				l.mu.Unlock()
			}
		}
	}()
	for w := range claimClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; time.Now().Before(end); n++ {
				l.mu.Lock()
				tpl := l.tpl1
				if l.tpl2 != 0 && n%2 == 1 {
					tpl = l.tpl2
				}
				l.mu.Unlock()
				l.claim(fmt.Sprintf("stack-claim-%d-%d", w, n), rand.Int64N(1_000_000_000)+1, tpl)
			}
		}()
	}
	wg.Wait()
	close(payQ)
	payers.Wait()
}

// claim claims under key, sending it again under the same key while the
// answer is a failure (no answer, 502, 503, 504), up to three times.
func (l *load) claim(key string, user, tpl int64) {
	for try := range 4 {
		var cp struct {
			CouponID string `json:"coupon_id"`
		}
		code := l.send("claim", "POST", "/coupons/claim", map[string]int64{"user_id": user, "template_id": tpl}, &cp, "Idempotency-Key", key)
		l.mu.Lock()
		if try > 0 {
			l.retried++
		}
		if code == http.StatusCreated {
			if try > 0 {
				l.found++
			}
			if prev, ok := l.claims[key]; ok && prev != cp.CouponID {
				l.t.Errorf("key %s answered coupons %s and %s", key, prev, cp.CouponID)
			}
			l.claims[key] = cp.CouponID
		}
		l.mu.Unlock()
		switch code {
		case 0, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			time.Sleep(200 * time.Millisecond)
			continue
		}
		return
	}
}

// reconcileEvery runs POST /admin/reconcile through nginx every d until
// the returned function is called.
func (l *load) reconcileEvery(d time.Duration) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(d):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _, _ = l.c.Send(ctx, "POST", "/admin/reconcile", nil)
			cancel()
		}
	}()
	return func() { close(done); wg.Wait() }
}

// watch logs, every d until the returned function is called, how far
// each goods is from settled.
func (l *load) watch(s *harness.Servers, d time.Duration) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(d):
			}
			for _, g := range []int64{l.big, l.hot} {
				snap, err := s.Snapshot(context.Background(), g)
				unapplied := 0
				for id := range snap.Orders {
					if snap.Sales[id] == 0 {
						unapplied++
					}
				}
				if err != nil || !snap.Settled() {
					l.t.Logf("settling: %d orders without their sale (%v): %s", unapplied, err, snap)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// awaitTokens polls every V13 token through nginx until it ends (the
// requests the killed instance accepted are written by the other one's
// writers, or by its sweep after accept.rescue_after) and adds the orders
// to the accepted ones; a token still pending after within fails the test.
func (l *load) awaitTokens(within time.Duration) (ordered int, failed map[string]int) {
	tokens := make([]string, 0, len(l.tokens))
	for tok := range l.tokens {
		tokens = append(tokens, tok)
	}
	done, pending := l.c.AwaitAll(tokens, within)
	if len(pending) > 0 {
		l.t.Errorf("%d tokens still pending %v after the load, e.g. %s", len(pending), within, pending[0])
	}
	failed = map[string]int{}
	for tok, acc := range done {
		if acc.Status == service.AcceptOrdered && acc.Order != nil {
			ordered++
			l.accepted[l.tokens[tok]] = append(l.accepted[l.tokens[tok]], acc.Order.ID)
		} else {
			failed[acc.Reason]++
		}
	}
	return ordered, failed
}

// ------------------------------------------------------------- invariants

// checkGoods checks each goods' sale on MySQL and Redis once the queues
// have drained (the harness's check), every payment answered 200 stored as
// paid, and every addition answered 200 recorded once.
func (l *load) checkGoods(s *harness.Servers) {
	t := l.t
	paidSeen := 0
	for goods, initial := range map[int64]int64{l.big: l.bigStock, l.hot: l.hotStock} {
		snap := s.CheckInvariants(t, goods, harness.Sale{Initial: initial, Accepted: l.accepted[goods],
			AllowUnanswered: true, Within: 90 * time.Second})
		t.Logf("goods %d: %s", goods, snap)
		for id := range l.paid {
			if snap.Orders[id] == 0 {
				continue // another goods'
			}
			paidSeen++
			if snap.Status[id] != service.StatusPaid {
				t.Errorf("order %d was paid (200) and has status %d", id, snap.Status[id])
			}
		}
		if goods == l.hot {
			var want int64
			for _, u := range l.added {
				want += u
			}
			// Additions answered 502 may have been made too: at least the
			// ones answered, each once.
			if snap.Adds < want {
				t.Errorf("the database holds %d units added, %d were answered 200", snap.Adds, want)
			}
			for op := range l.added {
				var n int
				if err := s.DB(0).QueryRow("SELECT COUNT(*) FROM admin_stock_ops WHERE op_id = ? AND goods_id = ?", op, goods).Scan(&n); err != nil || n != 1 {
					t.Errorf("addition %s is recorded %d times (%v)", op, n, err)
				}
			}
		}
	}
	if paidSeen != len(l.paid) {
		t.Errorf("%d orders were paid (200), %d of them are stored", len(l.paid), paidSeen)
	}
}

// couponRow is one coupon row as MySQL holds it.
type couponRow struct {
	id, template, user int64
	status             int
	key                string
}

// checkCoupons checks each template on MySQL and the cluster directly:
// its stock is its additions, no more coupons issued than the stock, every
// claim answered 201 recorded once under its key, no user past the limit,
// and, once reconciliation has given back the units of claims the kill cut
// short, the coupons issued plus the units in the sub-stocks are the stock.
func (l *load) checkCoupons(s *harness.Servers) {
	t := l.t
	var rows []couponRow
	var stock map[int64]int64
	var levels map[int64]int64
	templates := []int64{l.tpl1}
	if l.tpl2 != 0 {
		templates = append(templates, l.tpl2)
	}
	read := func() error {
		rows, stock, levels = nil, map[int64]int64{}, map[int64]int64{}
		tables, err := s.CouponTables(context.Background())
		if err != nil {
			return err
		}
		for _, tb := range tables {
			r, err := tb.DB.Query("SELECT id, template_id, user_id, status, COALESCE(idem_key, '') FROM " + tb.Name)
			if err != nil {
				return err
			}
			for r.Next() {
				var c couponRow
				if err := r.Scan(&c.id, &c.template, &c.user, &c.status, &c.key); err != nil {
					r.Close()
					return err
				}
				rows = append(rows, c)
			}
			r.Close()
		}
		for _, id := range templates {
			var tags string
			var st, ops, pending int64
			if err := s.DB(0).QueryRow("SELECT stock, tags FROM coupon_templates WHERE id = ?", id).Scan(&st, &tags); err != nil {
				return err
			}
			if err := s.DB(0).QueryRow("SELECT COALESCE(SUM(added), 0), COALESCE(SUM(1 - in_redis), 0) FROM coupon_stock_ops WHERE template_id = ?", id).Scan(&ops, &pending); err != nil {
				return err
			}
			if ops != st {
				t.Errorf("template %d: stock %d, its additions add up to %d", id, st, ops)
			}
			if pending != 0 {
				return fmt.Errorf("template %d: %d additions not in Redis yet", id, pending)
			}
			stock[id] = st
			for _, tag := range strings.Split(tags, ",") {
				n, err := s.Redis().HGet(context.Background(), store.CouponStockKey("", tag), "stock").Int64()
				if err != nil {
					return fmt.Errorf("sub-stock %s: %w", tag, err)
				}
				levels[id] += n
			}
		}
		return nil
	}
	issued := func() map[int64]int64 {
		out := map[int64]int64{}
		for _, r := range rows {
			if r.status != 3 { // 3: void, a fence
				out[r.template]++
			}
		}
		return out
	}
	var err error
	balanced := harness.WaitFor(60*time.Second, func() bool {
		if err = read(); err != nil {
			return false
		}
		is := issued()
		for _, id := range templates {
			if is[id]+levels[id] != stock[id] {
				err = fmt.Errorf("template %d: %d issued + %d in the sub-stocks != stock %d", id, is[id], levels[id], stock[id])
				return false
			}
		}
		return true
	})
	if !balanced {
		t.Errorf("the coupons do not balance after reconciliation: %v", err)
	}
	is := issued()
	for _, id := range templates {
		if is[id] > stock[id] {
			t.Errorf("template %d: %d coupons issued for a stock of %d", id, is[id], stock[id])
		}
		t.Logf("template %d: stock %d, issued %d, left in the sub-stocks %d", id, stock[id], is[id], levels[id])
	}
	byID := map[string][]couponRow{}
	perUser := map[[2]int64]int{}
	for _, r := range rows {
		if r.status == 3 {
			continue
		}
		byID[fmt.Sprint(r.id)] = append(byID[fmt.Sprint(r.id)], r)
		perUser[[2]int64{r.template, r.user}]++
	}
	missing := 0
	for key, id := range l.claims {
		switch rs := byID[id]; {
		case len(rs) == 0:
			missing++
		case len(rs) > 1:
			t.Errorf("coupon %s is recorded %d times", id, len(rs))
		case rs[0].key != key:
			t.Errorf("coupon %s was answered for key %s and is recorded under %q", id, key, rs[0].key)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d claims answered 201 are recorded nowhere", missing, len(l.claims))
	}
	for k, n := range perUser {
		if limit := l.tplLimit[k[0]]; limit > 0 && n > limit {
			t.Errorf("user %d holds %d coupons of template %d, limited to %d", k[1], n, k[0], limit)
		}
	}
}

// promQuery asks Prometheus for q now and returns each series' value by
// its instance label.
func promQuery(t *testing.T, st *stack.State, q string) map[string]string {
	t.Helper()
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  []any
			}
		}
	}
	resp, err := http.Get(st.PrometheusURL() + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Error(err) // not Fatal: the kill's goroutine asks too
		return nil
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Errorf("query %s: %v %s", q, err, r.Status)
	}
	out := map[string]string{}
	for _, s := range r.Data.Result {
		if len(s.Value) == 2 {
			out[s.Metric["instance"]] = fmt.Sprint(s.Value[1])
		}
	}
	return out
}

// scrapedOrders is how many order answers of the instance called name
// Prometheus holds.
func scrapedOrders(t *testing.T, st *stack.State, name string) float64 {
	v := promQuery(t, st, `sum by (instance) (seckill_http_answers_total{route=~"/order.*"})`)[st.Service(name).Addr(stack.PortMetrics)]
	var f float64
	_, _ = fmt.Sscan(v, &f)
	return f
}

// checkPrometheus asks Prometheus whether it scraped both instances, saw
// the killed one go down, loaded the rules and holds the instances' counts
// of the load.
func checkPrometheus(t *testing.T, st *stack.State) {
	t.Helper()
	query := func(q string) map[string]string { return promQuery(t, st, q) }
	killed, alive := st.Service("seckill1").Addr(stack.PortMetrics), st.Service("seckill2").Addr(stack.PortMetrics)
	if up := query(`max_over_time(up{job="seckill"}[10m])`); up[killed] != "1" || up[alive] != "1" {
		t.Errorf("up over the run: %v, want 1 for %s and %s", up, killed, alive)
	}
	var up map[string]string
	if !harness.WaitFor(20*time.Second, func() bool { up = query(`up{job="seckill"}`); return up[killed] == "0" && up[alive] == "1" }) {
		t.Errorf("up now: %v, want 0 for the killed %s and 1 for %s", up, killed, alive)
	}
	answers := query(`sum by (instance) (max_over_time(seckill_http_answers_total{route=~"/order.*"}[10m]))`)
	if answers[killed] == "" || answers[alive] == "" || answers[killed] == "0" || answers[alive] == "0" {
		t.Errorf("order answers Prometheus scraped by instance: %v, want some from each", answers)
	}
	resp, err := http.Get(st.PrometheusURL() + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `"name":"seckill"`) || !strings.Contains(string(b), "SeckillDeadLetters") {
		t.Errorf("Prometheus's rules: %.300s", b)
	}
	t.Logf("prometheus: up over the run %v; order answers scraped by instance %v", query(`max_over_time(up{job="seckill"}[10m])`), answers)
}

// checkDashboard draws the Grafana dashboard's panels from the stack's
// Prometheus: every query must run, and the sales and stock panels must
// show the load. SECKILL_DASHBOARD_OUT names a file to keep the picture in
// (the README's is made so); otherwise it goes to the test's folder.
func checkDashboard(t *testing.T, st *stack.State, start, end time.Time) {
	t.Helper()
	out := os.Getenv("SECKILL_DASHBOARD_OUT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "dashboard.svg")
	}
	d, data, err := st.Dashboard(context.Background(), start, end)
	if err != nil {
		t.Fatalf("the dashboard's queries: %v", err)
	}
	for _, panel := range []string{"Sales per second", "Stock in Redis and MySQL", "p99 latency by route"} {
		if peak, ok := data.Peak(d, panel); !ok || peak <= 0 {
			t.Errorf("dashboard panel %q shows nothing of the load (peak %v)", panel, peak)
		}
	}
	if err := os.WriteFile(out, dashboard.Render(d, data), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard drawn in %s", out)
}

// ----------------------------------------------------------------- report

func (l *load) report(upTook, settled time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	total := l.before + l.after
	killAt := l.killedAt.Sub(l.start)
	var b strings.Builder
	fmt.Fprintf(&b, "mixed load through nginx for %v (stack up in %v): %d requests, %.0f/s; %.0f/s with two instances, %.0f/s with one after the kill\n",
		loadFor, upTook.Round(100*time.Millisecond), total, float64(total)/loadFor.Seconds(),
		float64(l.before)/killAt.Seconds(), float64(l.after)/(loadFor-killAt).Seconds())
	for _, kind := range slices.Sorted(maps.Keys(l.answers)) {
		var parts []string
		n := 0
		for _, a := range slices.Sorted(maps.Keys(l.answers[kind])) {
			parts = append(parts, fmt.Sprintf("%s ×%d", a, l.answers[kind][a]))
			n += l.answers[kind][a]
		}
		fmt.Fprintf(&b, "  %-18s %6d: %s\n", kind, n, strings.Join(parts, ", "))
	}
	var failed []string
	nf := 0
	for _, code := range slices.Sorted(maps.Keys(l.failed)) {
		failed = append(failed, fmt.Sprintf("%s ×%d", statusName(code), l.failed[code]))
		nf += l.failed[code]
	}
	fmt.Fprintf(&b, "seckill1 SIGKILLed at %v: %d of the %d requests after it failed (%s), the last %v after the kill; nginx sent the rest to seckill2\n",
		killAt.Round(100*time.Millisecond), nf, l.after, strings.Join(failed, ", "), l.lastFail.Round(time.Millisecond))
	fmt.Fprintf(&b, "orders accepted: %d on the big goods, %d on the hot one; %d paid; %d stock additions, %d replays answered as such; %d coupons claimed, %d claims sent again under their key (%d of them then answered 201)\n",
		len(l.accepted[l.big]), len(l.accepted[l.hot]), len(l.paid), len(l.added), l.replays, len(l.claims), l.retried, l.found)
	fmt.Fprintf(&b, "every invariant held %v after the load ended (reconciliation passes every 500 ms)", settled.Round(100*time.Millisecond))
	l.t.Log("\n" + b.String())
	if path := os.Getenv("SECKILL_STACK_REPORT"); path != "" {
		_ = os.WriteFile(path, []byte(b.String()+"\n"), 0o644)
	}
}

func statusName(code int) string {
	if code == 0 {
		return "no answer"
	}
	return fmt.Sprint(code)
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
