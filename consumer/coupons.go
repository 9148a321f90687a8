package consumer

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/go-seckill/seckill/service/coupon"
	"github.com/go-seckill/seckill/service/payment"
)

// Expirer expires coupons and ends templates; wait is how much longer an
// early message must wait.
type Expirer interface {
	Expire(ctx context.Context, m coupon.Expiry) (wait time.Duration, err error)
}

// StartCouponExpiry runs the expiry of coupons and templates. A message that
// arrives before its time (deferrals are capped, and nsqd delivers deferred
// messages early after a restart) is deferred again for the time left; a
// failure is retried with backoff, and given up after o.MaxAttempts: the
// sweep expires what a lost message would have.
func StartCouponExpiry(e Expirer, o Options, log *slog.Logger) (*Consumer, error) {
	timeout := applyTimeout(o)
	return start(o, nsq.HandlerFunc(func(m *nsq.Message) error {
		var ex coupon.Expiry
		if err := json.Unmarshal(m.Body, &ex); err != nil || ex.TemplateID <= 0 {
			log.Warn("undecodable coupon expiry dropped; the sweep covers it", "body", string(m.Body))
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		wait, err := e.Expire(ctx, ex)
		switch {
		case err == nil && wait > 0:
			m.DisableAutoResponse()
			m.RequeueWithoutBackoff(min(wait, payment.MaxDefer))
			return nil
		case err != nil && m.Attempts >= o.MaxAttempts:
			log.Warn("coupon expiry given up; the sweep expires it", "coupon_id", ex.CouponID, "template_id", ex.TemplateID, "err", err)
			return nil
		}
		return err
	}))
}

// StartCouponChanges listens for "template changed" broadcasts on a channel
// of this instance's own (o.Channel should end in #ephemeral) and calls
// changed with each template id.
func StartCouponChanges(changed func(templateID int64), o Options) (*Consumer, error) {
	return StartBroadcast("template_id", changed, o)
}

// StartGoodsChanges listens for "goods changed" broadcasts (V9's cache
// invalidations) on a channel of this instance's own and calls changed
// with each goods id.
func StartGoodsChanges(changed func(goodsID int64), o Options) (*Consumer, error) {
	return StartBroadcast("goods_id", changed, o)
}

// StartBroadcast listens on a channel of this instance's own (o.Channel
// should end in #ephemeral, so that nsqd drops it when the instance goes)
// for broadcasts whose JSON body names an id in field, and calls each with
// it. A body that cannot be read is dropped: the caches' and flags' short
// lives cover it.
func StartBroadcast(field string, each func(id int64), o Options) (*Consumer, error) {
	return start(o, nsq.HandlerFunc(func(m *nsq.Message) error {
		var body map[string]json.RawMessage
		var id int64
		if json.Unmarshal(m.Body, &body) == nil && json.Unmarshal(body[field], &id) == nil && id > 0 {
			each(id)
		}
		return nil
	}))
}
