// Package consumer reads stock messages from NSQ and hands them to the
// service: a nil return FINs the message, an error REQs it with backoff.
package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/go-seckill/seckill/service"
)

// Service is what the consumer needs of the service.
type Service interface {
	ApplyStock(ctx context.Context, m service.StockMessage) error
	DeadLetter(ctx context.Context, m service.StockMessage, body []byte, reason string) error
}

// Options configure the consumer.
type Options struct {
	Topic       string
	Channel     string
	NSQDs       []string
	Concurrency int
	// MaxAttempts is how many deliveries a message gets before it is written
	// to the dead-letter table.
	MaxAttempts uint16
	// NSQLog receives go-nsq's own log lines.
	NSQLog interface {
		Output(calldepth int, s string) error
	}
}

// Consumer applies stock messages to MySQL.
type Consumer struct {
	c *nsq.Consumer
}

// Start connects to every nsqd and begins consuming.
func Start(svc Service, o Options, log *slog.Logger) (*Consumer, error) {
	cfg := nsq.NewConfig()
	cfg.MaxInFlight = o.Concurrency
	// go-nsq would FIN a message silently after MaxAttempts; 0 turns that
	// off so the handler can dead-letter it, and requeue if that fails too.
	cfg.MaxAttempts = 0
	cfg.DefaultRequeueDelay = time.Second // times the attempt number
	cfg.MaxRequeueDelay = 30 * time.Second
	cfg.MaxBackoffDuration = 10 * time.Second
	c, err := nsq.NewConsumer(o.Topic, o.Channel, cfg)
	if err != nil {
		return nil, err
	}
	c.SetLogger(o.NSQLog, nsq.LogLevelWarning)
	c.AddConcurrentHandlers(&stockHandler{svc: svc, maxAttempts: o.MaxAttempts, log: log}, o.Concurrency)
	if err := c.ConnectToNSQDs(o.NSQDs); err != nil {
		c.Stop()
		return nil, fmt.Errorf("consumer connect: %w", err)
	}
	return &Consumer{c: c}, nil
}

// Stop stops taking messages and waits for the handlers in flight.
func (c *Consumer) Stop() {
	c.c.Stop()
	<-c.c.StopChan
}

type stockHandler struct {
	svc         Service
	maxAttempts uint16
	log         *slog.Logger
}

func (h *stockHandler) HandleMessage(m *nsq.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sm service.StockMessage
	dec := json.NewDecoder(bytes.NewReader(m.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sm); err != nil {
		// A poison message never gets better: dead-letter it at once.
		return h.svc.DeadLetter(ctx, service.StockMessage{}, m.Body, "undecodable message: "+err.Error())
	}
	err := h.svc.ApplyStock(ctx, sm)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, service.ErrInvalid):
		return h.svc.DeadLetter(ctx, sm, m.Body, err.Error())
	case m.Attempts >= h.maxAttempts:
		return h.svc.DeadLetter(ctx, sm, m.Body, fmt.Sprintf("gave up after %d attempts: %v", m.Attempts, err))
	}
	h.log.Warn("stock message will be retried", "order_id", sm.OrderID, "attempt", m.Attempts, "err", err)
	return err
}
