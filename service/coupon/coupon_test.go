package coupon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/recovery"
)

type world struct {
	c       *Coupons
	tpls    *fakeTemplates
	records *fakeRecords
	stocks  *fakeStocks
	msgs    *fakeMessages
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{tpls: newFakeTemplates(), records: newFakeRecords(), stocks: newFakeStocks(), msgs: &fakeMessages{}}
	w.c = New(w.tpls, w.records, w.stocks, nopCache{}, okLocker{}, w.msgs, &counterIDs{},
		Options{WriteBudget: time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return w
}

func ptr[T any](v T) *T { return &v }

func (w *world) template(t *testing.T, stock int64, limit, subs int) Template {
	t.Helper()
	tpl, err := w.c.CreateTemplate(context.Background(), NewTemplate{Name: "t", Type: TypeFixed, Value: 100, Stock: stock,
		PerUserLimit: ptr(limit), SubStocks: ptr(subs)})
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// Every unit is in a sub-stock or in a record, whatever befell the claims.
func (w *world) checkConserved(t *testing.T, tpl Template) {
	t.Helper()
	counts, _ := w.records.CouponCounts(context.Background(), tpl.ID, time.Now())
	if got := w.stocks.total() + counts.Issued; got != tpl.Stock {
		t.Errorf("sub-stocks %d + issued %d = %d, want the stock %d", w.stocks.total(), counts.Issued, got, tpl.Stock)
	}
}

func TestAClaimWhoseWriteWasNotWrittenIsFencedAndItsUnitGoesBack(t *testing.T) {
	w := newWorld(t)
	tpl := w.template(t, 5, 1, 2)
	w.records.insertErr = func(Coupon) (bool, error) {
		return false, fmt.Errorf("%w: %w: connection broke", service.ErrUnavailable, service.ErrAmbiguous)
	}
	_, err := w.c.Claim(context.Background(), 1, tpl.ID, "")
	if !errors.Is(err, service.ErrUnavailable) || errors.Is(err, service.ErrAmbiguous) {
		t.Fatalf("err = %v, want unavailable (nothing claimed)", err)
	}
	if w.stocks.total() != 5 {
		t.Errorf("sub-stocks hold %d, want the unit back (5)", w.stocks.total())
	}
	for _, r := range w.records.rows {
		if r.Status != StatusVoid {
			t.Errorf("a row other than the fence: %+v", r)
		}
	}
	// The fence must not count against the user's limit.
	w.records.insertErr = nil
	if _, err := w.c.Claim(context.Background(), 1, tpl.ID, ""); err != nil {
		t.Errorf("claim after a fenced one: %v", err)
	}
	w.checkConserved(t, tpl)
}

func TestAClaimWhoseWriteLandedDespiteTheErrorSucceeds(t *testing.T) {
	w := newWorld(t)
	tpl := w.template(t, 5, 1, 2)
	w.records.insertErr = func(Coupon) (bool, error) {
		return true, fmt.Errorf("%w: %w: timeout after send", service.ErrUnavailable, service.ErrAmbiguous)
	}
	cp, err := w.c.Claim(context.Background(), 1, tpl.ID, "")
	if err != nil || cp.ID == 0 {
		t.Fatalf("claim = %+v, %v; want the coupon the row holds", cp, err)
	}
	if len(w.msgs.expiries) != 1 || w.msgs.expiries[0].CouponID != cp.ID {
		t.Errorf("expiries scheduled %+v, want the coupon's", w.msgs.expiries)
	}
	if w.stocks.total() != 4 {
		t.Errorf("sub-stocks hold %d, want 4: the unit is the coupon's", w.stocks.total())
	}
	w.checkConserved(t, tpl)
}

// When not even the fence can be written the unit stays taken (never a
// coupon issued twice for it), the client hears outcome_unknown, and
// reconciliation gives the unit back once consecutive passes saw it gone.
func TestAnUnfencedClaimKeepsItsUnitUntilReconciliation(t *testing.T) {
	w := newWorld(t)
	tpl := w.template(t, 5, 1, 2)
	w.records.insertErr = func(Coupon) (bool, error) {
		return false, fmt.Errorf("%w: %w: broke", service.ErrUnavailable, service.ErrAmbiguous)
	}
	w.records.voidErr = fmt.Errorf("%w: database gone", service.ErrUnavailable)
	if _, err := w.c.Claim(context.Background(), 1, tpl.ID, ""); !errors.Is(err, service.ErrAmbiguous) {
		t.Fatalf("err = %v, want outcome unknown", err)
	}
	if w.stocks.total() != 4 {
		t.Fatalf("sub-stocks hold %d, want 4", w.stocks.total())
	}
	for pass := 1; pass <= recovery.RepairAfter; pass++ {
		ds, err := w.c.Reconcile(context.Background())
		if err != nil || len(ds) != 1 || ds[0].Drift != -1 || ds[0].Seen != pass || ds[0].Repaired != (pass == recovery.RepairAfter) {
			t.Fatalf("pass %d: %+v %v", pass, ds, err)
		}
	}
	w.checkConserved(t, tpl)
}

// Units Redis holds beyond the truth (takes a restarted master forgot) come
// off, from each sub-stock in turn and never below zero.
func TestReconciliationTakesOffExcessNeverBelowZero(t *testing.T) {
	w := newWorld(t)
	tpl := w.template(t, 4, 0, 2)
	w.stocks.levels[tpl.Tags[0]] += 3
	for range recovery.RepairAfter {
		if _, err := w.c.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, tag := range tpl.Tags {
		if w.stocks.levels[tag] < 0 {
			t.Errorf("sub-stock %s went below zero: %d", tag, w.stocks.levels[tag])
		}
	}
	w.checkConserved(t, tpl)
}

// An addition whose Redis step failed stays pending and reconciliation
// completes it once; a copy of its steps adds nothing.
func TestAPendingAdditionIsCompletedOnce(t *testing.T) {
	w := newWorld(t)
	tpl := w.template(t, 4, 0, 2)
	w.stocks.down[tpl.Tags[1]] = true
	got, added, err := w.c.AddStock(context.Background(), tpl.ID, 6, "op-1")
	if err != nil || !added || got.Stock != 10 {
		t.Fatalf("add = %+v %v %v", got, added, err)
	}
	delete(w.stocks.down, tpl.Tags[1])
	for range 2 {
		if _, err := w.c.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if w.stocks.total() != 10 {
		t.Errorf("sub-stocks hold %d, want 10", w.stocks.total())
	}
	if _, again, _ := w.c.AddStock(context.Background(), tpl.ID, 6, "op-1"); again {
		t.Errorf("the same op id added twice")
	}
}

// Concurrent claims of one user never pass the per-user limit, and the
// units of the refused ones go back.
func TestConcurrentClaimsOfOneUserKeepTheLimit(t *testing.T) {
	w := newWorld(t)
	tpl := w.template(t, 100, 3, 4)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.c.Claim(context.Background(), 7, tpl.ID, ""); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, service.ErrLimitExceeded) && !errors.Is(err, service.ErrUnavailable) {
				t.Errorf("claim: %v", err)
			}
		}()
	}
	wg.Wait()
	if n, _ := w.records.CountClaims(context.Background(), service.OrderTable{}, tpl.ID, 7); n != 3 || ok != 3 {
		t.Errorf("user holds %d coupons after %d successes, want 3", n, ok)
	}
	w.checkConserved(t, tpl)
}

// A sub-stock whose master fails is skipped: claims go on from the others,
// and once only it is left the answer is unavailable, not out of stock.
func TestAFailedMasterIsSkipped(t *testing.T) {
	w := newWorld(t)
	tpl := w.template(t, 4, 0, 2)
	w.stocks.down[tpl.Tags[0]] = true
	for i := range 2 {
		if _, err := w.c.Claim(context.Background(), int64(i+1), tpl.ID, ""); err != nil {
			t.Fatalf("claim %d with one master down: %v", i, err)
		}
	}
	if _, err := w.c.Claim(context.Background(), 9, tpl.ID, ""); !errors.Is(err, service.ErrUnavailable) {
		t.Errorf("with only the failed sub-stock left: %v, want unavailable", err)
	}
	delete(w.stocks.down, tpl.Tags[0])
	w.c.picker.Forget(tpl.Tags...)
	if _, err := w.c.Claim(context.Background(), 9, tpl.ID, ""); err != nil {
		t.Errorf("after the master came back: %v", err)
	}
}

func TestRetriesUnderOneKeyGetOneCoupon(t *testing.T) {
	w := newWorld(t)
	tpl := w.template(t, 10, 0, 2)
	var wg sync.WaitGroup
	ids := make(chan int64, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp, err := w.c.Claim(context.Background(), 5, tpl.ID, "key-1")
			if err != nil {
				t.Errorf("claim: %v", err)
				return
			}
			ids <- cp.ID
		}()
	}
	wg.Wait()
	close(ids)
	first := <-ids
	for id := range ids {
		if id != first {
			t.Fatalf("one key got coupons %d and %d", first, id)
		}
	}
	w.checkConserved(t, tpl)
	if w.stocks.total() != 9 {
		t.Errorf("sub-stocks hold %d, want 9", w.stocks.total())
	}
}

func TestDefaultSubStocks(t *testing.T) {
	for _, c := range []struct {
		stock   int64
		masters int
		want    int
	}{{0, 3, 1}, {999, 3, 1}, {2500, 3, 2}, {3000, 3, 3}, {10_000_000, 3, 3}, {10_000_000, 1, 1}} {
		if got := DefaultSubStocks(c.stock, c.masters); got != c.want {
			t.Errorf("DefaultSubStocks(%d, %d) = %d, want %d", c.stock, c.masters, got, c.want)
		}
	}
}

func TestDiscount(t *testing.T) {
	cases := []struct {
		t      Template
		amount int64
		want   int64
		err    error
	}{
		{Template{Type: TypeFixed, Value: 500}, 2000, 500, nil},
		{Template{Type: TypeFixed, Value: 500}, 300, 300, nil},
		{Template{Type: TypePercent, Value: 15}, 2000, 300, nil},
		{Template{Type: TypeThreshold, Value: 500, Threshold: 3000}, 2999, 0, service.ErrThresholdNotMet},
		{Template{Type: TypeThreshold, Value: 500, Threshold: 3000}, 3000, 500, nil},
	}
	for _, c := range cases {
		got, err := c.t.Discount(c.amount)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("%+v of %d = %d %v, want %d %v", c.t, c.amount, got, err, c.want, c.err)
		}
	}
}

// heldRecords holds every insert until n of them have arrived, so that
// claims race to their writes for real.
type heldRecords struct {
	*fakeRecords
	n       int32
	arrived atomic.Int32
	all     chan struct{}
}

func (h *heldRecords) InsertCoupon(ctx context.Context, at service.OrderTable, c Coupon) error {
	if h.arrived.Add(1) == h.n {
		close(h.all)
	}
	<-h.all
	return h.fakeRecords.InsertCoupon(ctx, at, c)
}

// Twins of one claim under one key race to their writes for a user whose
// per-user limit is 1. The database checks the slot before the key, so the
// twins that lose hear "slot taken", and the user is then at the limit:
// they must still answer with the key's coupon (a retry's answer), not
// limit_exceeded, and give their units back.
func TestTwinsUnderOneKeyAtTheLimitGetTheKeysCoupon(t *testing.T) {
	const twins = 4
	records := newFakeRecords()
	w := &world{tpls: newFakeTemplates(), records: records, stocks: newFakeStocks(), msgs: &fakeMessages{}}
	w.c = New(w.tpls, &heldRecords{fakeRecords: records, n: twins, all: make(chan struct{})}, w.stocks, nopCache{}, okLocker{}, w.msgs,
		&counterIDs{}, Options{WriteBudget: time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tpl := w.template(t, 10, 1, 2)
	var wg sync.WaitGroup
	ids := make(chan int64, twins)
	for range twins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp, err := w.c.Claim(context.Background(), 5, tpl.ID, "key-1")
			if err != nil {
				t.Errorf("a twin under the key: %v", err)
				return
			}
			ids <- cp.ID
		}()
	}
	wg.Wait()
	close(ids)
	first := <-ids
	for id := range ids {
		if id != first {
			t.Errorf("one key got coupons %d and %d", first, id)
		}
	}
	w.checkConserved(t, tpl)
	if w.stocks.total() != 9 {
		t.Errorf("sub-stocks hold %d, want 9", w.stocks.total())
	}
}

// lateKeyRecords answers the first key lookup "not found", as it would
// have read just before a twin under the key was recorded.
type lateKeyRecords struct {
	*fakeRecords
	looked atomic.Bool
}

func (l *lateKeyRecords) CouponByKey(ctx context.Context, at service.OrderTable, userID int64, key string) (Coupon, error) {
	if !l.looked.Swap(true) {
		return Coupon{}, fmt.Errorf("%w: key %q", service.ErrNotFound, key)
	}
	return l.fakeRecords.CouponByKey(ctx, at, userID, key)
}

// A twin under the same key is recorded between a claim's lookup of the
// key and its count of the user's coupons: the count finds the limit
// reached, and the claim answers with the key's coupon, not
// limit_exceeded.
func TestATwinRecordedAfterTheKeyLookupIsTheAnswer(t *testing.T) {
	records := newFakeRecords()
	w := &world{tpls: newFakeTemplates(), records: records, stocks: newFakeStocks(), msgs: &fakeMessages{}}
	w.c = New(w.tpls, &lateKeyRecords{fakeRecords: records}, w.stocks, nopCache{}, okLocker{}, w.msgs,
		&counterIDs{}, Options{WriteBudget: time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tpl := w.template(t, 10, 1, 2)
	now := time.Now()
	twin := Coupon{ID: 99, TemplateID: tpl.ID, UserID: 5, Seq: 1, Key: "key-1", ClaimedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := records.InsertCoupon(context.Background(), service.OrderTable{}, twin); err != nil {
		t.Fatal(err)
	}
	w.stocks.GiveBack(context.Background(), tpl.Tags[0], -1) // the twin's unit
	cp, err := w.c.Claim(context.Background(), 5, tpl.ID, "key-1")
	if err != nil || cp.ID != twin.ID {
		t.Errorf("claim under the twin's key: %+v, %v; want coupon %d", cp, err, twin.ID)
	}
	if _, err := w.c.Claim(context.Background(), 5, tpl.ID, "key-2"); !errors.Is(err, service.ErrLimitExceeded) {
		t.Errorf("another key of the user at the limit: %v, want limit exceeded", err)
	}
	w.checkConserved(t, tpl)
}

// A template's end message that names an earlier time than the template's
// end (a copy from another run's queue, a forged one) ends nothing: it is
// early, and waits for the template's end; one at the end ends it.
func TestAnEarlyTemplateEndMessageEndsNothing(t *testing.T) {
	w := newWorld(t)
	now := time.Now()
	end := now.Add(time.Hour)
	tpl, err := w.c.CreateTemplate(context.Background(), NewTemplate{Name: "t", Type: TypeFixed, Value: 100, Stock: 5, EndAt: &end})
	if err != nil {
		t.Fatal(err)
	}
	wait, err := w.c.Expire(context.Background(), Expiry{TemplateID: tpl.ID, At: now.Add(-time.Second).UnixMilli()})
	if got, _ := w.tpls.Template(context.Background(), tpl.ID); err != nil || got.Ended || wait < 59*time.Minute {
		t.Errorf("an end message claiming the template was due: ended %v, wait %v, err %v; want not ended, wait ~1h", got.Ended, wait, err)
	}
	if _, err := w.c.Claim(context.Background(), 1, tpl.ID, ""); err != nil {
		t.Errorf("a claim after it: %v", err)
	}
	w.c.o.Now = func() time.Time { return end.Add(time.Millisecond) }
	if wait, err := w.c.Expire(context.Background(), Expiry{TemplateID: tpl.ID, At: end.UnixMilli()}); err != nil || wait != 0 {
		t.Fatalf("at its end: wait %v, err %v", wait, err)
	}
	if got, _ := w.tpls.Template(context.Background(), tpl.ID); !got.Ended {
		t.Errorf("the template's end message at its end did not end it")
	}
}
