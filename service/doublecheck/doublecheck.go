// Package doublecheck is V10's delivery of decrements, the seed's double
// check: each order's stock message is followed by a delayed check message;
// when the check arrives and the decrement is not confirmed, the check
// republishes it and schedules itself again, at most MaxRepublish times,
// then hands the order to a person as a dead letter with the reason.
//
// The confirmation is the sale's stock log (goods_stock_logs, unique
// order_id), which the consumer writes in the very transaction that
// applies the decrement: it exists exactly when the decrement does, so the
// checker can trust it, and it costs no write and no message beyond the
// decrement itself. (The seed confirms with a third message that sets
// msg_status on the order: one more message and one more write, and a
// confirmation that can be lost or can outlive a rolled-back decrement.) A
// dead letter naming the order ends the checks too: a person has it.
package doublecheck

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-seckill/seckill/service"
)

// Check is the delayed message that checks one order's decrement.
type Check struct {
	Stock service.StockMessage `json:"stock"`
	// Route picks the nsqd the decrement is republished to (the version's
	// route); the check itself goes to the next one, so that losing one
	// nsqd does not lose a decrement and its check together.
	Route int64 `json:"route"`
	// Republished counts the times the decrement was republished before
	// this check.
	Republished int `json:"republished"`
	// DueMs is when the check is due, in Unix ms: nsqd delivers deferred
	// messages early after a restart, and an early check waits for the rest.
	DueMs int64 `json:"due_ms"`
}

// Due is when c is due.
func (c Check) Due() time.Time { return time.UnixMilli(c.DueMs) }

// Validate says whether c can be acted on.
func (c Check) Validate() error {
	if c.DueMs <= 0 {
		return service.Invalid("check has no due time")
	}
	return c.Stock.Validate()
}

// Confirmations tells which orders' decrements are settled: applied (the
// sale's stock log exists) or given to a person (a dead letter names them).
type Confirmations interface {
	Settled(ctx context.Context, ids []int64) (map[int64]bool, error)
}

// Publisher sends stock messages to the queue.
type Publisher interface {
	Publish(ctx context.Context, m service.StockMessage, route int64) error
}

// CheckPublisher delivers a check later, through nsqd number route.
type CheckPublisher interface {
	DeferCheck(ctx context.Context, c Check, delay time.Duration, route int64) error
}

// DeadLetters records decrements handed to a person, as letters of the
// stock topic: a replay republishes the stock message, which the consumer
// applies once by its order id.
type DeadLetters interface {
	DeadLetter(ctx context.Context, m service.StockMessage, body []byte, reason string) error
}

// Events of the checks, as counted.
const (
	Sent         = "sent"          // a check published
	Confirmed    = "confirmed"     // a check found its decrement settled
	Republished  = "republished"   // a check republished its decrement
	DeadLettered = "dead_lettered" // a check handed its decrement to a person
)

// MaxRepublish is the seed's number of republishes before a person is told.
const MaxRepublish = 3

// Options tune the checks.
type Options struct {
	// Delay is how long after the order, and after each republish, the
	// decrement is checked: longer than the consumer normally takes, or
	// every order is republished.
	Delay time.Duration
	// MaxRepublish is how many times an unconfirmed decrement is
	// republished before it is dead-lettered.
	MaxRepublish int
	// Count is told each event; nil counts nothing.
	Count func(event string)
}

// Checker sends and acts on checks.
type Checker struct {
	confirm Confirmations
	pub     Publisher
	checks  CheckPublisher
	dead    DeadLetters
	opts    Options
	log     *slog.Logger
}

// New wires a checker.
func New(confirm Confirmations, pub Publisher, checks CheckPublisher, dead DeadLetters, opts Options, log *slog.Logger) *Checker {
	if opts.Count == nil {
		opts.Count = func(string) {}
	}
	return &Checker{confirm: confirm, pub: pub, checks: checks, dead: dead, opts: opts, log: log}
}

// Schedule sends the first check of an order whose row is committed and
// whose stock message was published (or failed to be) through route. A
// check that cannot be sent is logged: the outbox sweep still finds an
// order whose decrement never comes.
func (c *Checker) Schedule(ctx context.Context, m service.StockMessage, route int64) {
	if err := c.send(ctx, Check{Stock: m, Route: route}); err != nil {
		c.log.Warn("double check not scheduled; the outbox sweep is the backstop", "order_id", m.OrderID, "err", err)
	}
}

// send publishes ch due after the delay, to the nsqd after its decrement's.
func (c *Checker) send(ctx context.Context, ch Check) error {
	ch.DueMs = time.Now().Add(c.opts.Delay).UnixMilli()
	if err := c.checks.DeferCheck(ctx, ch, c.opts.Delay, ch.Route+1); err != nil {
		return err
	}
	c.opts.Count(Sent)
	return nil
}

// Check acts on a check that is due: nothing when the decrement is
// settled; otherwise the next check is sent and the decrement republished,
// or, after MaxRepublish republishes, the decrement is dead-lettered. An
// error means nothing was done and the check should come again.
//
// The next check is sent before the republish, so that a failure between
// the two leaves the chain going (the next check republishes) and a check
// that comes again never republishes twice for one round.
func (c *Checker) Check(ctx context.Context, ch Check) error {
	if err := ch.Validate(); err != nil {
		return err
	}
	settled, err := c.confirm.Settled(ctx, []int64{ch.Stock.OrderID})
	if err != nil {
		return err
	}
	if settled[ch.Stock.OrderID] {
		c.opts.Count(Confirmed)
		return nil
	}
	if ch.Republished >= c.opts.MaxRepublish {
		body, err := json.Marshal(ch.Stock)
		if err != nil {
			return err
		}
		reason := fmt.Sprintf("decrement not confirmed after %d republishes (double check every %s)", ch.Republished, c.opts.Delay)
		if err := c.dead.DeadLetter(ctx, ch.Stock, body, reason); err != nil {
			return err
		}
		c.opts.Count(DeadLettered)
		return nil
	}
	next := ch
	next.Republished++
	if err := c.send(ctx, next); err != nil {
		return err
	}
	if err := c.pub.Publish(ctx, ch.Stock, ch.Route); err != nil {
		c.log.Warn("double check could not republish; the next check tries again", "order_id", ch.Stock.OrderID, "err", err)
		return nil
	}
	c.opts.Count(Republished)
	c.log.Info("double check republished an unconfirmed decrement", "order_id", ch.Stock.OrderID, "republished", next.Republished)
	return nil
}
