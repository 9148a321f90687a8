package store

import (
	"context"
	"errors"
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

// A batch of sales counts each buyer's units in one statement per goods,
// on MySQL and on SQLite alike; a batch that would take one buyer past the
// limit writes nothing at all (each of its sales is then applied alone).
func TestABatchCountsEachBuyersUnitsAndRefusesPastTheLimit(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *Database{
		"mysql":  func(tb testing.TB) *Database { return newDomain(tb.(*testing.T)).db },
		"sqlite": openSQLiteDatabase,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := open(t)
			g, err := db.CreateGoods(ctx, service.NewGoods{Name: "limited", Stock: 100, PerUserLimit: 3})
			if err != nil {
				t.Fatal(err)
			}
			id := int64(1000)
			sale := func(user, n int64) service.StockMessage {
				id++
				return service.StockMessage{OrderID: id, GoodsID: g.ID, UserID: user, Number: n}
			}
			units := func(user int64) int64 {
				var u int64
				if err := db.db.QueryRow("SELECT COALESCE(SUM(units), 0) FROM user_purchases WHERE goods_id = ? AND user_id = ?", g.ID, user).Scan(&u); err != nil {
					t.Fatal(err)
				}
				return u
			}
			// User 1 twice in one batch, user 2 once.
			if err := db.ApplySales(ctx, []service.StockMessage{sale(1, 1), sale(2, 2), sale(1, 2)}); err != nil {
				t.Fatal(err)
			}
			if units(1) != 3 || units(2) != 2 {
				t.Fatalf("units %d and %d, want 3 and 2", units(1), units(2))
			}
			// User 2 past the limit: the whole batch is refused, nothing moves.
			err = db.ApplySales(ctx, []service.StockMessage{sale(3, 1), sale(2, 2)})
			if !errors.Is(err, service.ErrLimitExceeded) {
				t.Fatalf("a batch taking a buyer past the limit: %v, want ErrLimitExceeded", err)
			}
			got, err := db.Goods(ctx, g.ID)
			if err != nil {
				t.Fatal(err)
			}
			if units(2) != 2 || units(3) != 0 || got.Stock != 95 {
				t.Fatalf("after the refused batch: units %d and %d, stock %d; want 2, 0 and 95", units(2), units(3), got.Stock)
			}
		})
	}
}
