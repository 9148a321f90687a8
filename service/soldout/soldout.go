// Package soldout holds V6's in-memory per-goods sold-out flags.
//
// The seed clears its flag before the stock is back and so can lose a race:
// an instance that read "sold out" from Redis just before a unit was given
// back, but sets its flag only after the "stock is back" broadcast arrived,
// would refuse buyers while stock exists. Here every clear bumps the goods'
// generation, and a flag is set only if the generation is still the one read
// before asking Redis: a clear that happened meanwhile wins. Stock is given
// back in Redis before the broadcast goes out, so any read after the clear
// sees it. The TTL bounds the harm of a broadcast that never arrives.
package soldout

import (
	"sync"
	"time"
)

// Flags are one instance's sold-out flags.
type Flags struct {
	ttl   time.Duration
	mu    sync.RWMutex
	flags map[int64]flag
}

type flag struct {
	gen   uint64
	until time.Time // zero: not set
}

// New makes flags that live ttl without a clear.
func New(ttl time.Duration) *Flags {
	if ttl <= 0 {
		ttl = 2 * time.Second
	}
	return &Flags{ttl: ttl, flags: map[int64]flag{}}
}

// Check says whether goods is flagged, and the generation to pass to Set.
func (f *Flags) Check(goodsID int64) (set bool, gen uint64) {
	f.mu.RLock()
	fl := f.flags[goodsID]
	f.mu.RUnlock()
	return !fl.until.IsZero() && time.Now().Before(fl.until), fl.gen
}

// Set flags goods unless it was cleared since Check returned gen.
func (f *Flags) Set(goodsID int64, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl := f.flags[goodsID]; fl.gen == gen {
		f.flags[goodsID] = flag{gen: gen, until: time.Now().Add(f.ttl)}
	}
}

// Clear drops the flag and starts a new generation. Call it only once the
// stock is back in Redis.
func (f *Flags) Clear(goodsID int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flags[goodsID] = flag{gen: f.flags[goodsID].gen + 1}
}
