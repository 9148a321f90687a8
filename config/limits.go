package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/go-seckill/seckill/admission"
)

// Limits configure the edge's limits of the limited order versions (V8).
type Limits struct {
	TrustedProxies string          `mapstructure:"trusted_proxies"`
	Order          admission.Class `mapstructure:"order"`
	Captcha        admission.Class `mapstructure:"captcha"`
	StockFactor    float64         `mapstructure:"stock_factor"`
	QueueSize      int             `mapstructure:"queue_size"`
	QueueWait      time.Duration   `mapstructure:"queue_wait"`
	ClaimTTL       time.Duration   `mapstructure:"claim_ttl"`
	EarlyTTL       time.Duration   `mapstructure:"early_ttl"`
	TotalsTTL      time.Duration   `mapstructure:"totals_ttl"`
	CaptchaTTL     time.Duration   `mapstructure:"captcha_ttl"`
}

// Proxies lists limits.trusted_proxies.
func (l Limits) Proxies() []string {
	var out []string
	for _, p := range strings.Split(l.TrustedProxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c Config) validateLimits(bad func(key, why string)) {
	l := c.Limits
	for _, p := range l.Proxies() {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad("limits.trusted_proxies", fmt.Sprintf("%q is neither an IP nor a CIDR", p))
			}
		}
	}
	for key, lim := range map[string]admission.Limit{
		"limits.order.ip": l.Order.IP, "limits.order.instance": l.Order.Instance,
		"limits.captcha.ip": l.Captcha.IP, "limits.captcha.instance": l.Captcha.Instance,
	} {
		if err := lim.Validate(); err != nil {
			bad(key, err.Error())
		}
	}
	if l.StockFactor < 1 {
		bad("limits.stock_factor", "must be at least 1: fewer attempts than units would leave stock unsold by design")
	}
	if l.QueueSize < 0 {
		bad("limits.queue_size", "must be at least 0 (0: no waiting, 503 busy at once)")
	}
	if l.QueueWait < 0 || l.QueueWait+c.Order.WriteBudget >= c.HTTP.WriteTimeout {
		bad("limits.queue_wait", "must be at least 0, and with order.write_budget shorter than http.write_timeout: the answer must still be writable after waiting")
	}
	// A claim that ends before its order is answered lets a twin in: it
	// sells no more (the per-user limit and the stock hold), but keep
	// claim_ttl past order.write_budget.
	if l.ClaimTTL <= 0 || l.EarlyTTL <= 0 || l.TotalsTTL <= 0 || l.CaptchaTTL <= 0 {
		bad("limits.claim_ttl/early_ttl/totals_ttl/captcha_ttl", "must be positive durations such as 1s")
	}
}
