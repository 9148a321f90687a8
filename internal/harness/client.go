package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/recovery"
)

// Client talks to one instance over its HTTP API, sending the admin token
// with every request.
type Client struct {
	Base  string // http://host:port
	Token string
	HTTP  *http.Client
}

// NewClient is a client of the instance at base, with room for a stampede's
// connections.
func NewClient(base, token string) *Client {
	return &Client{Base: base, Token: token, HTTP: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 256,
			MaxConnsPerHost:     256,
			IdleConnTimeout:     30 * time.Second,
		},
	}}
}

// Send sends body (JSON-encoded unless it is a string, which goes as it is)
// with the admin token and the header pairs given (a Content-Type among
// them replaces application/json), and returns the status and the answer.
func (c *Client) Send(ctx context.Context, method, path string, body any, header ...string) (int, []byte, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if b, ok := body.(map[string]int64); ok {
		if user, ok := b["user_id"]; ok {
			req.Header.Set("X-Forwarded-For", UserIP(user))
		}
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// UserIP is the address the client says a user's requests come from
// (X-Forwarded-For, which the instances trust from loopback): each buyer
// its own, as behind a real edge, so that the limited versions' limit per
// address meets buyers rather than the test's one address.
func UserIP(userID int64) string {
	return fmt.Sprintf("10.%d.%d.%d", userID>>16&255, userID>>8&255, userID&255)
}

// Do sends body as Send does and decodes a JSON answer into out (when not
// nil).
func (c *Client) Do(ctx context.Context, method, path string, body, out any, header ...string) (int, error) {
	code, data, err := c.Send(ctx, method, path, body, header...)
	if err != nil {
		return code, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return code, fmt.Errorf("%s %s: decode %q: %w", method, path, data, err)
		}
	}
	return code, nil
}

// Call is Do for a test: a request that gets no answer, or one that does
// not decode, fails the test (not fatally, so goroutines may call it).
func (c *Client) Call(tb testing.TB, method, path string, body, out any) int {
	tb.Helper()
	code, err := c.Do(context.Background(), method, path, body, out)
	if err != nil {
		tb.Error(err)
	}
	return code
}

// Raw sends body as it is with contentType (none when empty) and the header
// pairs given, and returns the status and the answer's error code.
func (c *Client) Raw(tb testing.TB, method, path, contentType, body string, header ...string) (int, string) {
	tb.Helper()
	var a struct {
		Error string `json:"error"`
	}
	req, err := http.NewRequest(method, c.Base+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		tb.Errorf("%s %s: %v", method, path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &a)
	return resp.StatusCode, a.Error
}

// OrderAnswer is the answer to an order: the order, or the error code.
type OrderAnswer struct {
	service.Order
	Error string `json:"error"`
}

// Order places an order of number units through /order<version> ("" is
// the best version). Through a version that accepts asynchronously, it
// polls the token until the request ends, and answers as the synchronous
// versions do: 201 with the order, or the failure's status and code.
func (c *Client) Order(tb testing.TB, version string, userID, goodsID, number int64) (int, OrderAnswer) {
	tb.Helper()
	return c.order(tb, version, "", userID, goodsID, number)
}

// OrderWithKey places an order of one unit with an Idempotency-Key, as
// Order does.
func (c *Client) OrderWithKey(tb testing.TB, version, key string, userID, goodsID int64) (int, OrderAnswer) {
	tb.Helper()
	return c.order(tb, version, key, userID, goodsID, 1)
}

func (c *Client) order(tb testing.TB, version, key string, userID, goodsID, number int64) (int, OrderAnswer) {
	tb.Helper()
	var a OrderAnswer
	var acc service.Acceptance
	var header []string
	if key != "" {
		header = []string{"Idempotency-Key", key}
	}
	out := any(&a)
	if v, ok := service.FindVersion(version); ok && v.AsyncAccept {
		out = &rawAnswer{order: &a, acceptance: &acc}
	}
	code, err := c.Do(context.Background(), "POST", "/order"+version,
		map[string]int64{"user_id": userID, "goods_id": goodsID, "number": number}, out, header...)
	if err != nil {
		tb.Error(err)
		return code, a
	}
	if code != http.StatusAccepted {
		return code, a
	}
	return c.Await(tb, acc.Token)
}

// rawAnswer decodes an answer both as an order (its error) and as an
// acceptance.
type rawAnswer struct {
	order      *OrderAnswer
	acceptance *service.Acceptance
}

func (r *rawAnswer) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, r.order); err != nil {
		return err
	}
	return json.Unmarshal(b, r.acceptance)
}

// awaitFor bounds how long Await polls one token.
const awaitFor = 60 * time.Second

// failedStatus is the status a synchronous version answers the refusal a
// failed request names with.
var failedStatus = map[string]int{"sold_out": http.StatusConflict, "limit_exceeded": http.StatusConflict, "not_started": http.StatusConflict,
	"ended": http.StatusConflict, "not_found": http.StatusNotFound, "unavailable": http.StatusServiceUnavailable}

// Await polls the accepted request token until it ends: 201 with its
// order, or the status and code its failure stands for (422 for a reason
// no synchronous refusal has). A token still pending after a minute fails
// the test.
func (c *Client) Await(tb testing.TB, token string) (int, OrderAnswer) {
	tb.Helper()
	deadline := time.Now().Add(awaitFor)
	for {
		var acc service.Acceptance
		code, err := c.Do(context.Background(), "GET", "/seckill/"+token, nil, &acc)
		switch {
		case err != nil:
			tb.Error(err)
			return 0, OrderAnswer{}
		case code == http.StatusOK && acc.Status == service.AcceptOrdered && acc.Order != nil:
			return http.StatusCreated, OrderAnswer{Order: *acc.Order}
		case code == http.StatusOK && acc.Status == service.AcceptFailed:
			status, ok := failedStatus[acc.Reason]
			if !ok {
				status = http.StatusUnprocessableEntity
			}
			return status, OrderAnswer{Error: acc.Reason}
		case code != http.StatusOK && code != http.StatusServiceUnavailable:
			tb.Errorf("GET /seckill/%s: status %d", token, code)
			return code, OrderAnswer{}
		case time.Now().After(deadline):
			tb.Errorf("token %s still %s after %s", token, acc.Status, awaitFor)
			return code, OrderAnswer{}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// AwaitAll polls every token, eight at a time, until each has ended or
// within has passed: ended holds each ended token's last answer, pending
// the tokens that had not ended by then.
func (c *Client) AwaitAll(tokens []string, within time.Duration) (ended map[string]service.Acceptance, pending []string) {
	ended = map[string]service.Acceptance{}
	deadline := time.Now().Add(within)
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan string)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tok := range work {
				for {
					var acc service.Acceptance
					code, err := c.Do(context.Background(), "GET", "/seckill/"+tok, nil, &acc)
					if err == nil && code == http.StatusOK && acc.Status != service.AcceptPending {
						mu.Lock()
						ended[tok] = acc
						mu.Unlock()
						break
					}
					if time.Now().After(deadline) {
						mu.Lock()
						pending = append(pending, tok)
						mu.Unlock()
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	for _, tok := range tokens {
		work <- tok
	}
	close(work)
	wg.Wait()
	return ended, pending
}

// CreateGoods puts stock units of a new goods on sale.
func (c *Client) CreateGoods(tb testing.TB, stock int64) service.Goods {
	tb.Helper()
	var g service.Goods
	if code := c.Call(tb, "POST", "/admin/goods", map[string]any{"name": "phone", "stock": stock}, &g); code != http.StatusCreated || g.ID < 1 {
		tb.Fatalf("create goods: status %d, %+v", code, g)
	}
	return g
}

// Added is the answer to a stock addition.
type Added struct {
	ID       int64 `json:"id"`
	Stock    int64 `json:"stock"`
	Sale     int64 `json:"sale"`
	Replayed bool  `json:"replayed"`
}

// AddStock adds units to goodsID under opID ("" lets the service make one)
// and returns the status and the answer.
func (c *Client) AddStock(tb testing.TB, goodsID, units int64, opID string) (int, Added) {
	tb.Helper()
	body := map[string]any{"id": goodsID, "add_stock": units}
	if opID != "" {
		body["op_id"] = opID
	}
	var a Added
	code := c.Call(tb, "POST", "/admin/goods", body, &a)
	return code, a
}

// Stats is GET /admin/goods/:id/stats.
func (c *Client) Stats(tb testing.TB, goodsID int64) service.Stats {
	tb.Helper()
	var st service.Stats
	if code := c.Call(tb, "GET", fmt.Sprintf("/admin/goods/%d/stats", goodsID), nil, &st); code != http.StatusOK {
		tb.Fatalf("stats: status %d", code)
	}
	return st
}

// Pay pays orderID as userID and returns the status and the error code.
func (c *Client) Pay(tb testing.TB, orderID, userID int64) (int, string) {
	tb.Helper()
	return c.Raw(tb, "POST", fmt.Sprintf("/orders/%d/pay", orderID), "application/json", fmt.Sprintf(`{"user_id":%d}`, userID))
}

// Reconcile runs one reconciliation pass now and returns what it saw of
// each goods.
func (c *Client) Reconcile(tb testing.TB) []recovery.Drift {
	tb.Helper()
	var r struct {
		Goods []recovery.Drift `json:"goods"`
	}
	if code := c.Call(tb, "POST", "/admin/reconcile", nil, &r); code != http.StatusOK {
		tb.Fatalf("reconcile: status %d", code)
	}
	return r.Goods
}

// Scrape reads the instance's /metrics from its internal listener, by
// metric family name.
func (in *Instance) Scrape(tb testing.TB) map[string]*dto.MetricFamily {
	tb.Helper()
	if in.MetricsURL == "" {
		tb.Fatal("the instance serves no metrics (metrics.addr is empty)")
	}
	resp, err := in.HTTP.Get(in.MetricsURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %s", in.MetricsURL, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("parse %s: %v", in.MetricsURL, err)
	}
	return fams
}

// Labels are a metric's labels by name.
func Labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}
