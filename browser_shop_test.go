package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/deadletter"
)

// The shop and its operations in headless Chromium, in India's time zone:
// the admin creates priced goods with a per-user limit and moves their
// sale window from the page; the shopper sees the price and a countdown
// in days and hours, buys through a lost answer (outcome_unknown) and a
// 503 busy, each retried under its first Idempotency-Key and placing one
// order, is refused past the limit in words, and pays from "My orders"
// with a coupon as the deadline counts down; the admin replays and
// resolves a dead letter (its stock applied once), reconciles now and
// watches the live charts. Desktop and phone sizes.
func TestBrowserShopAndOperations(t *testing.T) {
	admin := newBrowser(t)
	var exc exceptions
	exc.watch(admin)
	e := harness.NewEnv(t)
	e.Settings["SECKILL_OUTBOX_GRACE"] = "1h" // the dead letter's order waits for its replay
	e.Settings["SECKILL_OUTBOX_LATE_HORIZON"] = "2h"
	in := e.Start(t)
	inKolkata(t, admin)
	ist := time.FixedZone("IST", 5*3600+30*60)

	do(t, admin, "admin viewport", chromedp.EmulateViewport(1280, 900))
	do(t, admin, "open /admin", chromedp.Navigate(in.Base+"/admin"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), harness.AdminToken), chromedp.Click(chromedp.ID("token-save")),
		chromedp.WaitVisible(chromedp.ID("token-state")))
	if zone := text(t, admin, "#create-form ~ .zone-note .tz"); zone == "" {
		t.Error("the create form does not name its time zone")
	}

	// Priced goods with a limit of one, from the page.
	fillForm(t, admin, [][2]string{{"create-name", "Priced phone"}, {"create-price", "19.99"}, {"create-stock", "5"}, {"create-limit", "1"}})
	do(t, admin, "create", chromedp.Click(chromedp.ID("create-submit")))
	waitFor(t, admin, "the created notice", `document.getElementById('notice').textContent.includes('at ¥19.99')`, 10*time.Second)
	phone := rowID(t, admin, "Priced phone")
	var g service.Goods
	if in.Call(t, "GET", fmt.Sprintf("/goods/%d", phone), nil, &g); g.Price != 1999 || g.PerUserLimit != 1 {
		t.Errorf("goods from the page: %+v, want price 1999 and limit 1", g)
	}
	other := createPriced(t, in, 500, 5)

	// Edit: a new name and a sale ending in two days, entered in IST.
	end := time.Now().Add(48 * time.Hour).In(ist).Truncate(time.Minute)
	do(t, admin, "edit", chromedp.Click(chromedp.CSS(fmt.Sprintf("tr%s button.edit", card(phone)))), chromedp.WaitVisible(chromedp.ID("edit-form")))
	fillForm(t, admin, [][2]string{{"edit-name", "Phone X"}, {"edit-end", end.Format("2006-01-02T15:04")}})
	do(t, admin, "save", chromedp.Click(chromedp.ID("edit-submit")))
	waitFor(t, admin, "the saved notice", `document.getElementById('notice').textContent.includes('“Phone X”') &&
		document.getElementById('notice').textContent.includes('GMT+5:30')`, 10*time.Second)
	if in.Call(t, "GET", fmt.Sprintf("/goods/%d", phone), nil, &g); g.Name != "Phone X" || g.EndAt == nil || !g.EndAt.Equal(end) {
		t.Errorf("after the edit: %+v, want Phone X ending %v", g, end)
	}
	waitFor(t, admin, "the window with its zone", fmt.Sprintf(`document.querySelector('tr%s td.window').textContent.includes('GMT+5:30')`, card(phone)), 10*time.Second)

	// The shopper.
	shop, cancel := chromedp.NewContext(admin)
	defer cancel()
	exc.watch(shop)
	inKolkata(t, shop)
	do(t, shop, "shopper viewport", chromedp.EmulateViewport(1280, 900))
	do(t, shop, "open /", chromedp.Navigate(in.Base+"/"), chromedp.WaitVisible(chromedp.CSS(card(phone)+" .buy")),
		chromedp.SendKeys(chromedp.ID("shopper-id"), "77"))
	waitFor(t, shop, "the price", textIs(card(phone)+" .price", "¥19.99"), 10*time.Second)
	if cd := text(t, shop, card(phone)+" .countdown"); !regexpMatch(`^Ends in (1d 23h 5\dm|2d 00h 00m)$`, cd) {
		t.Errorf("countdown %q, want about two days in days and hours", cd)
	}

	// A buy whose answer is replaced: first by outcome_unknown (the order
	// was placed), then the retry is real. Then a 503 busy on the other
	// goods. Each retry sends its first key.
	eval[bool](t, shop, `(() => {
		const fetch = window.fetch;
		window.orderKeys = [];
		window.fakeNext = ['outcome_unknown', 'busy'];
		window.fetch = async (url, opts) => {
			if (url !== '/order') return fetch(url, opts);
			window.orderKeys.push(opts.headers['Idempotency-Key']);
			const res = await fetch(url, opts);
			if (window.orderKeys.length === 1 || window.orderKeys.length === 3) {
				const code = window.fakeNext.shift();
				return new Response(JSON.stringify({ error: code, message: 'faked' }),
					{ status: 503, headers: { 'Content-Type': 'application/json', 'Retry-After': '1' } });
			}
			return res;
		};
		return true;
	})()`)
	do(t, shop, "buy", chromedp.Click(chromedp.CSS(card(phone)+" .buy")))
	waitOutcome(t, shop, phone, `^We could not confirm your order — click Retry`)
	waitFor(t, shop, "the Retry button", cardIs(phone, "5 left", "Retry", false)+"|| "+cardIs(phone, "4 left", "Retry", false), 10*time.Second)
	do(t, shop, "retry", chromedp.Click(chromedp.CSS(card(phone)+" .buy")))
	first := waitOutcome(t, shop, phone, `^Ordered! order id \d+$`)
	// Its answer is a 503 busy; no order is made by the fake, the retry makes one.
	waitFor(t, shop, "the other card", cardIs(other.ID, "5 left", "Buy", false), 10*time.Second)
	do(t, shop, "buy the other", chromedp.Click(chromedp.CSS(card(other.ID)+" .buy")))
	waitOutcome(t, shop, other.ID, `^The shop is very busy — click Retry`)
	waitFor(t, shop, "the other's Retry button", fmt.Sprintf(`document.querySelector(%q).textContent === 'Retry' && !document.querySelector(%q).disabled`,
		card(other.ID)+" .buy", card(other.ID)+" .buy"), 10*time.Second)
	do(t, shop, "retry the other", chromedp.Click(chromedp.CSS(card(other.ID)+" .buy")))
	waitOutcome(t, shop, other.ID, `^Ordered! order id \d+$`)
	keys := eval[[]string](t, shop, `window.orderKeys`)
	if len(keys) != 4 || keys[0] != keys[1] || keys[2] != keys[3] || keys[0] == keys[2] || keys[0] == "" {
		t.Errorf("Idempotency-Keys sent: %q, want each retry with its first key", keys)
	}
	if st := in.Stats(t, phone); st.Orders != 1 {
		t.Errorf("%d orders of the phone after a lost answer and its retry, want 1", st.Orders)
	}
	// Past the limit of one: refused in words.
	waitFor(t, shop, "the Buy button back", cardIs(phone, "4 left", "Buy", false), 10*time.Second)
	do(t, shop, "buy past the limit", chromedp.Click(chromedp.CSS(card(phone)+" .buy")))
	waitOutcome(t, shop, phone, `^You already hold as many of these as one shopper may buy$`)

	// My orders: the phone's order unpaid with its deadline counting down;
	// a coupon of 5 off, claimed meanwhile, is offered and used.
	orderID := first[len("Ordered! order id "):]
	tpl := createTemplate(t, in, map[string]any{"name": "5 off", "type": "fixed", "value": 500, "stock": 10})
	_, cp := claim(t, in, 77, tpl.ID, "")
	row := fmt.Sprintf(`#orders [data-order-id="%s"]`, orderID)
	waitFor(t, shop, "the unpaid order", fmt.Sprintf(`(() => {
		const r = document.querySelector(%q);
		return !!r && /^Unpaid — pay within 4m [0-5]\ds \(by .*GMT\+5:30\)$/.test(r.querySelector('.state').textContent) &&
			/^Pay ¥19.99 · 4m [0-5]\ds left$/.test(r.querySelector('.pay').textContent) &&
			[...r.querySelector('.coupon').options].some(o => o.value === %q);
	})()`, row, cp.CouponID), 15*time.Second)
	before := text(t, shop, row+" .pay")
	waitFor(t, shop, "the pay countdown to tick", fmt.Sprintf(`document.querySelector(%q).textContent !== %q`, row+" .pay", before), 5*time.Second)
	screenshot(t, shop, "shop-orders-desktop")
	eval[bool](t, shop, fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = %q; s.dispatchEvent(new Event('change')); return true; })()`, row+" .coupon", cp.CouponID))
	waitFor(t, shop, "the price after the coupon", fmt.Sprintf(`document.querySelector(%q).textContent.startsWith('Pay ¥14.99')`, row+" .pay"), 5*time.Second)
	do(t, shop, "pay", chromedp.Click(chromedp.CSS(row+" .pay")))
	waitFor(t, shop, "paid", fmt.Sprintf(`document.querySelector(%q).textContent === 'Paid ¥14.99: ¥5 off' &&
		document.querySelector(%q).textContent === 'Paid ¥14.99 (¥5 off with a coupon)'`, row+" .outcome", row+" .state"), 15*time.Second)
	var paid service.OrderDetail
	if in.Call(t, "GET", fmt.Sprintf("/orders/%s?user_id=77", orderID), nil, &paid); paid.Status != "paid" || paid.ToPay != 1499 || paid.Discount != 500 {
		t.Errorf("the order after paying from the page: %+v", paid)
	}

	// A dead letter for a real order, replayed and resolved from the page.
	m := sellWithoutMessage(t, e, phone, 999)
	body, _ := json.Marshal(m)
	if _, err := e.DB(0).Exec("INSERT INTO dead_letters (order_id, goods_id, topic, body, reason) VALUES (?, ?, ?, ?, ?)",
		m.OrderID, m.GoodsID, in.Config.NSQ.Topic, body, "gave up after 10 attempts: unavailable"); err != nil {
		t.Fatal(err)
	}
	dl := `#dl-table tr[data-status="open"]`
	waitFor(t, admin, "the dead letter", fmt.Sprintf(`(() => { const r = document.querySelector(%q);
		return !!r && r.querySelector('td.order').textContent === %q && r.querySelector('td.when').textContent.includes('GMT+5:30'); })()`,
		dl, fmt.Sprint(m.OrderID)), 10*time.Second)
	letterID := eval[string](t, admin, fmt.Sprintf(`document.querySelector(%q).dataset.letterId`, dl))
	dl = fmt.Sprintf(`#dl-table tr[data-letter-id="%s"]`, letterID)
	do(t, admin, "replay", chromedp.Click(chromedp.CSS(dl+" button.replay")))
	waitFor(t, admin, "replayed", fmt.Sprintf(`document.getElementById('notice').textContent.includes('replayed') &&
		document.querySelector(%q).textContent === 'replayed' && document.querySelector(%q).disabled`, dl+" td.status", dl+" button.replay"), 10*time.Second)
	do(t, admin, "resolve", chromedp.SetValue(chromedp.CSS(dl+" input.note"), "checked stock by hand"), chromedp.Click(chromedp.CSS(dl+" button.resolve")))
	waitFor(t, admin, "resolved", textIs(dl+" td.status", "resolved"), 10*time.Second)
	var letter deadletter.Letter
	if in.Call(t, "GET", "/admin/dead-letters/"+letterID, nil, &letter); len(letter.Actions) != 2 || letter.Actions[1].Note != "checked stock by hand" {
		t.Errorf("the letter's actions: %+v", letter.Actions)
	}

	// Reconcile now, and the live charts of the phone.
	do(t, admin, "reconcile", chromedp.Click(chromedp.ID("reconcile-now")))
	waitFor(t, admin, "the pass", `/^Pass at .*GMT\+5:30: \d+ checked, 0 drifting\.$/.test((document.querySelector('#reconcile-result .reconcile-summary') || {}).textContent)`, 15*time.Second)
	eval[bool](t, admin, fmt.Sprintf(`(() => { const s = document.getElementById('chart-goods'); s.value = %q; s.dispatchEvent(new Event('change')); return true; })()`, fmt.Sprint(phone)))
	waitFor(t, admin, "charts with samples", `(() => {
		const r = document.getElementById('chart-rate').dataset.points, s = document.getElementById('chart-stock').dataset.points;
		return Number(r) >= 2 && Number(s.split(',')[0]) >= 3 && !!document.querySelector('#chart-stock polyline.redis');
	})()`, 20*time.Second)
	st := in.Stats(t, phone)
	waitFor(t, admin, "the stock chart at the current stock", fmt.Sprintf(`document.querySelector('#chart-stock text.value.redis').textContent === %q`,
		fmt.Sprint(*st.RedisStock)), 10*time.Second)
	screenshot(t, admin, "admin-operations-desktop")

	// Phone size.
	small := chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile, chromedp.EmulateScale(2))
	do(t, shop, "shop at phone size", small, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(row+" .state")))
	checkFits(t, shop, row+" .state")
	screenshot(t, shop, "shop-orders-phone")
	do(t, admin, "admin at phone size", small, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(dl+" button.resolve")))
	checkFits(t, admin, dl+" button.resolve")
	checkFits(t, admin, "#chart-stock")
	screenshot(t, admin, "admin-operations-phone")

	e.CheckInvariants(t, phone, harness.Sale{Initial: 5, Accepted: []int64{paid.ID, m.OrderID}, DeadLetters: 1})
	exc.check(t)
	if code, _ := in.Raw(t, "GET", "/admin/dead-letters", "", ""); code != http.StatusUnauthorized {
		t.Errorf("dead letters without the token: %d, want 401", code)
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
