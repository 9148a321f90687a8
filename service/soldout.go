package service

import (
	"sync"
	"time"
)

// soldOutFlags are V6's per-goods sold-out flags.
//
// The seed clears its flag before the stock is back and so can lose a race:
// an instance that read "sold out" from Redis just before a unit was given
// back, but sets its flag only after the "stock is back" broadcast arrived,
// would refuse buyers while stock exists. Here every clear bumps the goods'
// generation, and a flag is set only if the generation is still the one read
// before asking Redis: a clear that happened meanwhile wins. Stock is given
// back in Redis before the broadcast goes out, so any read after the clear
// sees it. The TTL bounds the harm of a broadcast that never arrives.
type soldOutFlags struct {
	ttl   time.Duration
	mu    sync.RWMutex
	flags map[int64]soldOutFlag
}

type soldOutFlag struct {
	gen   uint64
	until time.Time // zero: not set
}

func newSoldOutFlags(ttl time.Duration) *soldOutFlags {
	if ttl <= 0 {
		ttl = 2 * time.Second
	}
	return &soldOutFlags{ttl: ttl, flags: map[int64]soldOutFlag{}}
}

// check says whether goods is flagged, and the generation to pass to set.
func (f *soldOutFlags) check(goodsID int64) (set bool, gen uint64) {
	f.mu.RLock()
	fl := f.flags[goodsID]
	f.mu.RUnlock()
	return !fl.until.IsZero() && time.Now().Before(fl.until), fl.gen
}

// set flags goods unless it was cleared since check returned gen.
func (f *soldOutFlags) set(goodsID int64, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl := f.flags[goodsID]; fl.gen == gen {
		f.flags[goodsID] = soldOutFlag{gen: gen, until: time.Now().Add(f.ttl)}
	}
}

// clear drops the flag and starts a new generation.
func (f *soldOutFlags) clear(goodsID int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flags[goodsID] = soldOutFlag{gen: f.flags[goodsID].gen + 1}
}
