package app

import (
	"context"

	"github.com/go-seckill/seckill/consumer"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/ordering"
	"github.com/go-seckill/seckill/store"
)

// enableAsyncAccept lets V13 take requests: accepted in Redis, handed to
// the writers over nsqd, written in batches through the group commit's
// ports.
func (a *App) enableAsyncAccept(p *ordering.Placer) {
	c := a.cfg.Accept
	p.EnableAsyncAccept(a.ledger, a.pub, a.database, a.pub, ordering.AcceptOptions{
		PollAfter: c.PollAfter, RescueAfter: c.RescueAfter, MaxAge: c.MaxAge,
	})
}

// startWriters reads the accepted requests and writes their orders.
func (a *App) startWriters(p *ordering.Placer, nsqds, lookupds []string) (*consumer.Consumer, error) {
	cfg := a.cfg
	return consumer.StartAccepted(p, service.AcceptVersion().Name, a.deadLetters(cfg.NSQ.AcceptTopic), consumer.Options{
		Topic: cfg.NSQ.AcceptTopic, Channel: cfg.NSQ.AcceptChannel, NSQDs: nsqds, Lookupds: lookupds,
		Concurrency: cfg.Consumer.Concurrency, MaxAttempts: uint16(cfg.Consumer.MaxAttempts),
		BatchSize: cfg.Accept.WriterBatch, ApplyTimeout: cfg.Consumer.ApplyTimeout, NSQLog: store.NSQLogger(a.log),
		Lag: a.lag(cfg.NSQ.AcceptTopic),
	}, a.log)
}

// rescueAccepted writes the orders of requests pending past
// accept.rescue_after, whose messages are taken as lost.
func (a *App) rescueAccepted(ctx context.Context, p *ordering.Placer) {
	gs, err := a.database.ListGoods(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("accepted requests' sweep failed", "err", err)
		}
		return
	}
	ids := make([]int64, len(gs))
	for i, g := range gs {
		ids[i] = g.ID
	}
	n, err := p.RescueAccepted(ctx, service.AcceptVersion().Name, ids)
	if err != nil && ctx.Err() == nil {
		a.log.Warn("accepted requests' sweep failed", "err", err)
	}
	if n > 0 {
		a.log.Warn("accepted requests written by the sweep: their messages were lost or late", "count", n)
	}
}
