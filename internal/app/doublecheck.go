package app

import (
	"context"
	"time"

	"github.com/go-seckill/seckill/consumer"
	"github.com/go-seckill/seckill/service/doublecheck"
	"github.com/go-seckill/seckill/service/recovery"
	"github.com/go-seckill/seckill/store"
)

// newChecker is V10's double check: its decrements are republished to the
// stock topic and its give-ups are letters of the stock topic, so that a
// replay publishes the stock message again. Needs a.letters.
func (a *App) newChecker() *doublecheck.Checker {
	events := a.metrics.DoubleChecks
	return doublecheck.New(a.database, a.pub, a.pub, a.deadLetters(a.cfg.NSQ.Topic), doublecheck.Options{
		Delay: a.cfg.DoubleCheck.Delay, MaxRepublish: a.cfg.DoubleCheck.MaxRepublish,
		Count: func(event string) { events.WithLabelValues(event).Inc() },
	}, a.log)
}

// startChecks reads the check topic; its consumer is reported with the
// others (seckill_consumer_messages_total).
func (a *App) startChecks(c *doublecheck.Checker, nsqds, lookupds []string) (*consumer.Consumer, error) {
	cfg := a.cfg
	return consumer.StartChecks(c, a.deadLetters(cfg.NSQ.CheckTopic), consumer.Options{
		Topic: cfg.NSQ.CheckTopic, Channel: cfg.NSQ.CheckChannel, NSQDs: nsqds, Lookupds: lookupds,
		Concurrency: cfg.Consumer.Concurrency, MaxAttempts: uint16(cfg.Consumer.MaxAttempts),
		ApplyTimeout: cfg.Consumer.ApplyTimeout, NSQLog: store.NSQLogger(a.log), // no Lag: checks wait on purpose
	}, a.log)
}

// scheduleTick is how often the scheduled reconciliation asks whether a
// pass is due: a pass starts at most this late.
const scheduleTick = 10 * time.Second

// reconcileOnSchedule runs the scheduled reconciliation passes, if any.
func (a *App) reconcileOnSchedule(ctx context.Context, s *recovery.Scheduled) {
	if s == nil {
		return
	}
	a.log.Info("scheduled reconciliation", "schedule", a.cfg.Reconcile.Schedule, "time_zone", a.cfg.Reconcile.TimeZone,
		"repair_after", a.cfg.Reconcile.ScheduleRepairAfter, "next", s.Next())
	a.every(ctx, scheduleTick, func(ctx context.Context) {
		report, ran, err := s.Tick(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Warn("scheduled reconciliation failed", "err", err)
		case ran:
			observeDrifts(a.metrics, report)
			a.log.Info("scheduled reconciliation pass", "goods", len(report), "next", s.Next())
		}
	})
}
