package coupon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/substock"
	"github.com/go-seckill/seckill/service/tiered"
)

// Coupons is the coupon domain's one unit: templates, claims, redemption,
// expiry and reconciliation.
type Coupons struct {
	templates Templates
	records   Records
	stocks    SubStocks
	cache     TemplateCache
	locker    Locker
	messages  Messages
	ids       IDs
	picker    *substock.Picker
	o         Options
	log       *slog.Logger

	local *tiered.Cache[int64, Template] // the first level of the template cache
	list  *otter.Cache[int, []int64]     // ids of templates not ended, one entry

	mu    sync.Mutex
	drift map[int64]Drift // the drift each template showed on the previous pass
}

// Options tune the domain; zero values take the defaults in brackets.
type Options struct {
	// WriteBudget bounds a claim's record write and, if its outcome is
	// unknown, the fence after it [10s].
	WriteBudget time.Duration
	LocalTTL    time.Duration // how long this instance keeps a template [5s]
	AbsentTTL   time.Duration // how long an unknown id is remembered as such [2s]
	RedisTTL    time.Duration // how long Redis keeps a template [10m]
	// EmptyFor is how long a sub-stock seen empty is skipped [500ms].
	EmptyFor time.Duration
	Now      func() time.Time
	// CacheStats, if set, records the hits, misses and loads of the
	// instance's template cache.
	CacheStats stats.Recorder
}

// The bounds of a template's fields.
const (
	MaxStock        = 1_000_000_000
	MaxPerUserLimit = 1000
	MaxSubStocks    = 64
	MaxNameLen      = 200
	MaxKeyLen       = 160
	MinValidFor     = time.Second
	MaxValidFor     = 10 * 365 * 24 * time.Hour
	DefaultValidFor = 30 * 24 * time.Hour
	// UnitsPerSubStock is how many units the default split gives each
	// sub-stock at least: see DefaultSubStocks.
	UnitsPerSubStock = 1000
)

// New wires the domain.
func New(templates Templates, records Records, stocks SubStocks, cache TemplateCache, locker Locker, messages Messages, ids IDs, o Options, log *slog.Logger) *Coupons {
	o.WriteBudget = orDefault(o.WriteBudget, 10*time.Second)
	o.LocalTTL = orDefault(o.LocalTTL, 5*time.Second)
	o.AbsentTTL = orDefault(o.AbsentTTL, 2*time.Second)
	o.RedisTTL = orDefault(o.RedisTTL, 10*time.Minute)
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Coupons{templates: templates, records: records, stocks: stocks, cache: cache, locker: locker, messages: messages,
		ids: ids, picker: substock.New(stocks, o.EmptyFor), o: o, log: log, drift: map[int64]Drift{}}
	c.local = tiered.New(tiered.Options{MaxSize: 100_000, TTL: o.LocalTTL, AbsentTTL: o.AbsentTTL, Stats: o.CacheStats}, c.load)
	c.list = otter.Must(&otter.Options[int, []int64]{MaximumSize: 1, ExpiryCalculator: otter.ExpiryWriting[int, []int64](time.Second)})
	return c
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// NewTemplate is what an admin asks for; nil fields take their defaults.
type NewTemplate struct {
	Name         string
	Type         string
	Value        int64
	Threshold    int64
	Stock        int64
	PerUserLimit *int
	StartAt      *time.Time
	EndAt        *time.Time
	ValidFor     string
	SubStocks    *int
}

// DefaultPerUserLimit is a template's per-user limit when none is given:
// one coupon per shopper, the usual promotion.
const DefaultPerUserLimit = 1

func (n NewTemplate) check() (Template, error) {
	t := Template{Name: strings.TrimSpace(n.Name), Type: n.Type, Value: n.Value, Threshold: n.Threshold, Stock: n.Stock,
		PerUserLimit: DefaultPerUserLimit, StartAt: n.StartAt, EndAt: n.EndAt, ValidFor: DefaultValidFor}
	switch {
	case t.Name == "" || utf8.RuneCountInString(t.Name) > MaxNameLen:
		return t, service.Invalid("name must be 1 to %d characters", MaxNameLen)
	case t.Type != TypeFixed && t.Type != TypePercent && t.Type != TypeThreshold:
		return t, service.Invalid("type must be fixed, percent or threshold")
	case t.Type == TypePercent && (t.Value < 1 || t.Value > 99):
		return t, service.Invalid("value of a percent coupon must be a percentage from 1 to 99")
	case t.Type != TypePercent && (t.Value < 1 || t.Value > MaxStock):
		return t, service.Invalid("value must be cents from 1 to %d", MaxStock)
	case t.Type == TypeThreshold && (t.Threshold < t.Value || t.Threshold > 100*MaxStock):
		return t, service.Invalid("threshold of a threshold coupon must be at least its value, in cents")
	case t.Type != TypeThreshold && t.Threshold != 0:
		return t, service.Invalid("threshold applies to threshold coupons only")
	case t.Stock < 0 || t.Stock > MaxStock:
		return t, service.Invalid("stock must be between 0 and %d", MaxStock)
	case t.StartAt != nil && t.EndAt != nil && !t.EndAt.After(*t.StartAt):
		return t, service.Invalid("end_at must be after start_at")
	}
	if n.PerUserLimit != nil {
		if *n.PerUserLimit < 0 || *n.PerUserLimit > MaxPerUserLimit {
			return t, service.Invalid("per_user_limit must be between 0 (no limit) and %d", MaxPerUserLimit)
		}
		t.PerUserLimit = *n.PerUserLimit
	}
	if n.ValidFor != "" {
		d, err := time.ParseDuration(n.ValidFor)
		if err != nil || d < MinValidFor || d > MaxValidFor {
			return t, service.Invalid("valid_for must be a duration such as \"72h\" or \"3s\", from %v to %v", MinValidFor, MaxValidFor)
		}
		t.ValidFor = d
	}
	if n.SubStocks != nil {
		if *n.SubStocks < 1 || *n.SubStocks > MaxSubStocks {
			return t, service.Invalid("sub_stocks must be between 1 and %d", MaxSubStocks)
		}
		t.SubStocks = *n.SubStocks
	}
	return t, nil
}

// DefaultSubStocks splits a stock over one sub-stock per Redis master once
// each would hold at least UnitsPerSubStock units, and over fewer below
// that. One master runs one script at a time (the seed measured about
// 20,000 writes/s per shard), so sub-stocks beyond one per master add
// tries near the end of a sale and no throughput; and a small stock sells
// out within milliseconds on one master anyway, while split it would leave
// claims probing empty sub-stocks.
func DefaultSubStocks(stock int64, masters int) int {
	return int(max(1, min(int64(masters), stock/UnitsPerSubStock)))
}

// CreateTemplate records a template and loads its stock into its
// sub-stocks. The initial stock is an addition like any other (op
// "initial"): should Redis fail after MySQL recorded it, reconciliation
// completes it.
func (c *Coupons) CreateTemplate(ctx context.Context, n NewTemplate) (Template, error) {
	t, err := n.check()
	if err != nil {
		return Template{}, err
	}
	if t.SubStocks == 0 {
		masters, err := c.stocks.Masters(ctx)
		if err != nil {
			return Template{}, err
		}
		t.SubStocks = DefaultSubStocks(t.Stock, masters)
	}
	if t.Tags, err = c.stocks.Spread(ctx, t.SubStocks, fmt.Sprintf("ct%d", c.ids.NewID())); err != nil {
		return Template{}, err
	}
	if t, err = c.templates.CreateTemplate(ctx, t); err != nil {
		return Template{}, err
	}
	c.applyOp(ctx, t, StockOp{TemplateID: t.ID, OpID: InitialOp, Added: t.Stock})
	if t.EndAt != nil {
		c.deferExpiry(ctx, Expiry{TemplateID: t.ID, At: t.EndAt.UnixMilli()})
	}
	c.publish(ctx, t)
	return t, nil
}

// InitialOp is the op id of a template's initial stock.
const InitialOp = "initial"

// MaxAdd bounds one addition.
const MaxAdd = MaxStock

// AddStock adds n units to a template under opID, once: a repeat of opID
// changes nothing and says added false. MySQL first, then the sub-stocks,
// each under the op's marker.
func (c *Coupons) AddStock(ctx context.Context, templateID, n int64, opID string) (Template, bool, error) {
	switch {
	case n < 1 || n > MaxAdd:
		return Template{}, false, service.Invalid("add must be between 1 and %d: stock is only ever added", MaxAdd)
	case opID == "" || len(opID) > 100 || opID == InitialOp:
		return Template{}, false, service.Invalid("op_id must be 1 to 100 characters, and not %q", InitialOp)
	}
	t, added, err := c.templates.AddTemplateStock(ctx, StockOp{TemplateID: templateID, OpID: opID, Added: n})
	if err != nil || !added {
		return t, added, err
	}
	c.applyOp(ctx, t, StockOp{TemplateID: templateID, OpID: opID, Added: n})
	c.publish(ctx, t)
	return t, true, nil
}

// applyOp puts an addition's units into the sub-stocks, each step under the
// op's marker (which stays: a copy of the step adds nothing, ever), then
// settles its record. A failure leaves the op pending
// for reconciliation, which runs the same steps.
func (c *Coupons) applyOp(ctx context.Context, t Template, op StockOp) {
	if err := c.completeOp(ctx, t, op); err != nil {
		c.log.Warn("coupon stock recorded; redis gets it at the next reconciliation", "template_id", t.ID, "op_id", op.OpID, "err", err)
	}
}

func (c *Coupons) completeOp(ctx context.Context, t Template, op StockOp) error {
	ctx = context.WithoutCancel(ctx)
	for i, units := range substock.Spread(op.Added, len(t.Tags)) {
		if units == 0 {
			continue
		}
		if err := c.stocks.Add(ctx, t.Tags[i], units, op.OpID); err != nil {
			return err
		}
	}
	c.picker.Forget(t.Tags...)
	return c.templates.SettleStockOp(ctx, t.ID, op.OpID)
}

// publish puts a changed template in Redis and tells every instance.
func (c *Coupons) publish(ctx context.Context, t Template) {
	ctx = context.WithoutCancel(ctx)
	if err := c.cache.CacheTemplate(ctx, t, c.o.RedisTTL); err != nil {
		c.log.Warn("template not cached in redis; readers load it from mysql", "template_id", t.ID, "err", err)
		_ = c.cache.DropTemplate(ctx, t.ID)
	}
	c.Changed(t.ID)
	if err := c.messages.AnnounceTemplate(ctx, t.ID); err != nil {
		c.log.Warn("template change not announced; other instances see it within their cache's time", "template_id", t.ID, "err", err)
	}
}

// Changed drops this instance's copy of a template and forgets which of its
// sub-stocks it saw empty: an admin changed it.
func (c *Coupons) Changed(templateID int64) {
	if old, ok := c.local.Invalidate(templateID); ok {
		c.picker.Forget(old.Tags...)
	}
	c.list.InvalidateAll()
}

// Template reads a template through the two cache levels: this instance's
// (otter), then Redis, then MySQL. Concurrent misses of one id share one
// load (otter's loader runs once per key at a time), and an unknown id is
// remembered as such for AbsentTTL.
func (c *Coupons) Template(ctx context.Context, id int64) (Template, error) {
	if id < 1 {
		return Template{}, fmt.Errorf("%w: coupon template %d", service.ErrNotFound, id)
	}
	t, found, err := c.local.Get(ctx, id)
	if err != nil {
		return Template{}, err
	}
	if !found {
		return Template{}, fmt.Errorf("%w: coupon template %d", service.ErrNotFound, id)
	}
	return t, nil
}

func (c *Coupons) load(ctx context.Context, id int64) (Template, bool, error) {
	t, found, absent, err := c.cache.CachedTemplate(ctx, id)
	switch {
	case err == nil && absent:
		return Template{}, false, nil
	case err == nil && found:
		return t, true, nil
	case err != nil:
		c.log.Warn("redis did not answer for a template; reading mysql", "template_id", id, "err", err)
	}
	t, err = c.templates.Template(ctx, id)
	switch {
	case errors.Is(err, service.ErrNotFound):
		_ = c.cache.CacheAbsent(ctx, id, c.o.AbsentTTL)
		return Template{}, false, nil
	case err != nil:
		return Template{}, false, err
	}
	_ = c.cache.CacheTemplate(ctx, t, c.o.RedisTTL)
	return t, true, nil
}

// Claimable lists the templates claimable now, with their remaining units.
func (c *Coupons) Claimable(ctx context.Context) ([]Template, error) {
	ids, err := c.list.Get(ctx, 0, otter.LoaderFunc[int, []int64](func(ctx context.Context, _ int) ([]int64, error) {
		ts, err := c.templates.ListTemplates(ctx)
		if err != nil {
			return nil, err
		}
		ids := make([]int64, 0, len(ts))
		for _, t := range ts {
			if !t.Ended {
				ids = append(ids, t.ID)
			}
		}
		return ids, nil
	}))
	if err != nil {
		return nil, err
	}
	now := c.o.Now()
	out := []Template{}
	for _, id := range ids {
		t, err := c.Template(ctx, id)
		if errors.Is(err, service.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if t.Claimable(now) == nil {
			out = append(out, t)
		}
	}
	return out, nil
}

// ListTemplates lists every template, for admins, from MySQL.
func (c *Coupons) ListTemplates(ctx context.Context) ([]Template, error) {
	return c.templates.ListTemplates(ctx)
}

// Remaining sums a template's sub-stocks in Redis; ok is false when a
// master holding one of them does not answer.
func (c *Coupons) Remaining(ctx context.Context, t Template) (remaining int64, ok bool) {
	levels, err := c.stocks.Levels(ctx, t.Tags)
	if err != nil {
		return 0, false
	}
	for _, l := range levels {
		if l != nil {
			remaining += *l
		}
	}
	return remaining, true
}

// SubStockStats is one sub-stock's level.
type SubStockStats struct {
	Index     int    `json:"index"`
	Tag       string `json:"tag"`
	Remaining *int64 `json:"remaining"` // nil: missing, or its master does not answer
}

// Stats are a template's figures: its stock, the records in MySQL and the
// units in Redis.
type Stats struct {
	TemplateID     int64           `json:"template_id"`
	Stock          int64           `json:"stock"`
	Issued         int64           `json:"issued"`
	RedisRemaining int64           `json:"redis_remaining"`
	SubStocks      []SubStockStats `json:"sub_stocks"`
	Used           int64           `json:"used"`
	Expired        int64           `json:"expired"`
	PendingOps     int             `json:"pending_ops"` // additions Redis does not hold yet
}

// Stats reads a template's figures from MySQL and Redis, not from caches.
func (c *Coupons) Stats(ctx context.Context, id int64) (Stats, error) {
	t, err := c.templates.Template(ctx, id)
	if err != nil {
		return Stats{}, err
	}
	counts, err := c.records.CouponCounts(ctx, id, c.o.Now())
	if err != nil {
		return Stats{}, err
	}
	pending, err := c.templates.PendingStockOps(ctx, id)
	if err != nil {
		return Stats{}, err
	}
	s := Stats{TemplateID: id, Stock: t.Stock, Issued: counts.Issued, Used: counts.Used, Expired: counts.Expired, PendingOps: len(pending)}
	levels := c.levelsEach(ctx, t.Tags)
	for i, tag := range t.Tags {
		s.SubStocks = append(s.SubStocks, SubStockStats{Index: i, Tag: tag, Remaining: levels[i]})
		if levels[i] != nil {
			s.RedisRemaining += *levels[i]
		}
	}
	return s, nil
}

// levelsEach reads each sub-stock on its own, so that a failed master
// leaves out its sub-stocks only.
func (c *Coupons) levelsEach(ctx context.Context, tags []string) []*int64 {
	if levels, err := c.stocks.Levels(ctx, tags); err == nil {
		return levels
	}
	out := make([]*int64, len(tags))
	for i, tag := range tags {
		if l, err := c.stocks.Levels(ctx, []string{tag}); err == nil {
			out[i] = l[0]
		}
	}
	return out
}

// RefreshRedis writes every template not ended into Redis from MySQL, on
// one instance at a time: the periodic job that keeps the second level
// fresh even when a broadcast was missed or Redis lost keys.
func (c *Coupons) RefreshRedis(ctx context.Context) (int, error) {
	unlock, ok, err := c.locker.Lock(ctx, "coupon-templates-refresh", time.Minute)
	if err != nil || !ok {
		return 0, err
	}
	defer unlock()
	ts, err := c.templates.ListTemplates(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range ts {
		if err := c.cache.CacheTemplate(ctx, t, c.o.RedisTTL); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// deferExpiry schedules an expiry message; the sweep is the backstop of
// one that could not be published.
func (c *Coupons) deferExpiry(ctx context.Context, m Expiry) {
	delay := max(time.Until(time.UnixMilli(m.At)), 0)
	if err := c.messages.DeferExpiry(context.WithoutCancel(ctx), m, delay); err != nil {
		c.log.Warn("expiry not scheduled; the sweep expires it", "template_id", m.TemplateID, "coupon_id", m.CouponID, "err", err)
	}
}
