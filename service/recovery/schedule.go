package recovery

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Schedule is a list of times of day in a time zone: the seed reconciles
// at 03:00, 04:00 and 05:00, when the sale is over and nothing is in flight.
type Schedule struct {
	times []time.Duration // since midnight, ascending, each once
	loc   *time.Location
}

// ParseSchedule reads times of day ("03:00,04:00,05:00", 24-hour HH:MM)
// in the time zone tz (an IANA name, or Local; empty: Local).
func ParseSchedule(times, tz string) (Schedule, error) {
	if tz == "" {
		tz = "Local"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return Schedule{}, fmt.Errorf("unknown time zone %q", tz)
	}
	s := Schedule{loc: loc}
	for _, f := range strings.Split(times, ",") {
		t, err := time.Parse("15:04", strings.TrimSpace(f))
		if err != nil {
			return Schedule{}, fmt.Errorf("%q is not a time of day such as 03:00", strings.TrimSpace(f))
		}
		at := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
		if !slices.Contains(s.times, at) {
			s.times = append(s.times, at)
		}
	}
	slices.Sort(s.times)
	return s, nil
}

// Next is the first time of the schedule strictly after t.
func (s Schedule) Next(t time.Time) time.Time {
	t = t.In(s.loc)
	for day := 0; ; day++ {
		y, m, d := t.Date()
		for _, at := range s.times {
			// On the wall clock, not added to midnight's instant: a day
			// with a daylight-saving change keeps 03:00 at 03:00.
			next := time.Date(y, m, d+day, int(at/time.Hour), int(at%time.Hour/time.Minute), 0, 0, s.loc)
			if next.After(t) {
				return next
			}
		}
	}
}

// Scheduled runs reconciliation passes at the times of a schedule, with a
// memory of its own: a drift is repaired when the same one was seen by
// repairAfter scheduled passes in a row, whatever the passes on the
// interval saw in between.
type Scheduled struct {
	r     *Reconciler
	sched Schedule
	now   func() time.Time

	mu   sync.Mutex
	next time.Time // when the next pass is due
}

// NewScheduled makes scheduled passes over goods and ledger, repairing a
// drift seen repairAfter times in a row; now is the clock (time.Now).
func NewScheduled(goods GoodsLister, ledger Ledger, sched Schedule, repairAfter int, now func() time.Time, log *slog.Logger) *Scheduled {
	r := NewReconciler(goods, ledger, log)
	r.repairAfter = max(repairAfter, 1)
	return &Scheduled{r: r, sched: sched, now: now, next: sched.Next(now())}
}

// Next is when the next scheduled pass is due.
func (s *Scheduled) Next() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// Tick runs a pass when one is due (ran says so) and sets the next one. A
// tick after several scheduled times (the instance was stopped) runs one
// pass, not one per time missed.
func (s *Scheduled) Tick(ctx context.Context) (report []Drift, ran bool, err error) {
	s.mu.Lock()
	now := s.now()
	if now.Before(s.next) {
		s.mu.Unlock()
		return nil, false, nil
	}
	s.next = s.sched.Next(now)
	s.mu.Unlock()
	report, err = s.r.Reconcile(ctx)
	return report, true, err
}
