package ledger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-seckill/seckill/service"
)

// In-memory doubles of the ports the movements of stock coming in use. An
// embedded nil port panics on a call the test did not expect.

// movLog records the calls of the doubles sharing it, in order.
type movLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *movLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, fmt.Sprintf(format, args...))
}

func (l *movLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.calls, "; ")
}

type movCache struct {
	Gate
	Moves
	Mends
	log        *movLog
	addErr     error
	repaired   bool
	buyersDone []int64
}

func (c *movCache) Add(_ context.Context, goodsID, n int64, opID string) error {
	c.log.add("cache.Add(%d, %d, %s)", goodsID, n, opID)
	return c.addErr
}

func (c *movCache) Return(_ context.Context, orderID, goodsID, userID, n int64) error {
	c.log.add("cache.Return(%d)", orderID)
	return c.addErr
}

func (c *movCache) Forget(_ context.Context, goodsID int64, ops []string, returns []int64) error {
	c.log.add("cache.Forget(%v, %v)", ops, returns)
	return nil
}

func (c *movCache) Repair(_ context.Context, goodsID, expected, delta int64, ops []string, returns []int64) (bool, error) {
	c.log.add("cache.Repair(%d, %d, %v, %v)", expected, delta, ops, returns)
	return c.repaired, nil
}

func (c *movCache) Restore(_ context.Context, g service.Goods, st service.RestoredStock) (bool, error) {
	c.log.add("cache.Restore(%d, %v, %v)", st.Stock, st.PendingOps, st.PendingReturns)
	return c.repaired, nil
}

func (c *movCache) Markers(_ context.Context, goodsID int64, each func(ops []string, returns []int64) error) error {
	c.log.add("cache.Markers")
	if err := each([]string{"a"}, nil); err != nil {
		return err
	}
	return each(nil, []int64{7})
}

func (c *movCache) RepairBuyers(_ context.Context, goodsID int64, fixes []service.BuyerUnits, unreturned map[int64][]int64) ([]int64, error) {
	c.log.add("cache.RepairBuyers(%v, %v)", fixes, unreturned)
	return c.buyersDone, nil
}

func (c *movCache) Stock(context.Context, int64) (int64, bool, error) { return 0, false, nil }

type movStock struct {
	Records
	Truths
	log     *movLog
	dup     bool  // the addition was recorded before
	cached  bool  // what the record says
	goods   int64 // the record's goods and delta
	delta   int64
	commit  error  // the commit after the step
	pending []pend // what each read of the pending movements returns; the last one stays
	calls   int    // PendingMovements calls so far
	truth   int64
	unret   map[int64][]int64
}

func (s *movStock) AddStock(_ context.Context, goodsID, n int64, opID string) error {
	s.log.add("stock.AddStock(%d, %d, %s)", goodsID, n, opID)
	if s.dup {
		return service.ErrDuplicate
	}
	return nil
}

func (s *movStock) CacheAddition(_ context.Context, opID string, step func(goodsID, delta int64) error) (bool, error) {
	s.log.add("stock.CacheAddition(%s)", opID)
	if s.cached {
		return false, nil
	}
	if err := step(s.goods, s.delta); err != nil {
		return false, err
	}
	return s.commit == nil, s.commit
}

func (s *movStock) ReturnSale(context.Context, service.StockMessage) error {
	s.log.add("stock.ReturnSale")
	return service.ErrAlreadyApplied
}

func (s *movStock) CacheReturn(_ context.Context, orderID int64, step func() error) (bool, error) {
	s.log.add("stock.CacheReturn(%d)", orderID)
	if s.cached {
		return false, nil
	}
	if err := step(); err != nil {
		return false, err
	}
	return s.commit == nil, s.commit
}

func (s *movStock) MarkCached(_ context.Context, goodsID int64, ops []string, returns []int64) ([]string, []int64, error) {
	s.log.add("stock.MarkCached(%v, %v)", ops, returns)
	// Only op "a" and order 7 have records.
	var o []string
	var r []int64
	if slices.Contains(ops, "a") {
		o = []string{"a"}
	}
	if slices.Contains(returns, 7) {
		r = []int64{7}
	}
	return o, r, nil
}

func (s *movStock) PendingMovements(context.Context, int64) ([]string, []int64, error) {
	p := s.pending[min(s.calls, len(s.pending)-1)]
	s.calls++
	s.log.add("stock.PendingMovements")
	return p.ops, p.returns, nil
}

func (s *movStock) TruthOfEach(_ context.Context, goodsIDs []int64) ([]int64, error) {
	truths := make([]int64, len(goodsIDs))
	for i := range truths {
		s.log.add("stock.Truth")
		truths[i] = s.truth
	}
	return truths, nil
}

func (s *movStock) Goods(_ context.Context, id int64) (service.Goods, error) {
	return service.Goods{ID: id}, nil
}

func (s *movStock) CancelledUnreturned(_ context.Context, goodsID int64, users []int64) (map[int64][]int64, error) {
	s.log.add("stock.CancelledUnreturned(%v)", users)
	return s.unret, nil
}

type movAnnouncer struct{ log *movLog }

func (a movAnnouncer) AnnounceStockBack(_ context.Context, goodsID int64) error {
	a.log.add("announce(%d)", goodsID)
	return nil
}

func newMovLedger(c *movCache, s *movStock) *Ledger {
	return New(Stores{Gate: c, Moves: c, Mends: c, Records: s, Truths: s, Announcer: movAnnouncer{c.log}}, Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// pend is one read of the pending movements.
type pend struct {
	ops     []string
	returns []int64
}

// An addition whose record says Redis holds it leaves Redis alone; one
// whose step runs uses the goods and units its record holds, and its
// marker goes only once the record says Redis holds it.
func TestAdditionRunsItsRedisStepOnlyWhileTheRecordSaysPending(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		stock  movStock
		addErr error
		want   string
		err    bool
	}{
		{"first call", movStock{goods: 3, delta: 9}, nil,
			"stock.AddStock(3, 9, x); stock.CacheAddition(x); cache.Add(3, 9, x); cache.Forget([x], []); announce(3)", false},
		{"retry, recorded units win", movStock{dup: true, goods: 3, delta: 5}, nil,
			"stock.AddStock(3, 9, x); stock.CacheAddition(x); cache.Add(3, 5, x); cache.Forget([x], []); announce(3)", false},
		{"retry after a repair", movStock{dup: true, goods: 3, delta: 5, cached: true}, nil,
			"stock.AddStock(3, 9, x); stock.CacheAddition(x); announce(3)", false},
		{"redis refuses", movStock{dup: true, goods: 3, delta: 5}, errors.New("READONLY"),
			"stock.AddStock(3, 9, x); stock.CacheAddition(x); cache.Add(3, 5, x)", true},
		{"record update fails: the marker stays", movStock{dup: true, goods: 3, delta: 5, commit: service.ErrUnavailable}, nil,
			"stock.AddStock(3, 9, x); stock.CacheAddition(x); cache.Add(3, 5, x)", true},
		{"redis lost the goods", movStock{dup: true, goods: 3, delta: 5}, service.ErrStockNotLoaded,
			"stock.AddStock(3, 9, x); stock.CacheAddition(x); cache.Add(3, 5, x); announce(3)", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			log := &movLog{}
			s := c.stock
			s.log = log
			l := newMovLedger(&movCache{log: log, addErr: c.addErr}, &s)
			replayed, err := l.AddStock(context.Background(), 3, 9, "x")
			if replayed != s.dup {
				t.Errorf("replayed %v, want %v", replayed, s.dup)
			}
			if (err != nil) != c.err {
				t.Errorf("err %v, want error %v", err, c.err)
			}
			if got := log.String(); got != c.want {
				t.Errorf("calls\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

// A return does the same, keyed by its order.
func TestReturnRunsItsRedisStepOnlyWhileTheRecordSaysPending(t *testing.T) {
	t.Parallel()
	m := service.StockMessage{OrderID: 11, GoodsID: 3, UserID: 1, Number: 2}
	for _, c := range []struct {
		name   string
		cached bool
		want   string
	}{
		{"pending", false, "stock.ReturnSale; stock.CacheReturn(11); cache.Return(11); cache.Forget([], [11]); announce(3)"},
		{"cached", true, "stock.ReturnSale; stock.CacheReturn(11); announce(3)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			log := &movLog{}
			l := newMovLedger(&movCache{log: log}, &movStock{log: log, cached: c.cached})
			if err := l.ReturnOrder(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			if got := log.String(); got != c.want {
				t.Errorf("calls\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

// A repair that applied marks its movements in the same step, then their
// records, then deletes the markers of those that have a record; one that
// did not apply touches nothing else.
func TestRepairSettlesTheMovementsItStoodInFor(t *testing.T) {
	t.Parallel()
	for _, applied := range []bool{false, true} {
		log := &movLog{}
		l := newMovLedger(&movCache{log: log, repaired: applied}, &movStock{log: log})
		ok, err := l.Repairs().Repair(context.Background(), 3, 10, 5, []string{"a", "b"}, []int64{7, 8})
		if err != nil || ok != applied {
			t.Fatal(ok, err)
		}
		want := "cache.Repair(10, 5, [a b], [7 8])"
		if applied {
			want += "; stock.MarkCached([a b], [7 8]); cache.Forget([a], [7]); announce(3)"
		}
		if got := log.String(); got != want {
			t.Errorf("applied %v: calls\n got %s\nwant %s", applied, got, want)
		}
	}
}

// Tidy settles each chunk of markers Redis holds.
func TestTidySettlesEveryChunkOfMarkers(t *testing.T) {
	t.Parallel()
	log := &movLog{}
	l := newMovLedger(&movCache{log: log}, &movStock{log: log})
	if err := l.Repairs().Tidy(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	want := "cache.Markers; stock.MarkCached([a], []); cache.Forget([a], []); stock.MarkCached([], [7]); cache.Forget([], [7])"
	if got := log.String(); got != want {
		t.Errorf("calls\n got %s\nwant %s", got, want)
	}
}

// The pending movements are read before and after the truth: when one
// appears in between, the reads are repeated; the rebuild marks those
// pending after the truth and settles them once it restored.
func TestRestoreReadsThePendingMovementsAroundTheTruth(t *testing.T) {
	t.Parallel()
	a, a7, none := pend{ops: []string{"a"}}, pend{ops: []string{"a"}, returns: []int64{7}}, pend{}
	for _, c := range []struct {
		name    string
		pending []pend
		reads   int
	}{
		{"settled at once", []pend{a7, a7}, 2},
		{"one gone meanwhile", []pend{{ops: []string{"a", "b"}, returns: []int64{7}}, a7}, 2},
		{"one came meanwhile", []pend{a, a7, a7, a7}, 4},
		{"never settles", []pend{none, a, none, a, none, a7}, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			log := &movLog{}
			s := &movStock{log: log, pending: c.pending, truth: 42}
			l := newMovLedger(&movCache{log: log, repaired: true}, s)
			if ok, err := l.restore(context.Background(), 3); err != nil || !ok {
				t.Fatal(ok, err)
			}
			if s.calls != c.reads {
				t.Errorf("%d reads of the pending movements, want %d", s.calls, c.reads)
			}
			ops, rets := c.pending[c.reads-1].ops, c.pending[c.reads-1].returns
			want := fmt.Sprintf("cache.Restore(42, %v, %v)", ops, rets)
			if len(ops)+len(rets) > 0 {
				var recOps []string
				var recRets []int64
				if slices.Contains(ops, "a") {
					recOps = []string{"a"}
				}
				if slices.Contains(rets, 7) {
					recRets = []int64{7}
				}
				want += fmt.Sprintf("; stock.MarkCached(%v, %v); cache.Forget(%v, %v)", ops, rets, recOps, recRets)
			}
			if got := log.String(); !strings.HasSuffix(got, want) {
				t.Errorf("calls %s\nwant them to end with %s", got, want)
			}
		})
	}
}

// Buyer repairs mark the unreturned cancelled orders of the buyers they
// set, and settle those only.
func TestRepairBuyersSettlesTheReturnsOfTheBuyersItSet(t *testing.T) {
	t.Parallel()
	log := &movLog{}
	c := &movCache{log: log, buyersDone: []int64{1}}
	s := &movStock{log: log, unret: map[int64][]int64{1: {7}, 2: {8}}}
	l := newMovLedger(c, s)
	fixes := []service.BuyerUnits{{UserID: 1, Cached: 2, Truth: 0}, {UserID: 2, Cached: 1, Truth: 0}}
	n, err := l.Repairs().RepairBuyers(context.Background(), 3, fixes)
	if err != nil || n != 1 {
		t.Fatal(n, err)
	}
	want := "stock.CancelledUnreturned([1 2]); cache.RepairBuyers([{1 2 0} {2 1 0}], map[1:[7] 2:[8]]); stock.MarkCached([], [7]); cache.Forget([], [7])"
	if got := log.String(); got != want {
		t.Errorf("calls\n got %s\nwant %s", got, want)
	}
}
