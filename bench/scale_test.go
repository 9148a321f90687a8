package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/migrations"
	domain "github.com/go-seckill/seckill/service"
)

func TestTargetRate(t *testing.T) {
	for _, c := range []struct{ peak, want float64 }{{5432.9, 4346}, {10, 8}, {1, 0}, {0, 0}} {
		if got := targetRate(c.peak); got != c.want {
			t.Errorf("targetRate(%v) = %v, want %v", c.peak, got, c.want)
		}
	}
}

func TestRateVersions(t *testing.T) {
	all := []string{"V1", "V2", "V3", "V6", "V11", "V13"}
	got := strings.Join(rateVersions(all, "V6"), ",")
	if got != "V3,V6,V13" {
		t.Errorf("rateVersions = %s, want V3,V6,V13 (V3, the best, the async one)", got)
	}
	if got := rateVersions([]string{"V1", "V2"}, "V2"); len(got) != 1 || got[0] != "V2" {
		t.Errorf("without V3 or an async version: %v, want [V2]", got)
	}
}

func TestPeakOf(t *testing.T) {
	phases := []phaseResult{
		{Version: "V6", Phase: soldOut, Wrk: wrkResult{RPS: 50000}},
		{Version: "V6", Phase: inStock, Wrk: wrkResult{RPS: 5000}},
		{Version: "V3", Phase: inStock, Wrk: wrkResult{RPS: 6000}, Failures: []string{"oversold"}},
		{Version: "V13", Phase: inStock, Skipped: "budget"},
	}
	for v, want := range map[string]float64{"V6": 5000, "V3": 0, "V13": 0, "V9": 0} {
		if got := peakOf(phases, v); got != want {
			t.Errorf("peakOf(%s) = %v, want %v: only a measured in-stock phase that kept the invariants is a peak", v, got, want)
		}
	}
}

func TestScaleEnds(t *testing.T) {
	s := scaleSizes{Goods: 10_000, Stock: 10_000_000, History: 1_000_000}
	for phase, want := range map[string][2]int64{scaleGoods: {1, 10_000}, scaleStock: {100, 10_000_000}, scaleHistory: {1_000, 1_000_000}} {
		if small, large := s.ends(phase); small != want[0] || large != want[1] {
			t.Errorf("%s: %d → %d, want %d → %d", phase, small, large, want[0], want[1])
		}
	}
	if scaleNames[len(scaleNames)-1] != scaleGoods {
		t.Error("the goods phase must run last: its goods are in every later pass")
	}
}

func TestCheckScaleAnswers(t *testing.T) {
	ok := wrkResult{Created: 1000}
	if f := checkScaleAnswers(ok, 1000, 64); len(f) != 0 {
		t.Errorf("every 201 stored: %v", f)
	}
	if f := checkScaleAnswers(ok, 1064, 64); len(f) != 0 {
		t.Errorf("one order in flight per connection is allowed: %v", f)
	}
	for name, c := range map[string]struct {
		w      wrkResult
		orders int64
	}{
		"missing":    {ok, 999},
		"unanswered": {ok, 1065},
		"sold out":   {wrkResult{Created: 1000, SoldOut: 1}, 1000},
	} {
		if f := checkScaleAnswers(c.w, c.orders, 64); len(f) != 1 {
			t.Errorf("%s: %v, want one failure", name, f)
		}
	}
}

func TestGoodsTally(t *testing.T) {
	good := goodsCount{Stock: 90, Sale: 10, Orders: 10, Units: 10, Sales: 10, SaleUnits: 10, Redis: i64(90)}
	tally := goodsTally{1: good, 2: good}
	initial := map[int64]int64{1: 100, 2: 100}
	if !tally.drained() || len(tally.violations(initial)) != 0 {
		t.Fatalf("a settled sale: drained %v, violations %v", tally.drained(), tally.violations(initial))
	}
	if !tally.equal(goodsTally{1: good, 2: good}) {
		t.Error("equal tallies differ")
	}
	lagging := good
	lagging.Sales, lagging.SaleUnits = 9, 9
	if (goodsTally{1: lagging}).drained() {
		t.Error("an order without its stock log is not drained")
	}
	for name, c := range map[string]goodsCount{
		"oversold":       {Stock: -1, Sale: 101, Orders: 101, Units: 101, Sales: 101, SaleUnits: 101, Redis: i64(-1)},
		"units lost":     {Stock: 91, Sale: 10, Orders: 10, Units: 10, Sales: 10, SaleUnits: 10, Redis: i64(91)},
		"redis differs":  {Stock: 90, Sale: 10, Orders: 10, Units: 10, Sales: 10, SaleUnits: 10, Redis: i64(91)},
		"redis missing":  {Stock: 90, Sale: 10, Orders: 10, Units: 10, Sales: 10, SaleUnits: 10},
		"applied twice?": {Stock: 90, Sale: 10, Orders: 9, Units: 9, Sales: 10, SaleUnits: 10, Redis: i64(90)},
	} {
		if v := (goodsTally{1: c}).violations(map[int64]int64{1: 100}); len(v) != 1 {
			t.Errorf("%s: %v, want one goods listed", name, v)
		}
	}
	many := goodsTally{}
	initialMany := map[int64]int64{}
	for id := range int64(10) {
		many[id] = goodsCount{Stock: 1}
		initialMany[id] = 100
	}
	if v := many.violations(initialMany); len(v) != 4 || !strings.Contains(v[3], "10 goods") {
		t.Errorf("ten broken goods: %v, want three listed and the count", v)
	}
}

func TestScaleMarkdown(t *testing.T) {
	o := defaultOptions()
	end := func(size int64, rps float64, p99, pass time.Duration) scaleEnd {
		return scaleEnd{Size: size, Load: loadFigures{wrkResult: wrkResult{RPS: rps, P99: p99}}, Pass: pass, PassGoods: 3, ChangedPass: pass / 10}
	}
	phases := []scalePhase{
		{Name: scaleHistory, Version: "V6", Small: end(1_000, 5000, 40*time.Millisecond, 100*time.Millisecond), Large: end(1_000_000, 4000, 50*time.Millisecond, 110*time.Millisecond)},
		{Name: scaleStock, Version: "V6", Skipped: "the time budget ran out"},
		{Name: scaleGoods, Version: "V6", Small: end(1, 5000, 40*time.Millisecond, time.Second), Large: end(10_000, 5000, 40*time.Millisecond, 100*time.Second)},
	}
	phases[2].Large.Failures = []string{"goods 7 drifted by 1 once drained"}
	md := scaleMarkdown(phases, o)
	for _, want := range []string{
		"## Cost in scale",
		"| history | settled orders", "| 1,000 orders | 1,000,000 orders | 5,000 / 4,000 | 40.0 ms / 50.0 ms | 100 ms over 3 goods / 110 ms over 3 goods | 10.0 ms / 11.0 ms | ×0.80, ×1.25, ×1.10 | ok |",
		"| stock |", "not run: the time budget ran out",
		"| 1 goods | 10,000 goods |", "×1.00, ×1.00, ×100.00 | **FAILED**: ; goods 7 drifted",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the scale section lacks %q:\n%s", want, md)
		}
	}
	if got := strings.Count(md, "\n| "); got != 4 {
		t.Errorf("%d table rows, want the header and three phases:\n%s", got, md)
	}
	if scaleMarkdown(nil, o) != "" {
		t.Error("no scale phases, no section")
	}
}

func TestRateMarkdown(t *testing.T) {
	o := defaultOptions()
	rates := []rateResult{
		{Version: "V3", Peak: 6500, Target: 5200, Sent: 5199, Phase: phaseResult{Wrk: wrkResult{RPS: 5190, P50: 3 * time.Millisecond, P99: 25 * time.Millisecond}}},
		{Version: "V6", Peak: 5400, Target: 4320, Sent: 4300, Phase: phaseResult{Wrk: wrkResult{RPS: 4290, P99: 45 * time.Millisecond}, Failures: []string{"not drained"}}},
		{Version: "V13", Skipped: "no in-stock peak measured for it in this run"},
	}
	md := rateMarkdown(rates, o)
	for _, want := range []string{
		"## p99 at 80% of the peak",
		"| V3 | 6,500 | 5,200 | 5,199 | 5,190 | 3.00 ms | 25.0 ms | met | 0% | ok |",
		"| V6 | 5,400 | 4,320 | 4,300 | 4,290 | — | 45.0 ms | **missed** | 0% | **FAILED**: not drained |",
		"| V13 | — |", "not run: no in-stock peak",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the rate section lacks %q:\n%s", want, md)
		}
	}
	if !(rateResult{Skipped: "x"}).ok() || (rates[1]).ok() {
		t.Error("a skipped rate phase breaks nothing; a failed one does")
	}
}

// TestWriteHistoryIsASettledSale writes a history across a chunk's edge
// into a migrated database of its own and reads it back with the
// harness's own check: every order stored once, in the table its user's
// orders go to, applied once, the units adding up, Redis holding MySQL's
// stock.
func TestWriteHistoryIsASettledSale(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MariaDB and Redis")
	}
	ctx := context.Background()
	dsn := testenv.MySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := resetDatabase(ctx, testenv.MySQLServer(), cfg.DBName); err != nil {
		t.Fatal(err)
	}
	db, err := openMySQL(dsn, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := migrations.Up(ctx, db, false); err != nil {
		t.Fatal(err)
	}
	addr, prefix := testenv.Redis(t)
	servers, err := harness.OpenServers([]string{dsn}, addr, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer servers.Close()

	const stock, n = 1_000_000, historyChunk + 7
	res, err := db.ExecContext(ctx, "INSERT INTO goods (name, stock) VALUES ('history', ?)", stock)
	if err != nil {
		t.Fatal(err)
	}
	goodsID, _ := res.LastInsertId()
	if err := servers.Redis().HSet(ctx, servers.GoodsKey(goodsID), "stock", stock).Err(); err != nil {
		t.Fatal(err)
	}
	if err := writeHistory(ctx, servers, goodsID, n, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}

	snap, err := servers.Snapshot(ctx, goodsID)
	if err != nil {
		t.Fatal(err)
	}
	if v := snap.Violations(harness.Sale{Initial: stock, AllowUnanswered: true}); len(v) > 0 {
		t.Fatalf("the history is no settled sale: %v\n%s", v, snap)
	}
	if len(snap.Orders) != n || snap.Count(domain.StatusPaid) != n || snap.Stock != stock-n {
		t.Fatalf("want %d paid orders and stock %d: %s", n, stock-n, snap)
	}
	for table := 1; table <= domain.MaxOrderTables; table++ {
		var misplaced int
		q := fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE user_id DIV 10 %% %d <> %d", domain.TableName(table), domain.MaxOrderTables, table-1)
		if err := db.QueryRowContext(ctx, q).Scan(&misplaced); err != nil || misplaced > 0 {
			t.Errorf("%s: %d orders of users whose orders go elsewhere (%v)", domain.TableName(table), misplaced, err)
		}
	}
	tally, err := tallyGoods(ctx, servers, []int64{goodsID})
	if err != nil {
		t.Fatal(err)
	}
	if !tally.drained() || len(tally.violations(map[int64]int64{goodsID: stock})) > 0 || tally[goodsID].Orders != n {
		t.Errorf("the counts disagree with the snapshot: %+v", tally[goodsID])
	}
}
