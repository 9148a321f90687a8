package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/go-seckill/seckill/service/coupon"
	"github.com/go-seckill/seckill/service/payment"
)

// DeferExpiry publishes a coupon's or template's expiry to be delivered
// after delay, at most payment.MaxDefer (nsqd's limit): a later expiry
// arrives early and its consumer defers it again.
func (p *Publisher) DeferExpiry(ctx context.Context, m coupon.Expiry, delay time.Duration) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	delay = min(delay, payment.MaxDefer)
	return p.each(m.TemplateID+m.CouponID, func(prod *nsq.Producer) error {
		return p.observe("deferred_publish", func() error { return prod.DeferredPublish(p.couponExpiry, delay, body) })
	})
}

// TemplateChange is the body of the "template changed" broadcast.
type TemplateChange struct {
	TemplateID int64 `json:"template_id"`
}

// AnnounceTemplate broadcasts that a template changed; every instance
// reads the topic on a channel of its own.
func (p *Publisher) AnnounceTemplate(ctx context.Context, templateID int64) error {
	return p.announce(p.couponChange, TemplateChange{TemplateID: templateID}, templateID)
}

// GoodsChange is the body of the "goods changed" broadcast.
type GoodsChange struct {
	GoodsID int64 `json:"goods_id"`
}

// AnnounceGoods broadcasts that a goods was created or changed; every
// instance drops its cached copy (see goodscache).
func (p *Publisher) AnnounceGoods(ctx context.Context, goodsID int64) error {
	return p.announce(p.goodsChange, GoodsChange{GoodsID: goodsID}, goodsID)
}

// announce publishes a broadcast body as JSON; every instance reads the
// topic on a channel of its own.
func (p *Publisher) announce(topic string, body any, route int64) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return p.publish(topic, b, route)
}
