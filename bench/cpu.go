package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// cpuMeter tells how much of the machine's CPU went to processes the
// benchmark does not drive while a load ran: on a shared machine a build or
// a test run elsewhere shows up as a slower service, and the report should
// say so rather than blame the version. The benchmark's own share is this
// process and its waited-for children (wrk), the service, and the MySQL and
// Redis servers; work those servers do for other clients counts as ours, so
// the figure understates interference, never overstates it.
type cpuMeter struct {
	pids []int // long-lived processes the benchmark drives
}

// cpuSnap is the CPU time spent so far, in clock ticks.
type cpuSnap struct {
	total, busy, ours float64
}

// newCPUMeter watches the service and the local MySQL and Redis servers
// (those of the harness's Redis Cluster among them).
func newCPUMeter(servicePID int) cpuMeter {
	m := cpuMeter{pids: []int{servicePID}}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil {
			continue
		}
		switch strings.TrimSpace(string(comm)) {
		case "mariadbd", "mysqld", "redis-server":
			if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
				m.pids = append(m.pids, pid)
			}
		}
	}
	return m
}

// with is m watching pid too: an instance started later.
func (m cpuMeter) with(pid int) cpuMeter {
	return cpuMeter{pids: append(slices.Clone(m.pids), pid)}
}

func (m cpuMeter) snap() cpuSnap {
	var s cpuSnap
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		s.total, s.busy = parseProcStat(string(b))
	}
	s.ours = procTicks("self", true)
	for _, pid := range m.pids {
		s.ours += procTicks(strconv.Itoa(pid), false)
	}
	return s
}

// otherShare is the share of the machine's CPU time between a and b that
// went to processes outside the benchmark.
func (a cpuSnap) otherShare(b cpuSnap) float64 {
	dt := b.total - a.total
	if dt <= 0 {
		return 0
	}
	return max(0, (b.busy-a.busy)-(b.ours-a.ours)) / dt
}

// parseProcStat reads the "cpu" line of /proc/stat: all ticks, and the
// ticks not spent idle or waiting for I/O.
func parseProcStat(stat string) (total, busy float64) {
	f := strings.Fields(strings.SplitN(stat, "\n", 2)[0])
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	// user nice system idle iowait irq softirq steal; guest time is already
	// inside user and nice.
	for i, v := range f[1:min(len(f), 9)] {
		t, _ := strconv.ParseFloat(v, 64)
		total += t
		if i != 3 && i != 4 {
			busy += t
		}
	}
	return total, busy
}

// procTicks is a process's user and system ticks, with those of its
// waited-for children when children is set.
func procTicks(pid string, children bool) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	return parsePIDStat(string(b), children)
}

func parsePIDStat(stat string, children bool) float64 {
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'. utime is field 14 of the line, the 12th after it.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(stat[i+1:])
	n := 2
	if children {
		n = 4
	}
	if len(f) < 11+n {
		return 0
	}
	var t float64
	for _, v := range f[11 : 11+n] {
		x, _ := strconv.ParseFloat(v, 64)
		t += x
	}
	return t
}

// quietGate holds each load back until the CPU has been mostly idle for a
// second: a build or test run elsewhere on the machine would otherwise show
// up as a slower service. All waits share one allowance, so a machine that
// never quiets down costs the run at most that much time; past it, loads
// start anyway and the other-CPU column tells what they shared.
type quietGate struct {
	left   time.Duration
	waited time.Duration
	logf   func(string, ...any)
}

func (q *quietGate) wait(ctx context.Context, what string) {
	if q == nil {
		return
	}
	for q.left > 0 && ctx.Err() == nil {
		start := time.Now()
		idle, err := cpuIdle(ctx, time.Second)
		q.left -= time.Since(start)
		q.waited += time.Since(start)
		if err != nil || idle >= 0.85 {
			return
		}
		q.logf("%s waits for a quiet CPU: %.0f%% idle", what, 100*idle)
	}
}

// cpuIdle is the share of CPU time spent idle over d, from /proc/stat.
func cpuIdle(ctx context.Context, d time.Duration) (float64, error) {
	var m cpuMeter
	a := m.snap()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d):
	}
	b := m.snap()
	if b.total <= a.total {
		return 0, errors.New("/proc/stat did not advance")
	}
	return 1 - (b.busy-a.busy)/(b.total-a.total), nil
}
