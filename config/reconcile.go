package config

import (
	"time"

	"github.com/go-seckill/seckill/service/payment"
	"github.com/go-seckill/seckill/service/recovery"
)

// ReconcileSchedule is the reconciliation's schedule; ok is false when
// none is set. Validate has checked it.
func (c Config) ReconcileSchedule() (s recovery.Schedule, ok bool) {
	if c.Reconcile.Schedule == "" {
		return recovery.Schedule{}, false
	}
	s, _ = recovery.ParseSchedule(c.Reconcile.Schedule, c.Reconcile.TimeZone)
	return s, true
}

// validateReconcile checks the reconciliation's interval and schedule, and
// V10's double check.
func (c Config) validateReconcile(bad func(key, why string)) {
	if c.Reconcile.Interval < 0 || c.Reconcile.Interval == 0 && c.Reconcile.Schedule == "" {
		bad("reconcile.interval", "must be a positive duration such as 30s (0 turns it off only when reconcile.schedule is set)")
	}
	if c.Reconcile.FullEvery < 1 {
		bad("reconcile.full_every", "must be at least 1 (1: every pass reads every goods' truth)")
	}
	if c.Reconcile.Schedule != "" {
		if _, err := recovery.ParseSchedule(c.Reconcile.Schedule, c.Reconcile.TimeZone); err != nil {
			bad("reconcile.schedule/reconcile.time_zone", err.Error())
		}
		if c.Reconcile.ScheduleRepairAfter < 1 {
			bad("reconcile.schedule_repair_after", "must be at least 1")
		}
	}
	if c.NSQ.CheckTopic == "" || c.NSQ.CheckChannel == "" {
		bad("nsq.check_topic/nsq.check_channel", "must not be empty")
	}
	if c.DoubleCheck.Delay < 100*time.Millisecond || c.DoubleCheck.Delay > payment.MaxDefer {
		bad("doublecheck.delay", "must be from 100ms to 59m (nsqd's --max-req-timeout caps a deferral at 1h)")
	}
	if c.DoubleCheck.MaxRepublish < 0 {
		bad("doublecheck.max_republish", "must be 0 or more")
	}
}
