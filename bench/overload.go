package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	domain "github.com/go-seckill/seckill/service"
)

// The overload phase: a sale of overloadStock units, one attempt per
// buyer, with overloadFactor times http.max_in_flight buyers at once, on an
// instance whose cap is overloadCap. The best version sheds past the cap
// (503 busy at once); the limited one waits up to limits.queue_wait for a
// slot. Both run in the same run, one after the other, on fresh goods.
const (
	overloadCap    = 8
	overloadFactor = 5
	overloadStock  = 2000
)

// overloadResult is one version's sale under the overload.
type overloadResult struct {
	Version string         `json:"version"`
	Mode    string         `json:"mode"` // "shed" or "wait"
	Buyers  int            `json:"buyers"`
	Sold    int64          `json:"sold"` // units the database shows sold once drained
	Answers map[string]int `json:"answers"`
	Elapsed time.Duration  `json:"elapsed_ns"`
	Err     string         `json:"error,omitempty"`
}

func (r overloadResult) ok() bool { return r.Err == "" }

// runOverload starts an instance with the small cap and sells through
// shedVersion and waitVersion in turn.
func runOverload(ctx context.Context, bin, tmp string, env map[string]string, shedVersion, waitVersion string) []overloadResult {
	dir := filepath.Join(tmp, "overload")
	env = maps.Clone(env)
	env["SECKILL_HTTP_MAX_IN_FLIGHT"] = strconv.Itoa(overloadCap)
	env["SECKILL_NSQ_EMBEDDED_DATA_DIR"] = filepath.Join(dir, "nsqd")
	var out []overloadResult
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return []overloadResult{{Err: err.Error()}}
	}
	svc, err := startService(ctx, bin, dir, env)
	if err != nil {
		return []overloadResult{{Err: err.Error()}}
	}
	defer svc.stop()
	for _, v := range []struct{ version, mode string }{{shedVersion, "shed"}, {waitVersion, "wait"}} {
		out = append(out, overloadSale(ctx, svc, v.version, v.mode))
	}
	return out
}

// overloadSale sells overloadStock units to as many buyers, each trying
// once, overloadFactor × the cap of them at a time.
func overloadSale(ctx context.Context, svc *service, version, mode string) overloadResult {
	r := overloadResult{Version: version, Mode: mode, Buyers: overloadStock, Answers: map[string]int{}}
	id, err := svc.createGoods(ctx, "overload-"+version, overloadStock, 0)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	base := time.Now().UnixNano() % 1_000_000_000
	for range overloadFactor * overloadCap {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > overloadStock || ctx.Err() != nil {
					return
				}
				user := base + i
				code, _, err := svc.Send(ctx, "POST", "/order"+version, map[string]int64{"user_id": user, "goods_id": id, "number": 1})
				key := strconv.Itoa(code)
				if err != nil {
					key = "error"
				}
				mu.Lock()
				r.Answers[key]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := svc.stats(ctx, id)
		if err == nil && st.drained() {
			r.Sold = st.MySQLSale
			if r.Sold != int64(r.Answers["201"]) {
				r.Err = fmt.Sprintf("%d units sold, %d orders answered 201", r.Sold, r.Answers["201"])
			}
			return r
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.Err = fmt.Sprintf("not drained after a minute: %+v %v", st, err)
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// limitedVersion is the first version behind the edge's limits, "" when
// none is.
func limitedVersion() string {
	for _, v := range domain.Versions() {
		if v.Limits {
			return v.Name
		}
	}
	return ""
}

// overloadMarkdown is the report's section of the overload phase.
func overloadMarkdown(rs []overloadResult) string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	w("\n## Overload: shedding against waiting\n\n")
	w("One instance with `http.max_in_flight` %d; %s units on sale and as many\n", overloadCap, thousands(overloadStock))
	w("buyers, each trying once (a Go load, each buyer its own address), %d at a\n", overloadFactor*overloadCap)
	w("time: %d× the cap. The shedding version answers 503 busy at once past the\n", overloadFactor)
	w("cap; the limited one waits up to `limits.queue_wait` for a slot.\n\n")
	w("| version | past the cap | units sold | answers | time |\n|---|---|---:|---|---:|\n")
	for _, r := range rs {
		if r.Err != "" {
			w("| %s | %s | **FAILED**: %s | | |\n", r.Version, r.Mode, oneLine(r.Err))
			continue
		}
		codes := slices.Sorted(maps.Keys(r.Answers))
		var parts []string
		for _, c := range codes {
			parts = append(parts, fmt.Sprintf("%s × %s", thousands(int64(r.Answers[c])), c))
		}
		w("| %s | %s | %s of %s | %s | %s |\n", r.Version, r.Mode, thousands(r.Sold), thousands(overloadStock),
			strings.Join(parts, ", "), fmtDur(r.Elapsed))
	}
	return b.String()
}
