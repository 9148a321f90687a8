package recovery

import (
	"context"
	"log/slog"
	"sync"

	"github.com/go-seckill/seckill/service"
)

// Drift is one goods' Redis stock against the database's truth.
type Drift struct {
	GoodsID    int64  `json:"goods_id"`
	RedisStock *int64 `json:"redis_stock"` // nil: Redis holds none; the rebuild takes care of it
	Truth      int64  `json:"truth"`       // database stock less units not yet applied to it
	Drift      int64  `json:"drift"`       // redis_stock - truth
	Seen       int    `json:"seen"`        // consecutive passes that saw this same drift
	Repaired   bool   `json:"repaired"`
}

// RepairAfter is how many passes in a row must see the same drift before it
// is repaired: the seed's rule, since reservations and decrements in flight
// make single readings differ for a moment.
const RepairAfter = 3

// Ledger reads and repairs goods' stock.
type Ledger interface {
	Stock(ctx context.Context, goodsID int64) (stock int64, ok bool, err error)
	Truth(ctx context.Context, goodsID int64) (int64, error)
	// Repair adds delta to the Redis stock only if it still is expected.
	Repair(ctx context.Context, goodsID, expected, delta int64) (bool, error)
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

	mu   sync.Mutex
	last map[int64]Drift // the drift each goods showed on the previous pass
}

// NewReconciler wires a reconciler.
func NewReconciler(goods GoodsLister, ledger Ledger, log *slog.Logger) *Reconciler {
	return &Reconciler{goods: goods, ledger: ledger, log: log, last: map[int64]Drift{}}
}

// Reconcile runs one pass and repairs a drift seen RepairAfter passes in a
// row: MySQL wins. Redis below the truth means reservations whose order
// was never written (an instance died in between): the units go back on
// sale. Redis above it means decrements Redis lost (a failover): the
// excess is taken off. The repair applies only if Redis still holds the
// stock read in this pass, so a concurrent sale or another instance's
// repair is never overwritten.
func (r *Reconciler) Reconcile(ctx context.Context) ([]Drift, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	gs, err := r.goods.ListGoods(ctx)
	if err != nil {
		return nil, err
	}
	var report []Drift
	for _, g := range gs {
		d, err := r.reconcile(ctx, g.ID)
		if err != nil {
			return report, err
		}
		r.last[g.ID] = d
		report = append(report, d)
	}
	return report, nil
}

func (r *Reconciler) reconcile(ctx context.Context, goodsID int64) (Drift, error) {
	redisStock, ok, err := r.ledger.Stock(ctx, goodsID)
	if err != nil {
		return Drift{}, err
	}
	truth, err := r.ledger.Truth(ctx, goodsID)
	if err != nil {
		return Drift{}, err
	}
	d := Drift{GoodsID: goodsID, Truth: truth}
	if ok {
		d.RedisStock = &redisStock
		d.Drift = redisStock - truth
	}
	if prev := r.last[goodsID]; d.Drift != 0 && prev.Drift == d.Drift {
		d.Seen = prev.Seen + 1
	} else if d.Drift != 0 {
		d.Seen = 1
	}
	switch {
	case d.Seen >= RepairAfter:
		if d.Repaired, err = r.ledger.Repair(ctx, goodsID, redisStock, -d.Drift); err != nil {
			return d, err
		}
		if d.Repaired {
			r.log.Warn("reconciliation repaired redis stock from the database", "goods_id", goodsID, "drift", d.Drift, "truth", truth)
			d.Seen = 0
		}
	case d.Drift != 0:
		r.log.Info("redis stock differs from the database", "goods_id", goodsID, "drift", d.Drift, "seen", d.Seen)
	}
	return d, nil
}
