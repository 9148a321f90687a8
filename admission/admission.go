package admission

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/soldout"
)

// Refusals of a limited order, each with its own answer (see handlers).
var (
	// ErrRateLimited: the client's address is past its bucket.
	ErrRateLimited = errors.New("too many requests from this address")
	// ErrBusyInstance: this instance's own bucket of the route class is full.
	ErrBusyInstance = errors.New("too many requests on this instance")
	// ErrTwin: the same user already has an order of this goods in flight.
	ErrTwin = errors.New("an order of this user for this goods is in flight")
	// ErrEarly: the user ordered this goods before its sale opened.
	ErrEarly = errors.New("ordered before the sale opened: refused for this sale")
	// ErrCaptcha: the captcha sent with the request is wrong or used up.
	ErrCaptcha = errors.New("captcha solution wrong, expired or already used")
)

// Store is the state the instances share, in Redis.
type Store interface {
	Rates
	// ClaimOrder admits one attempt of user at goods, in one step: ErrEarly
	// when the user is recorded as early, ErrTwin when a claim is held,
	// service.ErrSoldOut when allowance attempts have passed its gate
	// already; else it marks the order in flight under token, for ttl at
	// most, and counts the attempt.
	ClaimOrder(ctx context.Context, goodsID, userID int64, token string, ttl time.Duration, allowance int64) error
	// ReleaseClaim ends the claim if token still holds it.
	ReleaseClaim(ctx context.Context, goodsID, userID int64, token string) error
	// MarkEarly records user as having ordered goods before its sale opened.
	MarkEarly(ctx context.Context, goodsID, userID int64, ttl time.Duration) error
	// ReopenGate lowers goods' count of attempts so that at least
	// floor(factor × its stock) more pass under allowance.
	ReopenGate(ctx context.Context, goodsID, allowance int64, factor float64) error
}

// Totals reads the units a goods has had on sale: its stock plus its sales
// in the database, which additions grow and neither sales nor returns
// change.
type Totals interface {
	Goods(ctx context.Context, id int64) (service.Goods, error)
}

// Class is the limits of one class of routes.
type Class struct {
	// IP is each client address's bucket, shared by the instances.
	IP Limit `mapstructure:"ip"`
	// Instance is this instance's bucket of the whole class.
	Instance Limit `mapstructure:"instance"`
}

// Options configure the admission of limited orders.
type Options struct {
	Order Class
	// StockFactor is k: at most floor(k × units on sale) attempts per goods
	// pass the gate.
	StockFactor float64
	// ClaimTTL bounds a user's in-flight claim left by an instance that died.
	ClaimTTL time.Duration
	// EarlyTTL is how long a user who ordered early stays refused.
	EarlyTTL time.Duration
	// TotalsTTL is how long an instance trusts a goods' units on sale.
	TotalsTTL time.Duration
	// Counted counts a refusal by its reason.
	Counted func(reason string)
}

// Reasons a refusal is counted under.
const (
	ReasonIP       = "ip"
	ReasonInstance = "instance"
	ReasonTwin     = "user_in_flight"
	ReasonEarly    = "early"
	ReasonGate     = "stock_gate"
	ReasonCaptcha  = "captcha"
)

// Admission admits or refuses the orders of a limited version.
type Admission struct {
	opts     Options
	store    Store
	totals   Totals
	ip       *Shared
	instance *Local

	mu     sync.Mutex
	cached map[int64]total
	// gen moves on at each Forget: a read of the units begun before it is
	// not cached, as it may predate the addition.
	gen uint64
	// closed remembers the goods whose gate refused, for TotalsTTL or
	// until stock comes back: once a goods is sold out its refusals cost
	// no round trip, as V6's sold-out flag does for the stock. Its
	// generations keep a refusal read before a reopening from being
	// remembered after it.
	closed *soldout.Flags
}

type total struct {
	units int64
	at    time.Time
}

// New makes the admission of limited orders.
func New(store Store, totals Totals, opts Options) *Admission {
	if opts.Counted == nil {
		opts.Counted = func(string) {}
	}
	return &Admission{opts: opts, store: store, totals: totals,
		ip: NewShared("ip:order", opts.Order.IP, store), instance: NewLocal(opts.Order.Instance), cached: map[int64]total{},
		closed: soldout.New(opts.TotalsTTL)}
}

// IPFallbacks sets what counts a take of the address limit answered by
// this instance alone while Redis does not answer.
func (a *Admission) IPFallbacks(f func()) { a.ip.Fallbacks = f }

// Edge takes the tokens of the client address ip and of the instance, and
// waits the turn they give. A client that solved a captcha (solved) skips
// its address's bucket, once.
func (a *Admission) Edge(ctx context.Context, ip string, solved bool) error {
	wait := time.Duration(0)
	if !solved {
		w, ok := a.ip.Take(ctx, ip)
		if !ok {
			a.opts.Counted(ReasonIP)
			return ErrRateLimited
		}
		wait = w
	}
	w, ok := a.instance.Take("")
	if !ok {
		a.opts.Counted(ReasonInstance)
		return ErrBusyInstance
	}
	return sleep(ctx, max(wait, w))
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Closed says this instance saw goodsID's gate closed and still remembers
// it: an order of it would be refused sold out by Claim. Each true counts
// as a refusal of the gate.
func (a *Admission) Closed(goodsID int64) bool {
	closed, _ := a.closed.Check(goodsID)
	if closed {
		a.opts.Counted(ReasonGate)
	}
	return closed
}

// Claim admits one order of req to the sale: the goods' gate is open, the
// user is not early and has no other order of the goods in flight. release
// ends the claim once the order is answered. A goods whose gate this
// instance saw closed is refused at once, early users and twins included:
// nobody buys it, and the answer costs no round trip.
func (a *Admission) Claim(ctx context.Context, req service.OrderRequest) (release func(), err error) {
	closed, gen := a.closed.Check(req.GoodsID)
	if closed {
		a.opts.Counted(ReasonGate)
		return nil, service.ErrSoldOut
	}
	allowance, err := a.allowance(ctx, req.GoodsID)
	if err != nil {
		return nil, err
	}
	token := newToken()
	if err := a.store.ClaimOrder(ctx, req.GoodsID, req.UserID, token, a.opts.ClaimTTL, allowance); err != nil {
		switch {
		case errors.Is(err, ErrTwin):
			a.opts.Counted(ReasonTwin)
		case errors.Is(err, ErrEarly):
			a.opts.Counted(ReasonEarly)
		case errors.Is(err, service.ErrSoldOut):
			a.opts.Counted(ReasonGate)
			a.closed.Set(req.GoodsID, gen)
		}
		return nil, err
	}
	return func() {
		// A claim not released ends with its TTL.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = a.store.ReleaseClaim(ctx, req.GoodsID, req.UserID, token)
	}, nil
}

// allowance is how many attempts at goodsID pass its gate in all:
// floor(k × units on sale).
func (a *Admission) allowance(ctx context.Context, goodsID int64) (int64, error) {
	units, err := a.units(ctx, goodsID)
	return int64(math.Floor(a.opts.StockFactor * float64(units))), err
}

// StockBack runs on the instance that put stock of goodsID back (an
// addition, a cancelled or failed order's return): the gate lets at least
// k × the stock now in Redis more attempts through, so that units that
// came back after it closed still sell. Attempts spent while the goods was
// sold out would otherwise keep them from it.
func (a *Admission) StockBack(goodsID int64) {
	a.Forget(goodsID)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if allowance, err := a.allowance(ctx, goodsID); err == nil {
		_ = a.store.ReopenGate(ctx, goodsID, allowance, a.opts.StockFactor)
	}
	// A refusal read between the Forget and the reopening may have been
	// remembered: forget it too.
	a.closed.Clear(goodsID)
}

// units is goodsID's units on sale, read from the database at most once per
// TotalsTTL: an addition widens the gate within that time.
func (a *Admission) units(ctx context.Context, goodsID int64) (int64, error) {
	a.mu.Lock()
	t, ok := a.cached[goodsID]
	gen := a.gen
	a.mu.Unlock()
	if ok && time.Since(t.at) < a.opts.TotalsTTL {
		return t.units, nil
	}
	g, err := a.totals.Goods(ctx, goodsID)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	if a.gen == gen {
		a.cached[goodsID] = total{units: g.Stock + g.Sale, at: time.Now()}
	}
	a.mu.Unlock()
	return g.Stock + g.Sale, nil
}

// Forget drops what the instance knows of goodsID's units on sale: stock
// came back to it (an addition, or a return), and an addition widens the
// gate from the next attempt on, here and, by the broadcast, everywhere.
func (a *Admission) Forget(goodsID int64) {
	a.mu.Lock()
	delete(a.cached, goodsID)
	a.gen++
	a.mu.Unlock()
	a.closed.Clear(goodsID)
}

// Answered records what the sale said to an admitted order: an order before
// the sale opened marks its user early.
func (a *Admission) Answered(ctx context.Context, req service.OrderRequest, err error) {
	if errors.Is(err, service.ErrNotStarted) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = a.store.MarkEarly(ctx, req.GoodsID, req.UserID, a.opts.EarlyTTL)
	}
}

func newToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
