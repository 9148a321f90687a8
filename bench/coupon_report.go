package main

import (
	"fmt"
	"strings"
	"time"
)

// redisLabel names where a coupon phase's Redis runs, for the report.
func redisLabel(r *results, kind string) string {
	if kind == onCluster {
		return fmt.Sprintf("%d-master cluster", r.Options.Masters)
	}
	return "single Redis"
}

// couponChart is the coupon phases as chart bars: a group per sub-stock
// count, a bar per Redis, with the ceilings of a claim's path.
func couponChart(r *results) (phases []string, bars []chartBar, lines []chartLine) {
	phases = []string{redisLabel(r, onSingle), redisLabel(r, onCluster)}
	for _, p := range r.Coupons {
		if p.measured() {
			bars = append(bars, chartBar{Version: fmt.Sprintf("%d sub-stock%s", p.SubStocks, plural(p.SubStocks)), Phase: redisLabel(r, p.Redis),
				RPS: p.Wrk.RPS, P99: p.Wrk.P99, Bound: p.Bound.Rate, Failed: !p.ok()})
		}
	}
	for _, c := range r.Ceilings {
		switch c.ID {
		case ceilHTTP, ceilTake, ceilTakeCluster, ceilInsert16, ceilCouponInsert, ceilNSQ:
			lines = append(lines, chartLine{Label: c.ID, Rate: c.Rate})
		}
	}
	return phases, bars, lines
}

// couponSection is the report's part on coupon claims: configuration,
// chart, table, invariants and a reading built from the figures.
func couponSection(r *results) string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	o := r.Options
	ceil := func(id string) float64 {
		for _, c := range r.Ceilings {
			if c.ID == id {
				return c.Rate
			}
		}
		return 0
	}
	pct := func(v float64, ok bool) string {
		if !ok {
			return "—"
		}
		return fmt.Sprintf("%.0f%%", 100*v)
	}

	w("\n## Coupon claims\n\n")
	w("Claims (`POST /coupons/claim`) of one hot template, created for each\n")
	w("phase through the admin API with %s units (more than any run claims),\n", thousands(o.Stock))
	w("no per-user limit and %s sub-stocks, loaded with `wrk --latency -t%d -c%d -d%s\n", joinAnd(intStrings(o.SubStocks)), o.Threads, o.Conns, wrkSeconds(o.Duration))
	w("-s wrk/claim.lua` (a random user per claim, no Idempotency-Key). On the\n")
	w("**single Redis** the claims go to the instance the versions ran on; on the\n")
	w("**cluster** to a second instance of the same build started with\n")
	w("`SECKILL_REDIS_CLUSTER_ADDRS` on the harness's own Redis Cluster (%s)\n", orNA(r.Machine.RedisCluster))
	w("and a database of its own (`%s`), once the first one is stopped. Each\n", o.ClusterDatabase)
	w("template's sub-stocks are spread over the masters by the service\n")
	w("(`store.SpreadTags`: sub-stock *i* on master *i* mod %d). A claim takes\n", o.Masters)
	w("a unit with the take script, inserts its coupon into its logical database's `l<db>_coupon_1..16` and\n")
	w("publishes its deferred expiry; the ratios are claims/s over the ceilings\n")
	w("of those steps measured in the same run (the [ceilings](#ceilings):\n")
	w("`%s` on one key of the single Redis, `%s` on one key per master of\n", ceilTake, ceilTakeCluster)
	w("the cluster, both the service's own `CouponStocks.Take`; `%s` and\n", ceilCouponInsert)
	w("the orders' `%s`, since each claim inserts one row; `%s`).\n\n", ceilInsert16, ceilHTTP)
	w("![claims/s and p99 per sub-stock count, one Redis and the cluster, with the ceilings](bench/coupons.svg)\n\n")

	w("| Redis | sub-stocks | on masters | claims/s | p50 | p99 | 201 share | non-2xx | socket errors | other CPU | ÷ take script | ÷ %s | ÷ %s | ÷ %s | invariants |\n", ceilHTTP, ceilCouponInsert, ceilInsert16)
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, p := range r.Coupons {
		label := redisLabel(r, p.Redis)
		status := "ok"
		if !p.ok() {
			status = "**FAILED**"
		}
		switch {
		case p.Skipped != "":
			w("| %s | %d | — | — | — | — | — | — | — | — | — | — | — | — | not run: %s |\n", label, p.SubStocks, oneLine(p.Skipped))
			continue
		case p.Err != "":
			w("| %s | %d | — | — | — | — | — | — | — | — | — | — | — | — | %s: %s |\n", label, p.SubStocks, status, oneLine(p.Err))
			continue
		}
		take := ceilTake
		if p.Redis == onCluster {
			take = ceilTakeCluster
		}
		ratio := func(id string) string { v, ok := p.Ratios[id]; return pct(v, ok) }
		share := "—"
		if p.Wrk.Requests > 0 {
			share = fmt.Sprintf("%.2f%%", 100*float64(p.Wrk.Created)/float64(p.Wrk.Requests))
		}
		w("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %.0f%% | %s | %s | %s | %s | %s |\n", label, p.SubStocks, p.After.Masters,
			thousands(int64(p.Wrk.RPS)), fmtDur(p.Wrk.P50), fmtDur(p.Wrk.P99), share, thousands(p.Wrk.Non2xx), thousands(p.Wrk.SocketErrors()),
			100*p.OtherCPU, ratio(take), ratio(ceilHTTP), ratio(ceilCouponInsert), ratio(ceilInsert16), status)
	}
	w("\n`on masters` is how many Redis masters hold the template's sub-stocks;\n")
	w("`201 share` is the 201 answers over the requests wrk completed. `÷ take\n")
	w("script` is over `%s` on the single Redis (%s ops/s) and over\n", ceilTake, thousands(int64(ceil(ceilTake))))
	w("`%s` on the cluster (%s ops/s).\n\n", ceilTakeCluster, thousands(int64(ceil(ceilTakeCluster))))

	w("Invariants, read from MySQL and Redis directly (not through the service)\n")
	w("once two reads in a row agree and add up, at most %s after wrk's end\n", o.SettleTimeout)
	w("(a claim in flight has taken its unit and not yet written its coupon):\n")
	w("the template's coupons, counted over every logical database's coupon tables\n")
	w("(void rows, `status = 3`, left out), plus the units its sub-stocks hold\n")
	w("in Redis, equal the stock (no unit lost or doubled), never more coupons\n")
	w("than the stock, no sub-stock negative or missing, at least the 201\n")
	w("answers recorded and at most those plus one claim in flight per\n")
	w("connection, and no 409 while stock remained.\n\n")
	for _, p := range r.Coupons {
		name := fmt.Sprintf("%s, %d sub-stock%s", redisLabel(r, p.Redis), p.SubStocks, plural(p.SubStocks))
		switch {
		case p.Skipped != "":
			w("- %s: not run: %s\n", name, oneLine(p.Skipped))
		case p.Err != "":
			w("- %s: **FAILED**, did not run to the end: %s\n", name, oneLine(p.Err))
		case len(p.Failures) > 0:
			w("- %s: **FAILED**: %s\n", name, strings.Join(p.Failures, "; "))
		default:
			lowest := int64(-1)
			for _, v := range p.After.SubStocks {
				if v != nil && (lowest < 0 || *v < lowest) {
					lowest = *v
				}
			}
			w("- %s: ok (template %d: issued %s + sub-stocks %s = %s; lowest sub-stock %s; 201 answers %s; settled %s after wrk's end)\n",
				name, p.TemplateID, thousands(p.After.Issued), thousands(p.After.left()), thousands(p.After.Issued+p.After.left()),
				thousands(lowest), thousands(p.Wrk.Created), p.Settle.Round(10*time.Millisecond))
		}
		for _, n := range p.Notes {
			w("  - note: %s\n", n)
		}
	}
	if len(r.ClusterServiceLog) > 0 {
		w("\nWhat the instance on the cluster logged at WARN or ERROR:\n\n")
		for _, c := range r.ClusterServiceLog {
			w("- %s × %s `%s`", thousands(int64(c.N)), c.Level, strings.ReplaceAll(c.Msg, "`", "'"))
			if c.Err != "" {
				w(", the first with `err=%s`", strings.ReplaceAll(oneLine(c.Err), "`", "'"))
			}
			w("\n")
		}
	} else if len(r.Coupons) > 0 {
		w("\nThe instance on the cluster logged nothing at WARN or ERROR.\n")
	}
	w("\n%s", couponReading(r))
	return b.String()
}

// couponReading is the prose under the coupon table, from the figures.
func couponReading(r *results) string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	ceil := func(id string) float64 {
		for _, c := range r.Ceilings {
			if c.ID == id {
				return c.Rate
			}
		}
		return 0
	}
	var all []couponPhase
	for _, p := range r.Coupons {
		if p.measured() {
			all = append(all, p)
		}
	}
	if len(all) == 0 {
		return ""
	}
	w("### Reading the claims\n\n")
	w("The seed's coupon system measured one Redis shard at about 20,000\n")
	w("writes/s, 120,000 claims/s for its fleet, and 130,000 QPS held with over\n")
	w("99.9%% success. Here everything shares %d cores:\n\n", r.Machine.Cores)
	lo, hi, sum := all[0].Wrk.RPS, all[0].Wrk.RPS, 0.0
	for _, kind := range []string{onSingle, onCluster} {
		var rates, shares, inserts []string
		take, takeID := ceil(ceilTake), ceilTake
		if kind == onCluster {
			take, takeID = ceil(ceilTakeCluster), ceilTakeCluster
		}
		for _, p := range all {
			if p.Redis != kind {
				continue
			}
			rates = append(rates, fmt.Sprintf("%s/s with %d", thousands(int64(p.Wrk.RPS)), p.SubStocks))
			if v, ok := p.Ratios[takeID]; ok {
				shares = append(shares, fmt.Sprintf("%.0f%%", 100*v))
			}
			if v, ok := p.Ratios[ceilCouponInsert]; ok {
				inserts = append(inserts, fmt.Sprintf("%.0f%%", 100*v))
			}
		}
		if len(rates) == 0 {
			continue
		}
		w("- %s: %s sub-stock(s); %s of the take script's ceiling (%s ops/s), %s of `%s` (%s rows/s).\n",
			redisLabel(r, kind), strings.Join(rates, ", "), joinAnd(shares), thousands(int64(take)),
			joinAnd(inserts), ceilCouponInsert, thousands(int64(ceil(ceilCouponInsert))))
	}
	for _, p := range all {
		lo, hi, sum = min(lo, p.Wrk.RPS), max(hi, p.Wrk.RPS), sum+p.Wrk.RPS
	}
	mean := sum / float64(len(all))
	var busy []string
	for _, p := range all {
		if p.OtherCPU >= 0.05 {
			busy = append(busy, fmt.Sprintf("%s, %d sub-stock%s (%.0f%%)", redisLabel(r, p.Redis), p.SubStocks, plural(p.SubStocks), 100*p.OtherCPU))
		}
	}
	w("\nAcross sub-stock counts and the two Redis set-ups the claim rate spans\n")
	w("%s to %s/s (±%.0f%% around the mean).", thousands(int64(lo)), thousands(int64(hi)), 100*(hi-lo)/2/mean)
	if len(busy) > 0 {
		w(" Other processes took CPU during %s: those rows are low by about that\n", strings.Join(busy, ", "))
		w("much or more.")
	}
	maxTake, maxInsert := 0.0, 0.0
	for _, p := range all {
		take := ceilTake
		if p.Redis == onCluster {
			take = ceilTakeCluster
		}
		maxTake, maxInsert = max(maxTake, p.Ratios[take]), max(maxInsert, p.Ratios[ceilCouponInsert])
	}
	if maxTake < 0.5 {
		w(" No claim phase reached half of its take script's\n")
		w("ceiling (at most %.0f%%), so splitting the stock over more sub-stocks or\n", 100*maxTake)
		w("masters has nothing to relieve on this machine: a script call costs\n")
		w("Redis a few microseconds, a claim costs the HTTP exchange, a MySQL\n")
		w("insert with five indexes and an NSQ publish besides.")
	} else {
		w(" A claim phase reached %.0f%% of its take script's ceiling: there the\n", 100*maxTake)
		w("Redis script is close to bounding the claims.")
	}
	w(" The lowest ceiling on\nthe claim's path is ")
	if p := all[0]; p.Bound.ID != "" {
		w("`%s` (%s/s), and", p.Bound.ID, thousands(int64(p.Bound.Rate)))
	} else {
		w("not measured, and")
	}
	w(" on %d cores the steps do not overlap\n", r.Machine.Cores)
	w("(see the versions above): adding their measured costs, 1/Σ 1/ceiling\n")
	w("over http, take, coupon insert and publish, gives")
	var sums []string
	for _, kind := range []string{onSingle, onCluster} {
		if s := claimPathSum(kind, r.Ceilings); s > 0 {
			sums = append(sums, fmt.Sprintf("%s/s on the %s", thousands(int64(s)), redisLabel(r, kind)))
		}
	}
	if len(sums) == 0 {
		sums = []string{"nothing (a ceiling was not measured)"}
	}
	w(" %s, against %s/s reached on average.\n", joinAnd(sums), thousands(int64(mean)))
	maxInsert16 := 0.0
	for _, p := range all {
		maxInsert16 = max(maxInsert16, p.Ratios[ceilInsert16])
	}
	w("Each claim inserts one row: the claims reached up to %.0f%% of\n", 100*maxInsert)
	w("`%s` (%s rows/s, the coupon tables with their five indexes) and up\n", ceilCouponInsert, thousands(int64(ceil(ceilCouponInsert))))
	w("to %.0f%% of the orders' `%s` (%s rows/s)", 100*maxInsert16, ceilInsert16, thousands(int64(ceil(ceilInsert16))))
	if maxInsert > maxTake {
		w(": the insert, not the Redis\n")
		w("script, is the step nearest its ceiling, as for the in-stock versions.\n")
	} else {
		w(": here the Redis script, not\n")
		w("the insert, is the step nearest its ceiling.\n")
	}
	w("The seed's 20,000 writes/s per shard and 120,000 claims/s for a fleet\n")
	w("are figures of separate Redis and MySQL hosts; on one machine more\n")
	w("sub-stocks and masters are worth what the take ceilings say.\n")
	return b.String()
}

func intStrings(v []int) []string {
	out := make([]string, len(v))
	for i, n := range v {
		out[i] = fmt.Sprint(n)
	}
	return out
}
