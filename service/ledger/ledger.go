// Package ledger decides every movement of stock, in Redis (the gate) and
// in MySQL (the record): reserve, give back, apply a sale, return a
// cancelled order's units, add stock, repair and rebuild. Each movement is
// applied exactly once, in the order that never sells more than MySQL
// holds: MySQL first for stock that comes in, Redis first for stock that
// goes out.
package ledger

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/substock"
)

// Gate is the gate in front of MySQL (Redis): sellable stock per goods,
// taken and given back by the order path.
type Gate interface {
	// Reserve takes n units for userID at time now: ErrSoldOut when fewer
	// remain, ErrNotStarted or ErrEnded outside the sale window,
	// ErrLimitExceeded past the per-user limit, ErrStockNotLoaded when the
	// cache holds no stock for the goods.
	Reserve(ctx context.Context, goodsID, userID, n int64, now time.Time) error
	Release(ctx context.Context, goodsID, userID, n int64) error
	Stock(ctx context.Context, goodsID int64) (stock int64, ok bool, err error)
	// Put loads new goods, replacing what the cache held.
	Put(ctx context.Context, g service.Goods) error
}

// Moves are the cache's steps of the movements of stock coming in, each
// under a marker of its movement.
type Moves interface {
	// Return gives a cancelled order's units back, and Add adds n: each
	// under a marker of its movement (the order, opID) that makes a copy
	// running meanwhile, or after a repair that stood in for the movement,
	// change nothing.
	Return(ctx context.Context, orderID, goodsID, userID, n int64) error
	Add(ctx context.Context, goodsID, n int64, opID string) error
	// Forget deletes the markers of movements whose record says the cache
	// holds them.
	Forget(ctx context.Context, goodsID int64, ops []string, returns []int64) error
	// Markers calls each with the markers the goods' cache holds, a
	// bounded chunk at a time.
	Markers(ctx context.Context, goodsID int64, each func(ops []string, returns []int64) error) error
}

// Mends put the cache back in line with the database: rebuild, repair,
// buyers' units.
type Mends interface {
	// Restore loads goods as the database knows them, only if the cache
	// holds nothing for the goods.
	Restore(ctx context.Context, g service.Goods, st service.RestoredStock) (restored bool, err error)
	// Repair adds delta to the stock only if it still is expected, and in
	// the same step sets the markers of the movements ops and returns.
	Repair(ctx context.Context, goodsID, expected, delta int64, ops []string, returns []int64) (bool, error)
	// BuyerDrifts compares each buyer's units in the cache with units, the
	// database's (streamed; a user may come more than once), and calls
	// each for every buyer whose counts differ, in bounded steps.
	BuyerDrifts(ctx context.Context, goodsID int64, units func(each func(userID, units int64) error) error, each func(service.BuyerUnits) error) error
	// RepairBuyers sets each buyer's units to the truth where the cache
	// still holds the units read, and in the same step sets the markers of
	// the returns unreturned[user]; it says which users it set.
	RepairBuyers(ctx context.Context, goodsID int64, fixes []service.BuyerUnits, unreturned map[int64][]int64) ([]int64, error)
}

// Locker takes a lock across instances; unlock releases it.
type Locker interface {
	Lock(ctx context.Context, name string, ttl time.Duration) (unlock func(), ok bool, err error)
}

// Sales is the database's record of sales: the stock logs of applied
// orders, the goods' stock they decrement, and the messages given up on.
type Sales interface {
	// SellInTx runs V1's transaction: conditional decrement, order and stock
	// log; gate runs before commit and aborts the sale when it fails. Zero
	// rows decremented gives ErrSoldOut.
	SellInTx(ctx context.Context, o service.Order, gate func() error) error
	// ApplySale writes the stock log and the conditional decrement in one
	// transaction: ErrAlreadyApplied when the log exists, ErrSoldOut when
	// MySQL's stock cannot cover it, ErrLimitExceeded past the user's limit.
	ApplySale(ctx context.Context, m service.StockMessage) error
	// ApplySales applies every message in one transaction, or none.
	ApplySales(ctx context.Context, ms []service.StockMessage) error
	// Applied says which of ids have their sale applied (a sale stock
	// log). A dead letter is no application: a dead-lettered order's
	// message that comes after all (a replay, a late copy) still applies.
	Applied(ctx context.Context, ids []int64) (map[int64]bool, error)
}

// Records are the database's records of the movements of stock coming in:
// admin additions and returns, and whether the cache holds each.
type Records interface {
	// AddStock adds n to the goods' stock once per opID; a replay returns ErrDuplicate.
	AddStock(ctx context.Context, goodsID, n int64, opID string) error
	// ReturnSale gives a cancelled order's units back to goods once:
	// ErrAlreadyApplied when it was, ErrNotYet while its sale is not applied.
	ReturnSale(ctx context.Context, m service.StockMessage) error
	// CacheAddition runs step, the cache's part of the addition opID, with
	// the goods and delta its record holds, unless the record says the
	// cache holds it; then records that it does. Copies of the movement
	// wait for each other meanwhile. applied: step ran and that is recorded.
	CacheAddition(ctx context.Context, opID string, step func(goodsID, delta int64) error) (applied bool, err error)
	// CacheReturn does the same for the return of order orderID.
	CacheReturn(ctx context.Context, orderID int64, step func() error) (applied bool, err error)
	// PendingMovements lists goods' admin operations and returned orders
	// whose record says the cache does not hold them yet, read in one
	// snapshot.
	PendingMovements(ctx context.Context, goodsID int64) (ops []string, returns []int64, err error)
	// MarkCached records that the cache holds goods' movements ops and
	// returns (it has their markers) and returns those that have a record.
	MarkCached(ctx context.Context, goodsID int64, ops []string, returns []int64) (recordedOps []string, recordedReturns []int64, err error)
}

// Truths are what the database says of goods and its orders.
type Truths interface {
	Goods(ctx context.Context, id int64) (service.Goods, error)
	ListGoods(ctx context.Context) ([]service.Goods, error)
	// TruthOfEach is, for each goods in turn, what it may still sell
	// according to the database: its stock less the units of its orders
	// whose sale is not applied yet.
	TruthOfEach(ctx context.Context, goodsIDs []int64) ([]int64, error)
	// UserUnits streams each user's units of goods over live (unpaid or
	// paid) orders to each; a user may come more than once, and the units
	// add up.
	UserUnits(ctx context.Context, goodsID int64, each func(userID, units int64) error) error
	// CancelledUnreturned lists, per user, the user's cancelled orders of
	// goods whose return the cache may still have to give.
	CancelledUnreturned(ctx context.Context, goodsID int64, users []int64) (map[int64][]int64, error)
}

// Orders are the order rows, where the versions placed them.
type Orders interface {
	// VoidOrder fences an order whose write had an unknown outcome with a
	// void row under its id: voided when this call wrote it, else status is
	// the status of the row found (void, or the order's own).
	VoidOrder(ctx context.Context, at service.OrderTable, o service.Order) (voided bool, status int, err error)
	// OrderRows reads the rows of the orders the messages name, each in
	// the table its message names; orders not found are left out.
	OrderRows(ctx context.Context, ms []service.StockMessage) (map[service.OrderRef]service.OrderRow, error)
	// MarkRefused marks an unpaid order refused.
	MarkRefused(ctx context.Context, m service.StockMessage) error
}

// Announcer tells every other instance that goods has stock again.
type Announcer interface {
	AnnounceStockBack(ctx context.Context, goodsID int64) error
}

// Options tune the ledger.
type Options struct {
	// WriteBudget is how long an order's work after its reservation may
	// take; the work goes on when the client hangs up, so that a reservation
	// is either turned into an order or given back.
	WriteBudget time.Duration
	// V1Timeout bounds V1's transaction: a stalled MySQL must not hold the
	// request, the row lock and an in-flight slot for longer. At most half
	// the write budget.
	V1Timeout time.Duration
	// RebuildGrace is how long a rebuild of lost Redis stock waits, so that
	// every reservation taken before the loss has become an order or failed.
	RebuildGrace time.Duration
	// Applied runs once orders' sales are applied to MySQL, with a batch's
	// orders at once: it starts their payment clocks.
	Applied func(ctx context.Context, ms ...service.StockMessage)
	// StockBack runs on this instance once stock is back in Redis: it
	// clears the local sold-out flag.
	StockBack func(goodsID int64)
	// Split tunes split stock (V14).
	Split SplitOptions
}

// Ledger applies the movements of stock that orders, sales, admins and
// cancellations make.
type Ledger struct{ *core }

// Repairs are the ledger's movements that put Redis back in line with the
// database: the reconciliation's repairs and the rebuild of lost stock.
// They share the ledger's records, so that a repair and the retry of the
// movement it stands in for never both count.
type Repairs struct{ *core }

// Repairs is the repair side of the ledger.
func (l *Ledger) Repairs() *Repairs { return &Repairs{l.core} }

// core is what both sides of the ledger work on.
type core struct {
	gate     Gate
	moves    Moves
	mends    Mends
	locker   Locker
	sales    Sales
	records  Records
	truths   Truths
	orders   Orders
	announce Announcer
	accepts  Accepts   // nil: async accept is not wired
	split    *splitter // nil: split stock is not wired
	opts     Options
	log      *slog.Logger

	// The rebuilds of lost Redis stock this instance runs: they end with
	// the ledger's life, and Close waits for them.
	life     context.Context
	end      context.CancelFunc
	rebuilds sync.Map // goods ids whose Redis stock is being rebuilt here
	running  sync.WaitGroup
}

// Stores are the ports a ledger moves stock through, each of one concern;
// one store may implement several.
type Stores struct {
	Gate      Gate
	Moves     Moves
	Mends     Mends
	Locker    Locker
	Sales     Sales
	Records   Records
	Truths    Truths
	Orders    Orders
	Announcer Announcer
	// Accepts may be nil when no version accepts asynchronously.
	Accepts Accepts
	// Buckets and Splits may be nil when no goods is split (V14).
	Buckets Buckets
	Splits  SplitRecords
}

// New wires a ledger. Close it to stop the rebuilds it started.
func New(st Stores, opts Options, log *slog.Logger) *Ledger {
	if opts.Applied == nil {
		opts.Applied = func(context.Context, ...service.StockMessage) {}
	}
	if opts.StockBack == nil {
		opts.StockBack = func(int64) {}
	}
	life, end := context.WithCancel(context.Background())
	l := &core{gate: st.Gate, moves: st.Moves, mends: st.Mends, locker: st.Locker, sales: st.Sales,
		records: st.Records, truths: st.Truths, orders: st.Orders, announce: st.Announcer, accepts: st.Accepts, opts: opts, log: log,
		life: life, end: end}
	if st.Buckets != nil && st.Splits != nil {
		l.split = &splitter{buckets: st.Buckets, records: st.Splits, opts: opts.Split}
		l.split.picker = substock.New(refilling{l}, 0)
	}
	return &Ledger{l}
}

// Close stops the rebuilds under way and waits for them.
func (l *Ledger) Close() {
	l.end()
	l.running.Wait()
}

// Put loads new goods into Redis with their whole stock.
func (l *Ledger) Put(ctx context.Context, g service.Goods) error { return l.gate.Put(ctx, g) }

// Stock is goods' sellable stock in Redis; ok is false when Redis holds none.
func (l *core) Stock(ctx context.Context, goodsID int64) (int64, bool, error) {
	return l.gate.Stock(ctx, goodsID)
}

// stockIsBack clears this instance's sold-out flag and has every other
// instance clear theirs. Call it only once the stock is back in Redis.
func (l *core) stockIsBack(ctx context.Context, goodsID int64) {
	l.opts.StockBack(goodsID)
	if err := l.announce.AnnounceStockBack(ctx, goodsID); err != nil {
		l.log.Warn("stock-back broadcast failed; other instances' sold-out flags expire by their TTL", "goods_id", goodsID, "err", err)
	}
}
