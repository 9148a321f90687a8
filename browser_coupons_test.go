package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/go-seckill/seckill/internal/harness"
)

// The coupon pages, driven in headless Chromium against a real instance:
// the admin creates a template from the page (and sees the server's reason
// for one it refuses), a shopper claims it, a second claim and a claim of
// an exhausted template show their refusals in words, a retry after a 503
// reuses the claim's Idempotency-Key, "My coupons" lists the coupon by
// status, and the admin's panel shows the figures the API and the coupon
// tables hold. Then both pages again at phone size.
func TestBrowserCoupons(t *testing.T) {
	admin := newBrowser(t)
	var exc exceptions
	exc.watch(admin)
	e := harness.NewEnv(t)
	in := e.Start(t)

	// Both tabs in a zone with a half-hour offset: dates must name it.
	ist := time.FixedZone("IST", 5*3600+30*60)
	zoneShown := regexp.QuoteMeta("GMT+5:30")
	do(t, admin, "admin viewport", chromedp.EmulateViewport(1280, 900))
	inKolkata(t, admin)
	do(t, admin, "open /admin", chromedp.Navigate(in.Base+"/admin"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), harness.AdminToken), chromedp.Click(chromedp.ID("token-save")),
		chromedp.WaitVisible(chromedp.ID("token-state")))

	// A template the server refuses: its reason shows by the form, and
	// nothing is created.
	fillForm(t, admin, [][2]string{{"tpl-name", "Too generous"}, {"tpl-type", "threshold"}, {"tpl-value", "5"},
		{"tpl-threshold", "3"}, {"tpl-stock", "10"}})
	do(t, admin, "submit the refused template", chromedp.Click(chromedp.ID("tpl-submit")))
	waitFor(t, admin, "the validation error", `(() => {
		const e = document.getElementById('tpl-error');
		return !e.hidden && e.textContent === 'Not created: threshold of a threshold coupon must be at least its value, in cents';
	})()`, 10*time.Second)
	if ts := adminTemplates(t, in); len(ts) != 0 {
		t.Fatalf("a refused form created %+v", ts)
	}

	// The template the shopper claims, from the page: ¥10 off, three in
	// stock over two sub-stocks, one per shopper, claims closing in two
	// hours (entered in IST), valid three days.
	end := time.Now().Add(2 * time.Hour).In(ist).Truncate(time.Minute)
	fillForm(t, admin, [][2]string{{"tpl-name", "Browser ¥10 off"}, {"tpl-type", "fixed"}, {"tpl-value", "10"},
		{"tpl-stock", "3"}, {"tpl-limit", "1"}, {"tpl-end", end.Format("2006-01-02T15:04")}, {"tpl-valid", "72h"}, {"tpl-subs", "2"}})
	do(t, admin, "create the template", chromedp.Click(chromedp.ID("tpl-submit")))
	waitFor(t, admin, "the created notice", `document.getElementById('notice').textContent.includes('“Browser ¥10 off”: ¥10 off, 3 in stock')`, 10*time.Second)
	var main couponTemplate
	for _, tpl := range adminTemplates(t, in) {
		if tpl.Name == "Browser ¥10 off" {
			main = tpl
		}
	}
	if main.Type != "fixed" || main.Value != 1000 || main.Threshold != 0 || main.Stock != 3 || main.PerUserLimit != 1 ||
		main.ValidFor != "72h0m0s" || main.SubStocks != 2 || main.StartAt != nil || main.EndAt == nil || !sameTime(*main.EndAt, end) {
		t.Fatalf("template from the page: %+v (end %v), want ¥10 off, stock 3 in 2 sub-stocks, 1 per shopper, 72h, ending %v", main, deref(main.EndAt), end)
	}
	waitFor(t, admin, "the template's card", textIs(tplCard(main.ID)+" .terms", "¥10 off · valid 3 days · 1 per shopper"), 10*time.Second)

	// The others, through the API; the last unit of "Browser last one" goes
	// to another shopper.
	percent := createTemplate(t, in, map[string]any{"name": "Browser 5%", "type": "percent", "value": 5, "stock": 10, "per_user_limit": 2})
	threshold := createTemplate(t, in, map[string]any{"name": "Browser ¥5 over ¥30", "type": "threshold", "value": 500, "threshold": 3000, "stock": 10})
	last := createTemplate(t, in, map[string]any{"name": "Browser last one", "type": "fixed", "value": 100, "stock": 1})
	if code, c := claim(t, in, 1, last.ID, ""); code != http.StatusCreated {
		t.Fatalf("claim the last unit: %d %+v", code, c)
	}

	// Shopper, desktop size.
	shop, cancel := chromedp.NewContext(admin)
	defer cancel()
	do(t, shop, "shopper viewport", chromedp.EmulateViewport(1280, 900))
	inKolkata(t, shop)
	exc.watch(shop)
	do(t, shop, "open /", chromedp.Navigate(in.Base+"/"), chromedp.WaitVisible(chromedp.CSS(tplCard(main.ID)+" .claim")))
	waitFor(t, shop, "the note without a shopper id", textIs("#mine-note", "Enter your shopper id to see your coupons."), 10*time.Second)
	do(t, shop, "enter the shopper id", chromedp.SendKeys(chromedp.ID("shopper-id"), "4242"))
	waitFor(t, shop, "no coupons yet", textIs("#mine-note", "No unused coupons."), 10*time.Second)

	// Each template in words.
	waitFor(t, shop, "the cards", textIs(tplCard(main.ID)+" .value", "¥10 off")+" && "+
		textIs(tplCard(main.ID)+" .remaining", "3 left")+" && "+
		textIs(tplCard(main.ID)+" .terms", "Valid 3 days after claiming · 1 per shopper")+" && "+
		textIs(tplCard(percent.ID)+" .value", "5% off")+" && "+
		textIs(tplCard(percent.ID)+" .terms", "Valid 30 days after claiming · 2 per shopper")+" && "+
		textIs(tplCard(threshold.ID)+" .value", "¥5 off orders of ¥30 or more")+" && "+
		textIs(tplCard(threshold.ID)+" .window", "Claim any time, no closing date")+" && "+
		textIs(tplCard(last.ID)+" .remaining", "All claimed")+" && "+
		textIs(tplCard(last.ID)+" .claim", "All claimed"), 10*time.Second)
	if w := text(t, shop, tplCard(main.ID)+" .window"); !regexp.MustCompile(`^Claim until .*` + zoneShown + `$`).MatchString(w) {
		t.Errorf("claim window %q, want the end with its zone", w)
	}

	// The claim.
	do(t, shop, "claim", chromedp.Click(chromedp.CSS(tplCard(main.ID)+" .claim")))
	claimed := waitText(t, shop, tplCard(main.ID)+" .outcome", `^Claimed! Coupon \d+, valid until .*`+zoneShown+`$`)
	couponID := regexp.MustCompile(`\d+`).FindString(claimed)
	if st := templateStats(t, in, main.ID); st.Issued != 1 || st.RedisRemaining != 2 {
		t.Errorf("after the claim: %+v, want issued 1, redis 2", st)
	}
	if n := couponRecords(t, e, main.ID, 4242); n != 1 {
		t.Errorf("coupon records of shopper 4242: %d, want 1", n)
	}
	if mine := userCoupons(t, in, 4242, "unused"); len(mine) != 1 || mine[0].CouponID != couponID || mine[0].TemplateID != main.ID {
		t.Errorf("shopper 4242's unused coupons %+v, want coupon %s", mine, couponID)
	}
	waitFor(t, shop, "the remaining count", textIs(tplCard(main.ID)+" .remaining", "2 left"), 10*time.Second)

	// My coupons lists it as unused, with its value and expiry.
	item := fmt.Sprintf(`#mine li[data-coupon-id="%s"]`, couponID)
	waitFor(t, shop, "the coupon in My coupons", textIs(item+" .value", "¥10 off")+" && "+textIs(item+" .name", "Browser ¥10 off")+
		fmt.Sprintf(` && document.querySelector(%q).dataset.status === 'unused'`, item), 10*time.Second)
	if w := text(t, shop, item+" .when"); !regexp.MustCompile(`^Expires .*` + zoneShown + `$`).MatchString(w) {
		t.Errorf("expiry %q, want a date with its zone", w)
	}

	// A second claim: one per shopper.
	do(t, shop, "claim again", chromedp.Click(chromedp.CSS(tplCard(main.ID)+" .claim")))
	waitText(t, shop, tplCard(main.ID)+" .outcome", `^You have already claimed this coupon: one per shopper$`)
	if st := templateStats(t, in, main.ID); st.Issued != 1 {
		t.Errorf("a refused claim issued a coupon: %+v", st)
	}

	// A claim whose answer is a 503 (the server did claim): the retry
	// sends the same Idempotency-Key and gets the same coupon.
	eval[bool](t, shop, `(() => {
		const fetch = window.fetch;
		window.claimKeys = [];
		let faked = false;
		window.fetch = async (url, opts) => {
			if (url !== '/coupons/claim') return fetch(url, opts);
			window.claimKeys.push(opts.headers['Idempotency-Key']);
			const res = await fetch(url, opts);
			if (faked) return res;
			faked = true;
			return new Response('{"error":"outcome_unknown","message":"retry"}',
				{ status: 503, headers: { 'Content-Type': 'application/json', 'Retry-After': '1' } });
		};
		return true;
	})()`)
	do(t, shop, "claim the percent coupon", chromedp.Click(chromedp.CSS(tplCard(percent.ID)+" .claim")))
	waitText(t, shop, tplCard(percent.ID)+" .outcome", `^Your claim could not be confirmed — tap Claim again to find out; it cannot claim twice$`)
	waitFor(t, shop, "the claim button after Retry-After", fmt.Sprintf(`!document.querySelector(%q).disabled`, tplCard(percent.ID)+" .claim"), 5*time.Second)
	do(t, shop, "retry the claim", chromedp.Click(chromedp.CSS(tplCard(percent.ID)+" .claim")))
	retried := waitText(t, shop, tplCard(percent.ID)+" .outcome", `^Claimed! Coupon \d+, `)
	keys := eval[[]string](t, shop, `window.claimKeys`)
	if len(keys) != 2 || keys[0] == "" || keys[0] != keys[1] {
		t.Errorf("Idempotency-Keys of a claim and its retry: %q, want one key twice", keys)
	}
	if st := templateStats(t, in, percent.ID); st.Issued != 1 || couponRecords(t, e, percent.ID, 4242) != 1 {
		t.Errorf("a claim retried with its key issued %d coupons, want 1", st.Issued)
	}
	var percentCoupon string
	for _, c := range userCoupons(t, in, 4242, "unused") {
		if c.TemplateID == percent.ID {
			percentCoupon = c.CouponID
		}
	}
	if want := "Claimed! Coupon " + percentCoupon + ","; percentCoupon == "" || !strings.HasPrefix(retried, want) {
		t.Errorf("the retry showed %q, want the coupon the first try got (%s)", retried, percentCoupon)
	}

	// An exhausted template, on a page whose view is stale: the server's
	// refusal in words.
	if !eval[bool](t, shop, fmt.Sprintf(`(() => {
		const b = document.querySelector(%q);
		b.disabled = false;
		b.click();
		return b.disabled;
	})()`, tplCard(last.ID)+" .claim")) {
		t.Error("claim button still enabled right after the click")
	}
	waitText(t, shop, tplCard(last.ID)+" .outcome", `^Out of stock: every coupon of this kind has been claimed$`)
	if st := templateStats(t, in, last.ID); st.Issued != 1 || st.RedisRemaining != 0 {
		t.Errorf("exhausted template: %+v, want issued 1, redis 0", st)
	}

	// Used, once redeemed: the Used tab lists it with its order.
	var redeemed map[string]any
	if code := in.Call(t, "POST", "/coupons/"+couponID+"/redeem", map[string]any{"user_id": 4242, "order_id": "1234567890123456789"}, &redeemed); code != http.StatusOK {
		t.Fatalf("redeem: %d %v", code, redeemed)
	}
	do(t, shop, "the Used tab", chromedp.Click(chromedp.CSS(`#mine-tabs [data-status="used"]`)))
	waitFor(t, shop, "the used coupon", fmt.Sprintf(`(() => {
		const li = document.querySelector(%q);
		return !!li && li.dataset.status === 'used' && document.querySelectorAll('#mine li').length === 1 &&
			/^Used .*GMT\+5:30 on order 1234567890123456789$/.test(li.querySelector('.when').textContent);
	})()`, item), 10*time.Second)
	screenshot(t, shop, "coupons-shopper-desktop")

	// The admin's panel: the API's figures and the sub-stocks.
	st := templateStats(t, in, main.ID)
	if st.Stock != 3 || st.Issued != 1 || st.RedisRemaining != 2 || st.Used != 1 || st.Expired != 0 || len(st.SubStocks) != 2 {
		t.Errorf("stats of the claimed template: %+v", st)
	}
	waitFor(t, admin, "the template's figures", figuresAre(main.ID, st), 10*time.Second)
	waitFor(t, admin, "the exhausted template's figures", figuresAre(last.ID, templateStats(t, in, last.ID)), 10*time.Second)

	// Add stock, losing the first answer: the retried click reuses the op id
	// and the units are added once.
	eval[bool](t, admin, `(() => {
		const fetch = window.fetch;
		let lost = false;
		window.fetch = async (url, opts) => {
			const res = await fetch(url, opts);
			if (!lost && url.endsWith('/stock')) { lost = true; throw new TypeError('answer lost'); }
			return res;
		};
		return true;
	})()`)
	card := tplCard(main.ID)
	do(t, admin, "add stock", chromedp.SetValue(chromedp.CSS(card+" input.add-stock"), "4"),
		chromedp.Click(chromedp.CSS(card+" button.add-stock")))
	waitFor(t, admin, "the lost answer reported", `document.getElementById('error').textContent.includes('Click Add stock again')`, 10*time.Second)
	do(t, admin, "retry add stock", chromedp.Click(chromedp.CSS(card+" button.add-stock")))
	waitFor(t, admin, "the replay reported", `document.getElementById('notice').textContent.includes('already applied')`, 10*time.Second)
	st = templateStats(t, in, main.ID)
	if st.Stock != 7 || st.RedisRemaining != 6 || st.PendingOps != 0 {
		t.Errorf("after adding 4 twice with one op id: %+v, want stock 7, redis 6", st)
	}
	waitFor(t, admin, "the new stock on the card", figuresAre(main.ID, st), 10*time.Second)
	screenshot(t, admin, "coupons-admin-desktop")
	waitFor(t, shop, "the new stock on the shopper page", textIs(tplCard(main.ID)+" .remaining", "6 left"), 10*time.Second)

	// Phone size: claiming works and nothing is wider than the screen; the
	// claim shows in the Unused tab.
	phone := chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile, chromedp.EmulateScale(2))
	do(t, shop, "shopper at phone size", phone, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(tplCard(threshold.ID)+" .claim")))
	checkFits(t, shop, tplCard(threshold.ID)+" .claim")
	checkFits(t, shop, `#mine-tabs [data-status="expired"]`)
	do(t, shop, "claim at phone size", chromedp.Click(chromedp.CSS(tplCard(threshold.ID)+" .claim")))
	waitText(t, shop, tplCard(threshold.ID)+" .outcome", `^Claimed! Coupon \d+, `)
	waitFor(t, shop, "two unused coupons", `document.querySelectorAll('#mine li[data-status="unused"]').length === 2 &&
		[...document.querySelectorAll('#mine li .value')].some(v => v.textContent === '¥5 off orders of ¥30 or more')`, 10*time.Second)
	screenshot(t, shop, "coupons-shopper-phone")

	do(t, admin, "admin at phone size", phone, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(card+" button.add-stock")))
	waitFor(t, admin, "figures at phone size", figuresAre(threshold.ID, templateStats(t, in, threshold.ID)), 10*time.Second)
	checkFits(t, admin, card+" button.add-stock")
	checkFits(t, admin, "#tpl-submit")
	screenshot(t, admin, "coupons-admin-phone")

	exc.check(t)
}

// inKolkata puts a tab in India's time zone (UTC+5:30) with US English
// formats, whatever the machine's: dates then end with "GMT+5:30".
func inKolkata(t *testing.T, tab context.Context) {
	t.Helper()
	if _, err := chromedp.Call(tab, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Kolkata"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(tab, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: "en-US"}); err != nil {
		t.Fatal(err)
	}
}

func tplCard(templateID int64) string { return fmt.Sprintf(`[data-template-id="%d"]`, templateID) }

// fillForm sets form fields by id, in order, as typing would: each gets
// input and change events.
func fillForm(t *testing.T, ctx context.Context, fields [][2]string) {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	eval[bool](t, ctx, fmt.Sprintf(`(() => {
		for (const [id, value] of %s) {
			const el = document.getElementById(id);
			el.value = value;
			el.dispatchEvent(new Event('input', { bubbles: true }));
			el.dispatchEvent(new Event('change', { bubbles: true }));
		}
		return true;
	})()`, b))
}

// textIs is a predicate: the element sel exists and shows want.
func textIs(sel, want string) string {
	return fmt.Sprintf(`(document.querySelector(%q) || {}).textContent === %q`, sel, want)
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf(`document.querySelector(%q).textContent`, sel))
}

// waitText waits for the text of sel to match pattern and returns it.
func waitText(t *testing.T, ctx context.Context, sel, pattern string) string {
	t.Helper()
	waitFor(t, ctx, sel+" matching "+pattern, fmt.Sprintf(`new RegExp(%q).test((document.querySelector(%q) || {}).textContent)`, pattern, sel), 10*time.Second)
	return text(t, ctx, sel)
}

// figuresAre is a predicate: a template's card on the admin page shows st,
// its sub-stocks included.
func figuresAre(templateID int64, st couponStats) string {
	subs := make([]string, len(st.SubStocks))
	for i, s := range st.SubStocks {
		subs[i] = "no answer"
		if s.Remaining != nil {
			subs[i] = strconv.FormatInt(*s.Remaining, 10)
		}
	}
	want, _ := json.Marshal(map[string]any{
		"stock": fmt.Sprint(st.Stock), "issued": fmt.Sprint(st.Issued), "redis-remaining": fmt.Sprint(st.RedisRemaining),
		"used": fmt.Sprint(st.Used), "expired": fmt.Sprint(st.Expired), "pending-ops": fmt.Sprint(st.PendingOps), "subs": subs,
	})
	return fmt.Sprintf(`(() => {
		const c = document.querySelector(%q);
		if (!c) return false;
		const want = %s;
		const got = {};
		for (const k of Object.keys(want)) {
			got[k] = k === 'subs' ? [...c.querySelectorAll('.subs tbody .n')].map(n => n.textContent) : c.querySelector('dd.' + k).textContent;
		}
		return JSON.stringify(got) === JSON.stringify(want);
	})()`, "article"+tplCard(templateID), want)
}

func adminTemplates(t *testing.T, in *harness.Instance) []couponTemplate {
	t.Helper()
	var list struct {
		Templates []couponTemplate `json:"templates"`
	}
	if code := in.Call(t, "GET", "/admin/coupon-templates", nil, &list); code != http.StatusOK {
		t.Fatalf("list templates: %d", code)
	}
	return list.Templates
}

func userCoupons(t *testing.T, in *harness.Instance, userID int64, status string) []claimedCoupon {
	t.Helper()
	var mine struct {
		Coupons []claimedCoupon `json:"coupons"`
	}
	if code := in.Call(t, "GET", fmt.Sprintf("/users/%d/coupons?status=%s", userID, status), nil, &mine); code != http.StatusOK {
		t.Fatalf("coupons of user %d: %d", userID, code)
	}
	return mine.Coupons
}

// couponRecords counts a user's coupon records of a template (fences
// aside) in every coupon table, on the hosts the shard map names.
func couponRecords(t *testing.T, e *harness.Env, templateID, userID int64) int {
	t.Helper()
	tables, err := e.CouponTables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, tb := range tables {
		var n int
		if err := tb.DB.QueryRow("SELECT COUNT(*) FROM "+tb.Name+" WHERE template_id = ? AND user_id = ? AND status <> 3",
			templateID, userID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

func sameTime(s string, want time.Time) bool {
	got, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && got.Equal(want)
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
