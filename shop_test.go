package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/deadletter"
)

// createPriced puts stock units of goods at price cents on sale.
func createPriced(t *testing.T, in *harness.Instance, price, stock int64) service.Goods {
	t.Helper()
	var g service.Goods
	if code := in.Call(t, "POST", "/admin/goods", map[string]any{"name": "priced", "price": price, "stock": stock}, &g); code != http.StatusCreated || g.Price != price {
		t.Fatalf("create goods at %d: %d %+v", price, code, g)
	}
	return g
}

// payWith pays orderID as userID with a coupon ("" for none).
func payWith(t *testing.T, in *harness.Instance, orderID, userID int64, couponID string) (int, service.OrderDetail, string) {
	t.Helper()
	body := map[string]any{"user_id": userID}
	if couponID != "" {
		body["coupon_id"] = couponID
	}
	var out struct {
		service.OrderDetail
		Error string `json:"error"`
	}
	code := in.Call(t, "POST", fmt.Sprintf("/orders/%d/pay", orderID), body, &out)
	return code, out.OrderDetail, out.Error
}

func orderOf(t *testing.T, in *harness.Instance, orderID, userID int64) (int, service.OrderDetail) {
	t.Helper()
	var o service.OrderDetail
	code := in.Call(t, "GET", fmt.Sprintf("/orders/%d?user_id=%d", orderID, userID), nil, &o)
	return code, o
}

// An order costs price x units; its buyer finds it by id and in their
// list; a payment redeems a coupon against its amount: a coupon whose
// threshold the amount misses leaves both unpaid and unused, a fitting
// one takes its discount off, once, and paying again answers the first
// payment without touching another coupon.
func TestOrdersPricesAndPaymentWithACoupon(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	g := createPriced(t, in, 1500, 10)
	const user = 2024
	code, o := in.Order(t, "V3", user, g.ID, 2)
	if code != http.StatusCreated || o.Amount != 3000 {
		t.Fatalf("order: %d %+v, want 201 with amount 3000", code, o)
	}
	if code, d := orderOf(t, in, o.ID, user); code != http.StatusOK || d.Status != "unpaid" || d.Amount != 3000 || d.ToPay != 3000 {
		t.Errorf("GET the order: %d %+v, want unpaid 3000", code, d)
	}
	if code, _ := orderOf(t, in, o.ID, user+1); code != http.StatusNotFound {
		t.Errorf("another user's order: %d, want 404", code)
	}
	for _, bad := range []string{"/orders/1?user_id=x", "/orders/1", "/orders/x?user_id=1", "/users/0/orders"} {
		if code, _ := in.Raw(t, "GET", bad, "", ""); code != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", bad, code)
		}
	}

	big := createTemplate(t, in, map[string]any{"name": "50 off 100", "type": "threshold", "value": 5000, "threshold": 10000, "stock": 5})
	fixed := createTemplate(t, in, map[string]any{"name": "5 off", "type": "fixed", "value": 500, "stock": 5, "per_user_limit": 0})
	_, cBig := claim(t, in, user, big.ID, "")
	_, cFixed := claim(t, in, user, fixed.ID, "")
	_, cOther := claim(t, in, user, fixed.ID+0, "other-key")

	if code, _, errCode := payWith(t, in, o.ID, user, cBig.CouponID); code != http.StatusConflict || errCode != "threshold_not_met" {
		t.Errorf("pay with a coupon over the amount: %d %s, want 409 threshold_not_met", code, errCode)
	}
	if _, d := orderOf(t, in, o.ID, user); d.Status != "unpaid" {
		t.Errorf("after a refused coupon the order is %s, want unpaid", d.Status)
	}
	for _, bad := range []string{`{"user_id":2024,"coupon_id":"x"}`, `{"user_id":2024,"coupon_id":0}`, `{"coupon_id":"1"}`} {
		if code, _ := in.Raw(t, "POST", fmt.Sprintf("/orders/%d/pay", o.ID), "application/json", bad); code != http.StatusBadRequest {
			t.Errorf("pay %s: %d, want 400", bad, code)
		}
	}
	if code, _, errCode := payWith(t, in, o.ID, user, "12345"); code != http.StatusNotFound {
		t.Errorf("pay with an unknown coupon: %d %s, want 404", code, errCode)
	}

	code, paid, errCode := payWith(t, in, o.ID, user, cFixed.CouponID)
	if code != http.StatusOK || paid.Status != "paid" || paid.Discount != 500 || paid.ToPay != 2500 || strconv.FormatInt(paid.CouponID, 10) != cFixed.CouponID {
		t.Fatalf("pay with 5 off: %d %s %+v, want paid 2500", code, errCode, paid)
	}
	// Again, naming another coupon: the first payment, and the other coupon untouched.
	if code, again, _ := payWith(t, in, o.ID, user, cOther.CouponID); code != http.StatusOK || again.ToPay != 2500 || again.CouponID != paid.CouponID {
		t.Errorf("pay again: %d %+v, want the first payment", code, again)
	}
	status := map[string]string{}
	for _, c := range userCoupons(t, in, user, "") {
		status[c.CouponID] = c.Status
	}
	if status[cBig.CouponID] != "unused" || status[cFixed.CouponID] != "used" || status[cOther.CouponID] != "unused" {
		t.Errorf("coupons after the payments: %v; want only the 5 off used", status)
	}

	// The list: newest first, every version's tables.
	code2, o2 := in.Order(t, "V1", user, g.ID, 1)
	if code2 != http.StatusCreated {
		t.Fatalf("second order: %d", code2)
	}
	var list struct{ Orders []service.OrderDetail }
	if code := in.Call(t, "GET", fmt.Sprintf("/users/%d/orders", user), nil, &list); code != http.StatusOK || len(list.Orders) != 2 ||
		list.Orders[0].ID != o2.ID || list.Orders[0].Status != "unpaid" || list.Orders[0].Amount != 1500 ||
		list.Orders[1].ID != o.ID || list.Orders[1].Status != "paid" {
		t.Errorf("my orders: %d %+v", code, list.Orders)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: []int64{o.ID, o2.ID}})
}

// A coupon redeemed by a payment that then fails is usable again: here
// the order's deadline passes before it is paid.
func TestPaymentPastItsDeadlineLeavesTheCouponUsable(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_ORDER_PAY_TIMEOUT"] = "1s"
	in := e.Start(t)
	g := createPriced(t, in, 1000, 5)
	code, o := in.Order(t, "", 7, g.ID, 1)
	if code != http.StatusCreated {
		t.Fatalf("order: %d", code)
	}
	tpl := createTemplate(t, in, map[string]any{"name": "1 off", "type": "fixed", "value": 100, "stock": 5})
	_, c := claim(t, in, 7, tpl.ID, "")
	time.Sleep(time.Until(o.PayDeadline) + 100*time.Millisecond)
	code, _, errCode := payWith(t, in, o.ID, 7, c.CouponID)
	if code != http.StatusConflict || (errCode != "order_expired" && errCode != "order_cancelled") {
		t.Errorf("pay after the deadline: %d %s, want 409 order_expired or order_cancelled", code, errCode)
	}
	for _, cp := range userCoupons(t, in, 7, "") {
		if cp.CouponID == c.CouponID && cp.Status != "unused" {
			t.Errorf("coupon after the failed payment: %s, want unused", cp.Status)
		}
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 5, Accepted: []int64{o.ID}})
}

// A payment that redeemed a coupon and stopped there (a crash between the
// redemption and the payment) leaves the coupon bound to the unpaid order;
// the order's cancellation at its deadline makes the coupon usable again.
func TestAnOrderCancelledAtItsDeadlineGivesBackItsCoupon(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	payWithin(e, "1s", "500ms")
	in := e.Start(t)
	g := createPriced(t, in, 1000, 5)
	code, o := in.Order(t, "", 8, g.ID, 1)
	if code != http.StatusCreated {
		t.Fatalf("order: %d", code)
	}
	tpl := createTemplate(t, in, map[string]any{"name": "1 off", "type": "fixed", "value": 100, "stock": 5})
	_, c := claim(t, in, 8, tpl.ID, "")
	// The payment's first step, and no second: the coupon is used by the order.
	if code := in.Call(t, "POST", "/coupons/"+c.CouponID+"/redeem", map[string]any{"user_id": 8, "order_id": strconv.FormatInt(o.ID, 10), "amount": 1000}, nil); code != http.StatusOK {
		t.Fatalf("redeem: %d", code)
	}
	status := func() string {
		for _, cp := range userCoupons(t, in, 8, "") {
			if cp.CouponID == c.CouponID {
				return cp.Status
			}
		}
		return "missing"
	}
	if s := status(); s != "used" {
		t.Fatalf("coupon after the redemption: %s, want used", s)
	}
	var got service.OrderDetail
	cancelled := harness.WaitFor(30*time.Second, func() bool {
		in.Call(t, "GET", fmt.Sprintf("/orders/%d?user_id=8", o.ID), nil, &got)
		return got.Status == "cancelled"
	})
	if !cancelled {
		t.Fatalf("order after its deadline: %s, want cancelled", got.Status)
	}
	if !harness.WaitFor(10*time.Second, func() bool { return status() == "unused" }) {
		t.Errorf("coupon of the cancelled order: %s, want unused", status())
	}
	// Usable again: it pays another order.
	code, o2 := in.Order(t, "", 8, g.ID, 1)
	if code != http.StatusCreated {
		t.Fatalf("second order: %d", code)
	}
	if code, paid, errCode := payWith(t, in, o2.ID, 8, c.CouponID); code != http.StatusOK || paid.Discount != 100 {
		t.Errorf("pay the second order with the released coupon: %d %s %+v", code, errCode, paid)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 5, Accepted: []int64{o.ID, o2.ID}})
}

type letterAnswer struct {
	Letter deadletter.Letter `json:"letter"`
	Acted  bool              `json:"acted"`
	Error  string            `json:"error"`
}

// A stock message given up on is replayed from the admin API: replays at
// once and after publish it once, the order's stock is applied once, and
// resolving it is recorded once; a resolved letter is not replayed.
func TestDeadLetterReplayAppliesStockOnce(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.Settings["SECKILL_OUTBOX_GRACE"] = "1h" // the replay alone brings the message
	e.Settings["SECKILL_OUTBOX_LATE_HORIZON"] = "2h"
	in := e.Start(t)
	g := in.CreateGoods(t, 10)
	m := sellWithoutMessage(t, e, g.ID, 1)
	body, _ := json.Marshal(m)
	// As the consumer writes it when it gives up after its attempts.
	if _, err := e.DB(0).Exec("INSERT INTO dead_letters (order_id, goods_id, topic, body, reason, attempts) VALUES (?, ?, ?, ?, ?, 1)",
		m.OrderID, m.GoodsID, in.Config.NSQ.Topic, body, "gave up after 10 attempts: unavailable"); err != nil {
		t.Fatal(err)
	}
	var list struct {
		DeadLetters []deadletter.Letter `json:"dead_letters"`
	}
	if code := in.Call(t, "GET", "/admin/dead-letters?status=open", nil, &list); code != http.StatusOK || len(list.DeadLetters) != 1 ||
		list.DeadLetters[0].OrderID != m.OrderID || list.DeadLetters[0].Body != string(body) || list.DeadLetters[0].Status != "open" {
		t.Fatalf("list: %d %+v", code, list.DeadLetters)
	}
	id := list.DeadLetters[0].ID
	path := fmt.Sprintf("/admin/dead-letters/%d", id)

	var acted atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var a letterAnswer
			code, err := in.Do(context.Background(), "POST", path+"/replay", map[string]string{"by": "ops"}, &a)
			if err != nil || code != http.StatusOK || a.Letter.Status != "replayed" {
				t.Errorf("replay: %d %v %+v", code, err, a)
			}
			if a.Acted {
				acted.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := acted.Load(); n != 1 {
		t.Errorf("%d of 4 replays at once published, want 1", n)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: []int64{m.OrderID}, DeadLetters: 1})
	var a letterAnswer
	if code := in.Call(t, "POST", path+"/replay", nil, &a); code != http.StatusOK || a.Acted {
		t.Errorf("replay once more: %d acted %v, want 200 and nothing published", code, a.Acted)
	}
	// A copy of the message, as a replay that published twice would send.
	e.PublishStock(t, m)
	snap := e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, Accepted: []int64{m.OrderID}, DeadLetters: 1})
	if snap.Sales[m.OrderID] != 1 || snap.Stock != 9 {
		t.Errorf("stock applied %d times, mysql stock %d; want once, 9", snap.Sales[m.OrderID], snap.Stock)
	}

	for i, want := range []bool{true, false} {
		if code := in.Call(t, "POST", path+"/resolve", map[string]string{"by": "ann", "note": "checked by hand"}, &a); code != http.StatusOK ||
			a.Acted != want || a.Letter.Status != "resolved" {
			t.Errorf("resolve %d: %d %+v, want acted %v", i, code, a, want)
		}
	}
	if code := in.Call(t, "POST", path+"/replay", nil, &a); code != http.StatusConflict || a.Error != "not_replayable" {
		t.Errorf("replay a resolved letter: %d %s, want 409 not_replayable", code, a.Error)
	}
	var l deadletter.Letter
	if code := in.Call(t, "GET", path, nil, &l); code != http.StatusOK || len(l.Actions) != 2 ||
		l.Actions[0].Action != "replay" || l.Actions[0].Actor != "ops" ||
		l.Actions[1].Action != "resolve" || l.Actions[1].Actor != "ann" || l.Actions[1].Note != "checked by hand" {
		t.Errorf("letter with its actions: %d %+v", code, l)
	}
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/admin/dead-letters/999999", "", http.StatusNotFound},
		{"GET", "/admin/dead-letters/x", "", http.StatusBadRequest},
		{"GET", "/admin/dead-letters?status=lost", "", http.StatusBadRequest},
		{"GET", "/admin/dead-letters?limit=0", "", http.StatusBadRequest},
		{"POST", "/admin/dead-letters/999999/replay", "", http.StatusNotFound},
		{"POST", path + "/resolve", `{"note":"` + string(make([]byte, 0)) + `","extra":1}`, http.StatusBadRequest},
	} {
		ct := ""
		if c.body != "" {
			ct = "application/json"
		}
		if code, _ := in.Raw(t, c.method, c.path, ct, c.body, "Authorization", "Bearer "+in.Token); code != c.want {
			t.Errorf("%s %s %s: %d, want %d", c.method, c.path, c.body, code, c.want)
		}
	}
}

// An edit of the sale window takes effect for every version at once: no
// order sent after the edit was answered is taken, whatever the version,
// while orders stream in; opening the window again sells again.
func TestEditGoodsWindowHoldsForEveryOrder(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	g := in.CreateGoods(t, 100000)
	versions := service.VersionNames()

	var (
		mu       sync.Mutex
		accepted []int64
		late     []string
		edited   atomic.Int64 // Unix ns when the edit was answered; 0 before
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := versions[int(i)%len(versions)]
				sent := time.Now().UnixNano()
				code, a := in.Order(t, v, int64(w)*1_000_000+i+1, g.ID, 1)
				if code == http.StatusCreated {
					mu.Lock()
					accepted = append(accepted, a.ID)
					if at := edited.Load(); at != 0 && sent > at {
						late = append(late, v)
					}
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	ended := time.Now().Add(-time.Second).UTC().Truncate(time.Millisecond)
	var out service.Goods
	if code := in.Call(t, "PATCH", fmt.Sprintf("/admin/goods/%d", g.ID), map[string]any{"name": "renamed", "end_at": ended}, &out); code != http.StatusOK ||
		out.Name != "renamed" || out.EndAt == nil || !out.EndAt.Equal(ended) {
		t.Fatalf("edit: %d %+v", code, out)
	}
	edited.Store(time.Now().UnixNano())
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(late) > 0 {
		t.Errorf("%d orders sent after the window closed were taken (versions %v)", len(late), late)
	}
	if len(accepted) == 0 {
		t.Error("no order was taken before the edit")
	}
	if end, err := e.Redis().HGet(context.Background(), e.GoodsKey(g.ID), "end_ms").Int64(); err != nil || end != ended.UnixMilli() {
		t.Errorf("redis end_ms %d (%v), want %d", end, err, ended.UnixMilli())
	}
	if code, a := in.Order(t, "V1", 1, g.ID, 1); code != http.StatusConflict || a.Error != "ended" {
		t.Errorf("order after the end: %d %s, want 409 ended", code, a.Error)
	}

	// Open again, and bad edits change nothing.
	if code := in.Call(t, "PATCH", fmt.Sprintf("/admin/goods/%d", g.ID), map[string]any{"name": "renamed", "end_at": nil}, &out); code != http.StatusOK || out.EndAt != nil {
		t.Fatalf("reopen: %d %+v", code, out)
	}
	code, a := in.Order(t, "V2", 1, g.ID, 1)
	if code != http.StatusCreated {
		t.Errorf("order after reopening: %d %s", code, a.Error)
	}
	accepted = append(accepted, a.ID)
	for _, c := range []struct {
		path, body string
		want       int
	}{
		{fmt.Sprintf("/admin/goods/%d", g.ID), `{"start_at":null}`, http.StatusBadRequest},
		{fmt.Sprintf("/admin/goods/%d", g.ID), `{"name":"x","start_at":"2026-01-02T00:00:00Z","end_at":"2026-01-01T00:00:00Z"}`, http.StatusBadRequest},
		{fmt.Sprintf("/admin/goods/%d", g.ID), `{"name":"x","end_at":"tomorrow"}`, http.StatusBadRequest},
		{fmt.Sprintf("/admin/goods/%d", g.ID), `{"name":"","end_at":null}`, http.StatusBadRequest},
		{"/admin/goods/999999", `{"name":"x"}`, http.StatusNotFound},
	} {
		if code, body := in.Raw(t, "PATCH", c.path, "application/json", c.body, "Authorization", "Bearer "+in.Token); code != c.want {
			t.Errorf("PATCH %s %s: %d %s, want %d", c.path, c.body, code, body, c.want)
		}
	}
	var now service.Goods
	in.Call(t, "GET", fmt.Sprintf("/goods/%d", g.ID), nil, &now)
	if now.Name != "renamed" || now.EndAt != nil {
		t.Errorf("after the bad edits: %+v", now)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 100000, Accepted: accepted})
}
