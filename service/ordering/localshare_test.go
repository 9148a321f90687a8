package ordering

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/localshare"
)

// shareRedis tells the shares a fixed remaining stock, on one instance.
type shareRedis int64

func (s shareRedis) Stocks(_ context.Context, ids []int64) (map[int64]int64, error) {
	out := map[int64]int64{}
	for _, id := range ids {
		out[id] = int64(s)
	}
	return out, nil
}

func (shareRedis) LiveInstances(context.Context) (int, error) { return 1, nil }

// V15 takes a unit of its local share before Redis: past the share it
// answers sold out without asking Redis and without setting the sold-out
// flag (the next recompute may grow the share); a refused reservation and
// a failed write give the unit back to the share.
func TestLocalShareAnswersBeforeRedis(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	shares := localshare.New(shareRedis(3), shareRedis(3), localshare.Options{})
	w.placer.EnableLocalShare(shares)
	req := service.OrderRequest{UserID: 7, GoodsID: 1, Number: 1}
	left := func() int64 { n, _ := shares.Left(1); return n }

	if _, err := w.placer.PlaceOrder(ctx, "V15", req); err != nil || left() != 2 {
		t.Fatalf("first order: %v, %d left", err, left())
	}
	w.ledger.ReserveFn = func(context.Context, service.Order) error { return service.ErrLimitExceeded }
	if _, err := w.placer.PlaceOrder(ctx, "V15", req); !errors.Is(err, service.ErrLimitExceeded) || left() != 2 {
		t.Errorf("refused by redis: %v, %d left; want the unit back", err, left())
	}
	w.ledger.ReserveFn = func(context.Context, service.Order) error { return nil }
	errWrite := fmt.Errorf("insert: %w", service.ErrUnavailable)
	w.orders.InsertOrderFn = func(context.Context, service.Order, service.OrderTable) error { return errWrite }
	w.ledger.SettleFailedWriteFn = func(_ context.Context, _ service.Order, _ service.OrderTable, err error) error { return err }
	if _, err := w.placer.PlaceOrder(ctx, "V15", req); !errors.Is(err, errWrite) || left() != 2 {
		t.Errorf("failed write: %v, %d left; want the unit back", err, left())
	}
	w.orders.InsertOrderFn = func(context.Context, service.Order, service.OrderTable) error { return nil }
	for range 2 {
		if _, err := w.placer.PlaceOrder(ctx, "V15", req); err != nil {
			t.Fatal(err)
		}
	}
	reserves := w.rec.Count("Ledger.Reserve")
	if _, err := w.placer.PlaceOrder(ctx, "V15", req); !errors.Is(err, localshare.ErrShareSold) {
		t.Errorf("past the share: %v", err)
	}
	if n := w.rec.Count("Ledger.Reserve"); n != reserves {
		t.Errorf("past the share, Redis was asked %d more times", n-reserves)
	}
	if set, _ := w.flags.Check(1); set {
		t.Error("a spent local share set the sold-out flag")
	}
	if _, err := w.placer.PlaceOrder(ctx, "V11", req); err != nil {
		t.Errorf("V11 keeps no share: %v", err)
	}
}
