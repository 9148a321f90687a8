// Package service is the language of the flash sale that every unit of the
// domain shares: goods, orders, stock messages, the errors callers branch
// on, where orders are placed and the list of order versions. The units
// themselves live in its subpackages, one concern each:
//
//   - ordering: placing orders through the versions, idempotency keys
//   - ledger: every movement of stock in Redis and MySQL
//   - payment: paying, cancelling unpaid orders, the payment clock
//   - recovery: the outbox sweep and the reconciliation
//   - catalog: goods for admins and shoppers, stats
//   - soldout: V6's in-memory sold-out flags
//
// It imports nothing of the project's; each unit declares the small ports
// it needs, and the store implements them.
package service

import "time"

// Goods is one item on sale. Stock is what MySQL still holds; Sale what it
// has sold. During a V2+ sale MySQL lags Redis until the consumer drains.
type Goods struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// Price is one unit's price in cents; it never changes once set, so an
	// order's amount is price x number whenever it is computed.
	Price int64 `json:"price"`
	Stock int64 `json:"stock"`
	Sale  int64 `json:"sale"`
	// PerUserLimit is the most units one user may hold; 0 is no limit.
	PerUserLimit int64 `json:"per_user_limit"`
	// Checkout is how the shop page buys it: CheckoutOrder or
	// CheckoutSeckill.
	Checkout string `json:"checkout"`
	SaleWindow
	CreatedAt time.Time `json:"created_at"`
}

// Split is how a goods' stock is split over buckets (V14): the buckets'
// hash tags, one key each, and the most units one bucket is given at once.
type Split struct {
	Tags      []string `json:"tags"`
	BucketMax int64    `json:"bucket_max"`
}

// Bucket is one bucket of a split goods, as the admin stats show it.
type Bucket struct {
	Index  int    `json:"index"`
	Tag    string `json:"tag"`
	Stock  *int64 `json:"stock"` // nil: its master lost it
	Online bool   `json:"online"`
}

// How the shop page buys a goods.
const (
	// CheckoutOrder: POST /order answers with the order.
	CheckoutOrder = "order"
	// CheckoutSeckill: POST /seckill answers with a token, polled until
	// its order is written (async accept and poll).
	CheckoutSeckill = "seckill"
)

// SaleWindow is when goods may be bought; a nil end leaves that side open.
type SaleWindow struct {
	StartAt *time.Time `json:"start_at"`
	EndAt   *time.Time `json:"end_at"`
}

// NewGoods is what an admin puts on sale.
type NewGoods struct {
	Name         string
	Price        int64 // cents
	Stock        int64
	PerUserLimit int64
	Checkout     string // CheckoutOrder when empty
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
	ID      int64 `json:"order_id,string"`
	UserID  int64 `json:"user_id"`
	GoodsID int64 `json:"goods_id"`
	Number  int64 `json:"number"`
	// Amount is what the order costs, in cents: the goods' price times
	// number, at order time.
	Amount  int64  `json:"amount"`
	Version string `json:"version"`
	// PayDeadline: an order still unpaid then is cancelled and its stock returned.
	PayDeadline time.Time `json:"pay_deadline"`
	// Key is the Idempotency-Key it was placed under, if any; its row keeps
	// it, unique per user in its table.
	Key string `json:"-"`
}

// Order statuses, as the order tables store them.
const (
	StatusUnpaid    = 0
	StatusPaid      = 1
	StatusCancelled = 2
	// StatusVoid marks a row written under the id of an order whose write
	// had an unknown outcome, to fence it: the order's own write, should it
	// still arrive, fails on the id. A void row holds no units (number 0)
	// and is no order.
	StatusVoid = 3
	// StatusRefused marks an order the database refused to apply (its
	// stock or the buyer's limit could not cover it): it holds no units and
	// cannot be paid.
	StatusRefused = 4
)

// StatusNames are the statuses as the API writes them; an unpaid order past
// its deadline reads "expired" (see OrderDetail.Read) whether or not its
// cancellation has run.
var StatusNames = map[int]string{StatusUnpaid: "unpaid", StatusPaid: "paid", StatusCancelled: "cancelled", StatusRefused: "refused"}

// OrderDetail is an order as its buyer sees it after placing it.
type OrderDetail struct {
	ID          int64     `json:"order_id,string"`
	UserID      int64     `json:"user_id"`
	GoodsID     int64     `json:"goods_id"`
	Number      int64     `json:"number"`
	Amount      int64     `json:"amount"`
	Discount    int64     `json:"discount"` // taken off by the coupon redeemed when it was paid
	ToPay       int64     `json:"to_pay"`   // amount less discount
	CouponID    int64     `json:"coupon_id,string,omitempty"`
	Status      string    `json:"status"` // unpaid, expired, paid, cancelled, refused
	PayDeadline time.Time `json:"pay_deadline"`
	CreatedAt   time.Time `json:"created_at"`

	Code int `json:"-"` // the row's status
}

// Read fills the fields derived from the row as of now.
func (d *OrderDetail) Read(now time.Time) {
	d.ToPay = d.Amount - d.Discount
	d.Status = StatusNames[d.Code]
	if d.Code == StatusUnpaid && !d.PayDeadline.After(now) {
		d.Status = "expired"
	}
}

// LiveStatuses are the statuses of orders that hold their units, or held
// them until they were cancelled and returned.
var LiveStatuses = []int{StatusUnpaid, StatusPaid, StatusCancelled}

// Stock log operations, as goods_stock_logs stores them: the sale of an
// order, and the return of a cancelled order's units.
const (
	OpSale   = 0
	OpReturn = 1
)

// StockMessage asks the consumer to apply one order's decrement to MySQL;
// the same body, delivered at the deadline (alone, or in the array of a
// batch's payment clocks), asks to cancel it if unpaid.
type StockMessage struct {
	OrderID int64 `json:"order_id"`
	GoodsID int64 `json:"goods_id"`
	UserID  int64 `json:"user_id"`
	Number  int64 `json:"number"`
	// Where the order row is, and its payment deadline in Unix ms.
	Host  int `json:"host,omitempty"`
	Table int `json:"table,omitempty"`
	// DB is the V7 logical database (its number + 1), which the shard map
	// resolves to a host when the message is read, not when it is sent.
	DB       int   `json:"db,omitempty"`
	Deadline int64 `json:"deadline_ms,omitempty"`
}

// MessageOf is the stock message of order o, placed at at.
func MessageOf(o Order, at OrderTable) StockMessage {
	return StockMessage{OrderID: o.ID, GoodsID: o.GoodsID, UserID: o.UserID, Number: o.Number,
		Host: at.Host, Table: at.Table, DB: at.DB, Deadline: o.PayDeadline.UnixMilli()}
}

// At is the table the message's order is in.
func (m StockMessage) At() OrderTable { return OrderTable{Host: m.Host, Table: m.Table, DB: m.DB} }

// StockBack is the broadcast telling every instance that goods has stock
// again, so that it clears its sold-out flag.
type StockBack struct {
	GoodsID int64 `json:"goods_id"`
}

// OrderRef names an order and the table it is in.
type OrderRef struct {
	ID int64
	At OrderTable
}

// Ref is the order the message names, where it says it is.
func (m StockMessage) Ref() OrderRef { return OrderRef{ID: m.OrderID, At: m.At()} }

// Validate checks what every consumer of the message relies on.
func (m StockMessage) Validate() error {
	if m.OrderID < 1 || m.GoodsID < 1 || m.Number < 1 {
		return Invalid("stock message needs positive order_id, goods_id and number")
	}
	return nil
}

// OrderRow is an order as its table holds it.
type OrderRow struct {
	ID, GoodsID, UserID, Number int64
	Status                      int
	At                          OrderTable
}

// Matches says the row is the order m names, where m says it is, still
// holding its units.
func (r OrderRow) Matches(m StockMessage) bool {
	return r.ID == m.OrderID && r.At == m.At() && r.GoodsID == m.GoodsID && r.UserID == m.UserID && r.Number == m.Number &&
		r.Status != StatusVoid && r.Status != StatusRefused
}

// Stats shows one goods' stock as every store sees it.
type Stats struct {
	GoodsID int64 `json:"goods_id"`
	// RedisStock is the goods hash's stock, with what a split goods' buckets
	// hold; nil: Redis holds no stock for it.
	RedisStock  *int64 `json:"redis_stock"`
	MySQLStock  int64  `json:"mysql_stock"`
	MySQLSale   int64  `json:"mysql_sale"`
	Orders      int64  `json:"orders"`
	StockLogs   int64  `json:"stock_logs"` // sale decrements applied
	Returns     int64  `json:"returns"`    // stock given back by cancelled orders
	DeadLetters int64  `json:"dead_letters"`
	// Buckets are a split goods' buckets (V14), each one's level.
	Buckets []Bucket `json:"buckets,omitempty"`
}

// RestoredStock is what a cache rebuilt from the database holds: the stock,
// each user's units (for a per-user limit), and the movements of stock
// coming in that the stock holds but whose own step in the cache has not
// run, which the cache marks so that they do not count twice.
type RestoredStock struct {
	Stock int64
	// UserUnits streams each user's units to each; a user may come more
	// than once, and the units add up. Nil when the goods have no limit.
	UserUnits      func(each func(userID, units int64) error) error
	PendingOps     []string // admin operations, by op id
	PendingReturns []int64  // returns, by order id
	// Split, when the goods' stock is split over buckets: the hash gets it
	// back, and Stock leaves out what the buckets hold.
	Split *Split
}

// TruthReading is goods' truth, what the database says it may still sell,
// with the movements of stock coming in that the truth holds and Redis
// does not yet (admin op ids, returned order ids); Exact is false when a
// movement was recorded while the truth was read, so that whether the
// truth holds it is unknown.
type TruthReading struct {
	Truth   int64
	Ops     []string
	Returns []int64
	Exact   bool
}

// BuyerUnits is one buyer's units of goods with a per-user limit, as the
// cache counts them and as the database's live orders hold them.
type BuyerUnits struct {
	UserID int64 `json:"user_id"`
	Cached int64 `json:"cached"`
	Truth  int64 `json:"truth"`
}
