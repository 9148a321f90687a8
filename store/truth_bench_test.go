package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
)

// BenchmarkReconcilePass times one reconciliation pass over every goods
// (real MariaDB and Redis) against the size of the order history: 10^3
// and 10^5 applied orders spread over the goods and the 17 order tables,
// for 1 and 10,000 goods. Each iteration runs three kinds of pass, each
// iteration starting with the next kind, so that the machine's other load
// falls on all three alike: the floor (the same number of goods with no
// orders at all: what a pass costs with nothing to read, the ceiling of
// its speed), the truth read from the whole history, and the truth read
// from its marks. Flat means marks/floor stays near 1 whatever the
// history.
//
//	go test -run '^$' -bench BenchmarkReconcilePass -benchtime 3x ./store/
func BenchmarkReconcilePass(b *testing.B) {
	for _, goods := range []int{1, 10_000} {
		floor, g := goodsRig(b, goods), goodsRig(b, goods)
		floor.db.SettleTruthAfter(time.Minute)
		// Orders made an hour ago: long past the horizon, all applied.
		next := firstIDAt(time.Now().Add(-time.Hour))
		history := 0
		for _, size := range []int{1_000, 100_000} {
			next = writeHistory(b, g, next, history, size)
			history = size
			g.db.SettleTruthAfter(time.Minute)
			pass(b, g) // moves the marks past the new orders
			b.Run(fmt.Sprintf("goods=%d/history=%d", goods, size), func(b *testing.B) {
				runs := []struct {
					g       *rig
					horizon time.Duration
				}{{floor, time.Minute}, {g, 0}, {g, time.Minute}}
				var spent [3]time.Duration
				for n := range b.N {
					for k := range runs {
						i := (n + k) % len(runs) // each iteration starts with the next kind of pass
						runs[i].g.db.SettleTruthAfter(runs[i].horizon)
						start := time.Now()
						pass(b, runs[i].g)
						spent[i] += time.Since(start)
					}
				}
				perPass := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
				b.ReportMetric(perPass(spent[0]), "floor-ms/pass")
				b.ReportMetric(perPass(spent[1]), "whole-ms/pass")
				b.ReportMetric(perPass(spent[2]), "marks-ms/pass")
				b.ReportMetric(float64(spent[1])/float64(spent[0]), "whole/floor")
				b.ReportMetric(float64(spent[2])/float64(spent[0]), "marks/floor")
			})
		}
	}
}

// goodsRig is a rig with goods goods of a million units each, in Redis too.
func goodsRig(b *testing.B, goods int) *rig {
	g := newRig(b)
	rows := make([][]any, goods)
	for i := range rows {
		rows[i] = []any{"g", 1_000_000}
	}
	insertRows(b, g.db, "goods", "name, stock", rows)
	loadGoods(b, g)
	return g
}

// loadGoods puts every goods into Redis as the database holds it.
func loadGoods(b *testing.B, g *rig) {
	ctx := context.Background()
	gs, err := g.db.ListGoods(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, gd := range gs {
		if err := g.l.Put(ctx, gd); err != nil {
			b.Fatal(err)
		}
	}
}

// pass runs one reconciliation pass and fails on any drift: the history
// is consistent, so a drift is a wrong truth.
func pass(b *testing.B, g *rig) {
	report, err := g.rec.Reconcile(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range report {
		if d.Drift != 0 {
			b.Fatalf("goods %d drifted by %d", d.GoodsID, d.Drift)
		}
	}
}

// writeHistory grows the order history of g's goods from orders to size
// applied orders of one unit, the goods taken in turn, ids from next on,
// and loads Redis with what is left; it returns the next id.
func writeHistory(b *testing.B, g *rig, next int64, orders, size int) int64 {
	b.Helper()
	gs, err := g.db.ListGoods(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	byTable := make([][][]any, service.MaxOrderTables+1)
	var logs [][]any
	sold := map[int64]int64{}
	for i := orders; i < size; i++ {
		gd := gs[i%len(gs)]
		table := i % len(byTable)
		byTable[table] = append(byTable[table], []any{next, i, gd.ID, 1, service.StatusPaid})
		logs = append(logs, []any{gd.ID, next, service.OpSale, 1})
		sold[gd.ID]++
		next++
	}
	for table, rows := range byTable {
		if len(rows) > 0 {
			insertRows(b, g.db, service.OrderTable{Table: table}.Name(), "id, user_id, goods_id, number, status", rows)
		}
	}
	insertRows(b, g.db, "goods_stock_logs", "goods_id, order_id, op, number", logs)
	for id, n := range sold {
		if _, err := g.db.db.Exec("UPDATE goods SET stock = stock - ?, sale = sale + ? WHERE id = ?", n, n, id); err != nil {
			b.Fatal(err)
		}
	}
	loadGoods(b, g)
	return next
}

// BenchmarkReconcilePassTables times a pass over 1,000 goods with no
// orders, the truth reading the 17 order tables of V1 to V6 and, with
// V7's eight logical databases made and in the shard map (as `seckill
// -migrate` leaves a deployment), their 128 besides: a pass costs its goods
// times its tables, whatever they hold. The passes alternate, each
// iteration starting with the other kind.
//
//	go test -run '^$' -bench BenchmarkReconcilePassTables -benchtime 3x ./store/
func BenchmarkReconcilePassTables(b *testing.B) {
	plain, mapped := goodsRig(b, 1_000), goodsRig(b, 1_000)
	if err := mapped.db.ClaimAll(context.Background()); err != nil {
		b.Fatal(err)
	}
	rigs := []*rig{plain, mapped}
	var spent [2]time.Duration
	for n := range b.N {
		for k := range rigs {
			i := (n + k) % len(rigs)
			rigs[i].db.SettleTruthAfter(time.Minute)
			start := time.Now()
			pass(b, rigs[i])
			spent[i] += time.Since(start)
		}
	}
	perGoods := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) / 1_000 }
	b.ReportMetric(perGoods(spent[0]), "ms/goods-17-tables")
	b.ReportMetric(perGoods(spent[1]), "ms/goods-145-tables")
}
