package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"github.com/go-seckill/seckill/admission"
	"github.com/go-seckill/seckill/service"
)

// openStore is the limits' shared state letting everything through.
type openStore struct{}

func (openStore) AllowRate(context.Context, string, redis_rate.Limit) (*redis_rate.Result, error) {
	return &redis_rate.Result{Allowed: 1, Remaining: 1}, nil
}
func (openStore) ClaimOrder(context.Context, int64, int64, string, time.Duration, int64) error {
	return nil
}
func (openStore) ReleaseClaim(context.Context, int64, int64, string) error     { return nil }
func (openStore) MarkEarly(context.Context, int64, int64, time.Duration) error { return nil }
func (openStore) ReopenGate(context.Context, int64, int64, float64) error      { return nil }

// TestLimitedOrderWaitsForASlot: past MaxInFlight, an order of a limited
// version waits for the slot (here up to a minute) and is served when it
// frees, while an unlimited version's is shed at once; with no room to
// wait (queue size 0) the limited one is shed too.
func TestLimitedOrderWaitsForASlot(t *testing.T) {
	limited := ""
	for _, v := range service.Versions() {
		if v.Limits {
			limited = v.Name
		}
	}
	for _, queue := range []int{1, 0} {
		entered, release := make(chan struct{}), make(chan struct{})
		f := &fakeService{PlaceOrderOnceFn: func(context.Context, string, service.OrderRequest, string) (service.Order, error) {
			entered <- struct{}{}
			<-release
			return service.Order{ID: 1}, nil
		}, GoodsFn: func(context.Context, int64) (service.Goods, error) { return service.Goods{ID: 7, Stock: 100}, nil }}
		opts := testOptions()
		opts.MaxInFlight = 1
		opts.Limits = &Limits{
			Admission: admission.New(openStore{}, f, admission.Options{StockFactor: 1.5, ClaimTTL: time.Minute, TotalsTTL: time.Minute}),
			QueueSize: queue, QueueWait: time.Minute,
		}
		h := New(f.service(), opts)

		first := make(chan *httptest.ResponseRecorder)
		go func() { first <- serve(h, request("POST", "/order", orderBodyStr)) }()
		<-entered
		wantError(t, serve(h, request("POST", "/orderV6", orderBodyStr)), http.StatusServiceUnavailable, "busy")
		if queue == 0 {
			wantError(t, serve(h, request("POST", "/order"+limited, orderBodyStr)), http.StatusServiceUnavailable, "busy")
			close(release)
			<-first
			continue
		}
		waiting := make(chan *httptest.ResponseRecorder)
		go func() { waiting <- serve(h, request("POST", "/order"+limited, orderBodyStr)) }()
		close(release)
		if resp := <-first; resp.Code != http.StatusCreated {
			t.Fatalf("the first order: %d", resp.Code)
		}
		<-entered // the waiting order reached the service once the slot freed
		if resp := <-waiting; resp.Code != http.StatusCreated {
			t.Errorf("queue %d: the waiting order: %d %s, want 201", queue, resp.Code, resp.Body.String())
		}
	}
}
