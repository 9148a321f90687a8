package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/go-seckill/seckill/service"
)

// Writer turns accepted requests into orders (V13's writers).
type Writer interface {
	// WriteAccepted writes the requests' orders and says how each went:
	// nil when settled, an error to try again; one wrapping ErrInvalid
	// never gets better.
	WriteAccepted(ctx context.Context, version string, as []service.Accepted) []error
}

// StartAccepted reads the accepted requests of version in batches and
// writes their orders, one INSERT per order table and batch. A message (one
// request, or the array of those accepted together) is FINed once each of
// its requests is settled (its order written, or its failure recorded with
// its units back) or given up on, and REQed with backoff, whole, while one
// of them can still be written: its settled requests are found settled
// when it comes back.
func StartAccepted(w Writer, version string, dead DeadLetters, o Options, log *slog.Logger) (*Consumer, error) {
	h := &acceptedHandler{w: w, version: version, dead: dead, maxAttempts: o.MaxAttempts, timeout: applyTimeout(o),
		batchSize: max(o.BatchSize, 1), log: log}
	return startBatches(o, h.write)
}

type acceptedHandler struct {
	w           Writer
	version     string
	dead        DeadLetters
	maxAttempts uint16
	timeout     time.Duration
	batchSize   int // most requests written at once
	log         *slog.Logger
}

func (h *acceptedHandler) write(batch []*nsq.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	eachItem(batch, h.batchSize,
		func(m *nsq.Message, err error) error {
			return h.giveUp(ctx, m.Body, "undecodable accepted request: "+err.Error())
		},
		func(as []service.Accepted) []error { return h.w.WriteAccepted(ctx, h.version, as) },
		func(m *nsq.Message, a service.Accepted, err error) error {
			switch {
			case err == nil:
			case errors.Is(err, service.ErrInvalid):
				err = h.giveUpOn(ctx, a, err.Error())
			case m.Attempts >= h.maxAttempts:
				// Its Redis record stays: the sweep writes it, or ends it.
				err = h.giveUpOn(ctx, a, fmt.Sprintf("gave up after %d attempts: %v", m.Attempts, err))
			default:
				h.log.Warn("accepted request will be retried", "token", a.Token, "attempt", m.Attempts, "err", err)
			}
			return err
		})
}

// giveUpOn keeps one request of a message for a person, in a letter of its
// own (its body the request alone).
func (h *acceptedHandler) giveUpOn(ctx context.Context, a service.Accepted, reason string) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return h.giveUp(ctx, body, reason)
}

// giveUp writes body as a dead letter naming no order: it marks no stock
// message settled.
func (h *acceptedHandler) giveUp(ctx context.Context, body []byte, reason string) error {
	return h.dead.DeadLetter(ctx, service.StockMessage{}, body, reason)
}
