package store

import "github.com/nsqio/go-nsq"

// maxPublishBatch bounds one MultiPublish: nsqd refuses a body larger than
// its --max-body-size (5 MB by default), far above this many requests.
const maxPublishBatch = 256

// newPublishBatcher coalesces concurrent publishes to one topic on one
// nsqd into MultiPublishes (see coalescer); each caller gets its batch's
// acknowledgement.
func newPublishBatcher(prod *nsq.Producer, topic string, observe func(op string, send func() error) error) *coalescer[[]byte, error] {
	return newCoalescer(maxPublishBatch, func(bodies [][]byte) []error {
		var err error
		if len(bodies) == 1 {
			err = observe("publish", func() error { return prod.Publish(topic, bodies[0]) })
		} else {
			err = observe("multi_publish", func() error { return prod.MultiPublish(topic, bodies) })
		}
		errs := make([]error, len(bodies))
		for i := range errs {
			errs[i] = err
		}
		return errs
	})
}
