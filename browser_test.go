package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
)

const chromiumPath = "/usr/bin/chromium"

// screenshotDir is git-ignored; CI can keep it as an artifact.
var screenshotDir = filepath.Join("artifacts", "screenshots")

// The shopper and admin pages, driven in headless Chromium against a real
// instance: the admin creates goods from the page, a shopper buys them, the
// buy button guards against double clicks, countdowns follow the server's
// clock, and the admin stats show the consumer draining. Then both pages
// again at phone size.
func TestBrowserPages(t *testing.T) {
	admin := newBrowser(t)
	var exc exceptions
	exc.watch(admin)
	e := harness.NewEnv(t)
	in := e.Start(t)

	// Admin, desktop size, in a time zone with a half-hour offset so that the
	// datetime-local conversion is checked for real.
	ist := time.FixedZone("IST", 5*3600+30*60)
	do(t, admin, "admin viewport", chromedp.EmulateViewport(1280, 900))
	if _, err := chromedp.Call(admin, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Kolkata"}); err != nil {
		t.Fatal(err)
	}
	do(t, admin, "open /admin", chromedp.Navigate(in.Base+"/admin"), chromedp.WaitVisible(chromedp.ID("token")))
	do(t, admin, "enter a wrong token",
		chromedp.SendKeys(chromedp.ID("token"), "not-the-token"), chromedp.Click(chromedp.ID("token-save")))
	waitFor(t, admin, "the wrong-token error", `document.getElementById('error').textContent.includes('Wrong token') &&
		!document.getElementById('token-form').hidden`, 10*time.Second)
	do(t, admin, "enter the token",
		chromedp.SendKeys(chromedp.ID("token"), harness.AdminToken), chromedp.Click(chromedp.ID("token-save")),
		chromedp.WaitVisible(chromedp.ID("token-state")))

	createFromPage(t, admin, "Browser phone", 2, "", "")
	phoneID := rowID(t, admin, "Browser phone")

	// A sale that ran from two hours ago to one hour ago, entered in IST.
	start := time.Now().Add(-2 * time.Hour).In(ist).Truncate(time.Minute)
	end := start.Add(time.Hour)
	createFromPage(t, admin, "Ended phone", 5, start.Format("2006-01-02T15:04"), end.Format("2006-01-02T15:04"))
	endedID := rowID(t, admin, "Ended phone")
	var listed struct{ Goods []service.Goods }
	in.Call(t, "GET", "/admin/goods", nil, &listed)
	for _, g := range listed.Goods {
		if g.ID == endedID && (g.StartAt == nil || !g.StartAt.Equal(start) || g.EndAt == nil || !g.EndAt.Equal(end)) {
			t.Errorf("window from the page: got %v – %v, want %v – %v", g.StartAt, g.EndAt, start, end)
		}
	}

	// A sale that starts in an hour, created through the API.
	var later service.Goods
	if code := in.Call(t, "POST", "/admin/goods", map[string]any{"name": "Later phone", "stock": 5,
		"start_at": time.Now().Add(time.Hour).Format(time.RFC3339Nano)}, &later); code != http.StatusCreated {
		t.Fatalf("create later goods: %d", code)
	}

	// Shopper, desktop size, with a client clock three hours fast: the
	// countdown must still follow the server.
	shop, cancel := chromedp.NewContext(admin)
	defer cancel()
	do(t, shop, "shopper viewport", chromedp.EmulateViewport(1280, 900))
	if _, err := chromedp.Call(shop, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `{ const now = Date.now; Date.now = () => now() + 3 * 3600 * 1000; }`,
	}); err != nil {
		t.Fatal(err)
	}
	exc.watch(shop)
	do(t, shop, "open /", chromedp.Navigate(in.Base+"/"),
		chromedp.WaitVisible(chromedp.CSS(card(phoneID)+" .buy")),
		chromedp.SendKeys(chromedp.ID("shopper-id"), "4242"))
	if got := eval[string](t, shop, `localStorage.getItem('seckill.shopperId')`); got != "4242" {
		t.Errorf("shopper id in localStorage: %q", got)
	}

	// First buy: a double click. The button is disabled by the click itself,
	// before the answer, so the second click sends nothing.
	if !eval[bool](t, shop, fmt.Sprintf(`(() => {
		const b = document.querySelector(%q);
		b.click();
		const disabled = b.disabled;
		b.click();
		return disabled;
	})()`, card(phoneID)+" .buy")) {
		t.Error("buy button still enabled right after the click")
	}
	first := waitOutcome(t, shop, phoneID, `^Ordered! order id \d+$`)
	waitFor(t, shop, "the button enabled again and stock 1", cardIs(phoneID, "1 left", "Buy", false), 10*time.Second)
	if st := in.Stats(t, phoneID); st.Orders != 1 {
		t.Errorf("a double click placed %d orders, want 1", st.Orders)
	}

	// Second buy, with a real mouse click: the last unit.
	do(t, shop, "click buy", chromedp.Click(chromedp.CSS(card(phoneID)+" .buy")))
	waitFor(t, shop, "the second order", fmt.Sprintf(`(() => {
		const o = document.querySelector(%q).textContent;
		return o.startsWith('Ordered! order id ') && o !== %q;
	})()`, card(phoneID)+" .outcome", first), 10*time.Second)
	waitFor(t, shop, "sold out", cardIs(phoneID, "Sold out", "Sold out", true), 10*time.Second)

	// A page whose last poll is up to a second old may still offer the
	// button; the server's answer is then shown in words.
	forceClick(t, shop, phoneID)
	waitOutcome(t, shop, phoneID, `^Sold out$`)

	// Before the start: a countdown of about an hour, ticking, and a
	// disabled button; forced, the order is refused.
	waitFor(t, shop, "the later goods", cardIs(later.ID, "5 left", "Not started", true), 10*time.Second)
	countdown := eval[string](t, shop, fmt.Sprintf(`document.querySelector(%q).textContent`, card(later.ID)+" .countdown"))
	if !regexp.MustCompile(`^Starts in (59m [0-5]\ds|1h 00m 00s)$`).MatchString(countdown) {
		t.Errorf("countdown %q, want about an hour by the server's clock", countdown)
	}
	waitFor(t, shop, "the countdown to tick", fmt.Sprintf(`document.querySelector(%q).textContent !== %q`,
		card(later.ID)+" .countdown", countdown), 5*time.Second)
	forceClick(t, shop, later.ID)
	waitOutcome(t, shop, later.ID, `^The sale has not started yet$`)
	if code, a := in.Order(t, "", 4242, later.ID, 1); code != http.StatusConflict || a.Error != "not_started" {
		t.Errorf("order before the start: %d %q, want 409 not_started", code, a.Error)
	}

	// After the end.
	waitFor(t, shop, "the ended goods, without stock", cardIs(endedID, "", "Sale ended", true)+
		fmt.Sprintf(` && document.querySelector(%q).textContent === 'Sale ended'`, card(endedID)+" .countdown"), 10*time.Second)
	screenshot(t, shop, "shopper-desktop")

	// The admin stats once the consumer has drained both orders.
	waitFor(t, admin, "drained stats", rowIs(phoneID, map[string]string{
		"redis-stock": "0", "mysql-stock": "0", "mysql-sale": "2", "orders": "2",
		"stock-logs": "2", "dead-letters": "0", "backlog": "0",
	}), 30*time.Second)

	// Add stock, losing the first answer: the retried click reuses the op id
	// and the units are added once.
	eval[bool](t, admin, `(() => {
		const fetch = window.fetch;
		let lost = false;
		window.fetch = async (url, opts) => {
			const res = await fetch(url, opts);
			if (!lost && opts && opts.method === 'POST') { lost = true; throw new TypeError('answer lost'); }
			return res;
		};
		return true;
	})()`)
	row := card(phoneID)
	do(t, admin, "add stock", chromedp.SetValue(chromedp.CSS(row+" input.add-stock"), "3"),
		chromedp.Click(chromedp.CSS(row+" button.add-stock")))
	waitFor(t, admin, "the lost answer reported", `document.getElementById('error').textContent.includes('Click Add again')`, 10*time.Second)
	do(t, admin, "retry add stock", chromedp.Click(chromedp.CSS(row+" button.add-stock")))
	waitFor(t, admin, "the replay reported", `document.getElementById('notice').textContent.includes('already applied')`, 10*time.Second)
	if st := in.Stats(t, phoneID); st.MySQLStock != 3 || st.RedisStock == nil || *st.RedisStock != 3 {
		redis := "none"
		if st.RedisStock != nil {
			redis = fmt.Sprint(*st.RedisStock)
		}
		t.Errorf("after adding 3 twice with one op id: mysql %d redis %s, want 3 and 3", st.MySQLStock, redis)
	}
	waitFor(t, admin, "the new stock in the table", rowIs(phoneID, map[string]string{"redis-stock": "3", "mysql-stock": "3"}), 10*time.Second)
	screenshot(t, admin, "admin-desktop")
	waitFor(t, shop, "stock back on the shopper page", cardIs(phoneID, "3 left", "Buy", false), 10*time.Second)

	// Phone size: the shopper id is remembered, nothing is wider than the
	// screen, and buying still works.
	phone := chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile, chromedp.EmulateScale(2))
	do(t, shop, "shopper at phone size", phone, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(card(phoneID)+" .buy")))
	if got := eval[string](t, shop, `document.getElementById('shopper-id').value`); got != "4242" {
		t.Errorf("shopper id after a reload: %q, want 4242", got)
	}
	checkFits(t, shop, card(phoneID)+" .buy")
	do(t, shop, "buy at phone size", chromedp.Click(chromedp.CSS(card(phoneID)+" .buy")))
	waitOutcome(t, shop, phoneID, `^Ordered! order id \d+$`)
	waitFor(t, shop, "stock 2", cardIs(phoneID, "2 left", "Buy", false), 10*time.Second)
	screenshot(t, shop, "shopper-phone")

	do(t, admin, "admin at phone size", phone, chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(row+" button.add-stock")))
	waitFor(t, admin, "stats at phone size", rowIs(phoneID, map[string]string{"orders": "3"}), 30*time.Second)
	checkFits(t, admin, row+" button.add-stock")
	screenshot(t, admin, "admin-phone")

	exc.check(t)
}

// newBrowser starts headless Chromium for the test, bounded to a minute, and
// returns the context of its first tab.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required under CI: %v", chromiumPath, err)
		}
		t.Skipf("%s not found; install it with: apt-get update && apt-get install -y chromium", chromiumPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), // /dev/shm is tiny in containers
		chromedp.UserDataDir(t.TempDir()),
	)
	logs := testenv.LogWriter(t)
	logf := func(format string, args ...any) { fmt.Fprintf(logs, "chromium: "+format, args...) }
	tab, cancelTab := chromedp.NewContext(alloc, chromedp.WithErrorf(logf), chromedp.WithLogf(logf))
	t.Cleanup(func() { cancelTab(); cancelAlloc(); cancel() })
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return tab
}

func card(goodsID int64) string { return fmt.Sprintf(`[data-goods-id="%d"]`, goodsID) }

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls the page until js is truthy, and on a timeout fails with
// what the page shows.
func waitFor(t *testing.T, ctx context.Context, what, js string, timeout time.Duration) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %s: %v\npage shows:\n%s", what, err, text)
	}
}

// cardIs is a predicate on a shopper card's stock line and buy button.
func cardIs(goodsID int64, stock, button string, disabled bool) string {
	return fmt.Sprintf(`(() => {
		const c = document.querySelector(%q);
		if (!c) return false;
		const b = c.querySelector('.buy');
		return c.querySelector('.stock').textContent === %q && b.textContent === %q && b.disabled === %t;
	})()`, card(goodsID), stock, button, disabled)
}

// rowIs is a predicate on cells of an admin stats row.
func rowIs(goodsID int64, cells map[string]string) string {
	var conds []string
	for cls, want := range cells {
		conds = append(conds, fmt.Sprintf(`r.querySelector(%q).textContent === %q`, "td."+cls, want))
	}
	return fmt.Sprintf(`(() => { const r = document.querySelector(%q); return !!r && %s; })()`,
		"tr"+card(goodsID), strings.Join(conds, " && "))
}

// waitOutcome waits for a card's outcome to match pattern and returns it.
func waitOutcome(t *testing.T, ctx context.Context, goodsID int64, pattern string) string {
	t.Helper()
	sel := card(goodsID) + " .outcome"
	waitFor(t, ctx, "outcome "+pattern, fmt.Sprintf(`new RegExp(%q).test(document.querySelector(%q).textContent)`, pattern, sel), 10*time.Second)
	return eval[string](t, ctx, fmt.Sprintf(`document.querySelector(%q).textContent`, sel))
}

// forceClick enables a card's disabled buy button and clicks it, as a page
// with a stale view would, and checks the click disabled it at once.
func forceClick(t *testing.T, ctx context.Context, goodsID int64) {
	t.Helper()
	if !eval[bool](t, ctx, fmt.Sprintf(`(() => {
		const b = document.querySelector(%q);
		b.disabled = false;
		b.click();
		return b.disabled;
	})()`, card(goodsID)+" .buy")) {
		t.Error("buy button still enabled right after the click")
	}
}

// createFromPage fills the admin page's create form; start and end are
// datetime-local values or empty.
func createFromPage(t *testing.T, ctx context.Context, name string, stock int, start, end string) {
	t.Helper()
	do(t, ctx, "create "+name,
		chromedp.SetValue(chromedp.ID("create-name"), name),
		chromedp.SetValue(chromedp.ID("create-stock"), fmt.Sprint(stock)),
		chromedp.SetValue(chromedp.ID("create-start"), start),
		chromedp.SetValue(chromedp.ID("create-end"), end),
		chromedp.Click(chromedp.ID("create-submit")))
	waitFor(t, ctx, "the notice for "+name, fmt.Sprintf(`document.getElementById('notice').textContent.includes(%q)`, "“"+name+"”"), 10*time.Second)
}

// rowID waits for the admin table's row of the goods named name.
func rowID(t *testing.T, ctx context.Context, name string) int64 {
	t.Helper()
	id, err := chromedp.Run(ctx, chromedp.Poll[int64](fmt.Sprintf(`(() => {
		const td = [...document.querySelectorAll('#goods-table td.name')].find(td => td.textContent === %q);
		return td ? Number(td.parentElement.dataset.goodsId) : 0;
	})()`, name), chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		t.Fatalf("row of %s: %v", name, err)
	}
	return id
}

// checkFits asserts the page scrolls only vertically and sel is on screen
// horizontally.
func checkFits(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	type layout struct {
		ViewportWidth, PageWidth, Left, Right float64
		Visible                               bool
	}
	got := eval[layout](t, ctx, fmt.Sprintf(`(() => {
		const r = document.querySelector(%q).getBoundingClientRect();
		return {ViewportWidth: window.innerWidth, PageWidth: document.documentElement.scrollWidth,
			Left: r.left, Right: r.right, Visible: r.width > 0 && r.height > 0};
	})()`, sel))
	if got.ViewportWidth != 375 || got.PageWidth > got.ViewportWidth || !got.Visible || got.Left < 0 || got.Right > got.ViewportWidth {
		t.Errorf("%s at phone size: %+v, want a 375px page no wider than the screen with the element inside it", sel, got)
	}
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(screenshotDir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// exceptions records the uncaught exceptions of the watched tabs.
type exceptions struct {
	mu   sync.Mutex
	seen []string
}

func (x *exceptions) watch(tab context.Context) {
	msgs := chromedp.Console(tab) // subscribes now, before the page runs
	go func() {
		for m, err := range msgs {
			if err != nil {
				return // the tab is gone
			}
			if m.IsException() {
				x.mu.Lock()
				x.seen = append(x.seen, fmt.Sprintf("%s (%s:%d)", m.Text, m.URL, m.Line+1))
				x.mu.Unlock()
			}
		}
	}()
}

func (x *exceptions) check(t *testing.T) {
	t.Helper()
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range x.seen {
		t.Errorf("uncaught exception in a page: %s", s)
	}
}
