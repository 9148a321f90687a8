package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/go-seckill/seckill/service/doublecheck"
	"github.com/go-seckill/seckill/service/payment"
)

var _ doublecheck.CheckPublisher = (*Publisher)(nil)

// DeferCheck publishes c to the check topic of nsqd number route (the
// others in turn when it fails), to be delivered after delay, at most
// payment.MaxDefer (nsqd's --max-req-timeout rejects longer deferrals).
func (p *Publisher) DeferCheck(ctx context.Context, c doublecheck.Check, delay time.Duration, route int64) error {
	body, err := json.Marshal(c)
	if err != nil {
		return err
	}
	delay = min(delay, payment.MaxDefer)
	return p.each(route, func(prod *nsq.Producer) error {
		return p.observe("deferred_publish", func() error { return prod.DeferredPublish(p.checkTopic, delay, body) })
	})
}
