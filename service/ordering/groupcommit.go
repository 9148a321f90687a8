package ordering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-seckill/seckill/service"
)

// Group commit: concurrent orders bound for one table are written in one
// multi-row INSERT, committed once, and their sales sent in one message.
// Each buyer is answered only after its own row committed.
// A batch that fails is settled order by order, exactly as a single
// order's failed write would be: a statement the database refused wrote
// nothing, and each order is written again alone to learn which row it
// refused; a statement never sent wrote nothing, and each order's units go
// back; a statement whose outcome is unknown leaves each order to be
// fenced on its own (SettleFailedWrite).

// BatchOrders writes many orders into one table at once.
type BatchOrders interface {
	InsertOrders(ctx context.Context, at service.OrderTable, orders []service.Order) error
}

// BatchPublisher sends many stock messages at once to the nsqd route picks.
type BatchPublisher interface {
	PublishBatch(ctx context.Context, ms []service.StockMessage, route int64) error
}

// GroupCommitOptions tune the batches: a batch is written when it holds
// MaxBatch orders or Wait after its first order arrived.
type GroupCommitOptions struct {
	MaxBatch int
	Wait     time.Duration
}

// committer gathers the orders of open batches, one per table.
type committer struct {
	orders Orders
	batch  BatchOrders
	pub    BatchPublisher
	opts   GroupCommitOptions
	log    *slog.Logger

	mu   sync.Mutex
	open map[service.OrderTable]*batch
}

// batch is the orders bound for one table that are written together.
type batch struct {
	at       service.OrderTable
	orders   []service.Order
	routes   []int64
	deadline time.Time // the first order's write deadline
	errs     []error   // each order's outcome, once done is closed
	done     chan struct{}
}

// EnableGroupCommit lets the versions that declare GroupCommit write
// through batches; without it they write each order alone.
func (p *Placer) EnableGroupCommit(orders BatchOrders, pub BatchPublisher, opts GroupCommitOptions) {
	p.commits = &committer{orders: p.orders, batch: orders, pub: pub, opts: opts, log: p.log, open: map[service.OrderTable]*batch{}}
}

// write adds o to its table's open batch and waits for the batch's
// outcome for o; published says o's stock message went out with it.
// When ctx ends first, the outcome is unknown: the batch may still write
// the row.
func (c *committer) write(ctx context.Context, o service.Order, at service.OrderTable, route int64) (published bool, err error) {
	c.mu.Lock()
	b := c.open[at]
	if b == nil {
		b = &batch{at: at, done: make(chan struct{})}
		b.deadline, _ = ctx.Deadline()
		c.open[at] = b
		time.AfterFunc(c.opts.Wait, func() { c.close(b) })
	}
	i := len(b.orders)
	b.orders = append(b.orders, o)
	b.routes = append(b.routes, route)
	full := len(b.orders) >= c.opts.MaxBatch
	c.mu.Unlock()
	if full {
		go c.close(b)
	}
	select {
	case <-b.done:
		return b.errs[i] == nil, b.errs[i]
	case <-ctx.Done():
		return false, fmt.Errorf("%w: %w: order %d's batch did not answer in time: %w", service.ErrUnavailable, service.ErrAmbiguous, o.ID, ctx.Err())
	}
}

// close takes b out of the open batches (once: by its timer or by the
// order that filled it) and writes it.
func (c *committer) close(b *batch) {
	c.mu.Lock()
	mine := c.open[b.at] == b
	if mine {
		delete(c.open, b.at)
	}
	c.mu.Unlock()
	if mine {
		c.commit(b)
	}
}

// insertBatch writes orders into one table in one INSERT and says how
// each went. A batch never sent, or whose outcome is unknown, is that for
// every order, which each caller settles on its own. A batch the database
// refused wrote nothing: each order is written again alone, to learn which
// row it refuses and why (a batch of one has its answer already).
func insertBatch(ctx context.Context, batch BatchOrders, single Orders, at service.OrderTable, orders []service.Order) []error {
	errs := make([]error, len(orders))
	err := batch.InsertOrders(ctx, at, orders)
	if err == nil {
		return errs
	}
	for i, o := range orders {
		if errors.Is(err, service.ErrUnavailable) || len(orders) == 1 {
			errs[i] = err
		} else {
			errs[i] = single.InsertOrder(ctx, o, at)
		}
	}
	return errs
}

func (c *committer) commit(b *batch) {
	defer close(b.done)
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if !b.deadline.IsZero() {
		ctx, cancel = context.WithDeadline(ctx, b.deadline)
	}
	defer cancel()
	b.errs = insertBatch(ctx, c.batch, c.orders, b.at, b.orders)
	var ms []service.StockMessage
	route := int64(-1)
	for i, o := range b.orders {
		if b.errs[i] == nil {
			ms = append(ms, service.MessageOf(o, b.at))
			if route < 0 {
				route = b.routes[i]
			}
		}
	}
	if len(ms) == 0 {
		return
	}
	// The rows are committed, so a failed publish loses nothing: the outbox
	// sweep finds each order without a stock log and publishes it.
	if err := c.pub.PublishBatch(ctx, ms, route); err != nil {
		c.log.Warn("batch publish failed; the outbox sweep will retry", "orders", len(ms), "err", err)
	}
}
