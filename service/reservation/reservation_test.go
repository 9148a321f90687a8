package reservation

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
)

// world is a goods, its reservation list and a bitmap, in memory.
type world struct {
	goods  service.Goods
	list   []int64
	bits   map[int64]bool
	admits int64 // -1: not built
	builds int
}

func (w *world) Goods(_ context.Context, id int64) (service.Goods, error) {
	if id != w.goods.ID {
		return service.Goods{}, fmt.Errorf("%w: goods %d", service.ErrNotFound, id)
	}
	return w.goods, nil
}

func (w *world) Reserve(_ context.Context, _, userID int64) (int64, error) {
	for i, u := range w.list {
		if u == userID {
			return int64(i + 1), nil
		}
	}
	w.list = append(w.list, userID)
	return int64(len(w.list)), nil
}

func (w *world) FirstReservers(_ context.Context, _, n int64) ([]int64, error) {
	return w.list[:min(n, int64(len(w.list)))], nil
}

func (w *world) Admitted(_ context.Context, _, userID int64) (bool, int64, error) {
	return w.bits[userID], w.admits, nil
}

func (w *world) Admit(_ context.Context, _ int64, users []int64) error {
	w.builds++
	for _, u := range users {
		w.bits[u] = true
	}
	w.admits = int64(len(users))
	return nil
}

func newWorld(start time.Time, stock, sold int64) (*world, *Reservations) {
	w := &world{goods: service.Goods{ID: 7, Stock: stock, Sale: sold}, bits: map[int64]bool{}, admits: -1}
	w.goods.StartAt = &start
	r := New(w, w, w)
	return w, r
}

var ctx = context.Background()

func TestReservationsAreTakenBeforeTheStartOnly(t *testing.T) {
	w, r := newWorld(time.Now().Add(time.Hour), 2, 0)
	for u, want := range []int64{1, 2} {
		if got, err := r.Reserve(ctx, 7, int64(10+u)); err != nil || got.Position != want {
			t.Fatalf("reservation %d: %+v %v, want position %d", u, got, err, want)
		}
	}
	if got, err := r.Reserve(ctx, 7, 10); err != nil || got.Position != w.positionOf(10) {
		t.Errorf("reserving again: %+v %v", got, err)
	}
	for _, c := range []struct {
		goods, user int64
		want        error
	}{{7, 0, service.ErrInvalid}, {7, MaxUserID + 1, service.ErrInvalid}, {0, 5, service.ErrInvalid}, {8, 5, service.ErrNotFound}} {
		if _, err := r.Reserve(ctx, c.goods, c.user); !errors.Is(err, c.want) {
			t.Errorf("reserve(%d, %d): %v, want %v", c.goods, c.user, err, c.want)
		}
	}
	if err := r.Admit(ctx, 7, 10); !errors.Is(err, service.ErrNotStarted) || w.builds != 0 {
		t.Errorf("an order before the start: %v after %d builds; want not_started and the list left open", err, w.builds)
	}
	started := time.Now().Add(-time.Second)
	w.goods.StartAt = &started
	if _, err := r.Reserve(ctx, 7, 12); !errors.Is(err, service.ErrReservationsClosed) {
		t.Errorf("a reservation after the start: %v", err)
	}
	w.goods.StartAt = nil
	if _, err := r.Reserve(ctx, 7, 12); !errors.Is(err, service.ErrReservationsClosed) {
		t.Errorf("a reservation for a sale without a start time: %v", err)
	}
}

func (w *world) positionOf(u int64) int64 {
	for i, x := range w.list {
		if x == u {
			return int64(i + 1)
		}
	}
	return 0
}

// The first reservers, as many as the units ever put on sale (stock and
// sold), are admitted, from one build.
func TestTheFirstReserversAsManyAsTheUnitsAreAdmitted(t *testing.T) {
	w, r := newWorld(time.Now().Add(time.Hour), 1, 2) // 3 units: 1 left, 2 sold
	for _, u := range []int64{5, 6, 7, 8, 9} {
		if _, err := r.Reserve(ctx, 7, u); err != nil {
			t.Fatal(err)
		}
	}
	started := time.Now().Add(-time.Second)
	w.goods.StartAt = &started
	for u, want := range map[int64]error{5: nil, 6: nil, 7: nil, 8: service.ErrNotReserved, 9: service.ErrNotReserved, 100: service.ErrNotReserved, MaxUserID + 5: service.ErrNotReserved} {
		if err := r.Admit(ctx, 7, u); !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("user %d: %v, want %v", u, err, want)
		}
	}
	if w.builds != 1 {
		t.Errorf("%d builds, want 1", w.builds)
	}
}

// A goods nobody reserved is no reservation sale: everyone goes through.
func TestAGoodsNobodyReservedSellsToAnyone(t *testing.T) {
	w, r := newWorld(time.Now().Add(-time.Second), 10, 0)
	if err := r.Admit(ctx, 7, 42); err != nil || w.admits != 0 {
		t.Errorf("%v with %d admitted", err, w.admits)
	}
}
