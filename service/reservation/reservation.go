// Package reservation runs reservation sales, seed 002's answer to a
// stampede for a scarce goods (its mask case): shoppers reserve before the
// sale begins; when it begins, the first reservers, as many as the goods'
// units, are admitted in a Redis bitmap, and an order from anyone else is
// answered at once without touching the stock.
package reservation

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/go-seckill/seckill/service"
)

// List is the reservations, in the order they were made (MySQL).
type List interface {
	// Reserve records the user's reservation (again: no change) and
	// returns the user's position among the goods' reservers, from 1.
	Reserve(ctx context.Context, goodsID, userID int64) (position int64, err error)
	FirstReservers(ctx context.Context, goodsID, n int64) ([]int64, error)
}

// Admissions is the bitmap of the admitted reservers (Redis).
type Admissions interface {
	// Admitted says whether the user is admitted, and how many are;
	// admits is -1 while the bitmap is not built.
	Admitted(ctx context.Context, goodsID, userID int64) (admitted bool, admits int64, err error)
	Admit(ctx context.Context, goodsID int64, users []int64) error
}

// Goods reads a goods as the database holds it.
type Goods interface {
	Goods(ctx context.Context, id int64) (service.Goods, error)
}

// MaxUserID is the largest user id a reservation takes: a bitmap's offsets
// stop at 2^32-1.
const MaxUserID = 1<<32 - 1

// Reservations reserves and admits.
type Reservations struct {
	list   List
	admit  Admissions
	goods  Goods
	now    func() time.Time
	builds singleflight.Group
}

// New wires reservations.
func New(list List, admit Admissions, goods Goods) *Reservations {
	return &Reservations{list: list, admit: admit, goods: goods, now: time.Now}
}

// Reservation is a user's place in a goods' list.
type Reservation struct {
	GoodsID  int64 `json:"goods_id"`
	UserID   int64 `json:"user_id"`
	Position int64 `json:"position"`
}

// Reserve records a reservation while the goods' sale has not begun: only
// a goods with a start time takes them.
func (r *Reservations) Reserve(ctx context.Context, goodsID, userID int64) (Reservation, error) {
	switch {
	case goodsID < 1:
		return Reservation{}, service.Invalid("goods_id must be a positive integer")
	case userID < 1 || userID > MaxUserID:
		return Reservation{}, service.Invalid("user_id must be an integer from 1 to %d", int64(MaxUserID))
	}
	g, err := r.goods.Goods(ctx, goodsID)
	if err != nil {
		return Reservation{}, err
	}
	if g.StartAt == nil || !r.now().Before(*g.StartAt) {
		return Reservation{}, fmt.Errorf("%w: goods %d takes no reservations: its sale has no start time or has begun", service.ErrReservationsClosed, goodsID)
	}
	pos, err := r.list.Reserve(ctx, goodsID, userID)
	if err != nil {
		return Reservation{}, err
	}
	return Reservation{GoodsID: goodsID, UserID: userID, Position: pos}, nil
}

// Admit lets an order of userID for goodsID through when the user is one
// of the first reservers, as many as the goods' units (stock and sold:
// units given back do not admit more; units added do). Before the sale
// begins nobody is: the list is still open. The bitmap is built once, by
// the first order after the start, from the list. A goods nobody reserved
// is no reservation sale: everyone is let through to the stock.
func (r *Reservations) Admit(ctx context.Context, goodsID, userID int64) error {
	admitted, admits, err := r.admit.Admitted(ctx, goodsID, min(userID, MaxUserID))
	if err != nil {
		return err
	}
	if admits < 0 {
		if err := r.build(ctx, goodsID); err != nil {
			return err
		}
		if admitted, admits, err = r.admit.Admitted(ctx, goodsID, min(userID, MaxUserID)); err != nil {
			return err
		}
	}
	if admits == 0 {
		return nil
	}
	if !admitted || userID > MaxUserID {
		return fmt.Errorf("%w: user %d is not among the first reservers of goods %d", service.ErrNotReserved, userID, goodsID)
	}
	return nil
}

// build admits the first reservers, once per goods and instance at a time.
func (r *Reservations) build(ctx context.Context, goodsID int64) error {
	_, err, _ := r.builds.Do(fmt.Sprint(goodsID), func() (any, error) {
		g, err := r.goods.Goods(ctx, goodsID)
		if err != nil {
			return nil, err
		}
		if g.StartAt != nil && r.now().Before(*g.StartAt) {
			return nil, fmt.Errorf("%w: goods %d", service.ErrNotStarted, goodsID)
		}
		users, err := r.list.FirstReservers(ctx, goodsID, g.Stock+g.Sale)
		if err != nil {
			return nil, err
		}
		return nil, r.admit.Admit(ctx, goodsID, users)
	})
	return err
}
