package store

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
)

// The outbox sweep's pages: the first orders by id over every order table
// together, void rows left out, both bounds excluded, each naming the
// table it is in; a page ends where the next one starts.
func TestScanOrdersPagesByIDOverEveryTable(t *testing.T) {
	onBothDatabases(t, scanOrdersPagesByID)
}

func scanOrdersPagesByID(t *testing.T, d *Database) {
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

// Each table gives the page only its first few rows, as many as the pages
// before needed; a window whose orders crowd into one table, after a
// stretch spread evenly, still reads as every order by id, once.
func TestScanOrdersStaysExactWhenTheSpreadChanges(t *testing.T) {
	onBothDatabases(t, scanOrdersStaysExact)
}

func scanOrdersStaysExact(t *testing.T, d *Database) {
	ctx := context.Background()
	deadline := time.Now().Add(time.Hour)
	tableOf := func(id int64) int {
		switch {
		case id <= 160, id > 1200: // spread evenly, as buyers are
			return int(id%service.MaxOrderTables) + 1
		case id%10 == 0: // a few elsewhere
			return 9
		default: // crowded into one table
			return 5
		}
	}
	var want []int64
	for _, r := range [][2]int64{{1, 160}, {1001, 1100}, {1201, 1360}} {
		for id := r[0]; id <= r[1]; id++ {
			if err := d.InsertOrder(ctx, service.Order{ID: id, UserID: id, GoodsID: 3, Number: 1, PayDeadline: deadline}, service.OrderTable{Table: tableOf(id)}); err != nil {
				t.Fatal(err)
			}
			want = append(want, id)
		}
	}
	for pass := range 2 { // the second starts with what the first learnt
		var got []int64
		for after := int64(0); ; {
			page, err := d.ScanOrders(ctx, after, 1<<62, 20)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page {
				if m.Table != tableOf(m.OrderID) {
					t.Fatalf("order %d read in table %d, written in %d", m.OrderID, m.Table, tableOf(m.OrderID))
				}
				got = append(got, m.OrderID)
			}
			if len(page) < 20 {
				break
			}
			after = page[len(page)-1].OrderID
		}
		if !slices.Equal(got, want) {
			t.Errorf("pass %d scanned %v\nwant %v", pass, got, want)
		}
	}
	// A window of one table's orders, fewer than a page but more than
	// the rows the even stretch taught each table to give.
	page, err := d.ScanOrders(ctx, 1000, 1010, 20)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, m := range page {
		got = append(got, m.OrderID)
	}
	if want := []int64{1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009}; !slices.Equal(got, want) {
		t.Errorf("the window (1000, 1010) scanned %v, want %v", got, want)
	}
}

// The expiry sweep's read: the unpaid orders past their deadline, at most
// limit of each table, soonest first; paid, void and later ones are not
// read.
func TestExpiredOrdersAreTheUnpaidPastTheirDeadline(t *testing.T) {
	onBothDatabases(t, expiredOrdersAreTheUnpaid)
}

func expiredOrdersAreTheUnpaid(t *testing.T, d *Database) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	want := map[int]map[int64]bool{} // table -> ids
	for id := int64(1); id <= 40; id++ {
		table := int(id % 5 * 3) // tables 0, 3, 6, 9, 12
		at := service.OrderTable{Table: table}
		deadline := now.Add(time.Duration(id-30) * time.Second) // ids below 30 are past it
		if err := d.InsertOrder(ctx, service.Order{ID: id, UserID: id, GoodsID: 4, Number: 1, PayDeadline: deadline}, at); err != nil {
			t.Fatal(err)
		}
		status := service.StatusUnpaid
		switch id % 4 {
		case 1:
			status = service.StatusPaid
		case 2:
			status = service.StatusVoid
		}
		if status != service.StatusUnpaid {
			db, name, err := d.table(ctx, at)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, "UPDATE "+name+" SET status = ? WHERE id = ?", status, id); err != nil {
				t.Fatal(err)
			}
		} else if id < 30 {
			if want[table] == nil {
				want[table] = map[int64]bool{}
			}
			want[table][id] = true
		}
	}
	got, err := d.ExpiredOrders(ctx, now, 2)
	if err != nil {
		t.Fatal(err)
	}
	perTable := map[int]int{}
	for _, m := range got {
		perTable[m.Table]++
		if !want[m.Table][m.OrderID] {
			t.Errorf("order %d of table %d read as expired", m.OrderID, m.Table)
		}
	}
	for table, ids := range want {
		// The two soonest of each table: its smallest ids.
		soonest := slices.Sorted(maps.Keys(ids))[:min(2, len(ids))]
		for _, id := range soonest {
			if !slices.ContainsFunc(got, func(m service.StockMessage) bool { return m.OrderID == id }) {
				t.Errorf("table %d: order %d, among its two soonest, not read (got %+v)", table, id, got)
			}
		}
		if perTable[table] != len(soonest) {
			t.Errorf("table %d: %d orders read, want %d", table, perTable[table], len(soonest))
		}
	}
}

// bothDatabases are MariaDB and the standalone mode's SQLite.
var bothDatabases = []struct {
	name string
	open func(tb testing.TB) *Database
}{
	{"mariadb", openTestDatabase},
	{"sqlite", openSQLiteDatabase},
}

// onBothDatabases runs test on each of bothDatabases.
func onBothDatabases(t *testing.T, test func(*testing.T, *Database)) {
	for _, c := range bothDatabases {
		t.Run(c.name, func(t *testing.T) { test(t, c.open(t)) })
	}
}

// A page of the outbox sweep over order tables holding nothing in its
// window, the cost of every pass while nothing is sold.
func BenchmarkScanOrdersEmpty(b *testing.B) {
	for _, c := range bothDatabases {
		b.Run(c.name, func(b *testing.B) {
			d := c.open(b)
			for b.Loop() {
				if _, err := d.ScanOrders(context.Background(), 0, 1<<62, 500); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// One pass of the outbox sweep over a sale's orders, spread evenly over
// the order tables as buyers are, a page of 500 at a time: what the look
// at the last two minutes costs for every 32 pages of a sustained sale.
func BenchmarkScanOrdersPagesOfASale(b *testing.B) {
	const orders, page = 16_000, 500
	for _, c := range bothDatabases {
		b.Run(c.name, func(b *testing.B) {
			d := c.open(b)
			ctx := context.Background()
			deadline := time.Now().Add(time.Hour)
			byTable := map[int][]service.Order{}
			for id := int64(1); id <= orders; id++ {
				table := int(id%service.MaxOrderTables) + 1
				byTable[table] = append(byTable[table], service.Order{ID: id, UserID: id, GoodsID: 1, Number: 1, PayDeadline: deadline})
			}
			for table, os := range byTable {
				for chunk := range slices.Chunk(os, 250) {
					if err := d.InsertOrders(ctx, service.OrderTable{Table: table}, chunk); err != nil {
						b.Fatal(err)
					}
				}
			}
			for b.Loop() {
				read := 0
				for after := int64(0); ; {
					got, err := d.ScanOrders(ctx, after, 1<<62, page)
					if err != nil {
						b.Fatal(err)
					}
					read += len(got)
					if len(got) < page {
						break
					}
					after = got[len(got)-1].OrderID
				}
				if read != orders {
					b.Fatalf("a pass read %d orders of %d", read, orders)
				}
			}
		})
	}
}
