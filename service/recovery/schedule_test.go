package recovery

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones, whatever the machine has
)

// clock is a settable time for the scheduled passes.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func shanghai(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func seedSchedule(t *testing.T) Schedule {
	t.Helper()
	s, err := ParseSchedule("05:00, 03:00,04:00", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScheduleNextIsTheFollowingTimeOfDayInItsZone(t *testing.T) {
	loc := shanghai(t)
	s := seedSchedule(t)
	day := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, loc) }
	for _, c := range []struct{ at, want time.Time }{
		{day(26, 0, 0), day(26, 3, 0)},
		{day(26, 3, 0), day(26, 4, 0)}, // strictly after
		{day(26, 4, 30), day(26, 5, 0)},
		{day(26, 5, 0), day(27, 3, 0)},
		{day(26, 23, 59), day(27, 3, 0)},
		{day(26, 2, 0).UTC(), day(26, 3, 0)}, // read in the schedule's zone, whatever the clock's
	} {
		if got := s.Next(c.at); !got.Equal(c.want) {
			t.Errorf("Next(%v) = %v, want %v", c.at, got, c.want)
		}
	}
}

func TestParseScheduleSaysWhatIsWrong(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"3am", "UTC"}:            `"3am" is not a time of day`,
		{"03:00,25:00", "UTC"}:    `"25:00" is not a time of day`,
		{"03:00", "Mars/Olympus"}: `unknown time zone "Mars/Olympus"`,
		{"03:00,,04:00", "Local"}: `"" is not a time of day`,
	} {
		if _, err := ParseSchedule(in[0], in[1]); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSchedule(%q, %q) = %v, want %q", in[0], in[1], err, want)
		}
	}
}

// scheduledAt makes scheduled passes over one goods whose Redis stock the
// test sets, starting the clock at 02:00 on a day in Shanghai.
func scheduledAt(t *testing.T, l *recLedger) (*Scheduled, *clock, func(h int) time.Time) {
	t.Helper()
	loc := shanghai(t)
	at := func(h int) time.Time { return time.Date(2026, 11, 26, h, 0, 0, 0, loc) }
	c := &clock{t: at(2)}
	s := NewScheduled(recGoods{{ID: 1}}, l, seedSchedule(t), 3, c.now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return s, c, at
}

// tickAt moves the clock to t and ticks; it says whether a pass ran and
// whether it repaired.
func tickAt(t *testing.T, s *Scheduled, c *clock, at time.Time) (ran, repaired bool) {
	t.Helper()
	c.t = at
	report, ran, err := s.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range report {
		repaired = repaired || d.Repaired
	}
	return ran, repaired
}

// The seed's rule on the seed's schedule: passes run at 03:00, 04:00 and
// 05:00 only, and a drift is repaired at 05:00 when the same one was seen
// at 03:00 and 04:00 too.
func TestAScheduledDriftSeenThreeTimesTheSameIsRepaired(t *testing.T) {
	l := &recLedger{stock: 7, loaded: true, truth: 5, exact: true}
	s, c, at := scheduledAt(t, l)
	if ran, _ := tickAt(t, s, c, at(2).Add(30*time.Minute)); ran {
		t.Fatal("a pass ran before 03:00")
	}
	if ran, repaired := tickAt(t, s, c, at(3)); !ran || repaired {
		t.Fatalf("03:00: ran %v, repaired %v; want a pass that repairs nothing", ran, repaired)
	}
	if ran, _ := tickAt(t, s, c, at(3).Add(59*time.Minute)); ran {
		t.Fatal("a second pass ran before 04:00")
	}
	if ran, repaired := tickAt(t, s, c, at(4)); !ran || repaired {
		t.Fatalf("04:00: ran %v, repaired %v", ran, repaired)
	}
	if ran, repaired := tickAt(t, s, c, at(5)); !ran || !repaired {
		t.Fatalf("05:00: ran %v, repaired %v; want the repair", ran, repaired)
	}
	if len(l.repairs) != 1 || l.repairs[0][0] != int64(7) || l.repairs[0][1] != int64(-2) {
		t.Fatalf("repairs %v, want one taking the 2 extra units off the 7 read", l.repairs)
	}
	if next := s.Next(); !next.Equal(at(3).AddDate(0, 0, 1)) {
		t.Fatalf("next pass %v, want 03:00 the next day", next)
	}
}

// A drift seen once, or one that changes from pass to pass (orders in
// flight), is never repaired; a drift that goes away resets the count.
func TestAScheduledDriftSeenOnceOrChangingIsNotRepaired(t *testing.T) {
	for name, stocks := range map[string][]int64{
		"seen once":      {7, 5, 5},
		"changing":       {7, 8, 7},
		"gone then back": {7, 5, 7},
		"changing again": {6, 7, 8},
	} {
		l := &recLedger{loaded: true, truth: 5, exact: true}
		s, c, at := scheduledAt(t, l)
		for i, stock := range stocks {
			l.stock = stock
			if ran, repaired := tickAt(t, s, c, at(3+i)); !ran || repaired {
				t.Fatalf("%s: pass %d ran %v, repaired %v", name, i, ran, repaired)
			}
		}
		if len(l.repairs) != 0 {
			t.Fatalf("%s: repairs %v", name, l.repairs)
		}
	}
}

// An instance stopped over several scheduled times runs one pass when it
// comes back, not one per time missed, and a pass on the interval in
// between counts for nothing: each reconciler keeps its own memory.
func TestMissedScheduledTimesRunOnePass(t *testing.T) {
	l := &recLedger{stock: 7, loaded: true, truth: 5, exact: true}
	s, c, at := scheduledAt(t, l)
	if ran, _ := tickAt(t, s, c, at(5).Add(10*time.Minute)); !ran {
		t.Fatal("no pass after the missed times")
	}
	if ran, _ := tickAt(t, s, c, at(5).Add(11*time.Minute)); ran {
		t.Fatal("a second pass for the missed times")
	}
	interval := newRec(l, 0)
	pass(t, interval)
	pass(t, interval)
	if len(l.repairs) != 0 {
		t.Fatalf("repairs %v: two interval passes and one scheduled pass are not three of either", l.repairs)
	}
}
