// Package admission decides which order requests of a limited version (V8)
// reach the sale: token buckets per client address and per instance, one
// request in flight per user and goods, a record of users who ordered before
// the sale opened, and a gate that lets k times the stock in attempts through.
package admission

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"golang.org/x/time/rate"
)

// Mode is how a bucket treats a burst, after nginx's limit_req.
type Mode string

const (
	// Fixed: no burst; a request faster than the rate is refused.
	Fixed Mode = "fixed"
	// Queue: a burst of up to Burst waits its turn at the rate
	// (limit_req burst=N).
	Queue Mode = "burst"
	// NoDelay: a burst of up to Burst goes through at once
	// (limit_req burst=N nodelay).
	NoDelay Mode = "nodelay"
	// Partial: the first Delay of a burst go through at once, the rest of it
	// wait their turn (limit_req burst=N delay=M).
	Partial Mode = "delay"
)

// Limit is one bucket's setting. Rate requests per Period refill it; Burst
// is the most requests a burst may hold (served at once or after waiting,
// by Mode): a token bucket's size, which is nginx's burst plus one.
type Limit struct {
	Rate   int           `mapstructure:"rate"`
	Period time.Duration `mapstructure:"period"`
	Burst  int           `mapstructure:"burst"`
	Mode   Mode          `mapstructure:"mode"`
	Delay  int           `mapstructure:"delay"`
}

// Off reports a limit that limits nothing (rate 0).
func (l Limit) Off() bool { return l.Rate == 0 }

// Validate says what is wrong with the limit, nil when nothing is.
func (l Limit) Validate() error {
	switch {
	case l.Off():
		return nil
	case l.Rate < 0:
		return errors.New("rate must be at least 0 (0: no limit)")
	case l.Period <= 0:
		return errors.New("period must be a positive duration such as 1s")
	case l.Burst < 1:
		return errors.New("burst must be at least 1")
	}
	switch l.Mode {
	case Fixed:
		if l.Burst != 1 {
			return errors.New("burst must be 1 in mode fixed (a burst is what the other modes allow)")
		}
	case Queue, NoDelay:
	case Partial:
		if l.Delay < 1 || l.Delay >= l.Burst {
			return fmt.Errorf("delay must be within 1..burst-1 (%d) in mode delay", l.Burst-1)
		}
	default:
		return fmt.Errorf("mode %q: must be fixed, burst, nodelay or delay", l.Mode)
	}
	return nil
}

// instant is how many requests of a full burst go through without waiting.
func (l Limit) instant() int {
	switch l.Mode {
	case Queue, Fixed:
		return 1
	case Partial:
		return l.Delay
	}
	return l.Burst
}

// interval is the time one request's token takes to come back.
func (l Limit) interval() time.Duration { return l.Period / time.Duration(l.Rate) }

// waitFor is how long the request that took the used-th token of the
// bucket waits: nothing within the instant part of a burst, then one
// interval more for each request past it.
func (l Limit) waitFor(used int) time.Duration {
	if excess := used - l.instant(); excess > 0 {
		return time.Duration(excess) * l.interval()
	}
	return 0
}

// Local is a set of buckets of one limit on this instance, one per key.
type Local struct {
	limit   Limit
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// maxLocalKeys bounds the buckets a Local keeps: past it they start over,
// which forgets the limits' state rather than growing without bound under a
// flood of addresses.
const maxLocalKeys = 100_000

// NewLocal makes the buckets of l.
func NewLocal(l Limit) *Local { return &Local{limit: l, buckets: map[string]*rate.Limiter{}} }

// Take takes a token of key's bucket: ok false when the burst is full, or
// else how long the request must wait for its turn.
func (b *Local) Take(key string) (wait time.Duration, ok bool) {
	if b.limit.Off() {
		return 0, true
	}
	b.mu.Lock()
	lim := b.buckets[key]
	if lim == nil {
		if len(b.buckets) >= maxLocalKeys {
			clear(b.buckets)
		}
		// A bucket of the instant part only: a reservation past it waits
		// one interval per request, up to the rest of the burst.
		lim = rate.NewLimiter(rate.Every(b.limit.interval()), b.limit.instant())
		b.buckets[key] = lim
	}
	b.mu.Unlock()
	now := time.Now()
	r := lim.ReserveN(now, 1)
	wait = r.DelayFrom(now)
	if !r.OK() || wait > b.limit.waitFor(b.limit.Burst) {
		r.CancelAt(now)
		return 0, false
	}
	return wait, true
}

// Rates is the GCRA limiter the instances share (redis_rate on Redis).
type Rates interface {
	AllowRate(ctx context.Context, key string, l redis_rate.Limit) (*redis_rate.Result, error)
}

// Shared is a limit that holds across instances: a GCRA bucket per key in
// Redis. When Redis does not answer it falls back to this instance's own
// buckets of the same limit (fails open to a per-instance limit): the
// order cannot sell without Redis anyway, and refusing every client for
// Redis's fault would only turn a 503 into a 429.
type Shared struct {
	limit    Limit
	name     string
	rates    Rates
	fallback *Local
	// Fallbacks counts the takes answered by the fallback.
	Fallbacks func()
}

// NewShared makes the shared buckets of l, named name in Redis.
func NewShared(name string, l Limit, rates Rates) *Shared {
	return &Shared{limit: l, name: name, rates: rates, fallback: NewLocal(l), Fallbacks: func() {}}
}

// Take is Local.Take over every instance.
func (s *Shared) Take(ctx context.Context, key string) (time.Duration, bool) {
	if s.limit.Off() {
		return 0, true
	}
	res, err := s.rates.AllowRate(ctx, s.name+":"+key, redis_rate.Limit{Rate: s.limit.Rate, Period: s.limit.Period, Burst: s.limit.Burst})
	if err != nil {
		s.Fallbacks()
		return s.fallback.Take(key)
	}
	if res.Allowed == 0 {
		return 0, false
	}
	return s.limit.waitFor(s.limit.Burst - res.Remaining), true
}
