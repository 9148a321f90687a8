package harness

import (
	"strings"
	"testing"

	"github.com/go-seckill/seckill/service"
)

func i64(v int64) *int64 { return &v }

// settledSale: goods created with 10 units, 2 added; orders 1 (paid), 2
// (unpaid) and 3 (cancelled, its unit returned) of one unit each.
func settledSale() Snapshot {
	return Snapshot{GoodsID: 7, Stock: 10, Sale: 2, Adds: 2,
		Orders: map[int64]int{1: 1, 2: 1, 3: 1}, Users: map[int64]int64{1: 11, 2: 12, 3: 13},
		Status: map[int64]int{1: service.StatusPaid, 2: service.StatusUnpaid, 3: service.StatusCancelled},
		Number: map[int64]int64{1: 1, 2: 1, 3: 1}, Units: 3,
		Sales: map[int64]int{1: 1, 2: 1, 3: 1}, SaleUnits: 3,
		Returns: map[int64]int{3: 1}, ReturnUnits: 1,
		DeadLettered: map[int64]bool{}, Redis: i64(10)}
}

func TestViolations(t *testing.T) {
	want := Sale{Initial: 10, Accepted: []int64{1, 2, 3}}
	if s := settledSale(); !s.Settled() || len(s.Violations(want)) != 0 {
		t.Fatalf("a clean sale: settled %v, violations %v", s.Settled(), s.Violations(want))
	}
	for name, c := range map[string]struct {
		change   func(*Snapshot, *Sale)
		settled  bool
		violates string
	}{
		"oversold": {func(s *Snapshot, w *Sale) {
			s.Adds, w.Initial = 0, 1
		}, true, "oversold"},
		"negative stock": {func(s *Snapshot, w *Sale) { s.Stock, s.Redis = -1, i64(-1) }, true, "oversold"},
		"accepted order missing": {func(s *Snapshot, w *Sale) {
			w.Accepted = append(w.Accepted, 4)
		}, true, "1 are missing"},
		"order stored twice": {func(s *Snapshot, w *Sale) { s.Orders[2] = 2 }, true, "order 2 is stored 2 times"},
		"order nobody was told about": {func(s *Snapshot, w *Sale) {
			w.Accepted = w.Accepted[:2]
		}, true, "no client was told about"},
		"order not applied": {func(s *Snapshot, w *Sale) {
			delete(s.Sales, 2)
			s.SaleUnits, s.Sale, s.Stock, s.Redis = 2, 1, 11, i64(11)
		}, false, "1 orders without a sale row"},
		"sale row without an order": {func(s *Snapshot, w *Sale) {
			s.Sales[9] = 1
			s.SaleUnits, s.Sale, s.Stock, s.Redis = 4, 3, 9, i64(9)
		}, true, "1 sale rows without an order"},
		"cancelled order not returned": {func(s *Snapshot, w *Sale) {
			delete(s.Returns, 3)
			s.ReturnUnits, s.Sale, s.Stock, s.Redis = 0, 3, 9, i64(9)
		}, false, "1 cancelled orders without one return"},
		"return of a live order": {func(s *Snapshot, w *Sale) {
			s.Returns[1] = 1
			s.ReturnUnits, s.Sale, s.Stock, s.Redis = 2, 1, 11, i64(11)
		}, true, "returns of orders not cancelled"},
		"units invented": {func(s *Snapshot, w *Sale) { s.Stock, s.Redis = 11, i64(11) }, true, "do not add up"},
		"redis differs":  {func(s *Snapshot, w *Sale) { s.Redis = i64(9) }, false, "redis and mysql disagree"},
		"redis lost":     {func(s *Snapshot, w *Sale) { s.Redis = nil }, false, "redis and mysql disagree"},
		"dead letter":    {func(s *Snapshot, w *Sale) { s.DeadLetters = 1 }, true, "1 dead letters, want 0"},
	} {
		t.Run(name, func(t *testing.T) {
			s, w := settledSale(), want
			w.Accepted = append([]int64(nil), want.Accepted...)
			c.change(&s, &w)
			if s.Settled() != c.settled {
				t.Errorf("settled %v, want %v: %s", s.Settled(), c.settled, s)
			}
			if v := s.Violations(w); !strings.Contains(strings.Join(v, "|"), c.violates) {
				t.Errorf("violations %q, want one saying %q", v, c.violates)
			}
		})
	}

	// An order the database refused (dead-lettered) is settled unapplied,
	// and holds no unit.
	s := settledSale()
	s.Orders[4], s.Number[4], s.Status[4], s.Units = 1, 1, service.StatusUnpaid, 4
	s.DeadLettered[4], s.DeadLetters = true, 1
	w := Sale{Initial: 10, Accepted: []int64{1, 2, 3, 4}, DeadLetters: 1}
	if !s.Settled() || len(s.Violations(w)) != 0 {
		t.Errorf("a dead-lettered order: settled %v, violations %v", s.Settled(), s.Violations(w))
	}
	// Orders stored without an answer are allowed when the test says so.
	w = Sale{Initial: 10, Accepted: []int64{1}, AllowUnanswered: true, DeadLetters: 1}
	if v := s.Violations(w); len(v) != 0 {
		t.Errorf("unanswered orders allowed: violations %v", v)
	}
}
