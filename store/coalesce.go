package store

import "sync"

// coalescer runs concurrent calls together: while one batch is in flight,
// the calls that arrive wait and go together in the next one. An idle
// caller runs at once, alone; under load a batch holds what arrived during
// one round trip, so the round trips (and their system calls) per call
// fall as the load grows, with no timer to wait for. Each caller gets its
// own result.
type coalescer[T, R any] struct {
	run func(items []T) []R // one round trip for the batch: a result per item
	max int                 // most items in one batch

	mu      sync.Mutex
	queue   []coalesced[T, R]
	sending bool
}

type coalesced[T, R any] struct {
	item T
	done chan R
}

func newCoalescer[T, R any](max int, run func(items []T) []R) *coalescer[T, R] {
	return &coalescer[T, R]{run: run, max: max}
}

// do runs item with whatever else is waiting and returns its result.
func (c *coalescer[T, R]) do(item T) R {
	done := make(chan R, 1)
	c.mu.Lock()
	c.queue = append(c.queue, coalesced[T, R]{item: item, done: done})
	if !c.sending {
		c.sending = true
		go c.drain()
	}
	c.mu.Unlock()
	return <-done
}

// drain runs the queue a batch at a time until it is empty.
func (c *coalescer[T, R]) drain() {
	for {
		c.mu.Lock()
		n := min(len(c.queue), c.max)
		if n == 0 {
			c.sending = false
			c.mu.Unlock()
			return
		}
		batch := c.queue[:n:n]
		c.queue = c.queue[n:]
		c.mu.Unlock()
		items := make([]T, n)
		for i, q := range batch {
			items[i] = q.item
		}
		results := c.run(items)
		for i, q := range batch {
			q.done <- results[i]
		}
	}
}
