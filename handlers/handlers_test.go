package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/go-seckill/seckill/admission"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/recovery"
)

func init() { gin.SetMode(gin.TestMode) }

// fakeService is a Service whose every method is a func field. A nil field
// panics (which the router turns into 500 internal), except Ready, which
// reports ready. Every call is recorded, so a test can assert that the
// service was, or was not, reached.
type fakeService struct {
	PlaceOrderOnceFn func(ctx context.Context, version string, req service.OrderRequest, key string) (service.Order, error)
	PriorOrderFn     func(ctx context.Context, version string, req service.OrderRequest, key string) (service.Order, bool, error)
	AcceptFn         func(ctx context.Context, version string, req service.OrderRequest, key string) (service.Acceptance, error)
	AcceptanceFn     func(ctx context.Context, version, token string) (service.Acceptance, error)
	CreateGoodsFn    func(ctx context.Context, g service.NewGoods) (service.Goods, error)
	AddStockFn       func(ctx context.Context, goodsID, n int64, opID string) (service.Goods, bool, error)
	GoodsFn          func(ctx context.Context, id int64) (service.Goods, error)
	ListGoodsFn      func(ctx context.Context) ([]service.Goods, error)
	ShopperGoodsFn   func(ctx context.Context) ([]service.Goods, error)
	StatsFn          func(ctx context.Context, id int64) (service.Stats, error)
	ReconcileFn      func(ctx context.Context) ([]recovery.Drift, error)
	PayFn            func(ctx context.Context, orderID, userID, couponID int64) (service.OrderDetail, error)
	OrderFn          func(ctx context.Context, orderID, userID int64) (service.OrderDetail, error)
	UserOrdersFn     func(ctx context.Context, userID int64) ([]service.OrderDetail, error)
	EditGoodsFn      func(ctx context.Context, id int64, name string, w service.SaleWindow) (service.Goods, error)
	ReadyFn          func(ctx context.Context) error

	mu    sync.Mutex
	calls []string
}

var (
	_ Orders     = (*fakeService)(nil)
	_ Catalog    = (*fakeService)(nil)
	_ Payments   = (*fakeService)(nil)
	_ Reconciler = (*fakeService)(nil)
)

// service is the fake standing in for every unit of the domain.
func (f *fakeService) service() Service {
	return Service{Orders: f, Catalog: f, Payments: f, Reconciler: f, Ready: f.Ready}
}

func (f *fakeService) record(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
}

// Calls lists the methods called so far, in order.
func (f *fakeService) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func unexpected(name string) { panic("fakeService: unexpected call to " + name) }

func (f *fakeService) PriorOrder(ctx context.Context, version string, req service.OrderRequest, key string) (service.Order, bool, error) {
	f.record("PriorOrder")
	if f.PriorOrderFn == nil {
		unexpected("PriorOrder")
	}
	return f.PriorOrderFn(ctx, version, req, key)
}

func (f *fakeService) PlaceOrderOnce(ctx context.Context, version string, req service.OrderRequest, key string) (service.Order, error) {
	f.record("PlaceOrderOnce")
	if f.PlaceOrderOnceFn == nil {
		unexpected("PlaceOrderOnce")
	}
	return f.PlaceOrderOnceFn(ctx, version, req, key)
}

func (f *fakeService) Accept(ctx context.Context, version string, req service.OrderRequest, key string) (service.Acceptance, error) {
	f.record("Accept")
	if f.AcceptFn == nil {
		unexpected("Accept")
	}
	return f.AcceptFn(ctx, version, req, key)
}

func (f *fakeService) Acceptance(ctx context.Context, version, token string) (service.Acceptance, error) {
	f.record("Acceptance")
	if f.AcceptanceFn == nil {
		unexpected("Acceptance")
	}
	return f.AcceptanceFn(ctx, version, token)
}

func (f *fakeService) CreateGoods(ctx context.Context, g service.NewGoods) (service.Goods, error) {
	f.record("CreateGoods")
	if f.CreateGoodsFn == nil {
		unexpected("CreateGoods")
	}
	return f.CreateGoodsFn(ctx, g)
}

func (f *fakeService) AddStock(ctx context.Context, goodsID, n int64, opID string) (service.Goods, bool, error) {
	f.record("AddStock")
	if f.AddStockFn == nil {
		unexpected("AddStock")
	}
	return f.AddStockFn(ctx, goodsID, n, opID)
}

func (f *fakeService) Goods(ctx context.Context, id int64) (service.Goods, error) {
	f.record("Goods")
	if f.GoodsFn == nil {
		unexpected("Goods")
	}
	return f.GoodsFn(ctx, id)
}

func (f *fakeService) ListGoods(ctx context.Context) ([]service.Goods, error) {
	f.record("ListGoods")
	if f.ListGoodsFn == nil {
		unexpected("ListGoods")
	}
	return f.ListGoodsFn(ctx)
}

func (f *fakeService) ShopperGoods(ctx context.Context) ([]service.Goods, error) {
	f.record("ShopperGoods")
	if f.ShopperGoodsFn == nil {
		unexpected("ShopperGoods")
	}
	return f.ShopperGoodsFn(ctx)
}

func (f *fakeService) Stats(ctx context.Context, id int64) (service.Stats, error) {
	f.record("Stats")
	if f.StatsFn == nil {
		unexpected("Stats")
	}
	return f.StatsFn(ctx, id)
}

func (f *fakeService) Reconcile(ctx context.Context) ([]recovery.Drift, error) {
	f.record("Reconcile")
	if f.ReconcileFn == nil {
		unexpected("Reconcile")
	}
	return f.ReconcileFn(ctx)
}

func (f *fakeService) ReconcileAll(ctx context.Context) ([]recovery.Drift, error) {
	f.record("ReconcileAll")
	unexpected("ReconcileAll")
	return nil, nil
}

func (f *fakeService) Pay(ctx context.Context, orderID, userID, couponID int64) (service.OrderDetail, error) {
	f.record("Pay")
	if f.PayFn == nil {
		unexpected("Pay")
	}
	return f.PayFn(ctx, orderID, userID, couponID)
}

func (f *fakeService) Order(ctx context.Context, orderID, userID int64) (service.OrderDetail, error) {
	f.record("Order")
	if f.OrderFn == nil {
		unexpected("Order")
	}
	return f.OrderFn(ctx, orderID, userID)
}

func (f *fakeService) UserOrders(ctx context.Context, userID int64) ([]service.OrderDetail, error) {
	f.record("UserOrders")
	if f.UserOrdersFn == nil {
		unexpected("UserOrders")
	}
	return f.UserOrdersFn(ctx, userID)
}

func (f *fakeService) EditGoods(ctx context.Context, id int64, name string, w service.SaleWindow) (service.Goods, error) {
	f.record("EditGoods")
	if f.EditGoodsFn == nil {
		unexpected("EditGoods")
	}
	return f.EditGoodsFn(ctx, id, name, w)
}

func (f *fakeService) Ready(ctx context.Context) error {
	f.record("Ready")
	if f.ReadyFn == nil {
		return nil
	}
	return f.ReadyFn(ctx)
}

const (
	testToken    = "test-admin-token"
	testMaxBody  = 256
	orderBodyStr = `{"user_id":1,"goods_id":7,"number":1}`
	// secret stands for internal detail (addresses, driver text) that a
	// failing dependency puts in its error and a client must never see.
	secret = "dial tcp 10.9.8.7:3306: connect: connection refused"
)

func testOptions() Options {
	return Options{
		AdminToken:   testToken,
		MaxBodyBytes: testMaxBody,
		MaxInFlight:  8,
		Log:          slog.New(slog.DiscardHandler),
	}
}

// request builds a request. A non-empty body is sent as application/json
// with its Content-Length; headers come in name, value pairs and an empty
// value removes the header.
func request(method, target, body string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			r.Header.Del(headers[i])
		} else {
			r.Header.Set(headers[i], headers[i+1])
		}
	}
	return r
}

func admin(r *http.Request) *http.Request {
	r.Header.Set("Authorization", "Bearer "+testToken)
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// errorOf decodes an error response, failing the test if it is not one.
func errorOf(t *testing.T, w *httptest.ResponseRecorder) errorBody {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, want JSON; body %q", ct, w.Body.String())
	}
	var b errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("body %q is not an error body: %v", w.Body.String(), err)
	}
	return b
}

// wantError asserts the status and the error code of a response.
func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) errorBody {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body.String())
	}
	b := errorOf(t, w)
	if b.Error != code {
		t.Fatalf("error = %q, want %q; body %s", b.Error, code, w.Body.String())
	}
	return b
}

func wantCalls(t *testing.T, f *fakeService, want ...string) {
	t.Helper()
	if got := f.Calls(); !slices.Equal(got, want) {
		t.Fatalf("service calls = %q, want %q", got, want)
	}
}

// TestErrorTable answers each service error of statusOf, bare and wrapped,
// with its status and code. 4xx carry the error's text for the client; 5xx
// carry Retry-After and a fixed sentence, never the error's text.
func TestErrorTable(t *testing.T) {
	want := map[error]struct {
		status int
		code   string
	}{
		service.ErrInvalid:            {http.StatusBadRequest, "invalid_request"},
		service.ErrNotFound:           {http.StatusNotFound, "not_found"},
		service.ErrSoldOut:            {http.StatusConflict, "sold_out"},
		service.ErrNotStarted:         {http.StatusConflict, "not_started"},
		service.ErrEnded:              {http.StatusConflict, "ended"},
		service.ErrNotReserved:        {http.StatusForbidden, "not_reserved"},
		service.ErrReservationsClosed: {http.StatusConflict, "reservations_closed"},
		service.ErrInProgress:         {http.StatusConflict, "request_in_progress"},
		service.ErrLimitExceeded:      {http.StatusConflict, "limit_exceeded"},
		service.ErrOrderCancelled:     {http.StatusConflict, "order_cancelled"},
		service.ErrOrderExpired:       {http.StatusConflict, "order_expired"},
		service.ErrOrderRefused:       {http.StatusConflict, "order_refused"},
		service.ErrOrderPending:       {http.StatusConflict, "order_pending"},
		service.ErrKeyMismatch:        {http.StatusUnprocessableEntity, "idempotency_key_mismatch"},
		service.ErrOutOfStock:         {http.StatusConflict, "out_of_stock"},
		service.ErrCouponUsed:         {http.StatusConflict, "coupon_used"},
		service.ErrCouponExpired:      {http.StatusConflict, "coupon_expired"},
		service.ErrThresholdNotMet:    {http.StatusConflict, "threshold_not_met"},
		service.ErrNotReplayable:      {http.StatusConflict, "not_replayable"},
		service.ErrNotSplittable:      {http.StatusConflict, "not_splittable"},
		service.ErrNotSplit:           {http.StatusConflict, "not_split"},
		service.ErrStockNotLoaded:     {http.StatusServiceUnavailable, "stock_not_loaded"},
		service.ErrAmbiguous:          {http.StatusServiceUnavailable, "outcome_unknown"},
		service.ErrUnavailable:        {http.StatusServiceUnavailable, "unavailable"},
		service.ErrMoving:             {http.StatusServiceUnavailable, "busy"},
		admission.ErrTwin:             {http.StatusTooManyRequests, "too_many_requests"},
		admission.ErrEarly:            {http.StatusForbidden, "ordered_early"},
	}
	if len(statusOf) != len(want) {
		t.Errorf("statusOf has %d rows, this test knows %d: keep them in step", len(statusOf), len(want))
	}
	for _, row := range statusOf {
		w, ok := want[row.err]
		if !ok {
			t.Errorf("statusOf row %q (%d %s) is not tested", row.err, row.status, row.code)
			continue
		}
		for _, err := range []error{row.err, fmt.Errorf("goods 7: %s: %w", secret, row.err)} {
			t.Run(w.code+"/"+err.Error(), func(t *testing.T) {
				f := &fakeService{PlaceOrderOnceFn: func(context.Context, string, service.OrderRequest, string) (service.Order, error) {
					return service.Order{}, err
				}}
				resp := serve(New(f.service(), testOptions()), request("POST", "/order", orderBodyStr))
				b := wantError(t, resp, w.status, w.code)
				wantCalls(t, f, "PlaceOrderOnce")
				retry := resp.Header().Get("Retry-After")
				if w.status >= 500 {
					if retry == "" {
						t.Errorf("a %d has no Retry-After", w.status)
					}
					if strings.Contains(b.Message, err.Error()) || strings.Contains(resp.Body.String(), secret) {
						t.Errorf("a %d shows the error's text: %s", w.status, resp.Body.String())
					}
					if b.Message == "" {
						t.Errorf("a %d has no message", w.status)
					}
				} else {
					if retry != "" {
						t.Errorf("a %d has Retry-After %q", w.status, retry)
					}
					if b.Message != err.Error() {
						t.Errorf("message = %q, want the error's text %q", b.Message, err.Error())
					}
				}
			})
		}
	}
}

// TestUnknownOrder: an order whose outcome is unknown is 503 outcome_unknown
// naming the order, so the client can retry under its Idempotency-Key.
func TestUnknownOrder(t *testing.T) {
	unknown := &service.UnknownOrder{Order: service.Order{ID: 1234567890123}, Err: fmt.Errorf("%s: %w", secret, service.ErrAmbiguous)}
	for _, err := range []error{unknown, fmt.Errorf("placing: %w", unknown)} {
		t.Run(err.Error(), func(t *testing.T) {
			f := &fakeService{PlaceOrderOnceFn: func(context.Context, string, service.OrderRequest, string) (service.Order, error) {
				return service.Order{}, err
			}}
			resp := serve(New(f.service(), testOptions()), request("POST", "/order", orderBodyStr))
			b := wantError(t, resp, http.StatusServiceUnavailable, "outcome_unknown")
			if b.OrderID != "1234567890123" {
				t.Errorf("order_id = %q, want 1234567890123", b.OrderID)
			}
			if resp.Header().Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
			if strings.Contains(resp.Body.String(), secret) {
				t.Errorf("body shows the error's text: %s", resp.Body.String())
			}
		})
	}
}

// TestUnexpectedError: an error outside the table, and a panic, are 500
// internal without their text.
func TestUnexpectedError(t *testing.T) {
	for name, place := range map[string]func(context.Context, string, service.OrderRequest, string) (service.Order, error){
		"error": func(context.Context, string, service.OrderRequest, string) (service.Order, error) {
			return service.Order{}, fmt.Errorf("goods 7: %s", secret)
		},
		"panic": func(context.Context, string, service.OrderRequest, string) (service.Order, error) {
			panic(secret)
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeService{PlaceOrderOnceFn: place}
			opts := testOptions()
			opts.MaxInFlight = 1
			h := New(f.service(), opts)
			resp := serve(h, request("POST", "/order", orderBodyStr))
			wantError(t, resp, http.StatusInternalServerError, "internal")
			if strings.Contains(resp.Body.String(), secret) {
				t.Errorf("body shows the error's text: %s", resp.Body.String())
			}
			// The order slot is given back even after a panic: the next
			// order is served, not shed.
			resp = serve(h, request("POST", "/order", orderBodyStr))
			wantError(t, resp, http.StatusInternalServerError, "internal")
			wantCalls(t, f, "PlaceOrderOnce", "PlaceOrderOnce")
		})
	}
}

// TestOrder: each order route hands its version, the body and the
// Idempotency-Key to the service and answers 201 with the order.
func TestOrder(t *testing.T) {
	routes := map[string]string{"/order": service.BestVersion().Name}
	for _, v := range service.Versions() {
		if !v.AsyncAccept {
			routes["/order"+v.Name] = v.Name
		}
	}
	for path, version := range routes {
		t.Run(path, func(t *testing.T) {
			var got struct {
				version string
				req     service.OrderRequest
				key     string
			}
			f := &fakeService{PlaceOrderOnceFn: func(_ context.Context, v string, req service.OrderRequest, key string) (service.Order, error) {
				got.version, got.req, got.key = v, req, key
				return service.Order{ID: 99, UserID: req.UserID, GoodsID: req.GoodsID, Number: req.Number, Version: v}, nil
			}}
			resp := serve(New(f.service(), testOptions()), request("POST", path, `{"user_id":5,"goods_id":7,"number":2}`, "Idempotency-Key", "k-1"))
			if resp.Code != http.StatusCreated {
				t.Fatalf("status = %d, want 201; body %s", resp.Code, resp.Body.String())
			}
			wantReq := service.OrderRequest{UserID: 5, GoodsID: 7, Number: 2}
			if got.version != version || got.req != wantReq || got.key != "k-1" {
				t.Errorf("service got (%q, %+v, %q), want (%q, %+v, %q)", got.version, got.req, got.key, version, wantReq, "k-1")
			}
			var o service.Order
			if err := json.Unmarshal(resp.Body.Bytes(), &o); err != nil || o.ID != 99 || o.Version != version {
				t.Errorf("body %s: want order 99 of %s (%v)", resp.Body.String(), version, err)
			}
		})
	}
}

// chunked makes r's body arrive without a Content-Length.
func chunked(r *http.Request) *http.Request {
	r.ContentLength = -1
	r.Body = io.NopCloser(io.MultiReader(r.Body))
	return r
}

// TestDecoding covers every rule of decode and of the path ids. No row but
// the accepted ones may reach the service.
func TestDecoding(t *testing.T) {
	big := `{"user_id":1,"goods_id":7,"number":1` + strings.Repeat(" ", testMaxBody) + `}`
	exact := orderBodyStr[:len(orderBodyStr)-1] + strings.Repeat(" ", testMaxBody-len(orderBodyStr)) + "}"
	tests := []struct {
		name   string
		req    *http.Request
		status int
		code   string // "" for a success
		msg    string // a part of the message, if it matters
	}{
		{"no content type", request("POST", "/order", orderBodyStr, "Content-Type", ""), 415, "unsupported_media_type", ""},
		{"text content type", request("POST", "/order", orderBodyStr, "Content-Type", "text/plain"), 415, "unsupported_media_type", ""},
		{"form content type", request("POST", "/order", "user_id=1", "Content-Type", "application/x-www-form-urlencoded"), 415, "unsupported_media_type", ""},
		{"bad content type", request("POST", "/order", orderBodyStr, "Content-Type", "application/json; ;"), 415, "unsupported_media_type", ""},
		{"pay without content type", request("POST", "/orders/5/pay", `{"user_id":1}`, "Content-Type", ""), 415, "unsupported_media_type", ""},
		{"admin without content type", admin(request("POST", "/admin/goods", `{"name":"x","stock":1}`, "Content-Type", "")), 415, "unsupported_media_type", ""},
		{"json with charset", request("POST", "/order", orderBodyStr, "Content-Type", "application/json; charset=utf-8"), 201, "", ""},
		{"too large by Content-Length", request("POST", "/order", big), 413, "body_too_large", ""},
		{"too large chunked", chunked(request("POST", "/order", big)), 413, "body_too_large", ""},
		{"too large chunked trailing space", chunked(request("POST", "/order", orderBodyStr+strings.Repeat(" ", testMaxBody))), 413, "body_too_large", ""},
		{"exactly the limit", request("POST", "/order", exact), 201, "", ""},
		{"exactly the limit chunked", chunked(request("POST", "/order", exact)), 201, "", ""},
		{"malformed", request("POST", "/order", `{"user_id":1,`), 400, "invalid_json", ""},
		{"not json", request("POST", "/order", `user_id=1`), 400, "invalid_json", ""},
		{"empty", request("POST", "/order", "", "Content-Type", "application/json"), 400, "invalid_json", ""},
		{"two objects", request("POST", "/order", orderBodyStr+` {}`), 400, "invalid_json", ""},
		{"trailing garbage", request("POST", "/order", orderBodyStr+`x`), 400, "invalid_json", ""},
		{"empty objects", request("POST", "/order", `{} {}`), 400, "invalid_json", ""},
		{"empty object then garbage", request("POST", "/order", `{}x`), 400, "invalid_json", ""},
		{"trailing whitespace", request("POST", "/order", orderBodyStr+" \n"), 201, "", ""},
		{"array", request("POST", "/order", `[1,7,1]`), 400, "invalid_request", "JSON object"},
		{"string", request("POST", "/order", `"order"`), 400, "invalid_request", "JSON object"},
		{"number", request("POST", "/order", `1`), 400, "invalid_request", "JSON object"},
		{"unknown field", request("POST", "/order", `{"user_id":1,"goods_id":7,"number":1,"coupon":"x"}`), 400, "invalid_request", `"coupon"`},
		{"user_id string", request("POST", "/order", `{"user_id":"1","goods_id":7,"number":1}`), 400, "invalid_request", "user_id"},
		{"user_id float", request("POST", "/order", `{"user_id":1.5,"goods_id":7,"number":1}`), 400, "invalid_request", "user_id"},
		{"user_id exponent", request("POST", "/order", `{"user_id":1e3,"goods_id":7,"number":1}`), 400, "invalid_request", "user_id"},
		{"user_id above 2^63-1", request("POST", "/order", `{"user_id":9223372036854775808,"goods_id":7,"number":1}`), 400, "invalid_request", "user_id"},
		{"user_id below -2^63", request("POST", "/order", `{"user_id":-9223372036854775809,"goods_id":7,"number":1}`), 400, "invalid_request", "user_id"},
		{"user_id bool", request("POST", "/order", `{"user_id":true,"goods_id":7,"number":1}`), 400, "invalid_request", "user_id"},
		{"pay user_id float", request("POST", "/orders/5/pay", `{"user_id":2.0}`), 400, "invalid_request", "user_id"},
		{"all fields missing", request("POST", "/order", `{}`), 400, "invalid_request", "missing integer field(s): goods_id, number, user_id"},
		{"two fields missing", request("POST", "/order", `{"goods_id":7}`), 400, "invalid_request", "missing integer field(s): number, user_id"},
		{"null field", request("POST", "/order", `{"user_id":null,"goods_id":7,"number":1}`), 400, "invalid_request", "missing integer field(s): user_id"},
		{"pay user_id missing", request("POST", "/orders/5/pay", `{}`), 400, "invalid_request", "missing integer field(s): user_id"},
		{"add stock missing", admin(request("POST", "/admin/goods", `{"id":7}`)), 400, "invalid_request", "missing integer field(s): add_stock"},
		{"bad start_at", admin(request("POST", "/admin/goods", `{"name":"x","stock":1,"start_at":"tomorrow"}`)), 400, "invalid_request", "RFC 3339"},
		{"start_at without zone", admin(request("POST", "/admin/goods", `{"name":"x","stock":1,"start_at":"2026-11-22T10:00:00"}`)), 400, "invalid_request", "RFC 3339"},
		{"bad end_at", admin(request("POST", "/admin/goods", `{"name":"x","stock":1,"end_at":"2026-13-01T00:00:00Z"}`)), 400, "invalid_request", "RFC 3339"},
		{"goods id zero", request("GET", "/goods/0", ""), 400, "invalid_request", "positive integer"},
		{"goods id negative", request("GET", "/goods/-3", ""), 400, "invalid_request", "positive integer"},
		{"goods id word", request("GET", "/goods/abc", ""), 400, "invalid_request", "positive integer"},
		{"goods id overflow", request("GET", "/goods/9223372036854775808", ""), 400, "invalid_request", "positive integer"},
		{"pay id zero", request("POST", "/orders/0/pay", `{"user_id":1}`), 400, "invalid_request", "positive integer"},
		{"pay id word", request("POST", "/orders/x/pay", `{"user_id":1}`), 400, "invalid_request", "positive integer"},
		{"stats id word", admin(request("GET", "/admin/goods/x/stats", "")), 400, "invalid_request", "positive integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeService{PlaceOrderOnceFn: func(_ context.Context, v string, req service.OrderRequest, _ string) (service.Order, error) {
				return service.Order{ID: 1, UserID: req.UserID, GoodsID: req.GoodsID, Number: req.Number, Version: v}, nil
			}}
			resp := serve(New(f.service(), testOptions()), tt.req)
			if tt.code == "" {
				if resp.Code != tt.status {
					t.Fatalf("status = %d, want %d; body %s", resp.Code, tt.status, resp.Body.String())
				}
				wantCalls(t, f, "PlaceOrderOnce")
				return
			}
			b := wantError(t, resp, tt.status, tt.code)
			if !strings.Contains(b.Message, tt.msg) {
				t.Errorf("message = %q, want it to contain %q", b.Message, tt.msg)
			}
			wantCalls(t, f)
		})
	}
}

// TestBodyTooLargeClosesConnection: a body refused by its Content-Length
// is not read, so the connection cannot be reused.
func TestBodyTooLargeClosesConnection(t *testing.T) {
	f := &fakeService{}
	resp := serve(New(f.service(), testOptions()), request("POST", "/order", strings.Repeat(" ", testMaxBody+1)))
	wantError(t, resp, http.StatusRequestEntityTooLarge, "body_too_large")
	if resp.Header().Get("Connection") != "close" {
		t.Errorf("Connection = %q, want close", resp.Header().Get("Connection"))
	}
	wantCalls(t, f)
}

// TestAdminAuth: every admin API route wants the bearer token.
func TestAdminAuth(t *testing.T) {
	routes := []struct{ method, path, body string }{
		{"GET", "/admin/goods", ""},
		{"POST", "/admin/goods", `{"name":"x","stock":1}`},
		{"GET", "/admin/goods/7/stats", ""},
		{"POST", "/admin/reconcile", ""},
	}
	auths := map[string]string{
		"none":         "",
		"wrong token":  "Bearer nope",
		"token prefix": "Bearer " + testToken[:len(testToken)-1],
		"token suffix": "Bearer " + testToken + "x",
		"basic scheme": "Basic " + testToken,
		"bare token":   testToken,
		"empty bearer": "Bearer ",
	}
	for _, rt := range routes {
		for name, auth := range auths {
			t.Run(rt.method+rt.path+"/"+name, func(t *testing.T) {
				f := &fakeService{}
				resp := serve(New(f.service(), testOptions()), request(rt.method, rt.path, rt.body, "Authorization", auth))
				wantError(t, resp, http.StatusUnauthorized, "unauthorized")
				wantCalls(t, f)
			})
		}
	}
}

// TestAdminNoToken: handlers built without an admin token open no admin
// route, not even to an empty bearer token.
func TestAdminNoToken(t *testing.T) {
	opts := testOptions()
	opts.AdminToken = ""
	for _, auth := range []string{"", "Bearer ", "Bearer"} {
		t.Run(auth, func(t *testing.T) {
			f := &fakeService{ListGoodsFn: func(context.Context) ([]service.Goods, error) { return nil, nil }}
			resp := serve(New(f.service(), opts), request("GET", "/admin/goods", "", "Authorization", auth))
			wantError(t, resp, http.StatusUnauthorized, "unauthorized")
			wantCalls(t, f)
		})
	}
}

func TestAdminCreateGoods(t *testing.T) {
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var got service.NewGoods
	f := &fakeService{CreateGoodsFn: func(_ context.Context, ng service.NewGoods) (service.Goods, error) {
		got = ng
		return service.Goods{ID: 7, Name: ng.Name, Stock: ng.Stock, PerUserLimit: ng.PerUserLimit, SaleWindow: ng.SaleWindow}, nil
	}}
	resp := serve(New(f.service(), testOptions()), admin(request("POST", "/admin/goods",
		`{"name":"phone","stock":300,"start_at":"2026-11-22T12:00:00+02:00","end_at":null,"per_user_limit":2}`)))
	if resp.Code != http.StatusCreated {
		t.Fatalf("status = %d, want 201; body %s", resp.Code, resp.Body.String())
	}
	wantCalls(t, f, "CreateGoods")
	if got.Name != "phone" || got.Stock != 300 || got.PerUserLimit != 2 || got.StartAt == nil || !got.StartAt.Equal(start) || got.EndAt != nil {
		t.Errorf("service got %+v, want phone, 300, limit 2, from %v, no end", got, start)
	}
	var g service.Goods
	if err := json.Unmarshal(resp.Body.Bytes(), &g); err != nil || g.ID != 7 {
		t.Errorf("body %s: want goods 7 (%v)", resp.Body.String(), err)
	}
}

func TestAdminAddStock(t *testing.T) {
	for _, replayed := range []bool{false, true} {
		t.Run(fmt.Sprint("replayed=", replayed), func(t *testing.T) {
			var gotID, gotN int64
			var gotOp string
			f := &fakeService{AddStockFn: func(_ context.Context, id, n int64, op string) (service.Goods, bool, error) {
				gotID, gotN, gotOp = id, n, op
				return service.Goods{ID: id, Name: "phone", Stock: 10 + n, Sale: 3}, replayed, nil
			}}
			resp := serve(New(f.service(), testOptions()), admin(request("POST", "/admin/goods", `{"id":7,"add_stock":5,"op_id":"restock-1"}`)))
			if resp.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", resp.Code, resp.Body.String())
			}
			wantCalls(t, f, "AddStock")
			if gotID != 7 || gotN != 5 || gotOp != "restock-1" {
				t.Errorf("service got (%d, %d, %q), want (7, 5, restock-1)", gotID, gotN, gotOp)
			}
			var b struct {
				ID       int64 `json:"id"`
				Stock    int64 `json:"stock"`
				Sale     int64 `json:"sale"`
				Replayed *bool `json:"replayed"`
			}
			if err := json.Unmarshal(resp.Body.Bytes(), &b); err != nil {
				t.Fatal(err)
			}
			if b.ID != 7 || b.Stock != 15 || b.Sale != 3 || b.Replayed == nil || *b.Replayed != replayed {
				t.Errorf("body %s, want id 7, stock 15, sale 3, replayed %v", resp.Body.String(), replayed)
			}
		})
	}
}

// TestAdminMixedBody: a body that both creates goods and adds stock is
// refused whole, whichever fields it mixes.
func TestAdminMixedBody(t *testing.T) {
	for _, body := range []string{
		`{"id":7,"add_stock":5,"name":"x"}`,
		`{"id":7,"add_stock":5,"stock":1}`,
		`{"id":7,"name":"x","stock":1}`,
		`{"add_stock":5,"name":"x","stock":1}`,
		`{"id":7,"add_stock":5,"start_at":"2026-11-22T10:00:00Z"}`,
		`{"id":7,"add_stock":5,"end_at":"2026-11-22T10:00:00Z"}`,
		`{"id":7,"add_stock":5,"per_user_limit":1}`,
	} {
		t.Run(body, func(t *testing.T) {
			f := &fakeService{}
			resp := serve(New(f.service(), testOptions()), admin(request("POST", "/admin/goods", body)))
			b := wantError(t, resp, http.StatusBadRequest, "invalid_request")
			if !strings.Contains(b.Message, "either") {
				t.Errorf("message = %q, want it to explain the two shapes", b.Message)
			}
			wantCalls(t, f)
		})
	}
}

// TestAdminCreateMissing: creating goods needs a name and a stock.
func TestAdminCreateMissing(t *testing.T) {
	for _, body := range []string{`{}`, `{"name":"x"}`, `{"stock":1}`, `{"per_user_limit":1}`} {
		t.Run(body, func(t *testing.T) {
			f := &fakeService{}
			resp := serve(New(f.service(), testOptions()), admin(request("POST", "/admin/goods", body)))
			wantError(t, resp, http.StatusBadRequest, "invalid_request")
			wantCalls(t, f)
		})
	}
}

// TestShedding: past MaxInFlight orders in flight, another order is shed
// at once with 503 busy and never reaches the service.
func TestShedding(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	f := &fakeService{PlaceOrderOnceFn: func(context.Context, string, service.OrderRequest, string) (service.Order, error) {
		entered <- struct{}{}
		<-release
		return service.Order{ID: 1}, nil
	}, GoodsFn: func(context.Context, int64) (service.Goods, error) { return service.Goods{ID: 7}, nil }}
	opts := testOptions()
	opts.MaxInFlight = 1
	h := New(f.service(), opts)

	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- serve(h, request("POST", "/order", orderBodyStr)) }()
	<-entered

	resp := serve(h, request("POST", "/orderV1", orderBodyStr))
	wantError(t, resp, http.StatusServiceUnavailable, "busy")
	if resp.Header().Get("Retry-After") == "" {
		t.Error("busy has no Retry-After")
	}
	wantCalls(t, f, "PlaceOrderOnce")

	// Shedding is for orders only: other routes are still served.
	if resp := serve(h, request("GET", "/goods/7", "")); resp.Code != http.StatusOK {
		t.Errorf("GET /goods/7 while orders are full: status %d, want 200", resp.Code)
	}

	close(release)
	if resp := <-first; resp.Code != http.StatusCreated {
		t.Errorf("the first order: status %d, want 201; body %s", resp.Code, resp.Body.String())
	}
	// The slot is free again.
	go func() { <-entered }()
	if resp := serve(h, request("POST", "/order", orderBodyStr)); resp.Code != http.StatusCreated {
		t.Errorf("an order after the first ended: status %d, want 201; body %s", resp.Code, resp.Body.String())
	}
}

func TestHealthz(t *testing.T) {
	f := &fakeService{ReadyFn: func(context.Context) error { return errors.New("down") }}
	resp := serve(New(f.service(), testOptions()), request("GET", "/healthz", ""))
	if resp.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200 even with dependencies down", resp.Code)
	}
	var b struct {
		Status   string   `json:"status"`
		Versions []string `json:"versions"`
		Order    string   `json:"order"`
	}
	if err := json.Unmarshal(resp.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	if b.Status != "ok" || !slices.Equal(b.Versions, service.VersionNames()) || b.Order != service.BestVersion().Name {
		t.Errorf("body %s", resp.Body.String())
	}
	wantCalls(t, f)
}

func TestReadyz(t *testing.T) {
	t.Run("ready", func(t *testing.T) {
		f := &fakeService{}
		resp := serve(New(f.service(), testOptions()), request("GET", "/readyz", ""))
		if resp.Code != http.StatusOK || strings.TrimSpace(resp.Body.String()) != `{"status":"ready"}` {
			t.Errorf("got %d %s, want 200 {\"status\":\"ready\"}", resp.Code, resp.Body.String())
		}
		wantCalls(t, f, "Ready")
	})
	t.Run("draining", func(t *testing.T) {
		f := &fakeService{}
		opts := testOptions()
		opts.Draining = func() bool { return true }
		resp := serve(New(f.service(), opts), request("GET", "/readyz", ""))
		wantError(t, resp, http.StatusServiceUnavailable, "not_ready")
		wantCalls(t, f)
	})
	t.Run("not draining", func(t *testing.T) {
		f := &fakeService{}
		opts := testOptions()
		opts.Draining = func() bool { return false }
		resp := serve(New(f.service(), opts), request("GET", "/readyz", ""))
		if resp.Code != http.StatusOK {
			t.Errorf("status = %d, want 200", resp.Code)
		}
	})
	t.Run("ready with token", func(t *testing.T) {
		f := &fakeService{}
		resp := serve(New(f.service(), testOptions()), admin(request("GET", "/readyz", "")))
		if resp.Code != http.StatusOK || strings.TrimSpace(resp.Body.String()) != `{"status":"ready"}` {
			t.Errorf("got %d %s, want 200 {\"status\":\"ready\"}", resp.Code, resp.Body.String())
		}
	})
	t.Run("draining with token", func(t *testing.T) {
		f := &fakeService{}
		opts := testOptions()
		opts.Draining = func() bool { return true }
		resp := serve(New(f.service(), opts), admin(request("GET", "/readyz", "")))
		b := wantError(t, resp, http.StatusServiceUnavailable, "not_ready")
		if !strings.Contains(b.Message, "shutting down") {
			t.Errorf("message = %q, want it to say the instance is shutting down", b.Message)
		}
		wantCalls(t, f)
	})
}

// TestReadyzDetail: which dependency fails, and how, is internal: only the
// admin token sees it. Anyone else, a wrong token included, learns only
// that a dependency is not answering; a wrong token is not a 401, so
// probes that send none keep working.
func TestReadyzDetail(t *testing.T) {
	down := func(t *testing.T, opts Options, auth string) errorBody {
		t.Helper()
		f := &fakeService{ReadyFn: func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("Ready is called without a deadline")
			}
			return fmt.Errorf("redis: %s", secret)
		}}
		resp := serve(New(f.service(), opts), request("GET", "/readyz", "", "Authorization", auth))
		b := wantError(t, resp, http.StatusServiceUnavailable, "not_ready")
		wantCalls(t, f, "Ready")
		return b
	}
	for name, auth := range map[string]string{
		"no token":     "",
		"wrong token":  "Bearer nope",
		"bare token":   testToken,
		"empty bearer": "Bearer ",
	} {
		t.Run(name, func(t *testing.T) {
			b := down(t, testOptions(), auth)
			if b.Message != "a dependency is not answering" {
				t.Errorf("message = %q, want only %q", b.Message, "a dependency is not answering")
			}
		})
	}
	t.Run("no admin token configured", func(t *testing.T) {
		opts := testOptions()
		opts.AdminToken = ""
		if b := down(t, opts, "Bearer "); b.Message != "a dependency is not answering" {
			t.Errorf("an empty token shows %q", b.Message)
		}
	})
	t.Run("admin token", func(t *testing.T) {
		b := down(t, testOptions(), "Bearer "+testToken)
		if !strings.Contains(b.Message, "redis: "+secret) {
			t.Errorf("message = %q, want it to name the dependency and its error", b.Message)
		}
	})
}

// TestNoRoute: a path no route matches is a JSON 404 not_found, like every
// other error, and reaches no service.
func TestNoRoute(t *testing.T) {
	for _, rt := range []struct{ method, path string }{
		{"GET", "/nope"},
		{"POST", "/nope"},
		{"GET", "/goods/7/extra"},
		{"POST", "/orderV99"},
		{"GET", "/admin/nope"},
		{"GET", "/static/missing.css"},
	} {
		t.Run(rt.method+rt.path, func(t *testing.T) {
			f := &fakeService{}
			resp := serve(New(f.service(), testOptions()), admin(request(rt.method, rt.path, "")))
			b := wantError(t, resp, http.StatusNotFound, "not_found")
			if b.Message == "" {
				t.Error("no message")
			}
			wantCalls(t, f)
		})
	}
}

// TestNoMethod: a known path asked with another method is a JSON 405
// method_not_allowed whose Allow header lists the methods it takes.
func TestNoMethod(t *testing.T) {
	for _, rt := range []struct {
		method, path string
		allow        []string
	}{
		{"GET", "/order", []string{"POST"}},
		{"GET", "/orderV1", []string{"POST"}},
		{"DELETE", "/goods/7", []string{"GET"}},
		{"POST", "/goods", []string{"GET"}},
		{"POST", "/healthz", []string{"GET"}},
		{"PUT", "/readyz", []string{"GET"}},
		{"GET", "/orders/5/pay", []string{"POST"}},
		{"GET", "/admin/reconcile", []string{"POST"}},
		{"PUT", "/admin/goods", []string{"GET", "POST"}},
		{"POST", "/", []string{"GET"}},
	} {
		t.Run(rt.method+rt.path, func(t *testing.T) {
			f := &fakeService{}
			resp := serve(New(f.service(), testOptions()), admin(request(rt.method, rt.path, "")))
			b := wantError(t, resp, http.StatusMethodNotAllowed, "method_not_allowed")
			if b.Message == "" {
				t.Error("no message")
			}
			allow := strings.Split(resp.Header().Get("Allow"), ", ")
			slices.Sort(allow)
			if !slices.Equal(allow, rt.allow) {
				t.Errorf("Allow = %q, want %q", resp.Header().Get("Allow"), strings.Join(rt.allow, ", "))
			}
			wantCalls(t, f)
		})
	}
}

// TestPages: the shopper and admin pages and their assets are served
// without a token.
func TestPages(t *testing.T) {
	for path, ctype := range map[string]string{
		"/":                "text/html",
		"/admin":           "text/html",
		"/static/app.css":  "text/css",
		"/static/admin.js": "javascript",
	} {
		t.Run(path, func(t *testing.T) {
			f := &fakeService{}
			resp := serve(New(f.service(), testOptions()), request("GET", path, ""))
			if resp.Code != http.StatusOK || !strings.Contains(resp.Header().Get("Content-Type"), ctype) || resp.Body.Len() == 0 {
				t.Errorf("got %d %q with %d bytes, want 200 %s", resp.Code, resp.Header().Get("Content-Type"), resp.Body.Len(), ctype)
			}
			wantCalls(t, f)
		})
	}
}

// TestAdminBounds: numbers that do not fit where they are stored are 400
// invalid_request naming the field and its bounds, and never reach the
// service (where MySQL would refuse them as a failed dependency).
func TestAdminBounds(t *testing.T) {
	tests := []struct {
		body   string
		status int    // 201 or 200 for accepted bodies
		msg    string // for 400s: a part of the message
	}{
		{`{"name":"x","stock":0}`, 201, ""},
		{`{"name":"x","stock":1000000000000}`, 201, ""},
		{`{"name":"x","stock":1000000000001}`, 400, "stock must be between 0 and 1000000000000"},
		{`{"name":"x","stock":9223372036854775807}`, 400, "stock must be between 0 and 1000000000000"},
		{`{"name":"x","stock":-1}`, 400, "stock must be between 0 and 1000000000000"},
		{`{"name":"x","stock":1,"per_user_limit":0}`, 201, ""},
		{`{"name":"x","stock":1,"per_user_limit":2147483647}`, 201, ""},
		{`{"name":"x","stock":1,"per_user_limit":2147483648}`, 400, "per_user_limit must be between 0 (no limit) and 2147483647"},
		{`{"name":"x","stock":1,"per_user_limit":9223372036854775807}`, 400, "per_user_limit must be between 0 (no limit) and 2147483647"},
		{`{"name":"x","stock":1,"per_user_limit":-1}`, 400, "per_user_limit must be between 0 (no limit) and 2147483647"},
		{`{"id":7,"add_stock":1}`, 200, ""},
		{`{"id":7,"add_stock":1000000000000}`, 200, ""},
		{`{"id":7,"add_stock":1000000000001}`, 400, "add_stock must be between 1 and 1000000000000"},
		{`{"id":7,"add_stock":9223372036854775807}`, 400, "add_stock must be between 1 and 1000000000000"},
		{`{"id":7,"add_stock":0}`, 400, "add_stock must be between 1 and 1000000000000"},
		{`{"id":7,"add_stock":-5}`, 400, "add_stock must be between 1 and 1000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			f := &fakeService{
				CreateGoodsFn: func(_ context.Context, ng service.NewGoods) (service.Goods, error) {
					return service.Goods{ID: 7, Name: ng.Name, Stock: ng.Stock, PerUserLimit: ng.PerUserLimit}, nil
				},
				AddStockFn: func(_ context.Context, id, n int64, _ string) (service.Goods, bool, error) {
					return service.Goods{ID: id, Stock: n}, false, nil
				},
			}
			resp := serve(New(f.service(), testOptions()), admin(request("POST", "/admin/goods", tt.body)))
			if tt.status != http.StatusBadRequest {
				if resp.Code != tt.status {
					t.Fatalf("status = %d, want %d; body %s", resp.Code, tt.status, resp.Body.String())
				}
				if len(f.Calls()) != 1 {
					t.Fatalf("service calls = %q, want one", f.Calls())
				}
				return
			}
			b := wantError(t, resp, http.StatusBadRequest, "invalid_request")
			if !strings.Contains(b.Message, tt.msg) {
				t.Errorf("message = %q, want it to contain %q", b.Message, tt.msg)
			}
			wantCalls(t, f)
		})
	}
}

// A pass's scope is all (the default) or changed; anything else is 400
// before any pass runs.
func TestAdminReconcileRefusesAnUnknownScope(t *testing.T) {
	f := &fakeService{}
	resp := serve(New(f.service(), testOptions()), admin(request("POST", "/admin/reconcile?scope=some", "")))
	if resp.Code != http.StatusBadRequest || errorOf(t, resp).Error != "invalid_request" {
		t.Fatalf("status = %d, body %s: want 400 invalid_request", resp.Code, resp.Body.String())
	}
	wantCalls(t, f)
}
