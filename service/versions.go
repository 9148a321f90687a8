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
	// GroupCommit writes concurrent orders bound for one table in one
	// multi-row INSERT and sends their sales in one message; each
	// buyer is answered once its own row committed.
	GroupCommit bool
	// ReservedOnly sells to the first reservers of a reservation sale
	// only; anyone else is answered 403 not_reserved without touching the
	// stock.
	ReservedOnly bool
	// LocalShare takes the units from this instance's share of the stock,
	// in memory, before Redis reserves them (package localshare): past its
	// share an instance answers sold out without a round trip.
	LocalShare bool
	// Limits admits its orders through the edge's limits (package
	// admission): per address, per user, the stock threshold, and a bounded
	// wait for a slot past the in-flight cap instead of 503 busy at once.
	Limits bool
	// CachedGoods takes the goods checks (the goods exist, their price)
	// from the goods cache: this instance's memory in front of Redis, so
	// that an unknown id costs neither a Redis script nor a MySQL read.
	CachedGoods bool
	// DoubleCheck follows each order's stock message with a delayed check
	// that republishes the decrement while it is unconfirmed, at most
	// doublecheck.max_republish times, then hands it to a person as a dead
	// letter (service/doublecheck).
	DoubleCheck bool
	// AsyncAccept answers with a token once the units are reserved and the
	// request is on nsqd (202); a writer makes the orders in batches and
	// the client polls the token (seed 003). Its route is POST /seckill.
	AsyncAccept bool
	// SplitStock takes a goods' units from buckets on several Redis
	// masters (service/ledger/split.go), splitting the goods on its first
	// order; goods with a per-user limit sell from their hash.
	SplitStock bool
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
	// V6 behind the edge's limits: bots, twins and the crowd past k × stock
	// are refused before they reach Redis's stock.
	{Name: "V8", Path: ReserveFirst, Place: ByUserHost, Route: ByUser, SoldOutFlag: true, Limits: true},
	// V6 with the goods cache: the reads every open page makes each second,
	// and an order's goods checks, cost no MySQL query and mostly no Redis
	// round trip.
	{Name: "V9", Path: ReserveFirst, Place: ByUserHost, Route: ByUser, SoldOutFlag: true, CachedGoods: true},
	// The seed's double check: a lost decrement is republished after the
	// check's delay by the order's own delayed message, not found by a sweep.
	{Name: "V10", Path: ReserveFirst, Place: ByUserHost, Route: ByUser, SoldOutFlag: true, DoubleCheck: true},
	// Group commit: one INSERT and one publish per batch of concurrent
	// orders, not per order: the round trips per order are no longer the
	// ceiling.
	{Name: "V11", Path: ReserveFirst, Place: ByUserHost, Route: ByUser, SoldOutFlag: true, GroupCommit: true},
	// A reservation sale: a bitmap of the first reservers answers everyone
	// else before the stock is touched, so the stampede is only as large
	// as the stock.
	{Name: "V12", Path: ReserveFirst, Place: ByUserHost, Route: ByUser, SoldOutFlag: true, GroupCommit: true, ReservedOnly: true},
	// Async accept and poll: the buyer waits for one Redis script and one
	// publish, not for MySQL; the orders are written in batches behind.
	{Name: "V13", Path: ReserveFirst, Place: ByUserHost, Route: ByUser, SoldOutFlag: true, GroupCommit: true, AsyncAccept: true},
	// Split stock: one hot goods' units over buckets on several Redis
	// masters, so that its reservations are no longer queued on one
	// master's single thread.
	{Name: "V14", Path: ReserveFirst, Place: ByUserHost, Route: ByUser, SoldOutFlag: true, GroupCommit: true, SplitStock: true},
	// V11 with a local share of the stock plus a buffer (seed 003's
	// synchronous design): the requests past an instance's share are
	// answered in memory, so Redis sees at most share+buffer requests per
	// instance between recomputes, not every buyer of the stampede.
	{Name: "V15", Path: ReserveFirst, Place: ByUserHost, Route: ByUser, SoldOutFlag: true, GroupCommit: true, LocalShare: true},
}

// bestVersion is the version of POST /order: V6, the fastest path. V7
// sells the same way on a layout that can grow; a deployment that needs to
// grow sends its buyers to /orderV7. V10's double check stays off it: it
// doubles the messages per order and raises dead letters whenever the
// consumer lags, for no faster recovery than the sweep (docs/BENCHMARKS.md).
const bestVersion = "V6"

// acceptVersion is the version of POST /seckill and its polls: the one
// that accepts asynchronously.
const acceptVersion = "V13"

// AcceptVersion is the version POST /seckill accepts through.
func AcceptVersion() Version {
	v, _ := FindVersion(acceptVersion)
	return v
}

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
