package main

// The two phases every version is run in.
const (
	inStock = "in stock" // a goods with more stock than the run can sell
	soldOut = "sold out" // a goods with stock 0: every order answers 409
	// backlog is in stock with the consumer's channel paused while wrk
	// runs: the queue it leaves measures how fast the consumer drains. Only
	// for the best version; it has no bound, it is not an order path figure.
	backlog = "backlog"
)

// pathCeilings is the one table mapping each order version and phase to the
// ceilings its request passes through, following service/ and the version
// table in the README. The ceiling that bounds a run is the lowest of these
// measured in the same run, so the mapping reads as "what does this path
// touch", not "which one is slowest":
//
//   - V1 takes the goods row lock in a transaction: hot-row tx (in stock),
//     the same UPDATE matching nothing and rolled back (sold out).
//   - V2 reserves in Redis, inserts one order row, publishes: the one-table
//     insert; once sold out only the Redis script answers.
//   - V3 spreads orders over 16 tables: the 16-table insert.
//   - V4 spreads the tables over MySQL hosts, V5 also spreads messages over
//     nsqd: the harness starts one MariaDB and one nsqd on the same two
//     cores, so V3's ceilings stay theirs.
//   - V6 answers sold out from an in-process flag: only HTTP is left.
//
// A version not listed yet is measured against defaultPath and marked so in
// the report; add its line here when it lands.
var pathCeilings = map[string]map[string][]string{
	"V1": {inStock: {ceilHTTP, ceilEvalSHA, ceilHotTx}, soldOut: {ceilHTTP, ceilHotMiss}},
	"V2": {inStock: {ceilHTTP, ceilEvalSHA, ceilInsert1, ceilNSQ}, soldOut: {ceilHTTP, ceilEvalSHA}},
	"V3": {inStock: {ceilHTTP, ceilEvalSHA, ceilInsert16, ceilNSQ}, soldOut: {ceilHTTP, ceilEvalSHA}},
	"V4": {inStock: {ceilHTTP, ceilEvalSHA, ceilInsert16, ceilNSQ}, soldOut: {ceilHTTP, ceilEvalSHA}},
	"V5": {inStock: {ceilHTTP, ceilEvalSHA, ceilInsert16, ceilNSQ}, soldOut: {ceilHTTP, ceilEvalSHA}},
	"V6": {inStock: {ceilHTTP, ceilEvalSHA, ceilInsert16, ceilNSQ}, soldOut: {ceilHTTP}},
}

var defaultPath = map[string][]string{
	inStock: {ceilHTTP, ceilEvalSHA, ceilInsert16, ceilNSQ},
	soldOut: {ceilHTTP, ceilEvalSHA},
}

// bound is the ceiling a run of version in phase is held to.
type bound struct {
	ID     string  `json:"id"` // "" when none of its ceilings was measured
	Rate   float64 `json:"rate"`
	Listed bool    `json:"listed"` // false: the version is not in pathCeilings
}

// boundFor picks the lowest measured ceiling on the version's path.
func boundFor(version, phase string, ceilings []ceiling) bound {
	path, listed := pathCeilings[version]
	if !listed {
		path = defaultPath
	}
	b := bound{Listed: listed}
	for _, id := range path[phase] {
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
	path, ok := pathCeilings[version]
	if !ok {
		path = defaultPath
	}
	var perOp float64
	for _, id := range path[phase] {
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
