package coupon

import (
	"context"
	"fmt"
	"time"

	"github.com/go-seckill/seckill/service/recovery"
)

// Drift is one template's units in Redis against the database's truth:
// its stock less the coupons recorded.
type Drift struct {
	TemplateID     int64 `json:"template_id"`
	RedisRemaining int64 `json:"redis_remaining"`
	Truth          int64 `json:"truth"`
	Drift          int64 `json:"drift"` // redis_remaining - truth
	Seen           int   `json:"seen"`  // consecutive passes that saw this same drift
	Repaired       bool  `json:"repaired"`
	MissingSubs    int   `json:"missing_sub_stocks,omitempty"`
	OpsCompleted   int   `json:"ops_completed,omitempty"` // additions whose Redis step this pass ran
}

// lockTTL bounds how long a dead instance's pass keeps a template's lock.
const lockTTL = 10 * time.Second

// Reconcile compares every template's sub-stocks with the truth, by the
// goods' rules: additions Redis does not hold yet are completed first
// (their steps are idempotent by marker); a difference is repaired only
// after recovery.RepairAfter consecutive passes saw the same one (claims in
// flight make single readings differ for a moment), and only if the
// sub-stock repaired still holds what this pass read. Redis below the truth
// means units taken by claims that recorded nothing (an instance died in
// between, or a give-back failed): they go back. Redis above it means
// takes Redis lost (a master restarted from an older snapshot): the excess
// comes off, never below zero. One instance at a time per template.
func (c *Coupons) Reconcile(ctx context.Context) ([]Drift, error) {
	ts, err := c.templates.ListTemplates(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	report := []Drift{}
	for _, t := range ts {
		unlock, ok, err := c.locker.Lock(ctx, fmt.Sprintf("coupon-reconcile:%d", t.ID), lockTTL)
		if err != nil {
			return report, err
		}
		if !ok {
			continue
		}
		d, err := c.reconcile(ctx, t)
		unlock()
		if err != nil {
			return report, err
		}
		c.drift[t.ID] = d
		report = append(report, d)
	}
	return report, nil
}

func (c *Coupons) reconcile(ctx context.Context, t Template) (Drift, error) {
	d := Drift{TemplateID: t.ID}
	ops, err := c.templates.PendingStockOps(ctx, t.ID)
	if err != nil {
		return d, err
	}
	for _, op := range ops {
		if err := c.completeOp(ctx, t, op); err != nil {
			return d, err
		}
		d.OpsCompleted++
	}
	if d.OpsCompleted > 0 {
		// The stock grew: read the template as it is now.
		if t, err = c.templates.Template(ctx, t.ID); err != nil {
			return d, err
		}
	}
	levels, err := c.stocks.Levels(ctx, t.Tags)
	if err != nil {
		return d, err
	}
	counts, err := c.records.CouponCounts(ctx, t.ID, c.o.Now())
	if err != nil {
		return d, err
	}
	for _, l := range levels {
		if l == nil {
			d.MissingSubs++
		} else {
			d.RedisRemaining += *l
		}
	}
	d.Truth = t.Stock - counts.Issued
	d.Drift = d.RedisRemaining - d.Truth
	if prev := c.drift[t.ID]; d.Drift != 0 && prev.Drift == d.Drift && !prev.Repaired {
		d.Seen = prev.Seen + 1
	} else if d.Drift != 0 {
		d.Seen = 1
	}
	switch {
	case d.Seen >= recovery.RepairAfter:
		if d.Repaired, err = c.repair(ctx, t, levels, -d.Drift); err != nil {
			return d, err
		}
		if d.Repaired {
			c.log.Warn("reconciliation repaired coupon sub-stocks from the database", "template_id", t.ID, "drift", d.Drift, "truth", d.Truth)
		}
	case d.Drift != 0:
		c.log.Info("coupon sub-stocks differ from the database", "template_id", t.ID, "drift", d.Drift, "seen", d.Seen)
	case d.MissingSubs > 0:
		// Nothing to move, but a sub-stock lost with its master is created
		// empty, so that it reads as a level again.
		for i, l := range levels {
			if l == nil {
				if _, err := c.stocks.Repair(ctx, t.Tags[i], nil, 0); err != nil {
					return d, err
				}
			}
		}
	}
	return d, nil
}

// repair moves delta units into (or out of) the sub-stocks, each step only
// if the sub-stock still holds what was read: units going back go to a
// missing sub-stock first, else the first; units coming off come from each
// in turn, never below zero. A step that finds its sub-stock changed ends
// the repair; the rest waits for later passes.
func (c *Coupons) repair(ctx context.Context, t Template, levels []*int64, delta int64) (bool, error) {
	if delta > 0 {
		i := 0
		for k, l := range levels {
			if l == nil {
				i = k
				break
			}
		}
		return c.stocks.Repair(ctx, t.Tags[i], levels[i], delta)
	}
	left := -delta
	for i, l := range levels {
		if l == nil || *l == 0 {
			continue
		}
		take := min(*l, left)
		ok, err := c.stocks.Repair(ctx, t.Tags[i], l, -take)
		if err != nil || !ok {
			return false, err
		}
		left -= take
		if left == 0 {
			break
		}
	}
	return left == 0, nil
}
