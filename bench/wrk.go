package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one `wrk --latency` run with wrk/order.lua or
// wrk/claim.lua reports.
type wrkResult struct {
	Requests int64         `json:"requests"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	RPS      float64       `json:"rps"`
	P50      time.Duration `json:"p50_ns"`
	P90      time.Duration `json:"p90_ns"`
	P99      time.Duration `json:"p99_ns"`
	Non2xx   int64         `json:"non_2xx"`
	// Socket errors as wrk counts them: connect, read, write, timeout.
	Connect int64 `json:"connect_errors"`
	Read    int64 `json:"read_errors"`
	Write   int64 `json:"write_errors"`
	Timeout int64 `json:"timeouts"`
	// Answers counted by the script's done(): 201, 409 (sold out, or a
	// claim out of stock) and anything else.
	Created int64 `json:"created"`
	SoldOut int64 `json:"sold_out"`
	Other   int64 `json:"other"`
}

// SocketErrors is the sum of wrk's socket error counters.
func (r wrkResult) SocketErrors() int64 { return r.Connect + r.Read + r.Write + r.Timeout }

var (
	reRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([0-9.]+[a-z]+),`)
	reRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	rePct      = regexp.MustCompile(`(?m)^\s*(50|90|99)(?:\.000)?%\s+([0-9.]+)([a-z]+)\s*$`)
	reSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reReads    = regexp.MustCompile(`reads: ok=(\d+) other=(\d+)`) // wrk/read.lua: Created counts the 200s
	reOrders   = regexp.MustCompile(`(?:orders: created=(\d+) sold_out=(\d+)|claims: created=(\d+) out_of_stock=(\d+)) other=(\d+)`)
)

// parseWrk reads the text of `wrk --latency -s wrk/order.lua` (or
// wrk/claim.lua). The request count, requests/s, p50, p99 and the script's
// line are required; the socket error and non-2xx lines appear only when
// wrk has something to report.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := reRequests.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("wrk output has no \"N requests in T\" line")
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	var err error
	if r.Elapsed, err = wrkDuration(m[2]); err != nil {
		return r, err
	}
	if m = reRPS.FindStringSubmatch(out); m == nil {
		return r, errors.New("wrk output has no Requests/sec line")
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range rePct.FindAllStringSubmatch(out, -1) {
		d, err := wrkDuration(m[2] + m[3])
		if err != nil {
			return r, err
		}
		switch m[1] {
		case "50":
			r.P50 = d
		case "90":
			r.P90 = d
		case "99":
			r.P99 = d
		}
	}
	if r.P50 == 0 || r.P99 == 0 {
		return r, errors.New("wrk output has no latency distribution (run it with --latency)")
	}
	if m = reSocket.FindStringSubmatch(out); m != nil {
		r.Connect, _ = strconv.ParseInt(m[1], 10, 64)
		r.Read, _ = strconv.ParseInt(m[2], 10, 64)
		r.Write, _ = strconv.ParseInt(m[3], 10, 64)
		r.Timeout, _ = strconv.ParseInt(m[4], 10, 64)
	}
	if m = reNon2xx.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m = reReads.FindStringSubmatch(out); m != nil {
		r.Created, _ = strconv.ParseInt(m[1], 10, 64)
		r.Other, _ = strconv.ParseInt(m[2], 10, 64)
		return r, nil
	}
	if m = reOrders.FindStringSubmatch(out); m == nil {
		return r, errors.New("wrk output has no \"orders: created=...\" or \"claims: created=...\" line (is the script wrk/order.lua or wrk/claim.lua?)")
	}
	created, soldOut := m[1], m[2]
	if created == "" {
		created, soldOut = m[3], m[4]
	}
	r.Created, _ = strconv.ParseInt(created, 10, 64)
	r.SoldOut, _ = strconv.ParseInt(soldOut, 10, 64)
	r.Other, _ = strconv.ParseInt(m[5], 10, 64)
	return r, nil
}

// wrkDuration reads wrk's time format: a number with us, ms, s, m or h.
func wrkDuration(s string) (time.Duration, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' })
	if i <= 0 {
		return 0, fmt.Errorf("wrk time %q has no unit", s)
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("wrk time %q: %w", s, err)
	}
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[s[i:]]
	if unit == 0 {
		return 0, fmt.Errorf("wrk time %q: unknown unit", s)
	}
	return time.Duration(v * float64(unit)), nil
}

// wrkRun is one bounded wrk invocation.
type wrkRun struct {
	URL     string // the request path comes from WRK_PATH, the host from here
	Path    string
	GoodsID int64 // GOODS_ID, for wrk/order.lua
	// TemplateID is TEMPLATE_ID, for wrk/claim.lua; 0: not set.
	TemplateID int64
	Script     string
	Threads    int
	Conns      int
	Duration   time.Duration
	// Stop, when closed, interrupts wrk before Duration: it reports what
	// it did until then.
	Stop <-chan struct{}
}

// run executes wrk and parses its report. wrk stops by itself after
// Duration; the context deadline is only a guard against a hung wrk.
func (w wrkRun) run(ctx context.Context) (wrkResult, string, error) {
	if err := requireLoopback(w.URL); err != nil {
		return wrkResult{}, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, w.Duration+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", "--latency",
		"-t", strconv.Itoa(w.Threads), "-c", strconv.Itoa(w.Conns),
		"-d", wrkSeconds(w.Duration),
		"-s", w.Script, w.URL+w.Path)
	cmd.Env = append(os.Environ(), "WRK_PATH="+w.Path, "GOODS_ID="+strconv.FormatInt(w.GoodsID, 10))
	if w.TemplateID != 0 {
		cmd.Env = append(cmd.Env, "TEMPLATE_ID="+strconv.FormatInt(w.TemplateID, 10))
	}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Start()
	if err == nil {
		exited := make(chan struct{})
		go func() {
			select {
			case <-w.Stop:
				_ = cmd.Process.Signal(os.Interrupt)
			case <-exited:
			}
		}()
		err = cmd.Wait()
		close(exited)
	}
	out := buf.Bytes()
	if err != nil {
		return wrkResult{}, string(out), fmt.Errorf("wrk %s: %w\n%s", w.Path, err, out)
	}
	r, err := parseWrk(string(out))
	return r, string(out), err
}

// wrkSeconds formats d for wrk's -d, which takes whole seconds only.
func wrkSeconds(d time.Duration) string {
	return fmt.Sprintf("%ds", max(1, int((d+time.Second-1)/time.Second)))
}

// requireLoopback refuses any target but this machine: the harness loads
// only what it started itself.
func requireLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to load %s: only loopback targets", raw)
}

// ensureWrk installs wrk with apt-get when it is missing, as wrk/run.sh does.
func ensureWrk(ctx context.Context, logf func(string, ...any)) error {
	if _, err := exec.LookPath("wrk"); err == nil {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		return errors.New("wrk is not installed; install it (apt-get install wrk) and rerun")
	}
	logf("wrk is missing: installing it with apt-get")
	for _, args := range [][]string{{"update", "-q"}, {"install", "-y", "-q", "wrk"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	_, err := exec.LookPath("wrk")
	return err
}
