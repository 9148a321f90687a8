package main_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/service"
)

// Every bad request gets its status and error code, and reserves nothing.
func TestBadInputIsRefusedAndReservesNothing(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	g := in.CreateGoods(t, 10)
	valid := func(f string) string { return fmt.Sprintf(f, g.ID) }
	huge := `{"user_id":1,"goods_id":1,"number":1,"pad":"` + strings.Repeat("x", 8192) + `"}`
	cases := []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"malformed JSON", "application/json", `{"user_id":1,`, 400, "invalid_json"},
		{"not an object", "application/json", `[1,2]`, 400, "invalid_request"},
		{"trailing data", "application/json", valid(`{"user_id":1,"goods_id":%d,"number":1} {}`), 400, "invalid_json"},
		{"missing user_id", "application/json", valid(`{"goods_id":%d,"number":1}`), 400, "invalid_request"},
		{"missing number", "application/json", valid(`{"user_id":1,"goods_id":%d}`), 400, "invalid_request"},
		{"string id", "application/json", valid(`{"user_id":"1","goods_id":%d,"number":1}`), 400, "invalid_request"},
		{"fractional number", "application/json", valid(`{"user_id":1,"goods_id":%d,"number":1.5}`), 400, "invalid_request"},
		{"number over int64", "application/json", valid(`{"user_id":1,"goods_id":%d,"number":9223372036854775808}`), 400, "invalid_request"},
		{"zero number", "application/json", valid(`{"user_id":1,"goods_id":%d,"number":0}`), 400, "invalid_request"},
		{"negative number", "application/json", valid(`{"user_id":1,"goods_id":%d,"number":-1}`), 400, "invalid_request"},
		{"number over the per-order maximum", "application/json", valid(`{"user_id":1,"goods_id":%d,"number":11}`), 400, "invalid_request"},
		{"negative user", "application/json", valid(`{"user_id":-5,"goods_id":%d,"number":1}`), 400, "invalid_request"},
		{"unknown field", "application/json", valid(`{"user_id":1,"goods_id":%d,"number":1,"price":0}`), 400, "invalid_request"},
		{"unknown goods", "application/json", `{"user_id":1,"goods_id":999999,"number":1}`, 404, "not_found"},
		{"wrong content type", "text/plain", valid(`{"user_id":1,"goods_id":%d,"number":1}`), 415, "unsupported_media_type"},
		{"body too large", "application/json", huge, 413, "body_too_large"},
	}
	client := int64(0)
	for _, v := range service.VersionNames() {
		for _, c := range cases {
			client++ // each request from an address of its own: V8 limits each address
			t.Run(v+"/"+c.name, func(t *testing.T) {
				status, code := in.Raw(t, "POST", "/order"+v, c.contentType, c.body, "X-Forwarded-For", harness.UserIP(client))
				if status != c.status || code != c.code {
					t.Errorf("got %d %q, want %d %q", status, code, c.status, c.code)
				}
			})
		}
	}
	st := in.Stats(t, g.ID)
	if *st.RedisStock != 10 || st.MySQLStock != 10 || st.Orders != 0 {
		t.Errorf("bad requests changed the sale: %+v redis=%d", st, *st.RedisStock)
	}
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	g := in.CreateGoods(t, 5)
	admin := func(body string, headers ...string) (int, string) {
		return in.Raw(t, "POST", "/admin/goods", "application/json", body, headers...)
	}
	auth := []string{"Authorization", "Bearer " + harness.AdminToken}
	cases := []struct {
		name    string
		body    string
		headers []string
		status  int
		code    string
	}{
		{"no token", `{"name":"x","stock":1}`, nil, 401, "unauthorized"},
		{"wrong token", `{"name":"x","stock":1}`, []string{"Authorization", "Bearer nope"}, 401, "unauthorized"},
		{"negative stock", `{"name":"x","stock":-1}`, auth, 400, "invalid_request"},
		{"empty name", `{"name":" ","stock":1}`, auth, 400, "invalid_request"},
		{"missing stock", `{"name":"x"}`, auth, 400, "invalid_request"},
		{"zero addition", fmt.Sprintf(`{"id":%d,"add_stock":0}`, g.ID), auth, 400, "invalid_request"},
		{"negative addition", fmt.Sprintf(`{"id":%d,"add_stock":-3}`, g.ID), auth, 400, "invalid_request"},
		{"absolute stock on existing goods", fmt.Sprintf(`{"id":%d,"stock":3}`, g.ID), auth, 400, "invalid_request"},
		{"addition to unknown goods", `{"id":999999,"add_stock":3}`, auth, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if status, code := admin(c.body, c.headers...); status != c.status || code != c.code {
				t.Errorf("got %d %q, want %d %q", status, code, c.status, c.code)
			}
		})
	}
	if status, _ := in.Raw(t, "GET", fmt.Sprintf("/admin/goods/%d/stats", g.ID), "", ""); status != 401 {
		t.Errorf("stats without token: %d, want 401", status)
	}

	// An addition repeated with its op_id is applied once.
	for i, wantReplayed := range []bool{false, true} {
		var out struct {
			Stock    int64 `json:"stock"`
			Replayed bool  `json:"replayed"`
		}
		if code := in.Call(t, "POST", "/admin/goods", map[string]any{"id": g.ID, "add_stock": 7, "op_id": "restock-1"}, &out); code != 200 {
			t.Fatalf("add #%d: status %d", i, code)
		}
		if out.Stock != 12 || out.Replayed != wantReplayed {
			t.Errorf("add #%d: stock %d replayed %v, want 12 %v", i, out.Stock, out.Replayed, wantReplayed)
		}
	}
	st := in.Stats(t, g.ID)
	if *st.RedisStock != 12 || st.MySQLStock != 12 {
		t.Errorf("after one addition of 7 to 5: %+v redis=%d", st, *st.RedisStock)
	}

	var shown service.Goods
	if code := in.Call(t, "GET", fmt.Sprintf("/goods/%d", g.ID), nil, &shown); code != 200 || shown.Stock != 12 || shown.Name != "phone" {
		t.Errorf("GET /goods: %d %+v", code, shown)
	}
	if status, code := in.Raw(t, "GET", "/goods/999999", "", ""); status != 404 || code != "not_found" {
		t.Errorf("GET unknown goods: %d %q", status, code)
	}
	if status, code := in.Raw(t, "GET", "/goods/abc", "", ""); status != 400 || code != "invalid_request" {
		t.Errorf("GET /goods/abc: %d %q", status, code)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, _ := in.Raw(t, "GET", path, "", ""); status != 200 {
			t.Errorf("%s: %d", path, status)
		}
	}
}

// When MySQL fails the order (here: its table is gone), the buyer gets 503
// and the units reserved in Redis are given back.
func TestMySQLFailureGivesTheReservationBack(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	g := in.CreateGoods(t, 10)
	db := e.DB(0)
	for _, c := range []struct{ version, table string }{{"V1", "goods_stock_logs"}, {"V2", "orders"}} {
		t.Run(c.version, func(t *testing.T) {
			if _, err := db.Exec("RENAME TABLE " + c.table + " TO " + c.table + "_off"); err != nil {
				t.Fatal(err)
			}
			status, code := in.Raw(t, "POST", "/order"+c.version, "application/json", fmt.Sprintf(`{"user_id":1,"goods_id":%d,"number":3}`, g.ID))
			if _, err := db.Exec("RENAME TABLE " + c.table + "_off TO " + c.table); err != nil {
				t.Fatal(err)
			}
			if status != 503 || code != "unavailable" {
				t.Errorf("got %d %q, want 503 unavailable", status, code)
			}
			st := in.Stats(t, g.ID)
			if *st.RedisStock != 10 || st.MySQLStock != 10 || st.Orders != 0 {
				t.Errorf("failed order changed the stock: %+v redis=%d", st, *st.RedisStock)
			}
		})
	}
	// And the sale goes on once MySQL is back.
	if code, _ := in.Order(t, "V2", 1, g.ID, 1); code != 201 {
		t.Errorf("order after recovery: %d", code)
	}
}

// Outside the sale window every version answers 409 not_started or ended
// and reserves nothing.
func TestSaleWindowIsEnforcedByEveryVersion(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	now := time.Now()
	stock := int64(len(service.VersionNames())) // one order a version in the window
	create := func(start, end time.Time) service.Goods {
		var g service.Goods
		body := map[string]any{"name": "later", "stock": stock, "start_at": start.Format(time.RFC3339Nano), "end_at": end.Format(time.RFC3339Nano)}
		if code := in.Call(t, "POST", "/admin/goods", body, &g); code != http.StatusCreated {
			t.Fatalf("create: %d", code)
		}
		return g
	}
	future := create(now.Add(time.Hour), now.Add(2*time.Hour))
	past := create(now.Add(-2*time.Hour), now.Add(-time.Hour))
	open := create(now.Add(-time.Minute), now.Add(time.Hour))
	if future.StartAt == nil || !future.StartAt.Equal(now.Add(time.Hour).Truncate(time.Millisecond)) {
		t.Errorf("start_at not kept: %v", future.StartAt)
	}
	var accepted []int64
	for _, v := range service.VersionNames() {
		for _, c := range []struct {
			g    service.Goods
			code int
			err  string
		}{{future, 409, "not_started"}, {past, 409, "ended"}, {open, 201, ""}} {
			code, a := in.Order(t, v, 1, c.g.ID, 1)
			if code != c.code || a.Error != c.err {
				t.Errorf("%s on goods %d: %d %q, want %d %q", v, c.g.ID, code, a.Error, c.code, c.err)
			}
			if code == http.StatusCreated {
				accepted = append(accepted, a.ID)
			}
		}
	}
	if len(accepted) != len(service.VersionNames()) {
		t.Errorf("%d orders accepted in the window, want one per version", len(accepted))
	}
	for _, g := range []service.Goods{future, past} {
		if st := in.Stats(t, g.ID); *st.RedisStock != stock || st.MySQLStock != stock || st.Orders != 0 {
			t.Errorf("refused orders changed goods %d: %+v", g.ID, st)
		}
	}
	e.CheckInvariants(t, open.ID, harness.Sale{Initial: stock, Accepted: accepted})
	if status, code := in.Raw(t, "POST", "/admin/goods", "application/json", `{"name":"x","stock":1,"start_at":"tomorrow"}`, "Authorization", "Bearer "+harness.AdminToken); status != 400 || code != "invalid_request" {
		t.Errorf("bad time: %d %q", status, code)
	}
	if status, code := in.Raw(t, "POST", "/admin/goods", "application/json", `{"name":"x","stock":1,"start_at":"2030-01-02T00:00:00Z","end_at":"2030-01-01T00:00:00Z"}`, "Authorization", "Bearer "+harness.AdminToken); status != 400 || code != "invalid_request" {
		t.Errorf("end before start: %d %q", status, code)
	}
}
