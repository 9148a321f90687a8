// Package coupon is the coupon domain beside the goods: merchants' coupon
// templates with their stock, shoppers' claims, expiry and redemption. It
// shares the infrastructure (the database hosts and the placement rule,
// Redis, NSQ, snowflake ids, the admin token) and the ledger's discipline —
// stock leaves Redis before its record is written, a write of unknown
// outcome is fenced, a repair needs a difference seen on consecutive passes
// and applies only if Redis still holds what was read — but none of the
// goods' code paths.
package coupon

import (
	"context"
	"time"

	"github.com/go-seckill/seckill/service"
)

// The kinds of template.
const (
	TypeFixed     = "fixed"     // Value cents off
	TypePercent   = "percent"   // Value percent off (1..99)
	TypeThreshold = "threshold" // Value cents off an amount of at least Threshold cents
)

// The statuses of a coupon record.
const (
	StatusUnused  = 0
	StatusUsed    = 1
	StatusExpired = 2
	// StatusVoid is a fence written under the id of a claim whose write had
	// an unknown outcome: the claim's own write then fails on the id.
	StatusVoid = 3
)

// StatusNames are the statuses a shopper sees, by status.
var StatusNames = map[int]string{StatusUnused: "unused", StatusUsed: "used", StatusExpired: "expired"}

// Template is a merchant's coupon template. Stock is the initial stock plus
// every addition; Tags name its sub-stocks, fixed at creation.
type Template struct {
	ID           int64
	Name         string
	Type         string
	Value        int64
	Threshold    int64
	Stock        int64
	PerUserLimit int
	StartAt      *time.Time
	EndAt        *time.Time
	ValidFor     time.Duration
	SubStocks    int
	Tags         []string
	Ended        bool
	CreatedAt    time.Time
}

// Claimable says whether t may be claimed at now, and why not.
func (t Template) Claimable(now time.Time) error {
	switch {
	case t.StartAt != nil && now.Before(*t.StartAt):
		return service.ErrNotStarted
	case t.Ended || t.EndAt != nil && now.After(*t.EndAt):
		return service.ErrEnded
	}
	return nil
}

// Discount is what the coupon takes off an order of amount cents.
func (t Template) Discount(amount int64) (int64, error) {
	switch t.Type {
	case TypePercent:
		return amount * t.Value / 100, nil
	case TypeThreshold:
		if amount < t.Threshold {
			return 0, service.ErrThresholdNotMet
		}
	}
	return min(t.Value, amount), nil
}

// Coupon is a claimed coupon: a record in the coupon table of its user.
type Coupon struct {
	ID         int64
	TemplateID int64
	UserID     int64
	Seq        int // the user's per-user-limit slot; 0 when the template has no limit
	Status     int
	SubStock   int    // the sub-stock its unit came from
	Key        string // the claim's Idempotency-Key, if any
	OrderID    int64
	ClaimedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     *time.Time
}

// StatusAt is the coupon's status as a shopper sees it at now: an unused
// coupon past its expiry is expired whether or not its expiry has run.
func (c Coupon) StatusAt(now time.Time) int {
	if c.Status == StatusUnused && !now.Before(c.ExpiresAt) {
		return StatusExpired
	}
	return c.Status
}

// StockOp is an addition of stock, recorded under its op id.
type StockOp struct {
	TemplateID int64
	OpID       string
	Added      int64
}

// Counts are a template's coupon records by status.
type Counts struct {
	Issued  int64 // every record but void ones
	Used    int64
	Expired int64 // expired, or unused past their expiry
}

// Expiry is the message that expires a coupon (CouponID set) or ends a
// template at At (Unix ms): a deferred NSQ message, deferred again when At
// is further away than nsqd defers at once.
type Expiry struct {
	CouponID   int64 `json:"coupon_id,omitempty,string"`
	UserID     int64 `json:"user_id,omitempty"`
	TemplateID int64 `json:"template_id"`
	At         int64 `json:"at"`
}

// Templates are the templates and their additions (the primary database).
type Templates interface {
	CreateTemplate(ctx context.Context, t Template) (Template, error)
	// Template reads one; ErrNotFound when there is none.
	Template(ctx context.Context, id int64) (Template, error)
	ListTemplates(ctx context.Context) ([]Template, error)
	// AddTemplateStock records the addition op and adds its units to the
	// template's stock in one transaction; added is false when op was
	// recorded before (nothing changes).
	AddTemplateStock(ctx context.Context, op StockOp) (t Template, added bool, err error)
	// PendingStockOps are the additions whose record does not say Redis
	// holds them.
	PendingStockOps(ctx context.Context, templateID int64) ([]StockOp, error)
	SettleStockOp(ctx context.Context, templateID int64, opID string) error
	// EndTemplate marks a template ended; DueTemplates lists those not
	// marked whose end has passed.
	EndTemplate(ctx context.Context, id int64) error
	DueTemplates(ctx context.Context, now time.Time) ([]int64, error)
}

// Records are the coupon records, each in the coupon table of its user.
type Records interface {
	// InsertCoupon writes c: ErrKeyHeld when the user holds a coupon under
	// c.Key, ErrSlotTaken when c.Seq is taken, ErrAmbiguous (with
	// ErrUnavailable) when the outcome is unknown.
	InsertCoupon(ctx context.Context, at service.OrderTable, c Coupon) error
	// VoidCoupon fences c: see Database.VoidOrder. voided says this call
	// wrote the fence; otherwise status is the row's.
	VoidCoupon(ctx context.Context, at service.OrderTable, c Coupon) (voided bool, status int, err error)
	CouponByKey(ctx context.Context, at service.OrderTable, userID int64, key string) (Coupon, error)
	Coupon(ctx context.Context, at service.OrderTable, id int64) (Coupon, error)
	// CountClaims counts the user's records of a template but void ones.
	CountClaims(ctx context.Context, at service.OrderTable, templateID, userID int64) (int, error)
	// UseCoupon marks the user's coupon used by orderID if it is unused and
	// not expired at now; used says it did.
	UseCoupon(ctx context.Context, at service.OrderTable, id, userID, orderID int64, now time.Time) (used bool, err error)
	// ReleaseCoupon marks the user's coupon unused again if it is used by
	// orderID; released says it did.
	ReleaseCoupon(ctx context.Context, at service.OrderTable, id, userID, orderID int64) (released bool, err error)
	// ExpireCoupon marks the coupon expired if it is unused and expired at now.
	ExpireCoupon(ctx context.Context, at service.OrderTable, id int64, now time.Time) error
	UserCoupons(ctx context.Context, at service.OrderTable, userID int64) ([]Coupon, error)
	// CouponCounts counts a template's records over every coupon table.
	CouponCounts(ctx context.Context, templateID int64, now time.Time) (Counts, error)
	// ExpireDue marks at most limit unused coupons past their expiry
	// expired, on every coupon table, and says how many.
	ExpireDue(ctx context.Context, now time.Time, limit int) (int, error)
}

// SubStocks are the templates' sub-stocks (Redis), one key per tag.
type SubStocks interface {
	// Take: see substock.Buckets.
	Take(ctx context.Context, tag string, n int64) (bool, error)
	// GiveBack returns n units a claim took and did not keep.
	GiveBack(ctx context.Context, tag string, n int64) error
	// Add adds n units under the marker of addition opID, which makes a
	// copy of the step change nothing; a missing sub-stock is created.
	Add(ctx context.Context, tag string, n int64, opID string) error
	// Levels reads the sub-stocks; nil for a missing one. An error for one
	// whose master fails.
	Levels(ctx context.Context, tags []string) ([]*int64, error)
	// Repair adds delta to a sub-stock only if it still holds expected
	// (nil: missing), and never below zero.
	Repair(ctx context.Context, tag string, expected *int64, delta int64) (bool, error)
	// Spread chooses n tags starting with base whose keys spread evenly
	// over the Redis masters.
	Spread(ctx context.Context, n int, base string) ([]string, error)
	// Masters is how many Redis masters hold data (1 without a cluster).
	Masters(ctx context.Context) (int, error)
}

// TemplateCache is the second level of the template cache (Redis).
type TemplateCache interface {
	// CachedTemplate reads a template; found is false on a miss, absent
	// true when the id is cached as unknown.
	CachedTemplate(ctx context.Context, id int64) (t Template, found, absent bool, err error)
	CacheTemplate(ctx context.Context, t Template, ttl time.Duration) error
	CacheAbsent(ctx context.Context, id int64, ttl time.Duration) error
	DropTemplate(ctx context.Context, id int64) error
}

// Locker takes a lock across instances; unlock releases it.
type Locker interface {
	Lock(ctx context.Context, name string, ttl time.Duration) (unlock func(), ok bool, err error)
}

// Messages are the domain's NSQ messages.
type Messages interface {
	// DeferExpiry delivers m to the expiry consumer after delay (at most
	// payment.MaxDefer: a later one arrives early and is deferred again).
	DeferExpiry(ctx context.Context, m Expiry, delay time.Duration) error
	// AnnounceTemplate tells every instance that a template changed: its
	// cached copies go, and its sub-stocks are sellable again.
	AnnounceTemplate(ctx context.Context, templateID int64) error
}

// IDs makes snowflake ids.
type IDs interface{ NewID() int64 }
