package store

import (
	"bytes"

	"github.com/nsqio/go-nsq"
)

// maxPublishBatch bounds the bodies of one message: nsqd refuses a message
// larger than its --max-msg-size (1 MiB by default), far above this many
// requests.
const maxPublishBatch = 256

// newArrayPublisher coalesces concurrent publishes to one topic on one nsqd
// into one message, the JSON array of their bodies (a body alone goes as
// it is): its reader gets, finishes or requeues them together, one
// delivery and one FIN for the lot where a MultiPublish still costs one of
// each per body. Every body must be a JSON value.
func newArrayPublisher(prod *nsq.Producer, topic string, observe func(op string, send func() error) error) *coalescer[[]byte, error] {
	return newCoalescer(maxPublishBatch, func(bodies [][]byte) []error {
		body := bodies[0]
		if len(bodies) > 1 {
			body = append(append([]byte{'['}, bytes.Join(bodies, []byte{','})...), ']')
		}
		err := observe("publish", func() error { return prod.Publish(topic, body) })
		errs := make([]error, len(bodies))
		for i := range errs {
			errs[i] = err
		}
		return errs
	})
}
