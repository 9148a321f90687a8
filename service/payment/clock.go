package payment

import (
	"context"
	"log/slog"
	"time"

	"github.com/go-seckill/seckill/service"
)

// MaxDefer is the longest a timeout message is deferred at once. It stays
// under nsqd's --max-req-timeout (1 h by default): a longer deferral is a
// fatal error that closes the connection. A deadline further away is
// reached in several deferrals, each at most this long.
const MaxDefer = 59 * time.Minute

// TimeoutPublisher delivers messages to the payment-timeout consumer later.
type TimeoutPublisher interface {
	// DeferTimeouts publishes each of ms, to be delivered after its delay
	// (delays[i] for ms[i]), and says how each went. The consumer starts a
	// batch's clocks at once: one after the other, each publish would wait
	// for its own round trip.
	DeferTimeouts(ctx context.Context, ms []service.StockMessage, delays []time.Duration) []error
}

// Clock starts orders' payment clocks: a deferred message that cancels an
// order still unpaid at its deadline. The ledger starts it for every order
// once its sale is applied, whatever the version; the deadline travels in
// the message, and the expiry sweep is the backstop for a lost one.
type Clock struct {
	pub TimeoutPublisher
	log *slog.Logger
}

// NewClock makes a clock publishing through pub.
func NewClock(pub TimeoutPublisher, log *slog.Logger) *Clock { return &Clock{pub: pub, log: log} }

// Start schedules the timeouts of the orders ms name.
func (c *Clock) Start(ctx context.Context, ms ...service.StockMessage) {
	var due []service.StockMessage
	var delays []time.Duration
	for _, m := range ms {
		if m.Deadline != 0 {
			due = append(due, m)
			delays = append(delays, max(time.Until(time.UnixMilli(m.Deadline)), 0))
		}
	}
	if len(due) == 0 {
		return
	}
	for i, err := range c.pub.DeferTimeouts(ctx, due, delays) {
		if err != nil {
			c.log.Warn("payment timeout not scheduled; the expiry sweep will cancel the order", "order_id", due[i].OrderID, "err", err)
		}
	}
}
