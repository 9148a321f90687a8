package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	domain "github.com/go-seckill/seckill/service"
)

// reshardResult is V7's hosts doubled (one to two) under a load of
// /orderV7: orders per second and latency before, during and after the
// expansion, what each freeze cost, and the invariants after it.
type reshardResult struct {
	Command  string        `json:"command"`
	Output   string        `json:"output"` // what the command printed
	Windows  []window      `json:"windows"`
	Freezes  []freezeCost  `json:"freezes"`
	Took     time.Duration `json:"took_ns"`
	Orders   int           `json:"orders"` // accepted
	Failures []string      `json:"failures,omitempty"`
	Err      string        `json:"error,omitempty"`
}

// window is the load's figures over part of the run.
type window struct {
	Name    string        `json:"name"`
	Seconds float64       `json:"seconds"`
	Answers int           `json:"answers"`
	RPS     float64       `json:"rps"` // orders accepted per second
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	Busy    int           `json:"busy"`   // 503 busy
	Others  int           `json:"others"` // anything but 201 and busy
}

// freezeCost is one logical database's freeze: how long it lasted and how
// its users' orders fared meanwhile, against everyone else's.
type freezeCost struct {
	DB       int           `json:"db"`
	Frozen   time.Duration `json:"frozen_ns"`
	Asked    int           `json:"asked"`    // its users' orders in flight during the freeze
	Delayed  int           `json:"delayed"`  // of those, answered 201 in more than delayedAfter
	Refused  int           `json:"refused"`  // of those, answered 503 busy
	Others   int           `json:"others"`   // other users' orders in flight during the freeze
	Bystands int           `json:"bystands"` // of those, slower than delayedAfter
	from, to time.Duration // the freeze, from the load's start
}

// freezeLine is the command's line of one freeze: logical database,
// duration, start.
var freezeLine = regexp.MustCompile(`l(\d+): frozen (\S+) \(from (\S+)\):`)

// delayedAfter is the latency past which an order counts as delayed.
const delayedAfter = 100 * time.Millisecond

func (r reshardResult) ok() bool { return r.Err == "" && len(r.Failures) == 0 }

// hit is one order of the load.
type hit struct {
	at, took time.Duration
	user     int64
	code     int
	err      string
	id       int64
}

// runReshard loads /orderV7 from conns clients for o.Duration before, for
// the time `seckill reshard -hosts 2` takes, and for o.Duration after it.
func runReshard(ctx context.Context, svc *service, servers *harness.Servers, bin string, env map[string]string, o options) reshardResult {
	res := reshardResult{Command: "seckill reshard -hosts 2"}
	goods, err := svc.createGoods(ctx, "bench-reshard", o.Stock, 0)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	start := time.Now()
	stop := make(chan struct{})
	var mu sync.Mutex
	var hits []hit
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.Conns}}
	for range o.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				h := hit{user: rand.Int64N(1_000_000) + 1}
				body, _ := json.Marshal(map[string]int64{"user_id": h.user, "goods_id": goods, "number": 1})
				begin := time.Now()
				h.at = begin.Sub(start)
				resp, err := client.Post(svc.Base+"/orderV7", "application/json", bytes.NewReader(body))
				h.took = time.Since(begin)
				if err != nil {
					h.err = err.Error()
				} else {
					var a struct {
						ID    int64  `json:"order_id,string"`
						Error string `json:"error"`
					}
					_ = json.NewDecoder(resp.Body).Decode(&a)
					resp.Body.Close()
					h.code, h.err, h.id = resp.StatusCode, a.Error, a.ID
				}
				mu.Lock()
				hits = append(hits, h)
				mu.Unlock()
			}
		}()
	}
	sleep(ctx, o.Duration)
	cmdStart := time.Since(start)
	out, cmdErr := commandWith(ctx, bin, env, "reshard", "-hosts", "2").CombinedOutput()
	cmdEnd := time.Since(start)
	res.Took = cmdEnd - cmdStart
	res.Output = string(out)
	sleep(ctx, o.Duration)
	close(stop)
	wg.Wait()
	end := time.Since(start)
	if cmdErr != nil {
		res.Err = fmt.Sprintf("%s: %v\n%s", res.Command, cmdErr, out)
		return res
	}

	res.Windows = []window{
		windowOf("before", hits, 0, cmdStart),
		windowOf("during", hits, cmdStart, cmdEnd),
		windowOf("after", hits, cmdEnd, end),
	}
	moving := map[int]bool{}
	for _, m := range freezeLine.FindAllStringSubmatch(res.Output, -1) {
		l, _ := strconv.Atoi(m[1])
		d, _ := time.ParseDuration(m[2])
		at, _ := time.Parse(time.RFC3339Nano, m[3])
		moving[l] = true
		res.Freezes = append(res.Freezes, freezeCost{DB: l, Frozen: d, from: at.Sub(start), to: at.Sub(start) + d})
	}
	var ids []int64
	for _, h := range hits {
		if h.code == http.StatusCreated {
			ids = append(ids, h.id)
		}
		l := domain.LogicalDB(h.user)
		if h.code == http.StatusServiceUnavailable && h.err == "busy" && !moving[l] {
			res.Failures = append(res.Failures, fmt.Sprintf("user %d of logical database %d, which did not move, was answered busy", h.user, l))
		}
		for i := range res.Freezes {
			f := &res.Freezes[i]
			if h.at > f.to || h.at+h.took < f.from {
				continue // not in flight during the freeze
			}
			switch {
			case l == f.DB:
				f.Asked++
				if h.code == http.StatusServiceUnavailable {
					f.Refused++
				} else if h.took > delayedAfter {
					f.Delayed++
				}
			case !moving[l]:
				f.Others++
				if h.took > delayedAfter {
					f.Bystands++
				}
			}
		}
	}
	res.Orders = len(ids)
	if len(res.Failures) > 10 {
		res.Failures = append(res.Failures[:10], fmt.Sprintf("and %d more", len(res.Failures)-10))
	}

	// The invariants once the consumer drained: every accepted order once,
	// applied once, Redis equal to MySQL.
	var snap harness.Snapshot
	settled := harness.WaitFor(o.DrainTimeout, func() bool {
		snap, err = servers.Snapshot(ctx, goods)
		return err == nil && snap.Settled()
	})
	if !settled {
		res.Failures = append(res.Failures, fmt.Sprintf("not drained within %v: %s (%v)", o.DrainTimeout, snap, err))
	}
	res.Failures = append(res.Failures, snap.Violations(harness.Sale{Initial: o.Stock, Accepted: ids})...)
	return res
}

// commandWith runs the service's binary with the service's settings and
// none of the SECKILL_* variables of the benchmark's own environment.
func commandWith(ctx context.Context, bin string, env map[string]string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECKILL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

func windowOf(name string, hits []hit, from, to time.Duration) window {
	w := window{Name: name, Seconds: (to - from).Seconds()}
	var took []time.Duration
	for _, h := range hits {
		if h.at < from || h.at >= to {
			continue
		}
		w.Answers++
		took = append(took, h.took)
		switch {
		case h.code == http.StatusCreated:
			w.RPS++
		case h.code == http.StatusServiceUnavailable && h.err == "busy":
			w.Busy++
		default:
			w.Others++
		}
	}
	if w.Seconds > 0 {
		w.RPS /= w.Seconds
	}
	if len(took) > 0 {
		slices.Sort(took)
		w.P50, w.P99 = took[len(took)/2], took[min(len(took)-1, len(took)*99/100)]
	}
	return w
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
