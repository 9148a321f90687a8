package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
)

// V1's transaction has a deadline. When it passes before the commit,
// database/sql rolls the transaction back on its own and the commit answers
// sql.ErrTxDone: the sale must come back as "unavailable" (nothing was
// written: a 503 the buyer may retry), not as an internal error.
func TestATransactionPastItsDeadlineIsUnavailableAndWritesNothing(t *testing.T) {
	d := newDomain(t)
	g := d.goods(t, 10, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	o := service.Order{ID: 42, UserID: 7, GoodsID: g.ID, Number: 1}
	err := d.db.SellInTx(ctx, o, func() error {
		<-ctx.Done()
		time.Sleep(100 * time.Millisecond) // database/sql's rollback at the deadline runs meanwhile
		return nil
	})
	if !errors.Is(err, service.ErrUnavailable) || errors.Is(err, service.ErrAmbiguous) {
		t.Fatalf("sale past its deadline: %v, want unavailable (and known not written)", err)
	}
	if n := d.liveOrders(t, g.ID); n != 0 {
		t.Fatalf("%d orders written by a rolled-back transaction", n)
	}
	got, err := d.db.Goods(context.Background(), g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Stock != 10 {
		t.Fatalf("MySQL stock %d after a rolled-back sale, want 10", got.Stock)
	}
}

// Group commit rests on a multi-row INSERT being all or nothing: a row
// the database refuses (here a held idempotency key) writes none of the
// others, so that each order can then be written alone.
func TestAMultiRowInsertWithARefusedRowWritesNothing(t *testing.T) {
	d := newDomain(t)
	g := d.goods(t, 10, 0)
	ctx := context.Background()
	at := service.OrderTable{Host: 1, Table: 5}
	held := service.Order{ID: 100, UserID: 7, GoodsID: g.ID, Number: 1, Key: "k"}
	if err := d.db.InsertOrder(ctx, held, at); err != nil {
		t.Fatal(err)
	}
	batch := []service.Order{
		{ID: 101, UserID: 8, GoodsID: g.ID, Number: 1},
		{ID: 102, UserID: 7, GoodsID: g.ID, Number: 1, Key: "k"}, // the key user 7 holds
		{ID: 103, UserID: 9, GoodsID: g.ID, Number: 1},
	}
	err := d.db.InsertOrders(ctx, at, batch)
	if err == nil || errors.Is(err, service.ErrUnavailable) {
		t.Fatalf("batch with a held key: %v, want a refusal", err)
	}
	if n := d.liveOrders(t, g.ID); n != 1 {
		t.Fatalf("%d orders after the refused batch, want only the one before it", n)
	}
	if err := d.db.InsertOrders(ctx, at, []service.Order{batch[0], batch[2]}); err != nil {
		t.Fatal(err)
	}
	if n := d.liveOrders(t, g.ID); n != 3 {
		t.Fatalf("%d orders after the batch, want 3", n)
	}
}

// A batch of one whose key is held answers as a single write does,
// ErrKeyHeld: its order exists (a writer that wrote it and died before
// saying so, a redelivery), and the caller settles it as written rather
// than ending it as refused with its units back.
func TestABatchOfOneWithAHeldKeyAnswersKeyHeld(t *testing.T) {
	d := newDomain(t)
	g := d.goods(t, 10, 0)
	ctx := context.Background()
	at := service.OrderTable{Host: 1, Table: 6}
	if err := d.db.InsertOrders(ctx, at, []service.Order{{ID: 200, UserID: 7, GoodsID: g.ID, Number: 1, Key: "seckill:k1"}}); err != nil {
		t.Fatal(err)
	}
	err := d.db.InsertOrders(ctx, at, []service.Order{{ID: 201, UserID: 7, GoodsID: g.ID, Number: 1, Key: "seckill:k1"}})
	if !errors.Is(err, service.ErrKeyHeld) {
		t.Fatalf("the same key again, alone: %v, want ErrKeyHeld", err)
	}
	if n := d.liveOrders(t, g.ID); n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}
}
