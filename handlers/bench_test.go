package handlers

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/go-seckill/seckill/service"
)

// soldOutOrders answers every order sold out, as V6's flag does.
type soldOutOrders struct{}

func (soldOutOrders) PlaceOrderOnce(context.Context, string, service.OrderRequest, string) (service.Order, error) {
	return service.Order{}, service.ErrSoldOut
}

func (soldOutOrders) PriorOrder(context.Context, string, service.OrderRequest, string) (service.Order, bool, error) {
	return service.Order{}, false, nil
}

func (soldOutOrders) Accept(context.Context, string, service.OrderRequest, string) (service.Acceptance, error) {
	return service.Acceptance{}, service.ErrSoldOut
}

func (soldOutOrders) Acceptance(context.Context, string, string) (service.Acceptance, error) {
	return service.Acceptance{}, service.ErrNotFound
}

// cachedGoods answers every goods from memory, as V9's cache does.
type cachedGoods struct{ Catalog }

func (cachedGoods) Goods(_ context.Context, id int64) (service.Goods, error) {
	return service.Goods{ID: id, Name: "goods", Price: 100, Stock: 1000}, nil
}

// sink is a ResponseWriter that keeps nothing, so that the benchmarks
// measure the routes rather than a recorder.
type sink struct{ h http.Header }

func (s *sink) Header() http.Header         { return s.h }
func (s *sink) Write(b []byte) (int, error) { return len(b), nil }
func (s *sink) WriteHeader(int)             {}

// BenchmarkRoutes measures what the middleware and a handler cost per
// request against the HTTP ceiling's trivial handler (bench/ceilings.go),
// served in process: the difference is the share of the ceiling a route
// leaves on the table.
func BenchmarkRoutes(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	ceiling := gin.New()
	answer := []byte(`{"order_id":"1","user_id":1,"goods_id":1,"number":1}`)
	ceiling.POST("/order", func(c *gin.Context) {
		var o struct {
			UserID  int64 `json:"user_id"`
			GoodsID int64 `json:"goods_id"`
			Number  int64 `json:"number"`
		}
		if err := json.NewDecoder(c.Request.Body).Decode(&o); err != nil {
			c.Data(http.StatusBadRequest, "application/json", []byte(`{"error":"invalid_json"}`))
			return
		}
		c.Data(http.StatusCreated, "application/json", answer)
	})
	opts := testOptions()
	opts.RequestLogSuccesses = 10
	svc := Service{Orders: soldOutOrders{}, Catalog: cachedGoods{}}
	h := New(svc, opts)
	for _, bc := range []struct {
		name, method, path, body string
		h                        http.Handler
	}{
		{"ceiling", "POST", "/order", orderBodyStr, ceiling},
		{"V6 sold out", "POST", "/orderV6", orderBodyStr, h},
		{"goods read", "GET", "/goods/7", "", h},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := strings.NewReader(bc.body)
			r, _ := http.NewRequest(bc.method, "http://127.0.0.1"+bc.path, io.NopCloser(body))
			if bc.body != "" {
				r.Header.Set("Content-Type", "application/json")
				r.ContentLength = int64(len(bc.body))
			}
			w := &sink{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(bc.body)
				clear(w.h)
				bc.h.ServeHTTP(w, r)
			}
		})
	}
}
