package coupon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-seckill/seckill/service"
)

// Fakes of the ports, in memory, with switches to make a step fail.

type fakeTemplates struct {
	mu      sync.Mutex
	ts      map[int64]Template
	ops     map[string]StockOp
	settled map[string]bool
	next    int64
}

func newFakeTemplates() *fakeTemplates {
	return &fakeTemplates{ts: map[int64]Template{}, ops: map[string]StockOp{}, settled: map[string]bool{}}
}

func opKey(id int64, op string) string { return fmt.Sprintf("%d/%s", id, op) }

func (f *fakeTemplates) CreateTemplate(_ context.Context, t Template) (Template, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	t.ID = f.next
	f.ts[t.ID] = t
	f.ops[opKey(t.ID, InitialOp)] = StockOp{TemplateID: t.ID, OpID: InitialOp, Added: t.Stock}
	return t, nil
}

func (f *fakeTemplates) Template(_ context.Context, id int64) (Template, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.ts[id]
	if !ok {
		return Template{}, service.ErrNotFound
	}
	return t, nil
}

func (f *fakeTemplates) ListTemplates(context.Context) ([]Template, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Template
	for id := int64(1); id <= f.next; id++ {
		out = append(out, f.ts[id])
	}
	return out, nil
}

func (f *fakeTemplates) AddTemplateStock(_ context.Context, op StockOp) (Template, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.ts[op.TemplateID]
	if _, dup := f.ops[opKey(op.TemplateID, op.OpID)]; dup {
		return t, false, nil
	}
	f.ops[opKey(op.TemplateID, op.OpID)] = op
	t.Stock += op.Added
	f.ts[t.ID] = t
	return t, true, nil
}

func (f *fakeTemplates) PendingStockOps(_ context.Context, id int64) ([]StockOp, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []StockOp
	for k, op := range f.ops {
		if op.TemplateID == id && !f.settled[k] {
			out = append(out, op)
		}
	}
	return out, nil
}

func (f *fakeTemplates) SettleStockOp(_ context.Context, id int64, op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settled[opKey(id, op)] = true
	return nil
}

func (f *fakeTemplates) EndTemplate(_ context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.ts[id]
	t.Ended = true
	f.ts[id] = t
	return nil
}

func (f *fakeTemplates) DueTemplates(context.Context, time.Time) ([]int64, error) { return nil, nil }

// fakeRecords keeps coupons by id; insertErr, when set, decides an insert's
// fate (written says whether the row lands anyway).
type fakeRecords struct {
	mu        sync.Mutex
	rows      map[int64]Coupon
	insertErr func(c Coupon) (written bool, err error)
	voidErr   error
}

func newFakeRecords() *fakeRecords { return &fakeRecords{rows: map[int64]Coupon{}} }

func (f *fakeRecords) InsertCoupon(_ context.Context, _ service.OrderTable, c Coupon) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.insertErr != nil {
		if written, err := f.insertErr(c); err != nil {
			if written {
				f.rows[c.ID] = c
			}
			return err
		}
	}
	// The unique keys in the order MariaDB checks them (the order of the
	// table's definition): a taken slot is named before a held key.
	for _, r := range f.rows {
		if r.UserID == c.UserID && r.TemplateID == c.TemplateID && c.Seq > 0 && r.Seq == c.Seq {
			return service.ErrSlotTaken
		}
	}
	for _, r := range f.rows {
		if r.UserID == c.UserID && c.Key != "" && r.Key == c.Key {
			return service.ErrKeyHeld
		}
	}
	if _, dup := f.rows[c.ID]; dup {
		return fmt.Errorf("duplicate id")
	}
	f.rows[c.ID] = c
	return nil
}

func (f *fakeRecords) VoidCoupon(_ context.Context, _ service.OrderTable, c Coupon) (bool, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.voidErr != nil {
		return false, 0, f.voidErr
	}
	if r, ok := f.rows[c.ID]; ok {
		return false, r.Status, nil
	}
	f.rows[c.ID] = Coupon{ID: c.ID, TemplateID: c.TemplateID, UserID: c.UserID, Status: StatusVoid}
	return true, StatusVoid, nil
}

func (f *fakeRecords) CouponByKey(_ context.Context, _ service.OrderTable, userID int64, key string) (Coupon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rows {
		if r.UserID == userID && r.Key == key {
			return r, nil
		}
	}
	return Coupon{}, service.ErrNotFound
}

func (f *fakeRecords) Coupon(_ context.Context, _ service.OrderTable, id int64) (Coupon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.rows[id]
	if !ok {
		return Coupon{}, service.ErrNotFound
	}
	return r, nil
}

func (f *fakeRecords) CountClaims(_ context.Context, _ service.OrderTable, templateID, userID int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.rows {
		if r.TemplateID == templateID && r.UserID == userID && r.Status != StatusVoid {
			n++
		}
	}
	return n, nil
}

func (f *fakeRecords) UseCoupon(_ context.Context, _ service.OrderTable, id, userID, orderID int64, now time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rows[id]
	if r.UserID != userID || r.Status != StatusUnused || !now.Before(r.ExpiresAt) {
		return false, nil
	}
	r.Status, r.OrderID = StatusUsed, orderID
	f.rows[id] = r
	return true, nil
}

func (f *fakeRecords) ReleaseCoupon(_ context.Context, _ service.OrderTable, id, userID, orderID int64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rows[id]
	if r.UserID != userID || r.Status != StatusUsed || r.OrderID != orderID {
		return false, nil
	}
	r.Status, r.OrderID, r.UsedAt = StatusUnused, 0, nil
	f.rows[id] = r
	return true, nil
}

func (f *fakeRecords) ExpireCoupon(_ context.Context, _ service.OrderTable, id int64, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.rows[id]; r.Status == StatusUnused && !now.Before(r.ExpiresAt) {
		r.Status = StatusExpired
		f.rows[id] = r
	}
	return nil
}

func (f *fakeRecords) UserCoupons(_ context.Context, _ service.OrderTable, userID int64) ([]Coupon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Coupon
	for _, r := range f.rows {
		if r.UserID == userID && r.Status != StatusVoid {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeRecords) CouponCounts(_ context.Context, templateID int64, now time.Time) (Counts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var c Counts
	for _, r := range f.rows {
		if r.TemplateID != templateID || r.Status == StatusVoid {
			continue
		}
		c.Issued++
		switch r.StatusAt(now) {
		case StatusUsed:
			c.Used++
		case StatusExpired:
			c.Expired++
		}
	}
	return c, nil
}

func (f *fakeRecords) ExpireDue(context.Context, time.Time, int) (int, error) { return 0, nil }

// fakeStocks are sub-stocks by tag; down makes a tag's master fail.
type fakeStocks struct {
	mu     sync.Mutex
	levels map[string]int64
	ops    map[string]bool
	down   map[string]bool
	takes  int
}

func newFakeStocks() *fakeStocks {
	return &fakeStocks{levels: map[string]int64{}, ops: map[string]bool{}, down: map[string]bool{}}
}

var errDown = fmt.Errorf("%w: master down", service.ErrUnavailable)

func (f *fakeStocks) Take(_ context.Context, tag string, n int64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.takes++
	if f.down[tag] {
		return false, errDown
	}
	if f.levels[tag] < n {
		return false, nil
	}
	f.levels[tag] -= n
	return true, nil
}

func (f *fakeStocks) GiveBack(_ context.Context, tag string, n int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[tag] {
		return errDown
	}
	f.levels[tag] += n
	return nil
}

func (f *fakeStocks) Add(_ context.Context, tag string, n int64, op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[tag] {
		return errDown
	}
	if f.ops[tag+op] {
		return nil
	}
	f.ops[tag+op] = true
	f.levels[tag] += n
	return nil
}

func (f *fakeStocks) Levels(_ context.Context, tags []string) ([]*int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*int64, len(tags))
	for i, tag := range tags {
		if f.down[tag] {
			return nil, errDown
		}
		if l, ok := f.levels[tag]; ok {
			out[i] = &l
		}
	}
	return out, nil
}

func (f *fakeStocks) Repair(_ context.Context, tag string, expected *int64, delta int64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.levels[tag]
	if (expected == nil) == ok || (expected != nil && *expected != l) || l+delta < 0 {
		return false, nil
	}
	f.levels[tag] = l + delta
	return true, nil
}

func (f *fakeStocks) Spread(_ context.Context, n int, base string) ([]string, error) {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf("%s.%d", base, i)
	}
	return tags, nil
}

func (f *fakeStocks) Masters(context.Context) (int, error) { return 3, nil }

func (f *fakeStocks) total() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, l := range f.levels {
		n += l
	}
	return n
}

type nopCache struct{}

func (nopCache) CachedTemplate(context.Context, int64) (Template, bool, bool, error) {
	return Template{}, false, false, nil
}
func (nopCache) CacheTemplate(context.Context, Template, time.Duration) error { return nil }
func (nopCache) CacheAbsent(context.Context, int64, time.Duration) error      { return nil }
func (nopCache) DropTemplate(context.Context, int64) error                    { return nil }

type okLocker struct{}

func (okLocker) Lock(context.Context, string, time.Duration) (func(), bool, error) {
	return func() {}, true, nil
}

type fakeMessages struct {
	mu       sync.Mutex
	expiries []Expiry
}

func (f *fakeMessages) DeferExpiry(_ context.Context, m Expiry, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expiries = append(f.expiries, m)
	return nil
}
func (f *fakeMessages) AnnounceTemplate(context.Context, int64) error { return nil }

type counterIDs struct {
	mu sync.Mutex
	n  int64
}

func (c *counterIDs) NewID() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}
