package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/substock"
)

// Split stock (V14): one hot goods' stock spread over buckets, sub-stocks
// on several Redis masters, in front of the goods hash, so that its
// reservations are not all queued on one master's thread. The hash stays
// the ledger's home (returns, additions, repairs, rebuilds, accepts, the
// per-user limit); units are allotted from it into buckets, at most
// BucketMax at a time, and reservations take from the buckets with the
// coupons' picker. Every version sells a split goods: the hash's script
// answers ErrStockSplit when it is short and the goods is split, and the
// order then takes from the buckets.

// Buckets are the buckets of split goods in Redis.
type Buckets interface {
	substock.Buckets
	// Masters is how many Redis masters hold data; Spread chooses n tags,
	// tag i on master i mod masters.
	Masters(ctx context.Context) (int, error)
	Spread(ctx context.Context, n int, base string) ([]string, error)
	// Split records s in the goods hash unless it has a split, and returns
	// the split it has (fresh: this one). ErrLimitExceeded for goods with
	// a per-user limit, ErrStockNotLoaded for a hash Redis does not hold.
	Split(ctx context.Context, goodsID int64, s service.Split) (got service.Split, fresh bool, err error)
	SplitOf(ctx context.Context, goodsID int64) (service.Split, bool, error)
	// Allot moves up to want units from the hash to bucket tag, once
	// (on line when online): how many moved, and the hash's stock left.
	Allot(ctx context.Context, goodsID int64, tag string, want int64, online bool) (moved, left int64, err error)
	// CompleteAllots completes the allotments a process left half-done.
	CompleteAllots(ctx context.Context, goodsID int64) (moved int64, err error)
	// Recall takes bucket tag off line and moves its units back to the
	// hash, once; CompleteRecalls completes those left half-done.
	Recall(ctx context.Context, goodsID int64, tag string) (int64, error)
	CompleteRecalls(ctx context.Context, goodsID int64, s service.Split) error
	// Online puts bucket tag back on line.
	Online(ctx context.Context, goodsID int64, tag string) error
	States(ctx context.Context, s service.Split) ([]service.Bucket, error)
	// Levels reads each bucket's units; nil for one its master lost.
	Levels(ctx context.Context, tags []string) ([]*int64, error)
	// SplitHeld is what the goods holds outside its hash's stock: its
	// buckets' units and those of allotments in flight; 0 when not split.
	SplitHeld(ctx context.Context, goodsID int64) (int64, error)
}

// SplitRecords are the database's record of each goods' split, for the
// rebuild of a hash Redis lost.
type SplitRecords interface {
	// SaveSplit records s unless the goods has a split, and returns the
	// one it has.
	SaveSplit(ctx context.Context, goodsID int64, s service.Split) (service.Split, error)
	SplitOf(ctx context.Context, goodsID int64) (service.Split, bool, error)
}

// SplitOptions tune split stock.
type SplitOptions struct {
	// SubStocks is how many buckets a goods is split into; 0: one per
	// Redis master, at least 2.
	SubStocks int
	// BucketMax is the most units one allotment gives a bucket.
	BucketMax int64
}

// splitter keeps this instance's knowledge of split goods: which goods are
// split (learned lazily, never forgotten: a split is never undone), the
// picker's memory of empty buckets, and the refills under way.
type splitter struct {
	buckets Buckets
	records SplitRecords
	opts    SplitOptions
	picker  *substock.Picker

	known   sync.Map // goods id -> service.Split (no tags: never split, a per-user limit)
	goodsOf sync.Map // bucket tag -> goods id
	splits  singleflight.Group
	refills sync.Map // bucket tags being refilled here
	// allotting are the allotments this instance has in flight, per goods:
	// their units are in neither the hash nor a bucket for a moment, and an
	// order that found both empty waits for them before answering sold out.
	allotting inFlight
}

// inFlight counts movements in flight per goods and lets a caller wait
// until none is.
type inFlight struct {
	mu   sync.Mutex
	n    map[int64]int
	idle map[int64]chan struct{} // closed when n drops to 0
}

func (f *inFlight) begin(goodsID int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n, f.idle = map[int64]int{}, map[int64]chan struct{}{}
	}
	if f.n[goodsID]++; f.n[goodsID] == 1 {
		f.idle[goodsID] = make(chan struct{})
	}
}

func (f *inFlight) end(goodsID int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[goodsID]--; f.n[goodsID] == 0 {
		close(f.idle[goodsID])
		delete(f.n, goodsID)
		delete(f.idle, goodsID)
	}
}

// wait waits until goods has no movement in flight; false when it had
// none (or ctx ended first).
func (f *inFlight) wait(ctx context.Context, goodsID int64) bool {
	f.mu.Lock()
	idle, busy := f.idle[goodsID]
	f.mu.Unlock()
	if !busy {
		return false
	}
	select {
	case <-idle:
		return true
	case <-ctx.Done():
		return false
	}
}

// refilling wraps the buckets for the picker: a take that finds a bucket
// short starts its refill.
type refilling struct{ l *core }

func (r refilling) Take(ctx context.Context, tag string, n int64) (bool, error) {
	ok, err := r.l.split.buckets.Take(ctx, tag, n)
	if !ok && err == nil {
		r.l.startRefill(tag)
	}
	return ok, err
}

// taken says whether the buckets of split gave the units: false when they
// are all empty.
func (l *core) takeFromBuckets(ctx context.Context, s service.Split, n int64) (bool, error) {
	if _, err := l.split.picker.Take(ctx, s.Tags, n); err != nil {
		if errors.Is(err, substock.ErrEmpty) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// reserve takes n units of an order: V14 (split) from the goods' buckets
// first, splitting the goods on its first order; then, and every other
// version first, from the hash. When
// the hash is short and the goods is split, the buckets again, with the
// picker's memory of empty ones forgotten (an allotment may have filled
// one meanwhile): sold out only when both are empty.
func (l *core) reserve(ctx context.Context, o service.Order, split bool) error {
	var s service.Split
	if l.split != nil && split {
		var err error
		if s, err = l.splitOnce(ctx, o.GoodsID); err != nil && !errors.Is(err, service.ErrStockNotLoaded) {
			return err
		}
		if len(s.Tags) > 0 {
			if ok, err := l.takeFromBuckets(ctx, s, o.Number); ok || err != nil {
				return err
			}
		}
	}
	err := l.gate.Reserve(ctx, o.GoodsID, o.UserID, o.Number, time.Now())
	if !errors.Is(err, service.ErrStockSplit) {
		return err
	}
	if l.split == nil {
		return service.ErrSoldOut
	}
	if len(s.Tags) == 0 {
		if s = l.knownSplit(o.GoodsID); len(s.Tags) == 0 {
			if s, err = l.learnSplit(ctx, o.GoodsID); err != nil {
				return err
			}
		}
	}
	l.split.picker.Forget(s.Tags...)
	ok, err := l.takeFromBuckets(ctx, s, o.Number)
	if err == nil && !ok && l.split.allotting.wait(ctx, o.GoodsID) {
		ok, err = l.takeFromBuckets(ctx, s, o.Number)
	}
	if err == nil && !ok {
		return service.ErrSoldOut
	}
	return err
}

func (l *core) knownSplit(goodsID int64) service.Split {
	if v, ok := l.split.known.Load(goodsID); ok {
		return v.(service.Split)
	}
	return service.Split{}
}

func (l *core) remember(goodsID int64, s service.Split) service.Split {
	l.split.known.Store(goodsID, s)
	for _, tag := range s.Tags {
		l.split.goodsOf.Store(tag, goodsID)
	}
	return s
}

// learnSplit reads the split of goods the hash says is split.
func (l *core) learnSplit(ctx context.Context, goodsID int64) (service.Split, error) {
	s, ok, err := l.split.buckets.SplitOf(ctx, goodsID)
	if err != nil {
		return s, err
	}
	if !ok {
		return s, fmt.Errorf("%w: goods %d answered split without a split", service.ErrUnavailable, goodsID)
	}
	return l.remember(goodsID, s), nil
}

// splitOnce splits goods unless it is split, once per goods on this
// instance at a time, and once across instances: the database keeps the
// first split saved and the hash the first recorded, and only the instance
// that recorded it fills the buckets (any other bucket fills on its first
// short take). Goods with a per-user limit are never split: the limit
// lives in the buyers hash beside the goods hash, which a take on another
// master cannot check. A split goods without tags is remembered as such.
func (l *core) splitOnce(ctx context.Context, goodsID int64) (service.Split, error) {
	if v, ok := l.split.known.Load(goodsID); ok {
		return v.(service.Split), nil
	}
	v, err, _ := l.split.splits.Do(strconv.FormatInt(goodsID, 10), func() (any, error) {
		return l.split1(context.WithoutCancel(ctx), goodsID)
	})
	s, _ := v.(service.Split)
	return s, err
}

func (l *core) split1(ctx context.Context, goodsID int64) (service.Split, error) {
	if s, ok, err := l.split.buckets.SplitOf(ctx, goodsID); err != nil || ok {
		if ok {
			l.remember(goodsID, s)
		}
		return s, err
	}
	g, err := l.truths.Goods(ctx, goodsID)
	if err != nil {
		return service.Split{}, err
	}
	if g.PerUserLimit > 0 {
		return l.remember(goodsID, service.Split{}), nil
	}
	n := l.split.opts.SubStocks
	if n <= 0 {
		if n, err = l.split.buckets.Masters(ctx); err != nil {
			return service.Split{}, err
		}
		n = max(n, 2)
	}
	tags, err := l.split.buckets.Spread(ctx, n, "g"+strconv.FormatInt(goodsID, 10))
	if err != nil {
		return service.Split{}, err
	}
	// The database first: a rebuild of a lost hash puts the split back
	// from there, so the hash never names buckets the database does not.
	s, err := l.split.records.SaveSplit(ctx, goodsID, service.Split{Tags: tags, BucketMax: l.split.opts.BucketMax})
	if err != nil {
		return service.Split{}, err
	}
	s, fresh, err := l.split.buckets.Split(ctx, goodsID, s)
	switch {
	case errors.Is(err, service.ErrLimitExceeded):
		return l.remember(goodsID, service.Split{}), nil
	case err != nil:
		return service.Split{}, err
	}
	l.remember(goodsID, s)
	if fresh {
		l.fill(ctx, goodsID, s)
	}
	return s, nil
}

// fill gives each new bucket its share of the hash's stock, up to
// BucketMax: a small stock is spread over every bucket rather than poured
// into the first.
func (l *core) fill(ctx context.Context, goodsID int64, s service.Split) {
	stock, _, err := l.gate.Stock(ctx, goodsID)
	if err != nil {
		l.log.Warn("new buckets could not be filled; their first short takes refill them", "goods_id", goodsID, "err", err)
		return
	}
	for i, share := range substock.Spread(stock, len(s.Tags)) {
		if err := l.allot(ctx, goodsID, s.Tags[i], min(share, s.BucketMax), true); err != nil {
			l.log.Warn("a new bucket could not be filled; its first short take refills it", "goods_id", goodsID, "tag", s.Tags[i], "err", err)
		}
	}
}

// allot moves up to want units from the goods hash into bucket tag. The
// units were on sale in the hash, so no instance needs telling, unless the
// allotment took the hash's last units: an order that found the hash empty
// and the bucket not yet filled may have answered sold out meanwhile.
func (l *core) allot(ctx context.Context, goodsID int64, tag string, want int64, online bool) error {
	l.split.allotting.begin(goodsID)
	moved, left, err := l.split.buckets.Allot(ctx, goodsID, tag, want, online)
	l.split.allotting.end(goodsID)
	if moved > 0 {
		l.split.picker.Forget(tag)
		if left == 0 {
			l.stockIsBack(ctx, goodsID)
		}
	}
	return err
}

// startRefill refills bucket tag from the goods hash in the background,
// once at a time per bucket on this instance, up to BucketMax.
func (l *core) startRefill(tag string) {
	g, ok := l.split.goodsOf.Load(tag)
	if !ok {
		return
	}
	goodsID := g.(int64)
	if _, busy := l.split.refills.LoadOrStore(tag, true); busy {
		return
	}
	l.running.Add(1)
	go func() {
		defer l.running.Done()
		defer l.split.refills.Delete(tag)
		ctx, cancel := context.WithTimeout(l.life, l.opts.WriteBudget)
		defer cancel()
		if err := l.refill(ctx, goodsID, tag); err != nil && l.life.Err() == nil {
			l.log.Warn("refill of a bucket failed; the next short take tries again", "goods_id", goodsID, "tag", tag, "err", err)
		}
	}()
}

// refill tops bucket tag up to BucketMax, unless it is off line (an admin
// took it off: its units stay in the hash) or holds enough.
func (l *core) refill(ctx context.Context, goodsID int64, tag string) error {
	s := l.knownSplit(goodsID)
	states, err := l.split.buckets.States(ctx, service.Split{Tags: []string{tag}})
	if err != nil {
		return err
	}
	b := states[0]
	var level int64
	if b.Stock != nil {
		level = *b.Stock
	}
	if !b.Online || level >= s.BucketMax {
		return nil
	}
	return l.allot(ctx, goodsID, tag, s.BucketMax-level, false)
}

// splitHeld is what split goods hold outside the hash's stock: the
// buckets' units and those of allotments in flight. With complete, the
// movements a process left half-done are completed first, so that the
// reconciliation reads the buckets as they will stay.
func (l *core) splitHeld(ctx context.Context, goodsID int64, complete bool) (int64, error) {
	if l.split == nil {
		return 0, nil
	}
	if complete {
		s, ok, err := l.split.buckets.SplitOf(ctx, goodsID)
		if err != nil || !ok {
			return 0, err
		}
		if err := l.split.buckets.CompleteRecalls(ctx, goodsID, s); err != nil {
			return 0, err
		}
		moved, err := l.split.buckets.CompleteAllots(ctx, goodsID)
		if err != nil {
			return 0, err
		}
		if moved > 0 {
			// Units no order could take are on sale again: an order may
			// have answered sold out meanwhile.
			l.stockIsBack(ctx, goodsID)
		}
	}
	return l.split.buckets.SplitHeld(ctx, goodsID)
}

// inBuckets is, for the rebuild of goods' lost hash, the goods' split as
// the database records it and the units its buckets hold, after the
// recalls left half-done are completed (their units, which the lost hash
// would have taken back, are then in neither: the truth the rebuild
// loads counts them). Read before the truth: a bucket's sale in between
// then makes the hash hold less, never more.
func (l *core) inBuckets(ctx context.Context, goodsID int64) (*service.Split, int64, error) {
	if l.split == nil {
		return nil, 0, nil
	}
	s, ok, err := l.split.records.SplitOf(ctx, goodsID)
	if err != nil || !ok {
		return nil, 0, err
	}
	if err := l.split.buckets.CompleteRecalls(ctx, goodsID, s); err != nil {
		return nil, 0, err
	}
	levels, err := l.split.buckets.Levels(ctx, s.Tags)
	if err != nil {
		return nil, 0, err
	}
	var held int64
	for _, n := range levels {
		if n != nil {
			held += *n
		}
	}
	return &s, held, nil
}

// drainBuckets moves every unit of split goods' buckets back to the hash,
// each bucket staying on line (its next short take refills it), and
// returns what the goods then hold outside the hash.
func (l *core) drainBuckets(ctx context.Context, goodsID int64) (int64, error) {
	s, ok, err := l.split.buckets.SplitOf(ctx, goodsID)
	if err != nil || !ok {
		return 0, err
	}
	for _, tag := range s.Tags {
		states, err := l.split.buckets.States(ctx, service.Split{Tags: []string{tag}})
		if err != nil {
			return 0, err
		}
		if _, err := l.split.buckets.Recall(ctx, goodsID, tag); err != nil {
			return 0, err
		}
		if states[0].Online {
			if err := l.split.buckets.Online(ctx, goodsID, tag); err != nil {
				return 0, err
			}
		}
	}
	return l.splitHeld(ctx, goodsID, false)
}

// SplitGoods splits goods now, as its first V14 order would, and returns
// its buckets. ErrNotSplittable for goods with a per-user limit.
func (l *Ledger) SplitGoods(ctx context.Context, goodsID int64) ([]service.Bucket, error) {
	if l.split == nil {
		return nil, fmt.Errorf("%w: split stock is not wired", service.ErrUnavailable)
	}
	if _, err := l.truths.Goods(ctx, goodsID); err != nil {
		return nil, err
	}
	s, err := l.splitOnce(ctx, goodsID)
	switch {
	case errors.Is(err, service.ErrStockNotLoaded):
		return nil, l.stockNotLoaded(ctx, goodsID)
	case err != nil:
		return nil, err
	case len(s.Tags) == 0:
		return nil, fmt.Errorf("%w: goods %d has a per-user limit, which its hash alone can check", service.ErrNotSplittable, goodsID)
	}
	return l.split.buckets.States(ctx, s)
}

// Buckets are split goods' buckets; none when the goods is not split.
func (l *core) Buckets(ctx context.Context, goodsID int64) ([]service.Bucket, error) {
	if l.split == nil {
		return nil, nil
	}
	s, ok, err := l.split.buckets.SplitOf(ctx, goodsID)
	if err != nil || !ok {
		return nil, err
	}
	return l.split.buckets.States(ctx, s)
}

// BucketOffline takes bucket index of split goods off line: its units go
// back to the hash, where every version still sells them, and no
// allotment fills it until it is on line again.
func (l *Ledger) BucketOffline(ctx context.Context, goodsID int64, index int) ([]service.Bucket, error) {
	return l.onBucket(ctx, goodsID, index, func(s service.Split, tag string) error {
		if _, err := l.split.buckets.Recall(ctx, goodsID, tag); err != nil {
			return err
		}
		l.stockIsBack(ctx, goodsID)
		return nil
	})
}

// BucketOnline puts bucket index of split goods back on line and fills it.
func (l *Ledger) BucketOnline(ctx context.Context, goodsID int64, index int) ([]service.Bucket, error) {
	return l.onBucket(ctx, goodsID, index, func(s service.Split, tag string) error {
		if err := l.split.buckets.Online(ctx, goodsID, tag); err != nil {
			return err
		}
		l.remember(goodsID, s)
		return l.refill(ctx, goodsID, tag)
	})
}

// onBucket runs change on bucket index of split goods and returns the
// buckets after: ErrNotFound for unknown goods or no such bucket,
// ErrNotSplit for goods that are not split.
func (l *Ledger) onBucket(ctx context.Context, goodsID int64, index int, change func(s service.Split, tag string) error) ([]service.Bucket, error) {
	if l.split == nil {
		return nil, fmt.Errorf("%w: split stock is not wired", service.ErrUnavailable)
	}
	if _, err := l.truths.Goods(ctx, goodsID); err != nil {
		return nil, err
	}
	s, ok, err := l.split.buckets.SplitOf(ctx, goodsID)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, fmt.Errorf("%w: goods %d is not split", service.ErrNotSplit, goodsID)
	case index < 0 || index >= len(s.Tags):
		return nil, fmt.Errorf("%w: goods %d has buckets 0 to %d", service.ErrNotFound, goodsID, len(s.Tags)-1)
	}
	if err := change(s, s.Tags[index]); err != nil {
		return nil, err
	}
	return l.split.buckets.States(ctx, s)
}
