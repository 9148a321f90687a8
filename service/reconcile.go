package service

import (
	"context"
	"sync"
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

// reconciler keeps the drift each goods showed on the previous passes.
type reconciler struct {
	mu   sync.Mutex
	last map[int64]Drift
}

// Reconcile compares every goods' Redis stock with the database's truth and
// repairs a drift seen RepairAfter passes in a row: MySQL wins. Redis below
// the truth means reservations whose order was never written (an instance
// died in between): the units go back on sale. Redis above it means
// decrements Redis lost (a failover): the excess is taken off. The repair
// applies only if Redis still holds the stock read in this pass, so a
// concurrent sale or another instance's repair is never overwritten.
func (s *Service) Reconcile(ctx context.Context) ([]Drift, error) {
	s.recon.mu.Lock()
	defer s.recon.mu.Unlock()
	if s.recon.last == nil {
		s.recon.last = map[int64]Drift{}
	}
	gs, err := s.goods.ListGoods(ctx)
	if err != nil {
		return nil, err
	}
	var report []Drift
	for _, g := range gs {
		redisStock, ok, err := s.stock.Stock(ctx, g.ID)
		if err != nil {
			return report, err
		}
		truth, _, err := s.truth(ctx, g.ID)
		if err != nil {
			return report, err
		}
		d := Drift{GoodsID: g.ID, Truth: truth}
		if ok {
			d.RedisStock = &redisStock
			d.Drift = redisStock - truth
		}
		if prev := s.recon.last[g.ID]; d.Drift != 0 && prev.Drift == d.Drift {
			d.Seen = prev.Seen + 1
		} else if d.Drift != 0 {
			d.Seen = 1
		}
		if d.Seen >= RepairAfter {
			d.Repaired, err = s.stock.Adjust(ctx, g.ID, redisStock, -d.Drift)
			if err != nil {
				return report, err
			}
			if d.Repaired {
				s.log.Warn("reconciliation repaired redis stock from the database", "goods_id", g.ID, "drift", d.Drift, "truth", truth)
				d.Seen = 0
				if d.Drift < 0 {
					s.stockIsBack(ctx, g.ID)
				}
			}
		} else if d.Drift != 0 {
			s.log.Info("redis stock differs from the database", "goods_id", g.ID, "drift", d.Drift, "seen", d.Seen)
		}
		s.recon.last[g.ID] = d
		report = append(report, d)
	}
	return report, nil
}
