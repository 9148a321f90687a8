// Package consumer reads stock messages from NSQ and hands them to the
// service in batches: each message is FINed once its batch is committed,
// REQed with backoff when it failed, and dead-lettered when it never will
// succeed.
package consumer

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/payment"
)

// Applier applies stock messages to the database.
type Applier interface {
	// ApplySales applies many messages and says how each one went; an
	// error wrapping service.ErrInvalid never gets better.
	ApplySales(ctx context.Context, ms []service.StockMessage) []error
}

// DeadLetters records the messages given up on.
type DeadLetters interface {
	DeadLetter(ctx context.Context, m service.StockMessage, body []byte, reason string) error
}

// Options configure the consumer.
type Options struct {
	Topic   string
	Channel string
	// NSQDs are read directly unless Lookupds (nsqlookupd HTTP addresses) are
	// given, which then tell which nsqd carry the topic.
	NSQDs       []string
	Lookupds    []string
	Concurrency int
	// MaxAttempts is how many deliveries a message gets before it is written
	// to the dead-letter table.
	MaxAttempts uint16
	// BatchSize is the most messages applied in one MySQL transaction.
	BatchSize int
	// ApplyTimeout bounds the work on one batch or one message.
	ApplyTimeout time.Duration
	// NSQLog receives go-nsq's own log lines.
	NSQLog interface {
		Output(calldepth int, s string) error
	}
	// Lag, if set, is told each message's age (since its publish) when it is
	// handed to the handler.
	Lag func(age time.Duration)

	inFlight int // messages in flight per nsqd, when more than Concurrency
}

// Consumer reads one topic.
type Consumer struct {
	cs    []*nsq.Consumer
	after func() // runs once every connection has closed
}

// Start connects to the topic's nsqd and begins applying stock messages:
// o.Concurrency appliers each take whatever messages are waiting, up to
// o.BatchSize, and apply them in one transaction. Under load batches fill
// up; when idle a message is applied alone, without waiting.
func Start(applier Applier, dead DeadLetters, o Options, log *slog.Logger) (*Consumer, error) {
	h := &stockHandler{sales: applier, dead: dead, maxAttempts: o.MaxAttempts, timeout: applyTimeout(o), batchSize: o.BatchSize, log: log}
	return startBatches(o, h.apply)
}

// startBatches reads o.Topic and hands its messages to apply in batches:
// o.Concurrency appliers each take whatever messages are waiting, up to
// o.BatchSize. apply answers nsqd for each message.
func startBatches(o Options, apply func([]*nsq.Message)) (*Consumer, error) {
	b := newBatcher(o, apply)
	o.inFlight, o.Concurrency = cap(b.pending), 1
	c, err := start(o, b)
	if err != nil {
		b.close()
		return nil, err
	}
	c.after = b.close
	return c, nil
}

// start reads o.Topic through nsqlookupd, or from each nsqd in o.NSQDs with
// a go-nsq consumer of its own: one consumer over several nsqd shares its
// RDY count among them and can leave a connection at RDY 0 for seconds
// after start-up, which delays stock and stock-back messages alike.
func start(o Options, h nsq.Handler) (*Consumer, error) {
	c := &Consumer{}
	if o.Lag != nil {
		inner := h
		h = nsq.HandlerFunc(func(m *nsq.Message) error {
			o.Lag(time.Since(time.Unix(0, m.Timestamp)))
			return inner.HandleMessage(m)
		})
	}
	if len(o.Lookupds) > 0 {
		nc, err := newConsumer(o, h)
		if err != nil {
			return nil, err
		}
		c.cs = append(c.cs, nc)
		if err := nc.ConnectToNSQLookupds(o.Lookupds); err != nil {
			c.Stop()
			return nil, fmt.Errorf("consumer of %s: %w", o.Topic, err)
		}
		return c, nil
	}
	for _, addr := range o.NSQDs {
		nc, err := newConsumer(o, h)
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.cs = append(c.cs, nc)
		if err := nc.ConnectToNSQD(addr); err != nil {
			c.Stop()
			return nil, fmt.Errorf("consumer of %s on %s: %w", o.Topic, addr, err)
		}
	}
	return c, nil
}

// outputBufferTimeout is how long nsqd may hold messages for this reader
// to send them in one write. nsqd flushes a reader's buffer only when the
// reader has as many messages in flight as it asked for, or when this
// timer ticks: with the default 250 ms a lone message (an order placed
// while the sale is quiet) waited up to a quarter of a second before its
// sale was applied, and a payment waited with it. 25 ms is the least
// nsqd accepts by default (--min-output-buffer-timeout); under load the
// buffer fills and is written long before.
const outputBufferTimeout = 25 * time.Millisecond

func newConsumer(o Options, h nsq.Handler) (*nsq.Consumer, error) {
	cfg := nsq.NewConfig()
	cfg.MaxInFlight = max(o.Concurrency, o.inFlight, 1)
	// go-nsq would FIN a message silently after MaxAttempts; 0 turns that
	// off so the handler can dead-letter it, and requeue if that fails too.
	cfg.MaxAttempts = 0
	cfg.DefaultRequeueDelay = time.Second // times the attempt number
	cfg.MaxRequeueDelay = 30 * time.Second
	cfg.MaxBackoffDuration = 10 * time.Second
	// A topic an nsqd creates is found at the next poll.
	cfg.LookupdPollInterval = 2 * time.Second
	cfg.OutputBufferTimeout = outputBufferTimeout
	c, err := nsq.NewConsumer(o.Topic, o.Channel, cfg)
	if err != nil {
		return nil, err
	}
	if o.NSQLog != nil {
		c.SetLogger(o.NSQLog, nsq.LogLevelWarning)
	}
	c.AddConcurrentHandlers(h, max(o.Concurrency, 1))
	return c, nil
}

// Stats are the messages received from nsqd, finished and requeued so far,
// over every connection.
func (c *Consumer) Stats() (received, finished, requeued uint64) {
	for _, nc := range c.cs {
		s := nc.Stats()
		received += s.MessagesReceived
		finished += s.MessagesFinished
		requeued += s.MessagesRequeued
	}
	return received, finished, requeued
}

// Stop stops taking messages and waits for the handlers in flight.
func (c *Consumer) Stop() {
	for _, nc := range c.cs {
		nc.Stop()
	}
	for _, nc := range c.cs {
		<-nc.StopChan
	}
	if c.after != nil {
		c.after()
	}
}

type stockHandler struct {
	sales       Applier
	dead        DeadLetters
	maxAttempts uint16
	timeout     time.Duration
	batchSize   int // most sales applied in one transaction; 0: a batch's all
	log         *slog.Logger
}

// batcher hands messages to appliers in batches. One go-nsq handler only
// hands messages over, into a buffer that holds every applier's batch: an
// applier takes what is buffered, so without the buffer its batches would
// shrink to one message.
type batcher struct {
	apply    func([]*nsq.Message)
	pending  chan *nsq.Message
	appliers sync.WaitGroup
}

func newBatcher(o Options, apply func([]*nsq.Message)) *batcher {
	batch, appliers := max(o.BatchSize, 1), max(o.Concurrency, 1)
	b := &batcher{apply: apply, pending: make(chan *nsq.Message, appliers*batch)}
	for range appliers {
		b.appliers.Add(1)
		go b.applier(batch)
	}
	return b
}

// HandleMessage hands m to an applier, which answers nsqd for it later.
func (b *batcher) HandleMessage(m *nsq.Message) error {
	m.DisableAutoResponse()
	b.pending <- m
	return nil
}

// close stops the appliers once go-nsq has no message left in flight.
func (b *batcher) close() {
	close(b.pending)
	b.appliers.Wait()
}

func (b *batcher) applier(batchSize int) {
	defer b.appliers.Done()
	for first := range b.pending {
		batch := []*nsq.Message{first}
	collect:
		for len(batch) < batchSize {
			select {
			case m, ok := <-b.pending:
				if !ok {
					break collect
				}
				batch = append(batch, m)
			default:
				break collect
			}
		}
		b.apply(batch)
	}
}

// apply applies a batch and answers nsqd for each message in it: a
// message holds one order's sale, or the array of those published together
// (store.Publisher.Publish). Its applied sales are found applied (the
// stock log's unique key) when a message comes back whole.
func (h *stockHandler) apply(batch []*nsq.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	eachItem(batch, h.batchSize,
		func(m *nsq.Message, err error) error {
			return h.dead.DeadLetter(ctx, service.StockMessage{}, m.Body, "undecodable message: "+err.Error())
		},
		func(sales []service.StockMessage) []error { return h.sales.ApplySales(ctx, sales) },
		func(m *nsq.Message, sm service.StockMessage, err error) error { return h.outcome(ctx, m, sm, err) })
}

// eachItem handles a batch of messages that each hold one T or the array
// of those published together: apply gets their items, at most size at a
// time (0: all at once), and outcome decides each item's fate, nil when it
// is done with. A message is FINed once each of its items is done with and
// REQed whole, with the first error, otherwise. A body that does not
// decode goes to undecodable, whose error REQs it.
func eachItem[T any](batch []*nsq.Message, size int, undecodable func(m *nsq.Message, err error) error,
	apply func([]T) []error, outcome func(m *nsq.Message, item T, err error) error) {
	var msgs []*nsq.Message
	var items []T
	var from []int // the index in msgs of each item's message
	for _, m := range batch {
		each, err := decodeOneOrMany[T](m.Body, true)
		if err != nil {
			respond(m, undecodable(m, err))
			continue
		}
		for _, it := range each {
			items, from = append(items, it), append(from, len(msgs))
		}
		msgs = append(msgs, m)
	}
	errs := make([]error, 0, len(items))
	for chunk := range slices.Chunk(items, cmp.Or(size, max(len(items), 1))) {
		errs = append(errs, apply(chunk)...)
	}
	retry := make([]error, len(msgs))
	for i, err := range errs {
		if err := outcome(msgs[from[i]], items[i], err); err != nil && retry[from[i]] == nil {
			retry[from[i]] = err
		}
	}
	for j, m := range msgs {
		respond(m, retry[j])
	}
}

// decodeOneOrMany decodes a body holding one T or a JSON array of them
// (what several publishers' values sent as one message are), strictly (no
// unknown field) when asked; an empty array is an error.
func decodeOneOrMany[T any](body []byte, strict bool) ([]T, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	var vs []T
	var err error
	if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '[' {
		err = dec.Decode(&vs)
	} else {
		var v T
		err = dec.Decode(&v)
		vs = []T{v}
	}
	if err == nil && len(vs) == 0 {
		err = errors.New("an empty array")
	}
	return vs, err
}

// outcome decides the fate of one sale of message m: nil when it is done
// with (applied, or in a dead letter of its own), an error to REQ m.
func (h *stockHandler) outcome(ctx context.Context, m *nsq.Message, sm service.StockMessage, err error) error {
	letter := func(named service.StockMessage, reason string) error {
		body := m.Body
		if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '[' {
			// A letter is one sale, replayable alone.
			one, merr := json.Marshal(sm)
			if merr != nil {
				return merr
			}
			body = one
		}
		return h.dead.DeadLetter(ctx, named, body, reason)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, service.ErrStray):
		// Its letter names no order, so that it marks none settled.
		return letter(service.StockMessage{GoodsID: sm.GoodsID}, err.Error())
	case errors.Is(err, service.ErrInvalid):
		return letter(sm, err.Error())
	case m.Attempts >= h.maxAttempts:
		return letter(sm, fmt.Sprintf("gave up after %d attempts: %v", m.Attempts, err))
	}
	h.log.Warn("stock message will be retried", "order_id", sm.OrderID, "attempt", m.Attempts, "err", err)
	return err
}

// respond FINs m, or REQs it with go-nsq's backoff when err is not nil.
func respond(m *nsq.Message, err error) {
	if err != nil {
		m.Requeue(-1)
		return
	}
	m.Finish()
}

// StartStockBack listens for "stock is back" broadcasts on a channel of this
// instance's own and calls stockBack with each goods id; o.Channel should
// end in #ephemeral so nsqd drops it when the instance goes.
func StartStockBack(stockBack func(goodsID int64), o Options) (*Consumer, error) {
	return StartBroadcast("goods_id", stockBack, o)
}

// Canceller cancels orders unpaid at their deadline.
type Canceller interface {
	// CancelUnpaid cancels the order and returns its units; service.ErrNotYet
	// while that cannot be done yet.
	CancelUnpaid(ctx context.Context, m service.StockMessage) error
}

// StartTimeouts cancels orders still unpaid at their deadline. The deadline
// travels in the message: nsqd delivers deferred messages early after a
// restart, and such a message is deferred again for the time left.
func StartTimeouts(c Canceller, dead DeadLetters, o Options, log *slog.Logger) (*Consumer, error) {
	return start(o, &timeoutHandler{cancel: c, deferred: newDeferred(dead, o, log)})
}

// deferred is what the handlers of deferred topics share: where their
// give-ups go, how many deliveries they get and how long one may take.
type deferred struct {
	dead        DeadLetters
	maxAttempts uint16
	timeout     time.Duration
	log         *slog.Logger
}

func newDeferred(dead DeadLetters, o Options, log *slog.Logger) deferred {
	return deferred{dead: dead, maxAttempts: o.MaxAttempts, timeout: applyTimeout(o), log: log}
}

// waitUntil requeues m, delivered before due (nsqd delivers deferred
// messages early after a restart), for the time left, at most
// payment.MaxDefer, and says whether it did.
func waitUntil(m *nsq.Message, due time.Time) bool {
	left := time.Until(due)
	if left <= 0 {
		return false
	}
	m.DisableAutoResponse()
	m.RequeueWithoutBackoff(min(left, payment.MaxDefer))
	return true
}

// applyTimeout is o.ApplyTimeout, or 30 s when it is not set.
func applyTimeout(o Options) time.Duration {
	if o.ApplyTimeout > 0 {
		return o.ApplyTimeout
	}
	return 30 * time.Second
}

// notYetDelay is how long a payment timeout waits for its order's sale.
const notYetDelay = 5 * time.Second

type timeoutHandler struct {
	cancel Canceller
	deferred
}

// HandleMessage cancels the unpaid orders of one payment-timeout message:
// a group of clocks (a JSON array, payment.Clock's), or one order's (an
// object: a dead letter replayed, or a message of an earlier release).
// CancelUnpaid finishes what is left of an order at any step, so a message
// that comes back whole (a store was down, or a sale was not applied yet)
// settles again, at no harm, the orders it had settled.
func (h *timeoutHandler) HandleMessage(m *nsq.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	clocks, err := decodeClocks(m.Body)
	if err != nil {
		return h.dead.DeadLetter(ctx, service.StockMessage{}, m.Body, fmt.Sprintf("undecodable payment-timeout message: %v", err))
	}
	if waitUntil(m, payment.LatestDeadline(clocks)) {
		return nil
	}
	var notYet bool
	var failed []service.StockMessage
	var failure error
	for _, sm := range clocks {
		err := h.cancel.CancelUnpaid(ctx, sm)
		switch {
		case err == nil:
		case errors.Is(err, service.ErrNotYet):
			notYet = true
		case errors.Is(err, service.ErrInvalid):
			h.giveUp(ctx, sm, m.Attempts, err)
		default:
			failed, failure = append(failed, sm), err
		}
	}
	if len(failed) > 0 && m.Attempts < h.maxAttempts {
		return failure // REQ with backoff: a store is down
	}
	for _, sm := range failed {
		h.giveUp(ctx, sm, m.Attempts, failure)
	}
	if notYet {
		// An order's sale is not applied yet (the outbox sweep sees to it):
		// wait for it without slowing the channel's other messages down.
		m.DisableAutoResponse()
		m.RequeueWithoutBackoff(notYetDelay)
	}
	return nil
}

// giveUp hands one order's payment timeout to a person. Dead letters keyed
// by order id mark a stock message settled; a timeout given up on must
// not, so its letter names no order (its body, the order's own message,
// does). The expiry sweep still cancels the order.
func (h *timeoutHandler) giveUp(ctx context.Context, sm service.StockMessage, attempts uint16, err error) {
	body, _ := json.Marshal(sm)
	reason := fmt.Sprintf("payment timeout of order %d gave up after %d attempts: %v", sm.OrderID, attempts, err)
	if err := h.dead.DeadLetter(ctx, service.StockMessage{GoodsID: sm.GoodsID}, body, reason); err != nil {
		h.log.Error("payment timeout given up on and not kept as a dead letter; the expiry sweep will cancel the order", "order_id", sm.OrderID, "err", err)
	}
}

// decodeClocks reads a payment-timeout message: an array of orders'
// messages, or one order's, each with its deadline.
func decodeClocks(body []byte) ([]service.StockMessage, error) {
	clocks, err := decodeOneOrMany[service.StockMessage](body, false)
	if err != nil {
		return nil, err
	}
	for _, sm := range clocks {
		if sm.Deadline == 0 {
			return nil, fmt.Errorf("order %d has no deadline", sm.OrderID)
		}
	}
	return clocks, nil
}
