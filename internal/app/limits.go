package app

import (
	"github.com/go-seckill/seckill/admission"
	"github.com/go-seckill/seckill/handlers"
)

// newAdmission is the admission of the limited versions' orders: its
// shared state in the instance's Redis, the units on sale read from the
// primary.
func (a *App) newAdmission() *admission.Admission {
	l := a.cfg.Limits
	adm := admission.New(a.redis, a.database, admission.Options{
		Order: l.Order, StockFactor: l.StockFactor, ClaimTTL: l.ClaimTTL, EarlyTTL: l.EarlyTTL, TotalsTTL: l.TotalsTTL,
		Counted: func(reason string) { a.metrics.RateLimited.WithLabelValues(reason).Inc() },
	})
	adm.IPFallbacks(a.metrics.LimitFallbacks.Inc)
	return adm
}

// limits are the edge's limits of the limited versions, around adm.
func (a *App) limits(adm *admission.Admission) *handlers.Limits {
	l := a.cfg.Limits
	return &handlers.Limits{
		Admission:       adm,
		Captchas:        admission.NewCaptchas(a.redis, l.CaptchaTTL),
		CaptchaIP:       admission.NewShared("ip:captcha", l.Captcha.IP, a.redis),
		CaptchaInstance: admission.NewLocal(l.Captcha.Instance),
		QueueSize:       l.QueueSize,
		QueueWait:       l.QueueWait,
	}
}
