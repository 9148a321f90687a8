package store

import (
	"context"
	"sync"
	"testing"

	"github.com/go-seckill/seckill/service"
)

// Concurrent first purchases of one buyer must not deadlock on the limit's
// guard: each sale applies, or is refused by the limit, never fails.
func TestConcurrentFirstPurchasesDoNotDeadlock(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	for round := range 5 {
		g := d.goods(t, 1000, 1000)
		var msgs []service.StockMessage
		for i := range 16 {
			o, err := d.placer.PlaceOrder(ctx, "V2", service.OrderRequest{UserID: int64(1 + i%2), GoodsID: g.ID, Number: 1})
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, service.MessageOf(o, service.OrderTable{}))
		}
		var wg sync.WaitGroup
		errs := make([]error, len(msgs))
		for i, m := range msgs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = d.db.ApplySale(ctx, m) }()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d, sale %d: %v", round, i, err)
			}
		}
		var units int64
		if err := d.db.db.QueryRow("SELECT COALESCE(SUM(units), 0) FROM user_purchases WHERE goods_id = ?", g.ID).Scan(&units); err != nil || units != 16 {
			t.Errorf("round %d: %d units guarded, want 16 (%v)", round, units, err)
		}
	}
}
