package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// rateLoad holds POST <Path> at a constant Rate over Conns keep-alive
// connections, as wrk2 does: each connection sends on its own schedule
// (Rate/Conns requests a second, the connections staggered), and a
// request's latency counts from the moment its schedule said it should
// leave. An answer that comes late delays the requests behind it on its
// connection, and their latencies include that wait, so a slow answer
// cannot hide its own delay (coordinated omission) as it does in wrk's
// closed loop.
//
// It writes request bytes it builds itself on plain connections and reads
// only the answers' status and length: on two cores shared with the service,
// a load generator that costs as much CPU per request as the service's
// own handler (a full HTTP client, vegeta's) saturates the machine well
// below the rate it is asked for, and measures its own queue.
type rateLoad struct {
	URL      string // the service's base URL
	Path     string
	GoodsID  int64
	Rate     float64 // requests per second, over all connections
	Conns    int
	Duration time.Duration
}

// connFigures are one connection's answers.
type connFigures struct {
	latencies               []time.Duration
	sent                    int64
	created, soldOut, other int64
	failed                  int64 // the connection broke: the rest of its schedule was not sent
	err                     error
}

func (l rateLoad) run(ctx context.Context) (loadFigures, error) {
	if err := requireLoopback(l.URL); err != nil {
		return loadFigures{}, err
	}
	u, err := url.Parse(l.URL)
	if err != nil {
		return loadFigures{}, err
	}
	conns := max(l.Conns, 1)
	if l.Rate < 1 {
		return loadFigures{}, fmt.Errorf("%s: a rate of %.0f req/s", l.Path, l.Rate)
	}
	interval := time.Duration(float64(conns) / l.Rate * float64(time.Second))
	start := time.Now().Add(50 * time.Millisecond) // every connection dialled first
	end := start.Add(l.Duration)
	figures := make([]connFigures, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := start.Add(interval * time.Duration(i) / time.Duration(conns))
			figures[i] = l.connection(ctx, u.Host, first, interval, end)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return loadFigures{}, ctx.Err()
	}
	var f loadFigures
	var all []time.Duration
	var sent int64
	for _, c := range figures {
		sent += c.sent
		if c.err != nil && len(c.latencies) == 0 {
			return f, c.err
		}
		all = append(all, c.latencies...)
		f.Created += c.created
		f.SoldOut += c.soldOut
		f.Other += c.other
		f.Read += c.failed
	}
	if len(all) == 0 {
		return f, fmt.Errorf("%s: no request was answered", l.Path)
	}
	slices.Sort(all)
	at := func(q float64) time.Duration { return all[min(int(q*float64(len(all))), len(all)-1)] }
	f.Requests = int64(len(all))
	f.Elapsed = time.Since(start)
	f.RPS = float64(f.Requests) / f.Elapsed.Seconds()
	f.Sent = float64(sent) / f.Elapsed.Seconds()
	f.P50, f.P90, f.P99 = at(0.50), at(0.90), at(0.99)
	f.Non2xx = f.SoldOut + f.Other
	return f, nil
}

// connection sends one connection's schedule, from first every interval
// until end, each request once its predecessor was answered. A connection
// that falls behind catches up by sending at once, for at most the
// duration again: past that, what is left of its schedule is not sent (and
// the sent rate says so).
func (l rateLoad) connection(ctx context.Context, host string, first time.Time, interval time.Duration, end time.Time) connFigures {
	var c connFigures
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", host)
	if err != nil {
		c.err = err
		return c
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r := bufio.NewReader(conn)
	var req []byte
	for due := first; due.Before(end) && time.Now().Before(end.Add(l.Duration)); due = due.Add(interval) {
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		c.sent++
		req = l.request(req[:0], host, rand.Int64N(2_000_000_000)+1)
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(req); err != nil {
			c.failed++
			c.err = err
			return c
		}
		status, err := readAnswer(r)
		if err != nil {
			c.failed++
			c.err = err
			return c
		}
		c.latencies = append(c.latencies, time.Since(due))
		switch {
		case status == http.StatusCreated || status == http.StatusAccepted:
			c.created++
		case status == http.StatusConflict:
			c.soldOut++
		default:
			c.other++
		}
	}
	return c
}

// request appends to buf an order request of user, in the bytes wrk's
// script sends (harness.UserIP's address in X-Forwarded-For), built
// without fmt: the generator's CPU is the service's loss.
func (l rateLoad) request(buf []byte, host string, user int64) []byte {
	var body [96]byte
	b := append(body[:0], `{"user_id":`...)
	b = strconv.AppendInt(b, user, 10)
	b = append(b, `,"goods_id":`...)
	b = strconv.AppendInt(b, l.GoodsID, 10)
	b = append(b, `,"number":1}`...)
	buf = append(buf, "POST "...)
	buf = append(buf, l.Path...)
	buf = append(buf, " HTTP/1.1\r\nHost: "...)
	buf = append(buf, host...)
	buf = append(buf, "\r\nContent-Type: application/json\r\nX-Forwarded-For: 10."...)
	buf = strconv.AppendInt(buf, user>>16&255, 10)
	buf = append(buf, '.')
	buf = strconv.AppendInt(buf, user>>8&255, 10)
	buf = append(buf, '.')
	buf = strconv.AppendInt(buf, user&255, 10)
	buf = append(buf, "\r\nContent-Length: "...)
	buf = strconv.AppendInt(buf, int64(len(b)), 10)
	buf = append(buf, "\r\n\r\n"...)
	return append(buf, b...)
}

// readAnswer reads one HTTP/1.1 answer and returns its status. The
// service's answers are small and whole, so each carries its
// Content-Length; any other framing is an error.
func readAnswer(r *bufio.Reader) (int, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("not an HTTP answer: %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("status line %q: %w", line, err)
	}
	length := -1
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if ok && bytes.EqualFold(name, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return 0, fmt.Errorf("Content-Length %q: %w", value, err)
			}
		}
	}
	if length < 0 {
		return 0, errors.New("an answer without Content-Length")
	}
	_, err = r.Discard(length)
	return status, err
}
