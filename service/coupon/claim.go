package coupon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/substock"
)

// Claim gives userID one coupon of a template: parameter check,
// idempotency, per-user limit, a unit from a sub-stock, the record. The
// unit leaves Redis before the record is written, so that no more coupons
// are recorded than the stock holds; a record that fails gives its unit
// back, and one whose outcome is unknown is fenced (see fence).
//
// A claim under an Idempotency-Key key answers a retry with the coupon the
// key got: the key is unique per user in the user's coupon table, so two
// concurrent claims with one key record one coupon between them.
//
// The per-user limit holds in the database: each coupon of a template with
// a limit takes one of the user's slots 1..limit, unique per template and
// user, so concurrent claims of one user cannot pass it.
func (c *Coupons) Claim(ctx context.Context, userID, templateID int64, key string) (Coupon, error) {
	switch {
	case userID < 1:
		return Coupon{}, service.Invalid("user_id must be a positive integer")
	case templateID < 1:
		return Coupon{}, service.Invalid("template_id must be a positive integer")
	case len(key) > MaxKeyLen:
		return Coupon{}, service.Invalid("Idempotency-Key must be at most %d bytes", MaxKeyLen)
	}
	t, err := c.Template(ctx, templateID)
	if err != nil {
		return Coupon{}, err
	}
	at := service.CouponTable(userID)
	if key != "" {
		held, err := c.records.CouponByKey(ctx, at, userID, key)
		if err == nil {
			return keyed(held, templateID)
		}
		if !errors.Is(err, service.ErrNotFound) {
			return Coupon{}, err
		}
	}
	now := c.o.Now()
	if err := t.Claimable(now); err != nil {
		return Coupon{}, err
	}
	seq := 0
	if t.PerUserLimit > 0 {
		seq, err = c.freeSlot(ctx, at, t, userID)
		switch {
		case errors.Is(err, service.ErrLimitExceeded):
			return c.limitOrKeyed(ctx, at, userID, key, templateID)
		case err != nil:
			return Coupon{}, err
		}
	}
	i, err := c.picker.Take(ctx, t.Tags, 1)
	switch {
	case errors.Is(err, substock.ErrEmpty):
		return Coupon{}, service.ErrOutOfStock
	case err != nil:
		return Coupon{}, fmt.Errorf("%w: %w", service.ErrUnavailable, err)
	}
	cp := Coupon{ID: c.ids.NewID(), TemplateID: t.ID, UserID: userID, Seq: seq, Status: StatusUnused, SubStock: i, Key: key,
		ClaimedAt: now, ExpiresAt: now.Add(t.ValidFor)}
	return c.record(ctx, t, at, cp)
}

// keyed answers a claim whose key holds a coupon already.
func keyed(held Coupon, templateID int64) (Coupon, error) {
	if held.TemplateID != templateID {
		return Coupon{}, fmt.Errorf("%w: the key claimed a coupon of template %d", service.ErrKeyMismatch, held.TemplateID)
	}
	return held, nil
}

// freeSlot is the user's next per-user-limit slot: ErrLimitExceeded when
// the user holds the limit.
func (c *Coupons) freeSlot(ctx context.Context, at service.OrderTable, t Template, userID int64) (int, error) {
	n, err := c.records.CountClaims(ctx, at, t.ID, userID)
	if err != nil {
		return 0, err
	}
	if n >= t.PerUserLimit {
		return 0, service.ErrLimitExceeded
	}
	return n + 1, nil
}

// limitOrKeyed answers a claim whose user holds the per-user limit: with
// the coupon its key holds, if any (a twin under the same key was recorded
// after this claim looked the key up, so this claim is its retry), else
// ErrLimitExceeded.
func (c *Coupons) limitOrKeyed(ctx context.Context, at service.OrderTable, userID int64, key string, templateID int64) (Coupon, error) {
	if key == "" {
		return Coupon{}, service.ErrLimitExceeded
	}
	held, err := c.records.CouponByKey(ctx, at, userID, key)
	switch {
	case err == nil:
		return keyed(held, templateID)
	case errors.Is(err, service.ErrNotFound):
		return Coupon{}, service.ErrLimitExceeded
	}
	return Coupon{}, err
}

// record writes the claimed coupon within the write budget's first half.
func (c *Coupons) record(ctx context.Context, t Template, at service.OrderTable, cp Coupon) (Coupon, error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.WriteBudget/2)
	defer cancel()
	// A taken slot means a concurrent claim of the same user was recorded
	// first: count again and take the next slot, at most limit times.
	for range t.PerUserLimit + 1 {
		err := c.records.InsertCoupon(wctx, at, cp)
		switch {
		case err == nil:
			c.deferExpiry(ctx, Expiry{CouponID: cp.ID, UserID: cp.UserID, TemplateID: cp.TemplateID, At: cp.ExpiresAt.UnixMilli()})
			return cp, nil
		case errors.Is(err, service.ErrSlotTaken):
			// The database names the slot before the key: the slot may be
			// a twin's under the same key, whose coupon is then the answer.
			if cp.Seq, err = c.freeSlot(wctx, at, t, cp.UserID); err != nil {
				c.giveBack(ctx, t, cp)
				if errors.Is(err, service.ErrLimitExceeded) {
					return c.limitOrKeyed(wctx, at, cp.UserID, cp.Key, t.ID)
				}
				return Coupon{}, err
			}
		case errors.Is(err, service.ErrKeyHeld):
			c.giveBack(ctx, t, cp)
			held, err := c.records.CouponByKey(wctx, at, cp.UserID, cp.Key)
			if err != nil {
				return Coupon{}, err
			}
			return keyed(held, t.ID)
		case errors.Is(err, service.ErrAmbiguous):
			return c.fence(ctx, t, at, cp, err)
		default:
			c.giveBack(ctx, t, cp)
			return Coupon{}, err
		}
	}
	c.giveBack(ctx, t, cp)
	return Coupon{}, fmt.Errorf("%w: the user's claims of this template kept racing", service.ErrUnavailable)
}

// fence settles a claim whose record write had an unknown outcome: a void
// row under the coupon's id, in the second half of the write budget. Once
// it is there the claim's own write, should the server still finish it,
// fails on the id, so the unit can go back. When the row turns out to be
// the claim's, the claim succeeded. When not even the fence can be written,
// the unit stays taken (no coupon is ever issued twice for it) and
// reconciliation gives it back after consecutive passes see it missing.
func (c *Coupons) fence(ctx context.Context, t Template, at service.OrderTable, cp Coupon, cause error) (Coupon, error) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.WriteBudget/2)
	defer cancel()
	voided, status, err := c.records.VoidCoupon(fctx, at, cp)
	switch {
	case err != nil:
		c.log.Warn("claim outcome unknown; the unit stays taken until reconciliation", "coupon_id", cp.ID, "err", err)
		return Coupon{}, fmt.Errorf("%w: claim %d: %w", service.ErrAmbiguous, cp.ID, cause)
	case voided || status == StatusVoid:
		c.giveBack(ctx, t, cp)
		return Coupon{}, fmt.Errorf("%w: the record could not be written (%v); nothing was claimed", service.ErrUnavailable, cause)
	}
	c.deferExpiry(ctx, Expiry{CouponID: cp.ID, UserID: cp.UserID, TemplateID: cp.TemplateID, At: cp.ExpiresAt.UnixMilli()})
	return cp, nil
}

// giveBack returns the unit of a claim that recorded nothing. When Redis
// fails here the unit is missing from the sub-stocks until reconciliation
// sees the same difference on consecutive passes and puts it back.
func (c *Coupons) giveBack(ctx context.Context, t Template, cp Coupon) {
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := c.stocks.GiveBack(gctx, t.Tags[cp.SubStock], 1); err != nil {
		c.log.Warn("claim's unit not given back; reconciliation returns it", "template_id", t.ID, "coupon_id", cp.ID, "err", err)
		return
	}
	c.picker.Forget(t.Tags[cp.SubStock])
}
