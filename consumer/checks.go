package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nsqio/go-nsq"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/doublecheck"
)

// Checker acts on V10's delayed checks of decrements.
type Checker interface {
	// Check acts on a due check; an error means nothing was done.
	Check(ctx context.Context, c doublecheck.Check) error
}

// StartChecks reads V10's double-check topic. A check delivered before it
// is due (nsqd delivers deferred messages early after a restart) is
// deferred again for the time left; one that keeps failing is
// dead-lettered, naming no order so that it does not settle the order's
// decrement for the outbox sweep.
func StartChecks(c Checker, dead DeadLetters, o Options, log *slog.Logger) (*Consumer, error) {
	return start(o, &checkHandler{check: c, deferred: newDeferred(dead, o, log)})
}

type checkHandler struct {
	check Checker
	deferred
}

func (h *checkHandler) HandleMessage(m *nsq.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	var c doublecheck.Check
	if err := json.Unmarshal(m.Body, &c); err != nil {
		return h.dead.DeadLetter(ctx, service.StockMessage{}, m.Body, "undecodable double-check message: "+err.Error())
	}
	if waitUntil(m, c.Due()) {
		return nil
	}
	err := h.check.Check(ctx, c)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, service.ErrInvalid), m.Attempts >= h.maxAttempts:
		return h.dead.DeadLetter(ctx, service.StockMessage{GoodsID: c.Stock.GoodsID}, m.Body,
			fmt.Sprintf("double check of order %d gave up after %d attempts: %v", c.Stock.OrderID, m.Attempts, err))
	}
	h.log.Warn("double check will be retried", "order_id", c.Stock.OrderID, "attempt", m.Attempts, "err", err)
	return err // REQ with backoff: a store is down
}
