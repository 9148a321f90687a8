package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
)

// The constant-rate load sends its whole schedule, every request a valid
// order body, and counts a late answer's delay in the latencies of the
// requests that waited behind it: one answer held 300 ms on a connection
// sending every 10 ms makes the ~30 requests due meanwhile late too, so
// more than a tenth of all the latencies exceed 100 ms.
func TestRateLoadCountsTheWaitBehindASlowAnswer(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			UserID  int64 `json:"user_id"`
			GoodsID int64 `json:"goods_id"`
			Number  int64 `json:"number"`
		}
		err := json.NewDecoder(r.Body).Decode(&body)
		if err != nil || r.URL.Path != "/orderV6" || r.Header.Get("X-Forwarded-For") == "" || body.UserID < 1 || body.GoodsID != 7 || body.Number != 1 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if n.Add(1) == 10 {
			time.Sleep(300 * time.Millisecond)
		}
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"order_id":"1"}`))
	}))
	defer srv.Close()
	f, err := rateLoad{URL: srv.URL, Path: "/orderV6", GoodsID: 7, Rate: 100, Conns: 1, Duration: time.Second}.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f.Requests != 100 || f.Created != 100 || f.Non2xx != 0 {
		t.Fatalf("%d requests, %d created, %d others; want the 100 of the schedule, all created", f.Requests, f.Created, f.Non2xx)
	}
	if f.P90 < 100*time.Millisecond {
		t.Errorf("p90 %v: the requests due while an answer was held were not counted from when they were due", f.P90)
	}
}

// The requests it builds are those wrk's script sends: a valid order body,
// the buyer's own address in X-Forwarded-For (harness.UserIP's).
func TestRateLoadRequestIsAnOrderOfItsUser(t *testing.T) {
	t.Parallel()
	for _, user := range []int64{1, 65_793, 1_999_999_999} {
		raw := rateLoad{Path: "/orderV13", GoodsID: 42}.request(nil, "127.0.0.1:8080", user)
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("user %d: %v\n%s", user, err, raw)
		}
		var body struct {
			UserID  int64 `json:"user_id"`
			GoodsID int64 `json:"goods_id"`
			Number  int64 `json:"number"`
		}
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if req.Method != "POST" || req.URL.Path != "/orderV13" || body.UserID != user || body.GoodsID != 42 || body.Number != 1 ||
			req.Header.Get("X-Forwarded-For") != harness.UserIP(user) || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("user %d: %s %s %+v %v", user, req.Method, req.URL.Path, body, req.Header)
		}
	}
}
