package consumer

import (
	"context"
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
// writes their orders, one INSERT per order table and batch. A message is
// FINed once its request is settled (its order written, or its failure
// recorded with its units back), REQed with backoff otherwise, and
// dead-lettered when it never will be.
func StartAccepted(w Writer, version string, dead DeadLetters, o Options, log *slog.Logger) (*Consumer, error) {
	h := &acceptedHandler{w: w, version: version, dead: dead, maxAttempts: o.MaxAttempts, timeout: applyTimeout(o), log: log}
	return startBatches(o, h.write)
}

type acceptedHandler struct {
	w           Writer
	version     string
	dead        DeadLetters
	maxAttempts uint16
	timeout     time.Duration
	log         *slog.Logger
}

func (h *acceptedHandler) write(batch []*nsq.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	msgs, as := decodeEach[service.Accepted](batch, func(m *nsq.Message, why string) {
		respond(m, h.giveUp(ctx, m, "undecodable accepted request: "+why))
	})
	if len(as) == 0 {
		return
	}
	for i, err := range h.w.WriteAccepted(ctx, h.version, as) {
		m := msgs[i]
		switch {
		case err == nil:
		case errors.Is(err, service.ErrInvalid):
			err = h.giveUp(ctx, m, err.Error())
		case m.Attempts >= h.maxAttempts:
			// Its Redis record stays: the sweep writes it, or ends it.
			err = h.giveUp(ctx, m, fmt.Sprintf("gave up after %d attempts: %v", m.Attempts, err))
		default:
			h.log.Warn("accepted request will be retried", "token", as[i].Token, "attempt", m.Attempts, "err", err)
		}
		respond(m, err)
	}
}

// giveUp writes m as a dead letter naming no order: it marks no stock
// message settled.
func (h *acceptedHandler) giveUp(ctx context.Context, m *nsq.Message, reason string) error {
	return h.dead.DeadLetter(ctx, service.StockMessage{}, m.Body, reason)
}
