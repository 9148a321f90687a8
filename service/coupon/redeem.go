package coupon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-seckill/seckill/service"
)

// Redemption is a coupon used for an order.
type Redemption struct {
	Coupon   Coupon
	Discount *int64 // with the order's amount: what the coupon takes off
}

// Redeem uses the user's coupon for orderID. The same order again is
// answered as the first time; another order gets ErrCouponUsed, an expired
// coupon ErrCouponExpired, another user's coupon ErrNotFound. With amount
// (the order's, in cents) the template's threshold is checked and the
// discount computed.
func (c *Coupons) Redeem(ctx context.Context, couponID, userID, orderID int64, amount *int64) (Redemption, error) {
	switch {
	case couponID < 1 || userID < 1 || orderID < 1:
		return Redemption{}, service.Invalid("coupon id, user_id and order_id must be positive integers")
	case amount != nil && (*amount < 1 || *amount > 100*MaxStock):
		return Redemption{}, service.Invalid("amount must be cents from 1 to %d", 100*MaxStock)
	}
	at := service.CouponTable(userID)
	cp, err := c.userCoupon(ctx, at, couponID, userID)
	if err != nil {
		return Redemption{}, err
	}
	r := Redemption{Coupon: cp}
	if amount != nil {
		t, err := c.Template(ctx, cp.TemplateID)
		if err != nil {
			return Redemption{}, err
		}
		d, err := t.Discount(*amount)
		if err != nil {
			return Redemption{}, err
		}
		r.Discount = &d
	}
	now := c.o.Now()
	if cp.Status == StatusUnused {
		used, err := c.records.UseCoupon(ctx, at, couponID, userID, orderID, now)
		if err != nil {
			return Redemption{}, err
		}
		if used {
			r.Coupon.Status, r.Coupon.OrderID, r.Coupon.UsedAt = StatusUsed, orderID, &now
			return r, nil
		}
		// Used or expired meanwhile: answer by what the row says now.
		if cp, err = c.userCoupon(ctx, at, couponID, userID); err != nil {
			return Redemption{}, err
		}
	}
	switch cp.StatusAt(now) {
	case StatusUsed:
		if cp.OrderID == orderID {
			r.Coupon = cp
			return r, nil
		}
		return Redemption{}, service.ErrCouponUsed
	case StatusExpired:
		return Redemption{}, service.ErrCouponExpired
	}
	return Redemption{}, fmt.Errorf("%w: coupon %d could not be used", service.ErrUnavailable, couponID)
}

// Release makes the user's coupon, used by orderID, usable again: a
// payment that redeemed it and then failed gives it back. A coupon used by
// another order, or not used, is left as it is.
func (c *Coupons) Release(ctx context.Context, couponID, userID, orderID int64) error {
	if couponID < 1 || userID < 1 || orderID < 1 {
		return service.Invalid("coupon id, user_id and order_id must be positive integers")
	}
	_, err := c.records.ReleaseCoupon(ctx, service.CouponTable(userID), couponID, userID, orderID)
	return err
}

// ReleaseOrder makes every coupon of the user used by orderID usable again:
// the order was cancelled unpaid, so no payment used them. Running it again
// finds nothing left to release.
func (c *Coupons) ReleaseOrder(ctx context.Context, userID, orderID int64) error {
	if userID < 1 || orderID < 1 {
		return service.Invalid("user_id and order_id must be positive integers")
	}
	at := service.CouponTable(userID)
	all, err := c.records.UserCoupons(ctx, at, userID)
	if err != nil {
		return err
	}
	var errs []error
	for _, cp := range all {
		if cp.Status == StatusUsed && cp.OrderID == orderID {
			_, err := c.records.ReleaseCoupon(ctx, at, cp.ID, userID, orderID)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// userCoupon reads the user's coupon; another user's, or a void row, is not
// found.
func (c *Coupons) userCoupon(ctx context.Context, at service.OrderTable, couponID, userID int64) (Coupon, error) {
	cp, err := c.records.Coupon(ctx, at, couponID)
	if err == nil && (cp.UserID != userID || cp.Status == StatusVoid) {
		err = service.ErrNotFound
	}
	if err != nil {
		if errors.Is(err, service.ErrNotFound) {
			return Coupon{}, fmt.Errorf("%w: user %d has no coupon %d", service.ErrNotFound, userID, couponID)
		}
		return Coupon{}, err
	}
	return cp, nil
}

// UserCoupons lists a user's coupons, newest first; status ("unused",
// "used", "expired", or "" for all) filters them as the shopper sees them
// now.
func (c *Coupons) UserCoupons(ctx context.Context, userID int64, status string) ([]Coupon, error) {
	want := -1
	for s, name := range StatusNames {
		if name == status {
			want = s
		}
	}
	switch {
	case userID < 1:
		return nil, service.Invalid("user_id must be a positive integer")
	case status != "" && want < 0:
		return nil, service.Invalid("status must be unused, used or expired")
	}
	all, err := c.records.UserCoupons(ctx, service.CouponTable(userID), userID)
	if err != nil {
		return nil, err
	}
	now := c.o.Now()
	out := []Coupon{}
	for _, cp := range all {
		cp.Status = cp.StatusAt(now)
		if cp.Status != StatusVoid && (want < 0 || cp.Status == want) {
			out = append(out, cp)
		}
	}
	slices.SortFunc(out, func(a, b Coupon) int { return b.ClaimedAt.Compare(a.ClaimedAt) })
	return out, nil
}

// Expire handles an expiry message: a coupon past its expiry is marked
// expired if still unused; a template past its end is marked ended. A
// message that arrives early (its deferral was capped) says how much
// longer to wait. The records decide, not the message: a coupon's row
// holds its expiry, a template its end, and a message naming an earlier
// time (a copy from another run's queue, a forged one) is early too.
func (c *Coupons) Expire(ctx context.Context, m Expiry) (wait time.Duration, err error) {
	now := c.o.Now()
	if at := time.UnixMilli(m.At); now.Before(at) {
		return at.Sub(now), nil
	}
	if m.CouponID != 0 {
		return 0, c.records.ExpireCoupon(ctx, service.CouponTable(m.UserID), m.CouponID, now)
	}
	t, err := c.templates.Template(ctx, m.TemplateID)
	switch {
	case err != nil:
		return 0, err
	case t.Ended || t.EndAt == nil:
		return 0, nil // ended before, or it has no end
	case now.Before(*t.EndAt):
		return t.EndAt.Sub(now), nil
	}
	return 0, c.endTemplate(ctx, m.TemplateID)
}

func (c *Coupons) endTemplate(ctx context.Context, id int64) error {
	if err := c.templates.EndTemplate(ctx, id); err != nil {
		return err
	}
	t, err := c.templates.Template(ctx, id)
	if err != nil {
		return err
	}
	c.publish(ctx, t)
	return nil
}

// sweepChunk is how many coupons one sweep statement expires.
const sweepChunk = 1000

// Sweep is the backstop of lost expiry messages: it marks every coupon past
// its expiry expired and every template past its end ended.
func (c *Coupons) Sweep(ctx context.Context) (coupons, templates int, err error) {
	now := c.o.Now()
	for {
		n, err := c.records.ExpireDue(ctx, now, sweepChunk)
		coupons += n
		if err != nil || n < sweepChunk {
			if err != nil {
				return coupons, templates, err
			}
			break
		}
	}
	due, err := c.templates.DueTemplates(ctx, now)
	if err != nil {
		return coupons, templates, err
	}
	for _, id := range due {
		if err := c.endTemplate(ctx, id); err != nil {
			return coupons, templates, err
		}
		templates++
	}
	return coupons, templates, nil
}
