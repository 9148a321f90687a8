package service

// Path is how a version sells.
type Path int

const (
	// InOneTransaction sells in one MySQL transaction on the goods row: the
	// conditional decrement, the order and its stock log, with the Redis
	// gate passed before commit.
	InOneTransaction Path = iota
	// ReserveFirst reserves in Redis, writes the order and publishes its
	// stock message; the consumer applies the decrement to MySQL.
	ReserveFirst
)

// Route picks the nsqd a user's stock message goes to first: number
// route % nsqd, the others in turn when that one fails.
type Route func(userID int64) int64

var (
	// FirstNSQD sends every message to the first nsqd.
	FirstNSQD Route = func(int64) int64 { return 0 }
	// ByUser spreads messages over the nsqd by user_id % nsqd.
	ByUser Route = func(userID int64) int64 { return userID }
)

// Version is one step of the architecture, declared as data: how it sells,
// where its orders go, which nsqd carries their messages, and whether an
// in-memory flag answers sold out. Everything that depends on the versions
// (the routes, payment's order lookup, the benchmark's bounds, the tests)
// reads this list.
type Version struct {
	Name  string
	Path  Path
	Place Placement
	Route Route
	// SoldOutFlag answers sold out from memory once Redis said so, until
	// stock comes back (every instance hears of it by broadcast) or the
	// flag's TTL ends. The flag only ever refuses; a sale goes through Redis.
	SoldOutFlag bool
	// DoubleCheck follows each order's stock message with a delayed check
	// that republishes the decrement while it is unconfirmed, at most
	// doublecheck.max_republish times, then hands it to a person as a dead
	// letter (service/doublecheck).
	DoubleCheck bool
}

// versions is the one list of order paths, oldest first; the comment on
// each line is the bottleneck it removes. A new version is a line here, and
// a file for its placement or path when it brings a new one.
var versions = []Version{
	// The goods row lock, held from the UPDATE to the COMMIT, is the ceiling.
	{Name: "V1", Path: InOneTransaction, Place: OnPrimary, Route: FirstNSQD},
	// No hot row on the request path: the order insert is the ceiling.
	{Name: "V2", Path: ReserveFirst, Place: OnPrimary, Route: FirstNSQD},
	// Orders over 16 tables: one table's insert rate is no longer the ceiling.
	{Name: "V3", Path: ReserveFirst, Place: ByUserTable, Route: FirstNSQD},
	// Tables over several hosts: one host's disk is no longer the ceiling.
	{Name: "V4", Path: ReserveFirst, Place: ByUserHost, Route: FirstNSQD},
	// Messages over several nsqd: one nsqd is no longer the ceiling.
	{Name: "V5", Path: ReserveFirst, Place: ByUserHost, Route: ByUser},
	// A sold-out flag in memory: once sold out, requests cost nothing.
	{Name: "V6", Path: ReserveFirst, Place: ByUserHost, Route: ByUser, SoldOutFlag: true},
	// Logical databases over hosts by a map: the hosts double while the sale
	// goes on, moving half the data, and no order changes its address.
	{Name: "V7", Path: ReserveFirst, Place: ByLogicalDB, Route: ByUser, SoldOutFlag: true},
	// The seed's double check: a lost decrement is republished after the
	// check's delay by the order's own delayed message, not found by a sweep.
	{Name: "V10", Path: ReserveFirst, Place: ByUserHost, Route: ByUser, SoldOutFlag: true, DoubleCheck: true},
}

// bestVersion is the version of POST /order: V6, the fastest path. V7
// sells the same way on a layout that can grow; a deployment that needs to
// grow sends its buyers to /orderV7. V10's double check stays off it: it
// doubles the messages per order and raises dead letters whenever the
// consumer lags, for no faster recovery than the sweep (docs/BENCHMARKS.md).
const bestVersion = "V6"

// Versions lists the order versions, oldest first.
func Versions() []Version { return append([]Version(nil), versions...) }

// VersionNames lists the order versions' names, oldest first.
func VersionNames() []string {
	names := make([]string, len(versions))
	for i, v := range versions {
		names[i] = v.Name
	}
	return names
}

// BestVersion is the version POST /order uses.
func BestVersion() Version {
	v, _ := FindVersion(bestVersion)
	return v
}

// FindVersion looks a version up by name.
func FindVersion(name string) (Version, bool) {
	for _, v := range versions {
		if v.Name == name {
			return v, true
		}
	}
	return Version{}, false
}

// TablesOf lists every table an order of userID may be in, over every
// version, each once, in the order of the list.
func TablesOf(userID int64, l Layout) []OrderTable {
	var tables []OrderTable
	seen := map[OrderTable]bool{}
	for _, v := range versions {
		if at := v.Place(userID, l); !seen[at] {
			seen[at] = true
			tables = append(tables, at)
		}
	}
	return tables
}
