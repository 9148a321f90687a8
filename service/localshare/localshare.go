// Package localshare holds V15's local stock shares, seed 003's synchronous
// design: each instance keeps, per goods it sells, a share of the stock in
// memory, and a sale takes its units from that share (no network) before
// it reserves them in Redis. Once the share is spent the instance answers
// sold out without asking Redis, so Redis sees at most one share of
// requests per instance, not the whole stampede.
//
// A share is not stock taken out of Redis: Redis still holds every unsold
// unit and stays the one guard against selling more than the stock; the
// share only decides which requests are worth a round trip. So the share
// of an instance that died is given back by the others recomputing theirs
// from Redis's remaining stock and the count of live instances, every
// period and whenever stock comes back; nothing has to be returned.
package localshare

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/go-seckill/seckill/service"
)

// ErrShareSold answers a buyer once this instance's share of the goods is
// spent: sold out, as far as this instance can tell until its next
// recompute.
var ErrShareSold = fmt.Errorf("%w: this instance's share of the stock is sold", service.ErrSoldOut)

// Stocks reads the units Redis still holds of each goods; goods whose
// stock Redis does not hold (not loaded) are absent from the answer.
type Stocks interface {
	Stocks(ctx context.Context, goodsIDs []int64) (map[int64]int64, error)
}

// Instances counts the running instances that sell from the same Redis,
// this one included.
type Instances interface {
	LiveInstances(ctx context.Context) (int, error)
}

// Options size the shares.
type Options struct {
	// Buffer is the share's buffer as a fraction of the even part
	// (remaining stock / live instances), and MinBuffer its floor in
	// units: what lets the busy instances sell the part of an idle or dead
	// one before the next recompute sees it.
	Buffer    float64
	MinBuffer int64
}

// forgetAfter is how many recomputes a goods stays in memory without a
// buyer on this instance: a minute at the default stock.share_every.
const forgetAfter = 60

// Shares are one instance's shares, by goods.
type Shares struct {
	stocks    Stocks
	instances Instances
	opts      Options

	mu    sync.Mutex
	live  int // instances at the last count; 0 before the first
	goods map[int64]*share

	taken, refused, returned atomic.Int64
}

// share is one goods' share. A recompute replaces left and starts a new
// generation: units given back from an older one are already in the new
// left (Redis never lost them), so they are dropped.
type share struct {
	ready chan struct{} // closed once the first derivation ended
	left  int64         // units this instance may still ask Redis for
	open  bool          // no share known (Redis holds no stock, or a read failed): Redis alone answers
	gen   uint64
	idle  int // recomputes since the last buyer here
}

// New makes empty shares.
func New(stocks Stocks, instances Instances, opts Options) *Shares {
	return &Shares{stocks: stocks, instances: instances, opts: opts, goods: map[int64]*share{}}
}

// Sell takes n units of the goods' share, runs sell (the Redis reservation
// and the order), and gives the units back to the share when sell fails:
// a unit stays taken only with the sale that took it.
func (s *Shares) Sell(ctx context.Context, goodsID, n int64, sell func() error) error {
	sh, gen, err := s.take(ctx, goodsID, n)
	if err != nil {
		return err
	}
	err = sell()
	if err != nil && sh != nil {
		s.giveBack(sh, gen, n)
	}
	return err
}

// take takes n units of the goods' share, deriving it first when this
// instance has none. sh is nil when the share is open.
func (s *Shares) take(ctx context.Context, goodsID, n int64) (sh *share, gen uint64, err error) {
	if sh, err = s.entry(ctx, goodsID); err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh.idle = 0
	switch {
	case sh.open:
		return nil, 0, nil
	case sh.left < n:
		s.refused.Add(1)
		return nil, 0, ErrShareSold
	}
	sh.left -= n
	s.taken.Add(1)
	return sh, sh.gen, nil
}

func (s *Shares) giveBack(sh *share, gen uint64, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sh.gen == gen {
		sh.left += n
		s.returned.Add(1)
	}
}

// entry is the goods' share. The first buyer of goods new to this instance
// derives it from Redis; the buyers that come meanwhile wait for it.
func (s *Shares) entry(ctx context.Context, goodsID int64) (*share, error) {
	s.mu.Lock()
	sh, ok := s.goods[goodsID]
	if !ok {
		sh = &share{ready: make(chan struct{})}
		s.goods[goodsID] = sh
	}
	s.mu.Unlock()
	if !ok {
		s.derive(ctx, goodsID, sh)
		return sh, nil
	}
	select {
	case <-sh.ready:
		return sh, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// derive sizes a new share. A failed read leaves it open: the share only
// saves round trips, and Redis still answers every buyer.
func (s *Shares) derive(ctx context.Context, goodsID int64, sh *share) {
	defer close(sh.ready)
	s.mu.Lock()
	live := s.live
	s.mu.Unlock()
	var err error
	if live == 0 {
		if live, err = s.instances.LiveInstances(ctx); err != nil {
			s.setOpen(sh)
			return
		}
	}
	stocks, err := s.stocks.Stocks(ctx, []int64{goodsID})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == 0 {
		s.live = live
	}
	s.set(sh, stocks, goodsID, err == nil)
}

func (s *Shares) setOpen(sh *share) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh.open = true
}

// set gives sh the share of the remaining stock read, under s.mu.
func (s *Shares) set(sh *share, stocks map[int64]int64, goodsID int64, read bool) {
	remaining, held := stocks[goodsID]
	sh.gen++
	sh.open = !read || !held
	sh.left = s.size(remaining, s.live)
}

// size is one instance's share of remaining units among live instances:
// the even part, rounded up, plus the buffer; never more than remaining,
// which is all any instance could sell.
func (s *Shares) size(remaining int64, live int) int64 {
	if remaining <= 0 {
		return 0
	}
	n := int64(max(live, 1))
	even := (remaining + n - 1) / n
	buffer := max(s.opts.MinBuffer, int64(math.Ceil(s.opts.Buffer*float64(even))))
	return min(remaining, even+buffer)
}

// Recompute derives every share anew from Redis's remaining stock and the
// live instances now, and forgets the goods not sold here for a while. It
// is how the part of an instance that died or went idle comes back to the
// others. On an error the shares stay as they are.
func (s *Shares) Recompute(ctx context.Context) error {
	type pending struct {
		sh  *share
		gen uint64
	}
	s.mu.Lock()
	todo := make(map[int64]pending, len(s.goods))
	ids := make([]int64, 0, len(s.goods))
	for id, sh := range s.goods {
		select {
		case <-sh.ready:
		default:
			continue // its first buyer is deriving it
		}
		if sh.idle++; sh.idle > forgetAfter {
			delete(s.goods, id)
			continue
		}
		todo[id] = pending{sh, sh.gen}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		// Nothing sold here lately: no Redis calls, and the next first
		// buyer counts the instances afresh.
		s.live = 0
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()

	live, err := s.instances.LiveInstances(ctx)
	if err != nil {
		return fmt.Errorf("count live instances: %w", err)
	}
	stocks, err := s.stocks.Stocks(ctx, ids)
	if err != nil {
		return fmt.Errorf("read remaining stock: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = live
	for id, p := range todo {
		// A share forgotten or derived again meanwhile is newer than this read.
		if s.goods[id] == p.sh && p.sh.gen == p.gen {
			s.set(p.sh, stocks, id, true)
		}
	}
	return nil
}

// StockBack forgets the goods' share when stock came back in Redis (a
// unit given back, stock added): the next buyer derives it again, so that
// stock back is sold at once, not after the next recompute.
func (s *Shares) StockBack(goodsID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.goods, goodsID)
}

// Counts are the requests this instance's shares let through to Redis
// (taken), answered sold out (refused), and whose units came back to the
// share after a failed sale (returned); and the live instances last counted.
type Counts struct {
	Taken, Refused, Returned int64
	Live                     int
}

// Counts reads the counts.
func (s *Shares) Counts() Counts {
	s.mu.Lock()
	live := s.live
	s.mu.Unlock()
	return Counts{Taken: s.taken.Load(), Refused: s.refused.Load(), Returned: s.returned.Load(), Live: live}
}

// Left is the units left in the goods' share, and false when this
// instance holds none or it is open.
func (s *Shares) Left(goodsID int64) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh, ok := s.goods[goodsID]
	if !ok || sh.open {
		return 0, false
	}
	select {
	case <-sh.ready:
		return sh.left, true
	default:
		return 0, false
	}
}
