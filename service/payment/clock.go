package payment

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/go-seckill/seckill/service"
)

// MaxDefer is the longest a timeout message is deferred at once. It stays
// under nsqd's --max-req-timeout (1 h by default): a longer deferral is a
// fatal error that closes the connection. A deadline further away is
// reached in several deferrals, each at most this long.
const MaxDefer = 59 * time.Minute

// ClockSpread is the widest spread of deadlines one timeout message
// carries. The message is delivered at its latest deadline, so an order in
// it is cancelled up to this much after its own; nothing is paid late for
// it (a payment past the deadline is refused by the database), its units
// only come back that much later.
const ClockSpread = time.Second

// MaxClocks is the most orders one timeout message carries, which keeps it
// far below nsqd's largest message (1 MiB by default).
const MaxClocks = 1000

// TimeoutPublisher delivers messages to the payment-timeout consumer later.
type TimeoutPublisher interface {
	// DeferTimeouts publishes each group of clocks as one message, to be
	// delivered after its delay (delays[i] for groups[i]), and says how
	// each went. The consumer starts a batch's clocks at once: one message
	// per order, each publish flushed and answered on its own, cost the
	// consumer more than its transaction.
	DeferTimeouts(ctx context.Context, groups [][]service.StockMessage, delays []time.Duration) []error
}

// Clock starts orders' payment clocks: a deferred message that cancels the
// orders still unpaid at their deadline. The ledger starts them for every
// order once its sale is applied, whatever the version; the deadlines
// travel in the message, and the expiry sweep is the backstop for a lost
// one.
type Clock struct {
	pub TimeoutPublisher
	log *slog.Logger
}

// NewClock makes a clock publishing through pub.
func NewClock(pub TimeoutPublisher, log *slog.Logger) *Clock { return &Clock{pub: pub, log: log} }

// Start schedules the timeouts of the orders ms name: one message for the
// orders whose deadlines lie within ClockSpread of each other, delivered
// at the latest of them. The orders of one batch were made within moments
// of each other, so their clocks mostly go in one message.
func (c *Clock) Start(ctx context.Context, ms ...service.StockMessage) {
	groups := Clocks(ms)
	if len(groups) == 0 {
		return
	}
	delays := make([]time.Duration, len(groups))
	for i, g := range groups {
		delays[i] = max(time.Until(LatestDeadline(g)), 0)
	}
	for i, err := range c.pub.DeferTimeouts(ctx, groups, delays) {
		if err != nil {
			for _, m := range groups[i] {
				c.log.Warn("payment timeout not scheduled; the expiry sweep will cancel the order", "order_id", m.OrderID, "err", err)
			}
		}
	}
}

// Clocks groups the orders of ms that have a deadline into the payment
// timeouts' messages: sorted by deadline, a group ends where a deadline
// lies more than ClockSpread after the group's first, or at MaxClocks.
func Clocks(ms []service.StockMessage) [][]service.StockMessage {
	var due []service.StockMessage
	for _, m := range ms {
		if m.Deadline != 0 {
			due = append(due, m)
		}
	}
	slices.SortStableFunc(due, func(a, b service.StockMessage) int { return cmp.Compare(a.Deadline, b.Deadline) })
	var groups [][]service.StockMessage
	for i, start := 0, 0; i <= len(due); i++ {
		if i == len(due) || i-start == MaxClocks || time.Duration(due[i].Deadline-due[start].Deadline)*time.Millisecond > ClockSpread {
			if i > start {
				groups = append(groups, due[start:i:i])
			}
			start = i
		}
	}
	return groups
}

// LatestDeadline is the latest deadline of a timeout message's orders.
func LatestDeadline(ms []service.StockMessage) time.Time {
	var latest int64
	for _, m := range ms {
		latest = max(latest, m.Deadline)
	}
	return time.UnixMilli(latest)
}
