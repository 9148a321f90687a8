package main

import domain "github.com/go-seckill/seckill/service"

// The two phases every version is run in.
const (
	inStock = "in stock" // a goods with more stock than the run can sell
	soldOut = "sold out" // a goods with stock 0: every order answers 409
	// backlog is in stock with the consumer's channel paused while wrk
	// runs: the queue it leaves measures how fast the consumer drains. Only
	// for the best version; it has no bound, it is not an order path figure.
	backlog = "backlog"
	// backlogLimited is backlog on goods with a per-user limit: the
	// consumer's transaction also counts each buyer's units
	// (user_purchases), as a limited sale's does.
	backlogLimited = "backlog, per-user limit"
	// inStockCluster is in stock on the instance on the Redis Cluster: a
	// split goods (V14) spreads its takes over the masters, which one
	// Redis cannot show; the best version runs there too, as the baseline.
	inStockCluster = "in stock, cluster"
	// backlogLoaded is backlogLimited drained while a second wrk keeps the
	// service busy with sold-out orders of another goods: the drain a
	// sale's consumer sees, when the stampede goes on past the last unit.
	backlogLoaded = "backlog, per-user limit, under load"
)

// backlogLimit is the per-user limit of the backlogLimited phase's goods.
const backlogLimit = 5

// paused says the phase runs with the consumer's channel paused.
func paused(phase string) bool {
	return phase == backlog || phase == backlogLimited || phase == backlogLoaded
}

// limited says the phase's goods have the per-user limit backlogLimit.
func limited(phase string) bool { return phase == backlogLimited || phase == backlogLoaded }

// pathOf lists the ceilings a request of version passes through in phase,
// read from the version's declaration in service/versions.go, so that a
// new version is measured against its own path with no line here. The
// ceiling that bounds a run is the lowest of these measured in the same
// run, so the list reads as "what does this path touch", not "which one
// is slowest":
//
//   - one MySQL transaction (V1) takes the goods row lock: the hot-row tx
//     in stock, the same UPDATE matching nothing and rolled back once sold
//     out;
//   - Redis first (V2 on) reserves, inserts one order row and publishes:
//     the one-table insert when its placement keeps every order in one
//     table, the 16-table insert when it spreads them; once sold out only
//     the Redis script answers, or nothing but HTTP behind a sold-out flag.
//     The limits (V8) call Redis before the flag: their scripts (address
//     bucket, user claim, stock gate) bound even the sold-out phase.
//     Spreading over hosts and nsqd (V4, V5) gains nothing here: the
//     harness runs one MariaDB and one nsqd on the same two cores;
//   - group commit (V11) writes and publishes a batch at a time: only HTTP
//     and the Redis script are per order;
//   - async accept (V13) answers after the Redis script and the publish of
//     the request; the writers' batches come after the answer;
//   - a local share (V15) answers in memory once sold out, as a flag does:
//     the share is spent (a single instance's share is the whole stock).
//
// listed is false for a name the list does not hold; it is measured as the
// best version's path.
func pathOf(version, phase string) (path []string, listed bool) {
	v, listed := domain.FindVersion(version)
	if !listed {
		v = domain.BestVersion()
	}
	switch {
	case phase == inStockCluster && v.SplitStock:
		// The take script on one bucket per master: the coupons' take
		// over the cluster's masters is that same script's ceiling.
		return []string{ceilHTTP, ceilTakeCluster}, listed
	case v.Path == domain.InOneTransaction && phase == soldOut:
		return []string{ceilHTTP, ceilHotMiss}, listed
	case v.Path == domain.InOneTransaction:
		return []string{ceilHTTP, ceilEvalSHA, ceilHotTx}, listed
	case phase == soldOut && (v.SoldOutFlag || v.LocalShare) && !v.Limits:
		return []string{ceilHTTP}, listed
	case phase == soldOut:
		return []string{ceilHTTP, ceilEvalSHA}, listed
	case v.AsyncAccept:
		// Async accept: the Redis script and one publish per request; the
		// orders are written behind, in batches, after the answer.
		return []string{ceilHTTP, ceilEvalSHA, ceilNSQ}, listed
	case v.GroupCommit:
		// One INSERT and one publish per batch: the single-row insert and
		// publish ceilings do not bound it; the Redis script still runs
		// once per order. V14 (split stock) runs its take script on a
		// bucket instead of the goods hash: on the one Redis the phases use,
		// its buckets share that server's thread, so the script ceiling
		// still bounds it; on a cluster it would be the masters' together.
		return []string{ceilHTTP, ceilEvalSHA}, listed
	case spreads(v.Place):
		return []string{ceilHTTP, ceilEvalSHA, ceilInsert16, ceilNSQ}, listed
	}
	return []string{ceilHTTP, ceilEvalSHA, ceilInsert1, ceilNSQ}, listed
}

// spreads says the placement puts different users' orders in different
// tables of a host.
func spreads(place domain.Placement) bool {
	l := domain.Layout{Tables: domain.MaxOrderTables, Hosts: 1}
	first := place(1, l).Table
	for user := int64(2); user <= 1000; user++ {
		if place(user, l).Table != first {
			return true
		}
	}
	return false
}

// bound is the ceiling a run of version in phase is held to.
type bound struct {
	ID     string  `json:"id"` // "" when none of its ceilings was measured
	Rate   float64 `json:"rate"`
	Listed bool    `json:"listed"` // false: the version is not in service's list
}

// boundFor picks the lowest measured ceiling on the version's path.
func boundFor(version, phase string, ceilings []ceiling) bound {
	path, listed := pathOf(version, phase)
	b := bound{Listed: listed}
	for _, id := range path {
		for _, c := range ceilings {
			if c.ID == id && c.Rate > 0 && (b.ID == "" || c.Rate < b.Rate) {
				b.ID, b.Rate = id, c.Rate
			}
		}
	}
	return b
}

// fraction is rate as a share of its bound; 0 when there is no bound.
func fraction(rate float64, b bound) float64 {
	if b.Rate <= 0 {
		return 0
	}
	return rate / b.Rate
}

// pathSum is the rate a version's path would reach if the costs of its
// steps simply added up, 1/Σ(1/ceiling): a rough model for a machine where
// every step runs on the same few cores, so they cannot overlap. 0 when a
// ceiling on the path was not measured.
func pathSum(version, phase string, ceilings []ceiling) float64 {
	path, _ := pathOf(version, phase)
	var perOp float64
	for _, id := range path {
		rate := 0.0
		for _, c := range ceilings {
			if c.ID == id {
				rate = c.Rate
			}
		}
		if rate <= 0 {
			return 0
		}
		perOp += 1 / rate
	}
	if perOp == 0 {
		return 0
	}
	return 1 / perOp
}

// clusterVersions are the versions of versions whose in-stock phase also
// runs on the cluster: those that split stock, whose gain one Redis cannot
// show, and the best version before them as the baseline; none when no
// version splits.
func clusterVersions(versions []string) []string {
	var split []string
	for _, name := range versions {
		if v, ok := domain.FindVersion(name); ok && v.SplitStock {
			split = append(split, name)
		}
	}
	if len(split) == 0 {
		return nil
	}
	return append([]string{domain.BestVersion().Name}, split...)
}
