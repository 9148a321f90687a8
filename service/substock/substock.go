// Package substock takes units from a stock split over sub-stocks (the
// seeds' buckets), each a key of its own that may live on its own Redis
// master: one hot stock then spreads its writes over several masters
// instead of queueing on one. Coupon templates use it; a goods' split stock
// is the same mechanism with the same picker.
//
// A take tries the sub-stocks in a random order without repeats, so that
// concurrent takes spread evenly; it skips those this instance saw empty a
// moment ago (most takes of a nearly sold-out stock then cost one call, not
// one per sub-stock) and those whose master just failed (a dead master is
// not waited on by every request). Both memories are short: units given back
// or added elsewhere make a sub-stock sellable again, and Forget clears them
// at once when this instance hears of an addition.
package substock

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrEmpty: every sub-stock holds fewer units than asked.
var ErrEmpty = errors.New("every sub-stock is empty")

// Buckets is where the sub-stocks live.
type Buckets interface {
	// Take takes n units from sub-stock bucket if it holds that many, and
	// never lets it go below zero: ok is false when it holds fewer (or is
	// missing). An error means its master did not answer.
	Take(ctx context.Context, bucket string, n int64) (ok bool, err error)
}

// Picker picks the sub-stock a take comes from.
type Picker struct {
	buckets  Buckets
	remember time.Duration

	mu      sync.Mutex
	skipped map[string]time.Time // sub-stocks seen empty or failing, until when
}

// DefaultRemember is how long a sub-stock seen empty or failing is skipped.
const DefaultRemember = 500 * time.Millisecond

// New makes a picker over buckets that skips a sub-stock seen empty or
// failing for remember (DefaultRemember when zero).
func New(buckets Buckets, remember time.Duration) *Picker {
	if remember <= 0 {
		remember = DefaultRemember
	}
	return &Picker{buckets: buckets, remember: remember, skipped: map[string]time.Time{}}
}

// Take takes n units from one of the sub-stocks and says which (its index
// in subStocks). ErrEmpty when every one is empty; when some failed and the
// others are empty, the failures' error: nothing was taken, and a retry may
// find the failed ones back.
func (p *Picker) Take(ctx context.Context, subStocks []string, n int64) (int, error) {
	var failed []error
	now := time.Now()
	// A skipped sub-stock is tried last rather than never: when every one
	// is skipped the take still asks, so a stale memory costs a call, not a
	// refusal.
	var later []int
	for _, i := range rand.Perm(len(subStocks)) {
		if p.skip(subStocks[i], now) {
			later = append(later, i)
			continue
		}
		if ok, err := p.try(ctx, subStocks[i], n); ok {
			return i, nil
		} else if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) == 0 {
		for _, i := range later {
			if ok, err := p.try(ctx, subStocks[i], n); ok {
				return i, nil
			} else if err != nil {
				failed = append(failed, err)
			}
		}
	}
	if len(failed) > 0 {
		return -1, errors.Join(failed...)
	}
	return -1, ErrEmpty
}

func (p *Picker) try(ctx context.Context, subStock string, n int64) (bool, error) {
	ok, err := p.buckets.Take(ctx, subStock, n)
	if !ok || err != nil {
		p.mu.Lock()
		p.skipped[subStock] = time.Now().Add(p.remember)
		p.mu.Unlock()
	}
	return ok && err == nil, err
}

func (p *Picker) skip(subStock string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.skipped[subStock]
	if ok && now.After(until) {
		delete(p.skipped, subStock)
		return false
	}
	return ok
}

// Forget makes the sub-stocks sellable again for this instance: units were
// added or given back.
func (p *Picker) Forget(subStocks ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range subStocks {
		delete(p.skipped, s)
	}
}

// Spread splits n units over k sub-stocks as evenly as possible: the first
// n%k get one more.
func Spread(n int64, k int) []int64 {
	out := make([]int64, k)
	for i := range out {
		out[i] = n / int64(k)
		if int64(i) < n%int64(k) {
			out[i]++
		}
	}
	return out
}
