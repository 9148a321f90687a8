package main_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/service"
)

// Goods whose checkout is "seckill" are bought on the shop page through
// async accept and poll: the click is answered at once with a place in
// the queue, the page polls the token as often as the shop says and shows
// the order once it is written, which is then paid from "My orders". The
// admin creates such goods from the page.
func TestBrowserQueueAndPollCheckout(t *testing.T) {
	admin := newBrowser(t)
	var exc exceptions
	exc.watch(admin)
	e := harness.NewEnv(t)
	e.Settings["SECKILL_ACCEPT_POLL_AFTER"] = "300ms"
	in := e.Start(t)

	do(t, admin, "admin viewport", chromedp.EmulateViewport(1280, 900))
	do(t, admin, "open /admin", chromedp.Navigate(in.Base+"/admin"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), harness.AdminToken), chromedp.Click(chromedp.ID("token-save")),
		chromedp.WaitVisible(chromedp.ID("token-state")))
	fillForm(t, admin, [][2]string{{"create-name", "Queued phone"}, {"create-price", "9.99"}, {"create-stock", "3"}, {"create-limit", "0"}})
	do(t, admin, "queue and poll", chromedp.SetValue(chromedp.ID("create-checkout"), "seckill"), chromedp.Click(chromedp.ID("create-submit")))
	waitFor(t, admin, "the created notice", `document.getElementById('notice').textContent.includes('at ¥9.99')`, 10*time.Second)
	phone := rowID(t, admin, "Queued phone (queue and poll)")
	var g service.Goods
	if in.Call(t, "GET", fmt.Sprintf("/goods/%d", phone), nil, &g); g.Checkout != service.CheckoutSeckill {
		t.Fatalf("goods from the page: %+v, want checkout seckill", g)
	}

	shop, cancel := chromedp.NewContext(admin)
	defer cancel()
	exc.watch(shop)
	do(t, shop, "shopper viewport", chromedp.EmulateViewport(1280, 900))
	do(t, shop, "open /", chromedp.Navigate(in.Base+"/"), chromedp.WaitVisible(chromedp.CSS(card(phone)+" .buy")),
		chromedp.SendKeys(chromedp.ID("shopper-id"), "55"))
	eval[bool](t, shop, `(() => {
		const fetch = window.fetch;
		window.paths = [];
		window.fetch = (url, opts) => { if (String(url).startsWith('/seckill')) window.paths.push(String(url)); return fetch(url, opts); };
		return true;
	})()`)
	waitFor(t, shop, "the card on sale", cardIs(phone, "3 left", "Buy", false), 10*time.Second)

	// The writers paused: the request waits in the queue, the page says so.
	e.PauseWriters(t, true)
	do(t, shop, "buy", chromedp.Click(chromedp.CSS(card(phone)+" .buy")))
	waitOutcome(t, shop, phone, `^You are in the queue — your order is being written…$`)
	waitFor(t, shop, "the queued button", fmt.Sprintf(`document.querySelector(%q).textContent === 'In the queue…' && document.querySelector(%q).disabled`,
		card(phone)+" .buy", card(phone)+" .buy"), 5*time.Second)
	screenshot(t, shop, "shop-queued-desktop")
	time.Sleep(time.Second) // a few polls, still pending
	e.PauseWriters(t, false)
	got := waitOutcome(t, shop, phone, `^Ordered! order id \d+ — pay it below$`)
	var orderID int64
	fmt.Sscanf(got, "Ordered! order id %d", &orderID)
	paths := eval[[]string](t, shop, `window.paths`)
	if len(paths) < 3 || paths[0] != "/seckill" || paths[1][:9] != "/seckill/" {
		t.Errorf("requests of the page: %q, want POST /seckill then polls of its token", paths)
	}

	row := fmt.Sprintf(`#orders [data-order-id="%d"]`, orderID)
	waitFor(t, shop, "the unpaid order", fmt.Sprintf(`(() => { const r = document.querySelector(%q);
		return !!r && r.querySelector('.pay').textContent.startsWith('Pay ¥9.99'); })()`, row), 15*time.Second)
	do(t, shop, "pay", chromedp.Click(chromedp.CSS(row+" .pay")))
	waitFor(t, shop, "paid", fmt.Sprintf(`document.querySelector(%q).textContent.startsWith('Paid')`, row+" .state"), 15*time.Second)
	var paid service.OrderDetail
	if code := in.Call(t, "GET", fmt.Sprintf("/orders/%d?user_id=55", orderID), nil, &paid); code != http.StatusOK || paid.Status != "paid" || paid.ToPay != 999 {
		t.Errorf("the order after paying from the page: %d %+v", code, paid)
	}
	exc.check(t)
}
