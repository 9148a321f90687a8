package recovery

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	"github.com/go-seckill/seckill/service"
)

// Drift is one goods' Redis stock against the database's truth, and, for
// goods with a per-user limit, its buyers' units against their live orders.
type Drift struct {
	GoodsID    int64  `json:"goods_id"`
	RedisStock *int64 `json:"redis_stock"` // nil: Redis holds none; the rebuild takes care of it
	Truth      int64  `json:"truth"`       // database stock less units not yet applied to it
	Drift      int64  `json:"drift"`       // redis_stock - truth
	Seen       int    `json:"seen"`        // consecutive passes that saw this same drift
	Repaired   bool   `json:"repaired"`
	// Buyers whose units in Redis differ from those of their live orders,
	// and how many of them were repaired in this pass (each after
	// RepairAfter passes in a row saw the same difference).
	UsersDrift    int `json:"users_drift"`
	UsersRepaired int `json:"users_repaired"`
	// Unchanged: the pass read only the goods' Redis stock, found it and
	// the database's stock as the last pass that found nothing left them,
	// and took that pass's truth (see Reconciler.SetFullEvery).
	Unchanged bool `json:"unchanged,omitempty"`
}

// RepairAfter is how many passes in a row must see the same drift before it
// is repaired: the seed's rule, since reservations and decrements in flight
// make single readings differ for a moment.
const RepairAfter = 3

// MaxTrackedBuyers bounds the buyers of one goods whose difference the
// reconciler remembers from one pass to the next. Buyers tracked already
// keep their place; new ones enter while there is room, so a difference
// that lasts is repaired once the passing ones (orders in flight while a
// pass reads) have left.
const MaxTrackedBuyers = 100_000

// Ledger reads and repairs goods' stock.
type Ledger interface {
	Stock(ctx context.Context, goodsID int64) (stock int64, ok bool, err error)
	// TruthsAndPending reads each goods' truth in the database and the
	// movements of stock coming in that it holds but Redis does not yet,
	// the goods' truths read together (see service.TruthReading).
	TruthsAndPending(ctx context.Context, goodsIDs []int64) ([]service.TruthReading, error)
	// Repair adds delta to the Redis stock only if it still is expected,
	// and in the same step marks the movements ops and returns as held by
	// Redis, so that their retries add nothing.
	Repair(ctx context.Context, goodsID, expected, delta int64, ops []string, returns []int64) (bool, error)
	// Tidy settles the markers that movements left in Redis.
	Tidy(ctx context.Context, goodsID int64) error
	// BuyerDrifts calls each for every buyer whose units in Redis differ
	// from the units of the buyer's live orders, in bounded steps.
	BuyerDrifts(ctx context.Context, goodsID int64, each func(service.BuyerUnits) error) error
	// RepairBuyers sets buyers' units in Redis to the truth, each only if
	// Redis still holds the units read, and says how many it set.
	RepairBuyers(ctx context.Context, goodsID int64, fixes []service.BuyerUnits) (int, error)
	// LockGoods takes goods' reconciliation lock across instances; ok is
	// false when another instance holds it.
	LockGoods(ctx context.Context, goodsID int64) (unlock func(), ok bool, err error)
}

// GoodsLister lists every goods.
type GoodsLister interface {
	ListGoods(ctx context.Context) ([]service.Goods, error)
}

// Reconciler compares every goods' Redis stock with the database's truth.
type Reconciler struct {
	goods  GoodsLister
	ledger Ledger
	log    *slog.Logger
	// repairAfter is how many passes in a row must see a drift: RepairAfter
	// unless a scheduled reconciler set its own.
	repairAfter int

	// fullEvery: one pass in fullEvery reads every goods' truth; the
	// others only those whose stock changed (1: every pass is full).
	fullEvery int

	mu sync.Mutex
	// sinceFull counts the passes since the last full one, whatever made
	// it full (the cadence, ReconcileAll); everFull: there was one.
	sinceFull int
	everFull  bool
	last      map[int64]Drift                // the drift each goods showed on the previous pass
	buyers    map[int64]map[int64]buyerDrift // per goods, the buyers that differed on the previous pass
	// settled holds, per goods, what the last pass that found it in line
	// read of its stock: a goods whose stocks still read so is skipped by
	// a pass that is not full.
	settled map[int64]stocks
}

// stocks are goods' stock in Redis and in the database, as one pass read them.
type stocks struct{ redis, database int64 }

// buyerDrift is a buyer's difference and how many passes in a row saw it.
type buyerDrift struct {
	service.BuyerUnits
	seen int
}

// NewReconciler wires a reconciler.
func NewReconciler(goods GoodsLister, ledger Ledger, log *slog.Logger) *Reconciler {
	return &Reconciler{goods: goods, ledger: ledger, log: log, repairAfter: RepairAfter, fullEvery: 1,
		last: map[int64]Drift{}, buyers: map[int64]map[int64]buyerDrift{}, settled: map[int64]stocks{}}
}

// SetFullEvery makes one pass in n full (n < 1 counts as 1), the first
// among them, counted from the last full one (ReconcileAll's too); the
// passes between skip every goods found in line by the
// last pass that read it whose Redis stock and database stock both read
// as they did then. The truth, which reads the goods' recent orders on
// every database, and the pending movements around it are what a pass
// costs per goods (about 1 ms with V7's 128 logical tables, the truths
// read TruthBatch goods at a time), so that with thousands of goods on
// sale and few selling a pass costs what changed: one Redis read per
// quiet goods.
//
// What a skip can miss: the truth moving while neither stock does. Every
// way stock goes out or comes in moves one of them (a reservation moves
// Redis, a sale applied or an addition the database, whatever becomes of
// their other half); a drift, once seen, keeps its goods read until it is
// repaired. Left is a loss that an opposite movement in flight hid from a
// pass's reading (a reservation written later as its order): the full
// passes find it.
func (r *Reconciler) SetFullEvery(n int) { r.fullEvery = max(n, 1) }

// Reconcile runs one pass and repairs a drift seen RepairAfter passes in a
// row: MySQL wins. Redis below the truth means reservations whose order
// was never written (an instance died in between), or movements of stock
// coming in whose Redis step failed: the units go back on sale. Redis
// above it means decrements Redis lost (a failover): the excess is taken
// off. The repair applies only if Redis still holds the stock read in this
// pass, so a concurrent sale, a movement's own step or another instance's
// repair is never overwritten; and it marks the movements the truth holds
// that Redis does not yet, so that their retries add nothing.
//
// Buyers' units, which the same reservations and losses move, are repaired
// from the same truth: a buyer whose units in Redis differ from the units
// of the buyer's live orders in RepairAfter passes in a row gets those.
//
// Each pass reads, per goods: the markers in the goods' Redis hash (none
// unless movements are in flight), its Redis stock, the pending movements
// twice (through their keys: movements in flight or failed, not their
// history) and the truth (the goods' orders), the truths of TruthBatch
// goods in one read, under the goods' locks, after their Redis stocks; for
// goods with a per-user limit, each buyer's units of live orders (summed
// by the database) and the buyers hash, both a chunk at a time.
//
// Passes between full ones (SetFullEvery) skip the goods whose stocks did
// not move since they were last found in line.
func (r *Reconciler) Reconcile(ctx context.Context) ([]Drift, error) {
	return r.pass(ctx, false)
}

// ReconcileAll runs a full pass: every goods' truth is read.
func (r *Reconciler) ReconcileAll(ctx context.Context) ([]Drift, error) {
	return r.pass(ctx, true)
}

// TruthBatch is how many goods a pass reads the truths of at once: a
// statement's cost is mostly its tables', whatever goods it reads, so that
// a hundred goods a statement cost each a small part of what one does.
const TruthBatch = 100

func (r *Reconciler) pass(ctx context.Context, full bool) ([]Drift, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	full = full || !r.everFull || r.sinceFull+1 >= r.fullEvery
	if full {
		r.sinceFull, r.everFull = 0, true
		r.settled = map[int64]stocks{} // goods gone from the list leave
	} else {
		r.sinceFull++
	}
	gs, err := r.goods.ListGoods(ctx)
	if err != nil {
		return nil, err
	}
	var report []Drift
	for batch := range slices.Chunk(gs, TruthBatch) {
		if report, err = r.reconcileBatch(ctx, batch, full, report); err != nil {
			return report, err
		}
	}
	return report, nil
}

// held is a goods whose reconciliation lock this instance holds, with its
// Redis stock as read under the lock.
type held struct {
	g      service.Goods
	at     int // its place in the batch
	unlock func()
	stock  int64
	loaded bool // Redis holds a stock
}

// reconcileBatch reconciles goods and appends their findings to report in
// their order; on an error, the findings made before it.
func (r *Reconciler) reconcileBatch(ctx context.Context, goods []service.Goods, full bool, report []Drift) ([]Drift, error) {
	found := make([]*Drift, len(goods))
	locked, err := r.readStocks(ctx, goods, full, found)
	defer func() {
		for _, h := range locked {
			if h.unlock != nil {
				h.unlock()
			}
		}
	}()
	if err == nil {
		err = r.reconcileHeld(ctx, locked, found)
	}
	for _, d := range found {
		if d != nil {
			report = append(report, *d)
		}
	}
	return report, err
}

// readStocks reads goods' Redis stocks: in a pass that is not full, the
// finding of each whose stocks did not move goes to found at its place;
// the others are read under their locks, and returned locked. A goods
// another instance is reconciling is left to it (two instances reading
// the same drift must not both repair it: the stock could come back to
// the value both read in between), and out of the report.
func (r *Reconciler) readStocks(ctx context.Context, goods []service.Goods, full bool, found []*Drift) (locked []*held, err error) {
	for i, g := range goods {
		if !full {
			d, unchanged, err := r.unchanged(ctx, g)
			if err != nil {
				return locked, err
			}
			if unchanged {
				found[i] = &d
				continue
			}
		}
		unlock, ok, err := r.ledger.LockGoods(ctx, g.ID)
		if err != nil {
			return locked, err
		}
		if !ok {
			continue // another instance is at it
		}
		h := &held{g: g, at: i, unlock: unlock}
		locked = append(locked, h)
		if err := r.ledger.Tidy(ctx, g.ID); err != nil {
			r.log.Warn("markers of finished movements could not be settled; the next pass tries again", "goods_id", g.ID, "err", err)
		}
		if h.stock, h.loaded, err = r.ledger.Stock(ctx, g.ID); err != nil {
			return locked, err
		}
	}
	return locked, nil
}

// reconcileHeld reads the truths of the locked goods together, after
// their Redis stocks, and reconciles each in turn, its buyers too, letting
// its lock go once done; each finding goes to found at the goods' place.
func (r *Reconciler) reconcileHeld(ctx context.Context, locked []*held, found []*Drift) error {
	if len(locked) == 0 {
		return nil
	}
	ids := make([]int64, len(locked))
	for k, h := range locked {
		ids[k] = h.g.ID
	}
	truths, err := r.ledger.TruthsAndPending(ctx, ids)
	if err != nil {
		return err
	}
	for k, h := range locked {
		d, err := r.reconcile(ctx, h, truths[k])
		if err == nil && d.RedisStock != nil && h.g.PerUserLimit > 0 {
			err = r.reconcileBuyers(ctx, h.g.ID, &d)
		}
		h.unlock()
		h.unlock = nil
		if err != nil {
			return err
		}
		r.last[d.GoodsID] = d
		found[h.at] = &d
		if d.RedisStock != nil && d.Drift == 0 && d.UsersDrift == 0 && !d.Repaired && len(r.buyers[d.GoodsID]) == 0 {
			r.settled[d.GoodsID] = stocks{*d.RedisStock, h.g.Stock}
		} else {
			delete(r.settled, d.GoodsID)
		}
	}
	return nil
}

// unchanged reads goods' Redis stock and says whether both its stocks read
// as when a pass last found it in line; d is then that pass's finding.
func (r *Reconciler) unchanged(ctx context.Context, g service.Goods) (d Drift, unchanged bool, err error) {
	was, ok := r.settled[g.ID]
	if !ok || was.database != g.Stock {
		return Drift{}, false, nil
	}
	stock, ok, err := r.ledger.Stock(ctx, g.ID)
	if err != nil || !ok || stock != was.redis {
		return Drift{}, false, err
	}
	return Drift{GoodsID: g.ID, RedisStock: &stock, Truth: stock, Unchanged: true}, true, nil
}

// reconcile compares h's Redis stock with its truth, read after it, and
// repairs a drift seen RepairAfter passes in a row.
func (r *Reconciler) reconcile(ctx context.Context, h *held, t service.TruthReading) (Drift, error) {
	goodsID, redisStock, truth := h.g.ID, h.stock, t.Truth
	d := Drift{GoodsID: goodsID, Truth: truth}
	if h.loaded {
		d.RedisStock = &redisStock
		d.Drift = redisStock - truth
	}
	if prev := r.last[goodsID]; d.Drift != 0 && prev.Drift == d.Drift {
		d.Seen = prev.Seen + 1
	} else if d.Drift != 0 {
		d.Seen = 1
	}
	var err error
	switch {
	case d.Seen >= r.repairAfter && !t.Exact:
		// The pending movements are not known for this truth: the repair
		// waits for a pass that knows them.
		r.log.Info("movements of stock were recorded while the truth was read; the repair waits for the next pass", "goods_id", goodsID, "drift", d.Drift)
	case d.Seen >= r.repairAfter:
		if d.Repaired, err = r.ledger.Repair(ctx, goodsID, redisStock, -d.Drift, t.Ops, t.Returns); err != nil {
			return d, err
		}
		if d.Repaired {
			r.log.Warn("reconciliation repaired redis stock from the database", "goods_id", goodsID, "drift", d.Drift, "truth", truth,
				"pending_ops", len(t.Ops), "pending_returns", len(t.Returns))
			d.Seen = 0
		}
	case d.Drift != 0:
		r.log.Info("redis stock differs from the database", "goods_id", goodsID, "drift", d.Drift, "seen", d.Seen)
	}
	return d, nil
}

// reconcileBuyers compares goods' buyers and repairs those whose same
// difference RepairAfter passes in a row saw.
func (r *Reconciler) reconcileBuyers(ctx context.Context, goodsID int64, d *Drift) error {
	prev := r.buyers[goodsID]
	next := map[int64]buyerDrift{}
	room := MaxTrackedBuyers - len(prev) // for buyers not tracked yet
	err := r.ledger.BuyerDrifts(ctx, goodsID, func(b service.BuyerUnits) error {
		if _, dup := next[b.UserID]; dup {
			return nil // a scan may return a buyer twice
		}
		d.UsersDrift++
		p, tracked := prev[b.UserID]
		switch {
		case tracked && p.BuyerUnits == b:
			next[b.UserID] = buyerDrift{b, p.seen + 1}
		case tracked:
			next[b.UserID] = buyerDrift{b, 1}
		case room > 0:
			room--
			next[b.UserID] = buyerDrift{b, 1}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var fixes []service.BuyerUnits
	for _, b := range next {
		if b.seen >= r.repairAfter {
			fixes = append(fixes, b.BuyerUnits)
		}
	}
	if len(fixes) > 0 {
		if d.UsersRepaired, err = r.ledger.RepairBuyers(ctx, goodsID, fixes); err != nil {
			return err
		}
		for _, f := range fixes {
			delete(next, f.UserID) // repaired, or Redis changed since: seen afresh
		}
		r.log.Warn("reconciliation repaired buyers' units in redis from the database", "goods_id", goodsID,
			"buyers", len(fixes), "repaired", d.UsersRepaired)
	} else if d.UsersDrift > 0 {
		r.log.Info("buyers' units in redis differ from the database", "goods_id", goodsID, "buyers", d.UsersDrift)
	}
	r.buyers[goodsID] = next
	return nil
}
