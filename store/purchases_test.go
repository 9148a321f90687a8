package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

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

// A batch locks its goods row last, after the stock logs and the buyers'
// rows: the row every sale of the goods waits for is held only from its
// update to the commit.
func TestABatchLocksItsGoodsRowLast(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	g, err := d.db.CreateGoods(ctx, service.NewGoods{Name: "limited", Stock: 100, PerUserLimit: 5})
	if err != nil {
		t.Fatal(err)
	}
	hold, err := d.db.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback()
	if _, err := hold.ExecContext(ctx, "SELECT id FROM goods WHERE id = ? FOR UPDATE", g.ID); err != nil {
		t.Fatal(err)
	}
	batch := []service.StockMessage{
		{OrderID: 7001, GoodsID: g.ID, UserID: 1, Number: 1},
		{OrderID: 7002, GoodsID: g.ID, UserID: 2, Number: 1},
		{OrderID: 7003, GoodsID: g.ID, UserID: 3, Number: 1},
	}
	done := make(chan error, 1)
	go func() { done <- d.db.ApplySales(ctx, batch) }()
	// The batch waits for the goods row, holding its buyers' rows by then.
	update := fmt.Sprintf("UPDATE goods SET stock = stock - 3, sale = sale + 3 WHERE id = %d AND%%", g.ID)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var waiting int
		if err := d.db.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE() AND info LIKE ?", update).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch never waited for the goods row")
		}
	}
	for user := range int64(3) {
		var units int64
		err := d.db.db.QueryRowContext(ctx, "SELECT units FROM user_purchases WHERE goods_id = ? AND user_id = ? FOR UPDATE NOWAIT", g.ID, user+1).Scan(&units)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1205 {
			t.Errorf("buyer %d's row while the batch waits for the goods row: %v, want it locked", user+1, err)
		}
	}
	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Batches, single sales and returns of the same buyers on one goods run
// at once without deadlocking: they lock the buyers' rows and the goods
// row in one order.
func TestBatchesSalesAndReturnsOfOneBuyerDoNotDeadlock(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	g, err := d.db.CreateGoods(ctx, service.NewGoods{Name: "limited", Stock: 100_000, PerUserLimit: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	var id atomic.Int64
	sale := func(user int64) service.StockMessage {
		return service.StockMessage{OrderID: id.Add(1), GoodsID: g.ID, UserID: user, Number: 1}
	}
	var returns []service.StockMessage
	for u := range int64(4) {
		for range 10 {
			m := sale(u + 1)
			if err := d.db.ApplySale(ctx, m); err != nil {
				t.Fatal(err)
			}
			returns = append(returns, m)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	fail := func(err error) {
		mu.Lock()
		failed = append(failed, err)
		mu.Unlock()
	}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				var err error
				switch w % 3 {
				case 0: // a batch over every buyer
					err = d.db.ApplySales(ctx, []service.StockMessage{sale(1), sale(2), sale(3), sale(4)})
				case 1:
					err = d.db.ApplySale(ctx, sale(int64(4-i%4)))
				default:
					if k := w/3*10 + i; k < len(returns) {
						err = d.db.ReturnSale(ctx, returns[k])
					}
				}
				if err != nil {
					fail(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range failed {
		t.Error(err)
	}
}
