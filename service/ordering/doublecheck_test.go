package ordering

import (
	"context"
	"errors"
	"testing"

	"github.com/go-seckill/seckill/service"
)

// checks records the double checks scheduled.
type checks struct {
	scheduled []service.StockMessage
	routes    []int64
}

func (c *checks) Schedule(_ context.Context, m service.StockMessage, route int64) {
	c.scheduled, c.routes = append(c.scheduled, m), append(c.routes, route)
}

// A version with the double check schedules one check per order whose row
// is written, for its stock message and route, even when the publish
// failed (that is what the check is for); the others schedule none, and
// an order that was not written schedules nothing.
func TestOnlyDoubleCheckVersionsScheduleACheckPerOrder(t *testing.T) {
	t.Parallel()
	for _, v := range service.Versions() {
		c := &checks{}
		opts := testOpts
		opts.Checks = c
		w := newWorldWith(t, opts)
		w.pub.PublishFn = func(context.Context, service.StockMessage, int64) error { return service.ErrUnavailable }
		o, err := w.placer.PlaceOrder(ctx, v.Name, service.OrderRequest{UserID: 7, GoodsID: 3, Number: 1})
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		switch {
		case !v.DoubleCheck && len(c.scheduled) != 0:
			t.Fatalf("%s scheduled %d checks", v.Name, len(c.scheduled))
		case v.DoubleCheck && (len(c.scheduled) != 1 || c.scheduled[0] != service.MessageOf(o, v.Place(7, testLayout)) || c.routes[0] != v.Route(7)):
			t.Fatalf("%s scheduled %+v on %v, want the order's stock message on its route", v.Name, c.scheduled, c.routes)
		}
	}
	c := &checks{}
	opts := testOpts
	opts.Checks = c
	w := newWorldWith(t, opts)
	w.ledger.ReserveFn = func(context.Context, service.Order) error { return service.ErrSoldOut }
	if _, err := w.placer.PlaceOrder(ctx, "V10", service.OrderRequest{UserID: 7, GoodsID: 3, Number: 1}); !errors.Is(err, service.ErrSoldOut) || len(c.scheduled) != 0 {
		t.Fatalf("sold out: %v, %d checks", err, len(c.scheduled))
	}
}
