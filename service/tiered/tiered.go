// Package tiered is the in-process level of a two-level cache: an otter
// cache in front of a loader that reads the shared level (Redis) and, when
// the caller allows it, the store behind it. It remembers ids the loader
// found absent for a short while, collapses concurrent misses of one key
// into one load, and may refresh entries in the background so that hot
// reads never wait for the loader.
package tiered

import (
	"context"
	"log/slog"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
)

// Options size the cache and set its times.
type Options struct {
	MaxSize int // entries kept, the hot set
	// TTL is how long an entry is kept; changes announced by broadcast are
	// seen sooner.
	TTL time.Duration
	// AbsentTTL is how long a key the loader found absent is remembered.
	AbsentTTL time.Duration
	// RefreshAfter, when set, reloads an entry this long after it was
	// written at its next read, in the background: the read answers the
	// value held meanwhile (and keeps it when the reload fails).
	RefreshAfter time.Duration
	// Stats, if set, records the hits, misses and loads.
	Stats stats.Recorder
}

// Load reads a key from the next level; found false when it does not exist.
type Load[K comparable, V any] func(ctx context.Context, key K) (v V, found bool, err error)

// Cache is the first level of a two-level cache.
type Cache[K comparable, V any] struct {
	c    *otter.Cache[K, entry[V]]
	load loader[K, V]
}

// entry is a value, or a key known not to exist.
type entry[V any] struct {
	v      V
	absent bool
}

// New makes a cache in front of load.
func New[K comparable, V any](o Options, load Load[K, V]) *Cache[K, V] {
	oo := &otter.Options[K, entry[V]]{
		MaximumSize:   o.MaxSize,
		StatsRecorder: o.Stats,
		// A failed background reload keeps the entry: it is logged at
		// debug, not once per stale read while a dependency is down.
		Logger: slogLogger{},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[K, entry[V]]) time.Duration {
			if e.Value.absent {
				return o.AbsentTTL
			}
			return o.TTL
		}),
	}
	if o.RefreshAfter > 0 {
		oo.RefreshCalculator = otter.RefreshWriting[K, entry[V]](o.RefreshAfter)
	}
	return &Cache[K, V]{
		c:    otter.Must(oo),
		load: loader[K, V]{load},
	}
}

// loader adapts a Load to otter: a background reload runs on after the
// read that started it was answered, so it does not take that read's
// cancellation.
type loader[K comparable, V any] struct{ load Load[K, V] }

func (l loader[K, V]) Load(ctx context.Context, key K) (entry[V], error) {
	v, found, err := l.load(ctx, key)
	return entry[V]{v: v, absent: !found}, err
}

func (l loader[K, V]) Reload(ctx context.Context, key K, _ entry[V]) (entry[V], error) {
	return l.Load(context.WithoutCancel(ctx), key)
}

// Get answers key from memory, or loads it once however many readers miss
// it at the same time. found is false for a key known not to exist.
func (c *Cache[K, V]) Get(ctx context.Context, key K) (v V, found bool, err error) {
	e, err := c.c.Get(ctx, key, c.load)
	if err != nil {
		return v, false, err
	}
	return e.v, !e.absent, nil
}

// Invalidate drops key, returning the value held (held false when there
// was none, or the key was known absent).
func (c *Cache[K, V]) Invalidate(key K) (old V, held bool) {
	e, ok := c.c.Invalidate(key)
	return e.v, ok && !e.absent
}

// InvalidateAll drops every entry.
func (c *Cache[K, V]) InvalidateAll() { c.c.InvalidateAll() }

// slogLogger sends otter's own errors (failed background reloads) to the
// default logger at debug.
type slogLogger struct{}

func (slogLogger) Warn(ctx context.Context, msg string, err error) {
	slog.DebugContext(ctx, msg, "err", err)
}

func (slogLogger) Error(ctx context.Context, msg string, err error) {
	slog.DebugContext(ctx, msg, "err", err)
}
