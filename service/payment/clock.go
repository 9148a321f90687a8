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

// TimeoutPublisher delivers a message to the payment-timeout consumer later.
type TimeoutPublisher interface {
	DeferTimeout(ctx context.Context, m service.StockMessage, delay time.Duration) error
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

// Start schedules the timeout of the order m names.
func (c *Clock) Start(ctx context.Context, m service.StockMessage) {
	if m.Deadline == 0 {
		return
	}
	delay := time.Until(time.UnixMilli(m.Deadline))
	if err := c.pub.DeferTimeout(ctx, m, max(delay, 0)); err != nil {
		c.log.Warn("payment timeout not scheduled; the expiry sweep will cancel the order", "order_id", m.OrderID, "err", err)
	}
}
