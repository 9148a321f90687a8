package store

import (
	"sync"

	"github.com/nsqio/go-nsq"
)

// publishBatcher coalesces concurrent publishes to one topic on one nsqd:
// while a MultiPublish is in flight, the messages that arrive wait and go
// together in the next one. An idle publisher sends a message at once,
// alone; under load a batch holds what arrived during one round trip.
// Each caller still waits for its own message's acknowledgement.
type publishBatcher struct {
	send func(bodies [][]byte) error // one MultiPublish (or Publish) to the nsqd

	mu      sync.Mutex
	queue   []queuedPublish
	sending bool
}

type queuedPublish struct {
	body []byte
	done chan error
}

// maxPublishBatch bounds one MultiPublish: nsqd refuses a body larger than
// its --max-body-size (5 MB by default), far above this many requests.
const maxPublishBatch = 256

func newPublishBatcher(prod *nsq.Producer, topic string, observe func(op string, send func() error) error) *publishBatcher {
	return &publishBatcher{send: func(bodies [][]byte) error {
		if len(bodies) == 1 {
			return observe("publish", func() error { return prod.Publish(topic, bodies[0]) })
		}
		return observe("multi_publish", func() error { return prod.MultiPublish(topic, bodies) })
	}}
}

// publish sends body with whatever else is waiting and returns its
// acknowledgement.
func (b *publishBatcher) publish(body []byte) error {
	done := make(chan error, 1)
	b.mu.Lock()
	b.queue = append(b.queue, queuedPublish{body: body, done: done})
	if !b.sending {
		b.sending = true
		go b.drain()
	}
	b.mu.Unlock()
	return <-done
}

// drain sends the queue a batch at a time until it is empty.
func (b *publishBatcher) drain() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxPublishBatch)
		if n == 0 {
			b.sending = false
			b.mu.Unlock()
			return
		}
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		b.mu.Unlock()
		bodies := make([][]byte, len(batch))
		for i, q := range batch {
			bodies[i] = q.body
		}
		err := b.send(bodies)
		for _, q := range batch {
			q.done <- err
		}
	}
}
