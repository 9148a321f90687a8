package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
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
// It writes prepared request bytes on plain connections and reads the
// answers with net/http's parser: on two cores shared with the service,
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
		user := rand.Int64N(2_000_000_000) + 1
		body := fmt.Sprintf(`{"user_id":%d,"goods_id":%d,"number":1}`, user, l.GoodsID)
		req = fmt.Appendf(req[:0], "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nX-Forwarded-For: %s\r\nContent-Length: %d\r\n\r\n%s",
			l.Path, host, harness.UserIP(user), len(body), body)
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(req); err != nil {
			c.failed++
			c.err = err
			return c
		}
		resp, err := http.ReadResponse(r, nil)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil {
			c.failed++
			c.err = err
			return c
		}
		c.latencies = append(c.latencies, time.Since(due))
		switch {
		case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusAccepted:
			c.created++
		case resp.StatusCode == http.StatusConflict:
			c.soldOut++
		default:
			c.other++
		}
	}
	return c
}
