// Package recovery finds what a fault left undone and finishes it: the
// outbox sweep republishes orders whose stock message was lost, and the
// reconciliation repairs Redis stock that drifted from the database.
package recovery

import (
	"context"
	"sync"
	"time"

	"github.com/go-seckill/seckill/service"
)

// OutboxOrders finds orders and whether their sale is settled.
type OutboxOrders interface {
	// ScanOrders returns up to limit orders with afterID < id < beforeID,
	// by id, over every order table of every host.
	ScanOrders(ctx context.Context, afterID, beforeID int64, limit int) ([]service.StockMessage, error)
	// Settled says which of ids have a sale stock log or a dead letter.
	Settled(ctx context.Context, ids []int64) (map[int64]bool, error)
}

// Publisher sends stock messages to the queue.
type Publisher interface {
	Publish(ctx context.Context, m service.StockMessage, route int64) error
}

// IDAt gives the smallest order id made at or after t.
type IDAt interface{ FirstIDAt(t time.Time) int64 }

// Outbox republishes the stock message of every order older than the grace
// period that has neither a stock log nor a dead letter: the stock log is
// the acknowledgement, so no outbox table and no extra write sits on the
// order path.
//
// The watermark may only pass ids that can no longer appear, and an order
// row can commit late: the server finishes a write whose client has gone
// (an instance killed mid-write, a write held by a lock). So besides the
// pass from the watermark, every horizon/4 a pass looks again at the
// orders of the last horizon, behind the watermark.
type Outbox struct {
	orders  OutboxOrders
	pub     Publisher
	ids     IDAt
	grace   time.Duration
	horizon time.Duration

	mu       sync.Mutex
	from     int64               // watermark: orders below it were settled when passed
	lateScan time.Time           // when the orders of the last horizon were last looked at
	sent     map[int64]time.Time // when the sweep last republished each pending order
}

// NewOutbox makes a sweep that leaves orders younger than grace to their
// own message and looks again at orders up to horizon old.
func NewOutbox(orders OutboxOrders, pub Publisher, ids IDAt, grace, horizon time.Duration) *Outbox {
	return &Outbox{orders: orders, pub: pub, ids: ids, grace: grace, horizon: max(horizon, grace), sent: map[int64]time.Time{}}
}

// sweepBatch is how many orders one read of the sweep takes.
const sweepBatch = 500

// Sweep runs one pass and returns how many messages it republished.
func (b *Outbox) Sweep(ctx context.Context) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	before := b.ids.FirstIDAt(now.Add(-b.grace))
	late := 0
	if now.Sub(b.lateScan) >= b.horizon/4 {
		from := b.ids.FirstIDAt(now.Add(-b.horizon))
		if from < b.from {
			n, _, err := b.scan(ctx, from-1, b.from+1)
			if err != nil {
				return n, err
			}
			late = n
		}
		b.lateScan = now
	}
	n, firstPending, err := b.scan(ctx, b.from, before)
	if err == nil {
		b.advance(firstPending, before)
	}
	return late + n, err
}

// scan republishes the unsettled orders with after < id < before and
// returns how many, and the first unsettled one (0 when none).
func (b *Outbox) scan(ctx context.Context, after, before int64) (republished int, firstPending int64, err error) {
	for {
		orders, err := b.orders.ScanOrders(ctx, after, before, sweepBatch)
		if err != nil || len(orders) == 0 {
			return republished, firstPending, err
		}
		ids := make([]int64, len(orders))
		for i, o := range orders {
			ids[i] = o.OrderID
		}
		settled, err := b.orders.Settled(ctx, ids)
		if err != nil {
			return republished, firstPending, err
		}
		for _, o := range orders {
			if settled[o.OrderID] {
				delete(b.sent, o.OrderID)
				continue
			}
			if firstPending == 0 {
				firstPending = o.OrderID
			}
			// A consumer lagging behind the grace period would otherwise get
			// every pending order again on each pass: once per grace is enough.
			if sent, ok := b.sent[o.OrderID]; ok && time.Since(sent) < b.grace {
				continue
			}
			if err := b.pub.Publish(ctx, o, o.OrderID); err != nil {
				return republished, firstPending, err
			}
			b.sent[o.OrderID] = time.Now()
			republished++
		}
		after = orders[len(orders)-1].OrderID
	}
}

// advance moves the watermark past every settled order: up to the first
// order still pending, or to the end of the window when none is.
func (b *Outbox) advance(firstPending, before int64) {
	if firstPending != 0 {
		b.from = firstPending - 1
	} else {
		b.from = before - 1
	}
}
