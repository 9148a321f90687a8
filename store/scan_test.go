package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
)

// The outbox sweep's pages: the first orders by id over every order table
// together, void rows left out, both bounds excluded, each naming the
// table it is in; a page ends where the next one starts.
func TestScanOrdersPagesByIDOverEveryTable(t *testing.T) {
	d := openTestDatabase(t)
	ctx := context.Background()
	deadline := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	tableOf := map[int64]int{}
	var want []int64
	for id := int64(1); id <= 60; id++ {
		// Ids go round the tables unevenly, so that one table holds most of
		// a page and others none.
		table := int(id*id%7) + int(id%3)*5
		at := service.OrderTable{Table: table}
		if err := d.InsertOrder(ctx, service.Order{ID: id, UserID: 100 + id, GoodsID: 9, Number: 1 + id%2, PayDeadline: deadline}, at); err != nil {
			t.Fatal(err)
		}
		tableOf[id] = table
		if id%11 == 0 {
			db, name, err := d.table(ctx, at)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, "UPDATE "+name+" SET status = ? WHERE id = ?", service.StatusVoid, id); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if id > 3 && id < 58 {
			want = append(want, id)
		}
	}
	var got []int64
	for after := int64(3); ; {
		page, err := d.ScanOrders(ctx, after, 58, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 7 {
			t.Fatalf("a page of %d orders, asked 7", len(page))
		}
		for _, m := range page {
			if m.Table != tableOf[m.OrderID] || m.Host != 0 || m.DB != 0 || m.GoodsID != 9 || m.UserID != 100+m.OrderID ||
				m.Number != 1+m.OrderID%2 || m.Deadline != deadline.UnixMilli() {
				t.Errorf("order %d read as %+v (table %d)", m.OrderID, m, tableOf[m.OrderID])
			}
			got = append(got, m.OrderID)
		}
		if len(page) < 7 {
			break
		}
		after = page[len(page)-1].OrderID
	}
	if !slices.Equal(got, want) {
		t.Errorf("scanned %v\nwant    %v", got, want)
	}
}
