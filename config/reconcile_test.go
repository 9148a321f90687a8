package config

import (
	"strings"
	"testing"
	"time"
)

// The seed's schedule and rule are the defaults; the interval may be
// switched off only when a schedule is set; a bad schedule, zone, count or
// check delay stops the start with the key named.
func TestReconcileScheduleAndDoubleCheckSettings(t *testing.T) {
	c, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.ReconcileSchedule(); !ok || c.Reconcile.Schedule != "03:00,04:00,05:00" || c.Reconcile.ScheduleRepairAfter != 3 ||
		c.DoubleCheck.Delay != 10*time.Second || c.DoubleCheck.MaxRepublish != 3 {
		t.Fatalf("defaults: %+v %+v", c.Reconcile, c.DoubleCheck)
	}
	only, err := Load("", env(map[string]string{"SECKILL_RECONCILE_INTERVAL": "0s", "SECKILL_RECONCILE_TIME_ZONE": "Asia/Shanghai"}))
	if err != nil || only.Reconcile.Interval != 0 {
		t.Fatalf("schedule alone: %v %+v", err, only.Reconcile)
	}
	for vars, key := range map[[2]string]string{
		{"SECKILL_RECONCILE_INTERVAL=0s", "SECKILL_RECONCILE_SCHEDULE="}: "reconcile.interval",
		{"SECKILL_RECONCILE_SCHEDULE=3am", ""}:                           "reconcile.schedule",
		{"SECKILL_RECONCILE_TIME_ZONE=Nowhere/Else", ""}:                 "reconcile.schedule/reconcile.time_zone",
		{"SECKILL_RECONCILE_SCHEDULE_REPAIR_AFTER=0", ""}:                "reconcile.schedule_repair_after",
		{"SECKILL_RECONCILE_FULL_EVERY=0", ""}:                           "reconcile.full_every",
		{"SECKILL_DOUBLECHECK_DELAY=2h", ""}:                             "doublecheck.delay",
		{"SECKILL_DOUBLECHECK_MAX_REPUBLISH=-1", ""}:                     "doublecheck.max_republish",
		{"SECKILL_NSQ_CHECK_TOPIC=", ""}:                                 "nsq.check_topic",
	} {
		m := map[string]string{}
		for _, kv := range vars {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k] = v
			}
		}
		if _, err := Load("", env(m)); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%v: error %v should name %s", vars, err, key)
		}
	}
}
