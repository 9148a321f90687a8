package main_test

import (
	"database/sql"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/internal/reshard"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/store"
)

// answer is one request of a load: whose it was, what it got and when.
type answer struct {
	user     int64
	code     int
	err      string
	at, took time.Duration
}

// v7Load orders one unit of goods through /orderV7 from workers at once,
// as random users over the instances, until stop is closed; each accepted
// order goes to paid, which pays it.
type v7Load struct {
	start    time.Time
	mu       sync.Mutex
	answers  []answer
	accepted map[int64]int64 // order id -> user
	payments []answer
	wg       sync.WaitGroup
}

func startV7Load(t *testing.T, ins []*harness.Instance, goodsID int64, workers int, stop <-chan struct{}) *v7Load {
	l := &v7Load{start: time.Now(), accepted: map[int64]int64{}}
	toPay := make(chan [2]int64, 100_000)
	asRandomUsers(&l.wg, ins, workers, stop, func(in *harness.Instance, user int64) {
		begin := time.Now()
		code, a := in.Order(t, "V7", user, goodsID, 1)
		l.mu.Lock()
		l.answers = append(l.answers, answer{user: user, code: code, err: a.Error, at: begin.Sub(l.start), took: time.Since(begin)})
		if code == http.StatusCreated {
			l.accepted[a.ID] = user
			toPay <- [2]int64{a.ID, user}
		}
		l.mu.Unlock()
	})
	// Payers: every accepted order is paid while the hosts change under it.
	for p := range 3 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-stop:
					return
				case o := <-toPay:
					begin := time.Now()
					code, e := ins[p%len(ins)].Pay(t, o[0], o[1])
					l.mu.Lock()
					l.payments = append(l.payments, answer{user: o[1], code: code, err: e, at: begin.Sub(l.start), took: time.Since(begin)})
					l.mu.Unlock()
					if code != http.StatusOK {
						select {
						case toPay <- o: // pending or busy: paid again later
						default:
						}
					}
				}
			}
		}()
	}
	return l
}

// asRandomUsers runs workers goroutines on wg until stop is closed, each
// calling do again and again as a random user, over the instances in turn.
func asRandomUsers(wg *sync.WaitGroup, ins []*harness.Instance, workers int, stop <-chan struct{}, do func(in *harness.Instance, user int64)) {
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				do(ins[(w+i)%len(ins)], rand.Int64N(100_000)+1)
			}
		}()
	}
}

// checkAnswers: every answer is 201, 200, 409 order_pending (its sale not
// applied yet) or 503 busy, and busy only for a user of a logical database
// that moved. It returns how many were busy.
func checkAnswers(t *testing.T, what string, answers []answer, moved map[int]bool) (busy int) {
	t.Helper()
	for _, a := range answers {
		switch {
		case a.code == http.StatusCreated || a.code == http.StatusOK:
		case a.code == http.StatusConflict && a.err == "order_pending":
		case a.code == http.StatusServiceUnavailable && a.err == "busy":
			busy++
			if !moved[service.LogicalDB(a.user)] {
				t.Errorf("%s of user %d (logical database %d, which did not move) answered 503 busy at %v",
					what, a.user, service.LogicalDB(a.user), a.at)
			}
		default:
			t.Errorf("%s of user %d answered %d %s at %v", what, a.user, a.code, a.err, a.at)
		}
	}
	return busy
}

// The hosts of V7 grow from one to two to four separate MariaDB servers
// while two instances sell, buyers pay and others claim, list and redeem
// coupons: no order is lost or stored twice, each is applied once and
// every one is paid; no coupon is lost or doubled, each is listed and
// redeemable throughout; the freezes answer busy only to the users of the
// logical database moving, and each host ends with exactly its logical
// databases' rows, orders and coupons.
func TestReshardGrowsOneToFourHostsDuringAStampede(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	hosts := e.LogicalHosts(t, 3, false)
	ins := []*harness.Instance{e.Start(t), e.Start(t)}
	const stock = 1_000_000
	g := ins[0].CreateGoods(t, stock)
	tpl := createTemplate(t, ins[0], map[string]any{"name": "moving", "type": "fixed", "value": 100, "stock": stock,
		"per_user_limit": 1000, "valid_for": "1h"})

	stop := make(chan struct{})
	load := startV7Load(t, ins, g.ID, 8, stop)
	coupons := startCouponLoad(t, ins, tpl.ID, 4, stop)
	time.Sleep(time.Second)
	var plans []reshard.Plan
	for _, n := range []int{2, 4} {
		begin := time.Since(load.start)
		plan, out, err := e.Reshard(t, reshard.Options{Hosts: n, CatchUps: 3})
		t.Logf("reshard to %d hosts, from %v to %v:\n%s", n, begin.Round(time.Millisecond), time.Since(load.start).Round(time.Millisecond), out)
		if err != nil {
			close(stop)
			load.wg.Wait()
			coupons.wg.Wait()
			t.Fatalf("reshard to %d hosts: %v", n, err)
		}
		plans = append(plans, plan)
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	load.wg.Wait()
	coupons.wg.Wait()

	moved := map[int]bool{}
	for i, plan := range plans {
		if len(plan.Moves) != service.LogicalDBs/2 {
			t.Errorf("doubling %d moved %d logical databases, want half of %d", i+1, len(plan.Moves), service.LogicalDBs)
		}
		for _, mv := range plan.Moves {
			moved[mv.DB] = true
			t.Logf("l%d %s -> %s: %d rows copied, %d caught up, frozen %v, %d verified, %d deleted",
				mv.DB, mv.From, mv.To, mv.Copied, mv.CaughtUp, mv.Frozen.Round(time.Millisecond), mv.Rows, mv.Deleted)
		}
	}
	if !slices.Equal(slices.Sorted(func(yield func(int) bool) {
		for l := range moved {
			yield(l)
		}
	}), []int{1, 2, 3, 5, 6, 7}) {
		t.Errorf("moved %v, want 1, 3, 5, 7 then 2, 3, 6, 7", moved)
	}
	busyOrders := checkAnswers(t, "order", load.answers, moved)
	busyPays := checkAnswers(t, "payment", load.payments, moved)
	t.Logf("%d orders accepted of %d asked (%d busy); %d payments tried (%d busy)",
		len(load.accepted), len(load.answers), busyOrders, len(load.payments), busyPays)

	// Every accepted order is payable after the move, on its new host.
	var ids []int64
	for id, user := range load.accepted {
		ids = append(ids, id)
		harness.Eventually(t, 20*time.Second, func() bool {
			code, _ := ins[int(id%2)].Pay(t, id, user)
			return code == http.StatusOK
		}, "order %d of user %d is not payable", id, user)
	}
	snap := e.CheckInvariants(t, g.ID, harness.Sale{Initial: stock, Accepted: ids})
	if paid := snap.Count(service.StatusPaid); paid != len(ids) {
		t.Errorf("%d orders paid, want every one of %d", paid, len(ids))
	}

	checkCouponsAfterMoves(t, e, ins, coupons, tpl.ID, stock, moved)

	// Each host holds its logical databases' rows, orders and coupons, and
	// no others: the old copies are gone.
	for h := range hosts {
		for l := range service.LogicalDBs {
			if n := logicalRows(t, e.HostDB(storeHostID(hosts[h])), l); l%4 != h && n > 0 {
				t.Errorf("host %d holds %d rows of logical database %d, which lives on host %d", h, n, l, l%4)
			}
		}
	}
}

// logicalRows counts the rows of logical database l's order and coupon
// tables in db; none where they do not exist.
func logicalRows(t *testing.T, db *sql.DB, l int) int {
	t.Helper()
	var n int
	for tb := 1; tb <= service.LogicalTables; tb++ {
		for _, name := range []string{service.LogicalTableName(l, tb), service.LogicalCouponTableName(l, tb)} {
			var c int
			if err := db.QueryRow("SELECT COUNT(*) FROM " + name).Scan(&c); err != nil && !strings.Contains(err.Error(), "doesn't exist") {
				t.Fatal(err)
			}
			n += c
		}
	}
	return n
}

// An expansion stopped after each of its steps, as a crash would stop it,
// is resumed by running it again: a logical database frozen by the stopped
// run answers its own users busy and no one else, one switched but not
// cleaned is found on its new host, and the last run finishes with every
// order in place once. Databases on one server: the steps are what is
// tested here.
func TestReshardResumesAfterAStopAtEachStep(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	hosts := e.LogicalHosts(t, 1, true)
	in := e.Start(t)
	const stock = 10_000
	g := in.CreateGoods(t, stock)
	tpl := createTemplate(t, in, map[string]any{"name": "resumed", "type": "fixed", "value": 100, "stock": stock,
		"per_user_limit": 10, "valid_for": "1h"})
	orders := map[int64]int64{}
	coupons := map[int64]int64{}
	order := func(user int64) {
		if code, a := in.Order(t, "V7", user, g.ID, 1); code != http.StatusCreated {
			t.Fatalf("order of user %d: %d %s", user, code, a.Error)
		} else {
			orders[a.ID] = user
		}
		code, c := claim(t, in, user, tpl.ID, "")
		id, err := strconv.ParseInt(c.CouponID, 10, 64)
		if code != http.StatusCreated || err != nil {
			t.Fatalf("coupon of user %d: %d %s", user, code, c.Error)
		}
		coupons[id] = user
	}
	for u := int64(1); u <= 80; u++ {
		order(u)
	}

	crash := errors.New("stopped here")
	stopAt := func(l int, step string) func(int, string) error {
		return func(gotL int, got string) error {
			if gotL == l && got == step {
				return crash
			}
			return nil
		}
	}
	run := func(step func(int, string) error) error {
		_, out, err := e.Reshard(t, reshard.Options{Hosts: 2, CatchUps: 2, Step: step})
		t.Logf("reshard:\n%s(err: %v)", out, err)
		return err
	}
	if err := run(stopAt(1, "copied")); !errors.Is(err, crash) {
		t.Fatalf("run stopped after l1's copy: %v", err)
	}
	order(9) // logical database 1, still on its old host: its copy lags
	if err := run(stopAt(1, "frozen")); !errors.Is(err, crash) {
		t.Fatalf("run stopped after l1's freeze: %v", err)
	}
	// Frozen, not switched: l1's users wait and then hear busy; others sell.
	code, a := in.Order(t, "V7", 17, g.ID, 1)
	if code != http.StatusServiceUnavailable || a.Error != "busy" {
		t.Errorf("an order of frozen l1: %d %s, want 503 busy", code, a.Error)
	}
	if code, c := claim(t, in, 17, tpl.ID, ""); code != http.StatusServiceUnavailable || c.Error != "busy" {
		t.Errorf("a coupon claim of frozen l1: %d %s, want 503 busy", code, c.Error)
	}
	order(16) // logical database 0
	if err := run(stopAt(3, "switched")); !errors.Is(err, crash) {
		t.Fatalf("run stopped after l3's switch: %v", err)
	}
	order(25) // l1 is on its new host now
	order(19) // and so is l3, whose old copy is still there
	for id, user := range orders {
		if user%8 == 3 {
			if code, e := in.Pay(t, id, user); code != http.StatusOK {
				t.Errorf("pay order %d of user %d in l3, switched: %d %s", id, user, code, e)
			}
		}
	}
	if err := run(nil); err != nil {
		t.Fatalf("the last run: %v", err)
	}
	plan, out, err := e.Reshard(t, reshard.Options{Hosts: 2})
	if err != nil || len(plan.Moves) != 0 {
		t.Errorf("a run after the expansion: %d moves, %v\n%s", len(plan.Moves), err, out)
	}
	var ids []int64
	for id, user := range orders {
		ids = append(ids, id)
		harness.Eventually(t, 10*time.Second, func() bool {
			code, _ := in.Pay(t, id, user)
			return code == http.StatusOK
		}, "order %d of user %d is not payable", id, user)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: stock, Accepted: ids})
	// Every coupon once, where its logical database now is, and redeemable.
	claimed := &couponLoad{claimed: coupons}
	checkCouponsAfterMoves(t, e, []*harness.Instance{in, in}, claimed, tpl.ID, stock, nil)
	for h, dsn := range hosts {
		for l := range service.LogicalDBs {
			n := logicalRows(t, e.HostDB(storeHostID(dsn)), l)
			if l%2 != h && n > 0 {
				t.Errorf("host %d holds %d rows of logical database %d", h, n, l)
			}
			if l%2 == h && n == 0 {
				t.Errorf("host %d holds no rows of its logical database %d", h, l)
			}
		}
	}
}

func storeHostID(dsn string) string { return store.HostID(dsn) }
