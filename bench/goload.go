package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/go-seckill/seckill/internal/harness"
)

// goLoad is a load of POST <Path> from Go, with vegeta: one unit per order,
// a random user per request, each from an address of its own, as
// wrk/order.lua sends them.
//
// With a Rate it is an open model: requests leave on schedule whether or
// not earlier ones were answered, so a slow answer cannot hold back the
// requests behind it and hide its own delay from the percentiles, as it
// does in wrk's closed loop of connections (coordinated omission). With
// Rate 0 it is a closed loop of Conns workers, as fast as they go, like
// wrk's, but able to stop after Count requests and to spread the requests
// over many goods.
type goLoad struct {
	URL   string // the service's base URL
	Path  string
	Goods []int64 // the request i buys goods i mod len(Goods)
	Rate  float64 // requests per second; 0: as fast as Conns workers go
	Conns int
	// Duration bounds the load; Count, when set, stops it after that many
	// requests.
	Duration time.Duration
	Count    int64
}

// loadFigures are the answers of one goLoad as wrk would report them, and
// the rate the requests left at.
type loadFigures struct {
	wrkResult
	Sent float64 `json:"sent_rate"` // requests sent per second
}

func (l goLoad) run(ctx context.Context) (loadFigures, error) {
	if err := requireLoopback(l.URL); err != nil {
		return loadFigures{}, err
	}
	if len(l.Goods) == 0 {
		return loadFigures{}, fmt.Errorf("%s: no goods to buy", l.Path)
	}
	var seq atomic.Int64
	target := func(t *vegeta.Target) error {
		i := seq.Add(1) - 1
		if l.Count > 0 && i >= l.Count {
			return vegeta.ErrNoTargets
		}
		user := rand.Int64N(2_000_000_000) + 1
		t.Method, t.URL = http.MethodPost, l.URL+l.Path
		t.Body = fmt.Appendf(nil, `{"user_id":%d,"goods_id":%d,"number":1}`, user, l.Goods[i%int64(len(l.Goods))])
		t.Header = http.Header{"Content-Type": {"application/json"}, "X-Forwarded-For": {harness.UserIP(user)}}
		return nil
	}
	opts := []func(*vegeta.Attacker){vegeta.Timeout(10 * time.Second), vegeta.KeepAlive(true), vegeta.Connections(max(l.Conns, 1)), vegeta.Redirects(vegeta.NoFollow)}
	pacer := vegeta.Pacer(vegeta.Rate{Freq: int(l.Rate), Per: time.Second})
	if l.Rate <= 0 {
		// vegeta adds a worker whenever all are busy: capped at Conns,
		// its workers are wrk's connections.
		opts = append(opts, vegeta.Workers(uint64(max(l.Conns, 1))), vegeta.MaxWorkers(uint64(max(l.Conns, 1))))
		pacer = vegeta.ConstantPacer{} // no pause between requests
	}
	atk := vegeta.NewAttacker(opts...)
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	var m vegeta.Metrics
	var f loadFigures
	for res := range atk.Attack(vegeta.Targeter(target), pacer, l.Duration, l.Path) {
		if res.Error == vegeta.ErrNoTargets.Error() {
			continue // the Count-th request was the last
		}
		m.Add(res)
		switch {
		case res.Code == http.StatusCreated || res.Code == http.StatusAccepted:
			f.Created++
		case res.Code == http.StatusConflict:
			f.SoldOut++
		case res.Code == 0:
			f.Timeout++ // no answer: the order may still have been sold
		default:
			f.Other++
		}
	}
	m.Close()
	if ctx.Err() != nil {
		return f, ctx.Err()
	}
	if m.Requests == 0 {
		return f, fmt.Errorf("%s: no request was sent", l.Path)
	}
	f.Requests = int64(m.Requests)
	f.Elapsed = m.Duration + m.Wait
	f.RPS = float64(m.Requests) / f.Elapsed.Seconds()
	f.Sent = m.Rate
	f.P50, f.P90, f.P99 = m.Latencies.P50, m.Latencies.P90, m.Latencies.P99
	f.Non2xx = f.SoldOut + f.Other
	return f, nil
}
