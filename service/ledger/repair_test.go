package ledger

import (
	"context"
	"slices"
	"testing"

	"github.com/go-seckill/seckill/service"
)

// A repair adjusts Redis only from the stock expected, and announces stock
// only when some came back.
func TestRepair(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		delta     int64
		repaired  bool
		announced bool
	}{
		{5, true, true},
		{-5, true, false},
		{5, false, false},
		{-5, false, false},
	} {
		w := newWorld()
		w.cache.RepairFn = func(context.Context, int64, int64, int64, []string, []int64) (bool, error) { return c.repaired, nil }
		repaired, err := w.ledger(t).Repairs().Repair(ctx, 3, 40, c.delta, nil, nil)
		if repaired != c.repaired || err != nil {
			t.Errorf("delta %d: %v, %v, want %v", c.delta, repaired, err, c.repaired)
		}
		if a := w.rec.Of("Cache.Repair"); len(a) != 1 || !slices.Equal(a[0][:3], []any{int64(3), int64(40), c.delta}) {
			t.Errorf("delta %d: repaired %v, want goods 3 from 40 by %d", c.delta, a, c.delta)
		}
		want := []string(nil)
		if c.announced {
			want = []string{"StockBack", "Announce"}
		}
		if got := w.rec.Only("StockBack", "Announce"); !slices.Equal(got, want) {
			t.Errorf("delta %d, repaired %v: calls %v, want %v", c.delta, c.repaired, got, want)
		}
		// No movement to stand in for: no record to update.
		if n := w.rec.Count("Stock.MarkCached") + w.rec.Count("Cache.Forget"); n != 0 {
			t.Errorf("delta %d: %d settlements of no movement", c.delta, n)
		}
	}
}

// Every goods Redis does not hold is restored from the database; the others
// are left alone.
func TestRestoreMissing(t *testing.T) {
	t.Parallel()
	w := newWorld()
	gs := []service.Goods{{ID: 1}, {ID: 2, PerUserLimit: 1}, {ID: 3}}
	w.stock.ListGoodsFn = func(context.Context) ([]service.Goods, error) { return gs, nil }
	w.cache.StockFn = func(_ context.Context, id int64) (int64, bool, error) { return 9, id == 1, nil }
	w.stock.GoodsFn = func(_ context.Context, id int64) (service.Goods, error) { return gs[id-1], nil }
	w.stock.TruthFn = func(_ context.Context, id int64) (int64, error) { return 10 * id, nil }
	w.stock.PendingMovementsFn = func(context.Context, int64) ([]string, []int64, error) { return nil, nil, nil }
	w.stock.UserUnitsFn = func(_ context.Context, _ int64, each func(int64, int64) error) error { return each(4, 1) }
	units := map[int64]map[int64]int64{} // per goods restored, the user units it was given
	w.cache.RestoreFn = func(_ context.Context, g service.Goods, st service.RestoredStock) (bool, error) {
		if st.UserUnits != nil {
			units[g.ID] = map[int64]int64{}
			if err := st.UserUnits(func(user, n int64) error { units[g.ID][user] += n; return nil }); err != nil {
				return false, err
			}
		}
		return g.ID == 2, nil // goods 3 was restored by someone else meanwhile
	}
	restored, err := w.ledger(t).Repairs().RestoreMissing(ctx)
	if err != nil || !slices.Equal(restored, []int64{2}) {
		t.Errorf("got %v, %v, want [2]", restored, err)
	}
	r := w.rec.Of("Cache.Restore")
	if len(r) != 2 || r[0][0].(service.Goods).ID != 2 || r[1][0].(service.Goods).ID != 3 {
		t.Fatalf("restores %v, want goods 2 and 3", r)
	}
	if st := r[0][1].(service.RestoredStock); st.Stock != 20 || units[2][4] != 1 || len(units[2]) != 1 {
		t.Errorf("goods 2 restored with %+v and units %v, want its truth 20 and user 4's unit", st, units[2])
	}
	if st := r[1][1].(service.RestoredStock); st.Stock != 30 || st.UserUnits != nil {
		t.Errorf("goods 3 restored with %+v, want its truth 30 and no user units", st)
	}
}

// A failed read of Redis stops the pass: a missing key is never guessed.
func TestRestoreMissingStopsOnAFailedRead(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.stock.ListGoodsFn = func(context.Context) ([]service.Goods, error) { return []service.Goods{{ID: 1}, {ID: 2}}, nil }
	w.cache.StockFn = func(context.Context, int64) (int64, bool, error) { return 0, false, service.ErrUnavailable }
	restored, err := w.ledger(t).Repairs().RestoreMissing(ctx)
	if err != service.ErrUnavailable || len(restored) != 0 {
		t.Errorf("got %v, %v, want unavailable", restored, err)
	}
	if n := w.rec.Count("Cache.Restore") + w.rec.Count("Cache.Stock"); n != 1 {
		t.Errorf("%d calls after the failed read", n-1)
	}
}

// Close without a rebuild returns at once; the pass-throughs pass through.
func TestPassThroughs(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.cache.PutFn = func(context.Context, service.Goods) error { return nil }
	w.cache.StockFn = func(context.Context, int64) (int64, bool, error) { return 7, true, nil }
	w.stock.TruthFn = func(context.Context, int64) (int64, error) { return 6, nil }
	l := w.ledger(t)
	if err := l.Put(ctx, service.Goods{ID: 3, Stock: 9}); err != nil {
		t.Error(err)
	}
	if s, ok, err := l.Stock(ctx, 3); s != 7 || !ok || err != nil {
		t.Errorf("stock %d, %v, %v", s, ok, err)
	}
	w.stock.PendingMovementsFn = func(context.Context, int64) ([]string, []int64, error) { return nil, nil, nil }
	if rs, err := l.Repairs().TruthsAndPending(ctx, []int64{3}); err != nil || len(rs) != 1 || rs[0].Truth != 6 || !rs[0].Exact {
		t.Errorf("truth %+v, %v", rs, err)
	}
	if p := w.rec.Of("Cache.Put"); len(p) != 1 || p[0][0] != (service.Goods{ID: 3, Stock: 9}) {
		t.Errorf("put %v", p)
	}
	l.Close()
	l.Close()
}
