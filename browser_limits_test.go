package main_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/store"
)

// The shopper page on the limited version (/?version=V8): an address past
// its burst is offered a captcha on the card; typing its digits orders at
// once, through the limit, and the order is stored.
func TestBrowserCaptcha(t *testing.T) {
	ctx := newBrowser(t)
	var exc exceptions
	exc.watch(ctx)
	e := harness.NewEnv(t)
	e.Settings["SECKILL_LIMITS_ORDER_IP_PERIOD"] = "1h" // no token comes back during the test
	in := e.Start(t)
	g := in.CreateGoods(t, 10)

	// The page's address (the peer, loopback: no X-Forwarded-For) spends its
	// burst of 3.
	for user := int64(1); user <= 3; user++ {
		if code, _ := in.Raw(t, "POST", "/orderV8", "application/json",
			fmt.Sprintf(`{"user_id":%d,"goods_id":%d,"number":1}`, user, g.ID)); code != http.StatusCreated {
			t.Fatalf("order %d of the burst: %d", user, code)
		}
	}
	do(t, ctx, "open /?version=V8", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(in.Base+"/?version=V8"),
		chromedp.WaitVisible(chromedp.CSS(card(g.ID)+" .buy")),
		chromedp.SendKeys(chromedp.ID("shopper-id"), "77"),
		chromedp.Click(chromedp.CSS(card(g.ID)+" .buy")))
	waitOutcome(t, ctx, g.ID, `type the digits in the picture`)
	box := card(g.ID) + " .captcha"
	waitFor(t, ctx, "the captcha's image", fmt.Sprintf(`(() => {
		const b = document.querySelector(%q), img = b.querySelector('img');
		return !b.hidden && img.complete && img.naturalWidth > 0;
	})()`, box), 10*time.Second)
	src := eval[string](t, ctx, fmt.Sprintf(`document.querySelector(%q).src`, box+" img"))
	id := src[strings.LastIndex(src, "/")+1:]
	digits, err := e.Redis().Get(context.Background(), store.CaptchaKey(e.Prefix, id)).Bytes()
	if err != nil {
		t.Fatalf("captcha %q: %v", id, err)
	}
	solution := make([]byte, len(digits))
	for i, d := range digits {
		solution[i] = '0' + d
	}
	do(t, ctx, "type the digits and send",
		chromedp.SendKeys(chromedp.CSS(box+" .captcha-answer"), string(solution)),
		chromedp.Click(chromedp.CSS(box+" .captcha-send")))
	waitOutcome(t, ctx, g.ID, `^Ordered! order id \d+$`)
	if st := in.Stats(t, g.ID); st.Orders != 4 {
		t.Errorf("orders %d, want the burst's 3 and the page's 1", st.Orders)
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 10, AllowUnanswered: true})
	exc.check(t)
}
