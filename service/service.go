// Package service holds the domain of the flash sale: goods, orders, the
// order paths of each architecture version and the stock consumer's logic.
// It declares the interfaces it needs and imports nothing of the project's.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Goods is one item on sale. Stock is what MySQL still holds; Sale what it
// has sold. During a V2+ sale MySQL lags Redis until the consumer drains.
type Goods struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Stock int64  `json:"stock"`
	Sale  int64  `json:"sale"`
	// PerUserLimit is the most units one user may hold; 0 is no limit.
	PerUserLimit int64 `json:"per_user_limit"`
	SaleWindow
	CreatedAt time.Time `json:"created_at"`
}

// SaleWindow is when goods may be bought; a nil end leaves that side open.
type SaleWindow struct {
	StartAt *time.Time `json:"start_at"`
	EndAt   *time.Time `json:"end_at"`
}

// NewGoods is what an admin puts on sale.
type NewGoods struct {
	Name         string
	Stock        int64
	PerUserLimit int64
	SaleWindow
}

// OrderRequest is what a shopper asks for.
type OrderRequest struct {
	UserID  int64
	GoodsID int64
	Number  int64
}

// Order is an accepted order. Its ID is a snowflake id, unique across every
// order table and host.
type Order struct {
	ID      int64  `json:"order_id,string"`
	UserID  int64  `json:"user_id"`
	GoodsID int64  `json:"goods_id"`
	Number  int64  `json:"number"`
	Version string `json:"version"`
	// PayDeadline: an order still unpaid then is cancelled and its stock returned.
	PayDeadline time.Time `json:"pay_deadline"`
}

// Order statuses, as the order tables store them.
const (
	StatusUnpaid    = 0
	StatusPaid      = 1
	StatusCancelled = 2
)

// StockMessage asks the consumer to apply one order's decrement to MySQL;
// the same body, delivered at the deadline, asks to cancel it if unpaid.
type StockMessage struct {
	OrderID int64 `json:"order_id"`
	GoodsID int64 `json:"goods_id"`
	UserID  int64 `json:"user_id"`
	Number  int64 `json:"number"`
	// Where the order row is, and its payment deadline in Unix ms.
	Host     int   `json:"host,omitempty"`
	Table    int   `json:"table,omitempty"`
	Deadline int64 `json:"deadline_ms,omitempty"`
}

// At is the table the message's order is in.
func (m StockMessage) At() OrderTable { return OrderTable{Host: m.Host, Table: m.Table} }

// Stats shows one goods' stock as every store sees it.
type Stats struct {
	GoodsID     int64  `json:"goods_id"`
	RedisStock  *int64 `json:"redis_stock"` // nil: Redis holds no stock for it
	MySQLStock  int64  `json:"mysql_stock"`
	MySQLSale   int64  `json:"mysql_sale"`
	Orders      int64  `json:"orders"`
	StockLogs   int64  `json:"stock_logs"` // sale decrements applied
	Returns     int64  `json:"returns"`    // stock given back by cancelled orders
	DeadLetters int64  `json:"dead_letters"`
}

// The errors callers branch on. Wrapped errors carry details for the client.
var (
	ErrInvalid        = errors.New("invalid request")
	ErrNotFound       = errors.New("not found")
	ErrSoldOut        = errors.New("sold out")
	ErrNotStarted     = errors.New("sale not started")
	ErrEnded          = errors.New("sale ended")
	ErrLimitExceeded  = errors.New("per-user limit exceeded")
	ErrOrderCancelled = errors.New("order cancelled")
	ErrOrderExpired   = errors.New("payment deadline passed")
	// ErrAmbiguous: a write failed in a way that leaves unknown whether it
	// committed (the connection broke after the statement was sent).
	ErrAmbiguous = errors.New("outcome unknown")
	// ErrNotYet: the work depends on something not done yet; try again later.
	ErrNotYet         = errors.New("not yet")
	ErrStockNotLoaded = errors.New("stock not loaded in redis")
	ErrUnavailable    = errors.New("dependency unavailable")
	// ErrAlreadyApplied: the order's stock log exists; the decrement is done.
	ErrAlreadyApplied = errors.New("stock already applied")
	// ErrDuplicate: a unique key (an admin op id) was used before.
	ErrDuplicate = errors.New("duplicate")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// GoodsStore is the system of record (MySQL): goods, orders, stock logs.
type GoodsStore interface {
	CreateGoods(ctx context.Context, g NewGoods) (Goods, error)
	// AddStock adds n to the goods' stock once per opID; a replay returns ErrDuplicate.
	AddStock(ctx context.Context, goodsID, n int64, opID string) error
	Goods(ctx context.Context, id int64) (Goods, error)
	ListGoods(ctx context.Context) ([]Goods, error)
	// SellInTx runs V1's transaction: conditional decrement, order and stock
	// log; gate runs before commit and aborts the sale when it fails.
	// Zero rows decremented gives ErrSoldOut.
	SellInTx(ctx context.Context, o Order, gate func() error) error
	InsertOrder(ctx context.Context, o Order, at OrderTable) error
	// PayOrder marks the user's order paid if it is unpaid and its deadline
	// is after now; CancelOrder marks it cancelled if it is unpaid and its
	// deadline is not after now. One conditional update each: of a payment
	// and a timeout racing, exactly one wins.
	PayOrder(ctx context.Context, at OrderTable, id, userID int64, now time.Time) (bool, error)
	CancelOrder(ctx context.Context, at OrderTable, id int64, now time.Time) (bool, error)
	// OrderStatus reads an order's status; ErrNotFound when it is not there.
	OrderStatus(ctx context.Context, at OrderTable, id int64) (status int, userID int64, err error)
	// ReturnStock gives a cancelled order's units back to goods once:
	// ErrAlreadyApplied when it was, ErrNotYet while its sale is not applied.
	ReturnStock(ctx context.Context, m StockMessage) error
	// ExpiredOrders lists orders to cancel or finish cancelling: unpaid past
	// before, or cancelled without a return.
	ExpiredOrders(ctx context.Context, before time.Time, limit int) ([]StockMessage, error)
	// UserUnits sums each user's units of goods over live (not cancelled) orders.
	UserUnits(ctx context.Context, goodsID int64) (map[int64]int64, error)
	// AppliedChanges lists goods' admin stock operations and its orders
	// whose units were returned: what the database's stock already holds.
	AppliedChanges(ctx context.Context, goodsID int64) (opIDs []string, returned []int64, err error)
	// ApplyStock writes the stock log and the conditional decrement in one
	// transaction: ErrAlreadyApplied when the log exists, ErrSoldOut when
	// MySQL's stock cannot cover it.
	ApplyStock(ctx context.Context, m StockMessage) error
	// ApplyStockBatch applies every message in one transaction, or none.
	ApplyStockBatch(ctx context.Context, ms []StockMessage) error
	// ScanOrders returns up to limit orders with afterID < id < beforeID, by id.
	ScanOrders(ctx context.Context, afterID, beforeID int64, limit int) ([]StockMessage, error)
	// Settled says which of ids have a stock log or a dead letter.
	Settled(ctx context.Context, ids []int64) (map[int64]bool, error)
	DeadLetter(ctx context.Context, m StockMessage, body []byte, reason string) error
	// Counts fills the counting fields of Stats: orders over every table,
	// sale and return stock logs, dead letters.
	Counts(ctx context.Context, goodsID int64) (Stats, error)
	// StockTruth is what goods may still sell according to the database:
	// its stock less the units of its orders whose sale is not applied yet.
	StockTruth(ctx context.Context, goodsID int64) (int64, error)
	Ping(ctx context.Context) error
}

// StockCache is the gate in front of MySQL (Redis): sellable stock per goods.
type StockCache interface {
	// Reserve takes n units for userID at time now: ErrSoldOut when fewer
	// remain, ErrNotStarted or ErrEnded outside the sale window,
	// ErrLimitExceeded past the per-user limit, ErrStockNotLoaded when the
	// cache holds no stock for the goods.
	Reserve(ctx context.Context, goodsID, userID, n int64, now time.Time) error
	Release(ctx context.Context, goodsID, userID, n int64) error
	// Return gives a cancelled order's units back, once per order.
	Return(ctx context.Context, orderID, goodsID, userID, n int64) error
	Put(ctx context.Context, g Goods) error
	// Restore loads goods as the database knows them, only if the cache
	// holds nothing for the goods.
	Restore(ctx context.Context, g Goods, st RestoredStock) (restored bool, err error)
	// Adjust adds delta to the stock only if it still is expected.
	Adjust(ctx context.Context, goodsID, expected, delta int64) (bool, error)
	// Lock takes a lock named name for ttl across instances; unlock releases it.
	Lock(ctx context.Context, name string, ttl time.Duration) (unlock func(), ok bool, err error)
	// Add adds n once per opID.
	Add(ctx context.Context, goodsID, n int64, opID string) error
	Stock(ctx context.Context, goodsID int64) (stock int64, ok bool, err error)
	// Stocks reads many goods' stock at once; goods Redis does not hold are left out.
	Stocks(ctx context.Context, goodsIDs []int64) (map[int64]int64, error)
	Ping(ctx context.Context) error
}

// Publisher sends messages to the queue.
type Publisher interface {
	// Publish sends m to nsqd number route modulo their count, and to the
	// others in turn when that one fails.
	Publish(ctx context.Context, m StockMessage, route int64) error
	// DeferTimeout delivers m to the payment-timeout consumer after delay.
	DeferTimeout(ctx context.Context, m StockMessage, delay time.Duration) error
	// AnnounceStockBack tells every instance that goods has stock again.
	AnnounceStockBack(ctx context.Context, goodsID int64) error
	Ping(ctx context.Context) error
}

// RestoredStock is what a cache rebuilt from the database holds: the stock,
// each user's units (for a per-user limit), and the admin operations and
// returns the stock already includes, so that a replay of one of them does
// not count twice.
type RestoredStock struct {
	Stock          int64
	UserUnits      map[int64]int64
	AppliedOps     []string
	ReturnedOrders []int64
}

// IDs makes order ids that grow with time.
type IDs interface {
	NewID() int64
	// FirstIDAt is the smallest id made at or after t.
	FirstIDAt(t time.Time) int64
}

// Options tune the service.
type Options struct {
	MaxNumber   int64         // most units one order may take
	Grace       time.Duration // how long an order's own message has before the outbox sweep republishes it
	OrderTables int           // V3+: order_1..order_OrderTables
	OrderHosts  int           // V4+: how many order hosts
	SoldOutTTL  time.Duration // V6: how long a sold-out flag lives without a broadcast
	// PayTimeout is how long an order may stay unpaid.
	PayTimeout time.Duration
	// RebuildGrace is how long a rebuild of lost Redis stock waits, so that
	// every reservation taken before the loss has become an order or failed.
	RebuildGrace time.Duration
}

// Service is the flash sale.
type Service struct {
	goods GoodsStore
	stock StockCache
	pub   Publisher
	ids   IDs
	opts  Options
	log   *slog.Logger

	soldOut  *soldOutFlags // V6
	outcomes Outcomes
	rebuilds sync.Map // goods ids whose Redis stock is being rebuilt here
	recon    reconciler

	sweepMu   sync.Mutex
	sweepFrom int64               // outbox sweep watermark: orders below it are settled
	sweepSent map[int64]time.Time // when the sweep last republished each pending order
}

// New wires a service.
func New(goods GoodsStore, stock StockCache, pub Publisher, ids IDs, outcomes Outcomes, opts Options, log *slog.Logger) *Service {
	opts.OrderTables = max(opts.OrderTables, 1)
	opts.OrderHosts = max(opts.OrderHosts, 1)
	return &Service{goods: goods, stock: stock, pub: pub, ids: ids, outcomes: outcomes, opts: opts, log: log,
		soldOut: newSoldOutFlags(opts.SoldOutTTL), sweepSent: map[int64]time.Time{}}
}

// UnknownOrder is the error of an order whose row may or may not have been
// written: its units stay reserved (the outbox sweep publishes the order if
// it exists; the reconciliation gives the units back if not), and a retry
// under the same idempotency key looks the order up.
type UnknownOrder struct {
	Order Order
	At    OrderTable
	Err   error
}

func (e *UnknownOrder) Error() string { return fmt.Sprintf("order %d: %v", e.Order.ID, e.Err) }
func (e *UnknownOrder) Unwrap() error { return e.Err }

// afterReserve keeps the work after a reservation going when the client
// hangs up: a reservation is either turned into an order or given back.
func afterReserve(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}
