package handlers

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/go-seckill/seckill/metrics"
)

// unmatched is the route label of a request no route took (404, 405).
const unmatched = "unmatched"

// observe counts every answer by route, version and status, times it, and
// writes the request log: every failure (5xx, at warn) and every refused
// request (4xx) but the expected refusals of a sale (409: sold out, limit
// reached, ...), and of the successes and those 409s at most
// RequestLogSuccesses lines a second; a line after some were held back
// says how many (outcomes_not_logged).
func (a *api) observe(versions map[string]string) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Request = c.Request.WithContext(metrics.WithRoute(c.Request.Context(), c.FullPath()))
		c.Next()
		elapsed := time.Since(start)
		route := c.FullPath()
		if route == "" {
			route = unmatched
		}
		status := c.Writer.Status()
		version := versions[route]
		a.metrics.Answer(route, version, status, elapsed)

		level := slog.LevelInfo
		var skipped int64
		switch {
		case status >= 500:
			level = slog.LevelWarn
		case status >= 400 && status != http.StatusConflict:
		default: // a success, or a sale's expected refusal
			var ok bool
			if ok, skipped = a.successes.allow(start); !ok {
				return
			}
		}
		attrs := []slog.Attr{
			slog.String("method", c.Request.Method), slog.String("route", route), slog.Int("status", status),
			slog.Duration("latency", elapsed),
		}
		if version != "" {
			attrs = append(attrs, slog.String("version", version))
		}
		if skipped > 0 {
			attrs = append(attrs, slog.Int64("outcomes_not_logged", skipped))
		}
		a.opts.Log.LogAttrs(c.Request.Context(), level, "request", attrs...)
	}
}

// sampler lets at most per successes a second through and counts the
// ones it held back since the last it let through.
type sampler struct {
	per     int
	mu      sync.Mutex
	second  int64
	n       int
	skipped int64
}

func (s *sampler) allow(now time.Time) (bool, int64) {
	if s.per <= 0 {
		return false, 0
	}
	sec := now.Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec != s.second {
		s.second, s.n = sec, 0
	}
	if s.n >= s.per {
		s.skipped++
		return false, 0
	}
	s.n++
	skipped := s.skipped
	s.skipped = 0
	return true, skipped
}

// slots are the hot requests served at once (http.max_in_flight).
type slots struct{ ch chan struct{} }

func (a *api) newSlots(max int) *slots {
	a.metrics.InFlightCap.Set(float64(max))
	return &slots{ch: make(chan struct{}, max)}
}

// tryServe serves c in a free slot; false when none is free.
func (s *slots) tryServe(a *api, c *gin.Context) bool {
	select {
	case s.ch <- struct{}{}:
		s.serve(a, c)
		return true
	default:
		return false
	}
}

// serve serves c in the slot just taken, and frees it.
func (s *slots) serve(a *api, c *gin.Context) {
	a.metrics.InFlight.Inc()
	defer func() {
		a.metrics.InFlight.Dec()
		<-s.ch
	}()
	c.Next()
}

// shed answers 503 busy at once when every slot is taken, and keeps the
// in-flight gauge.
func (a *api) shed(s *slots) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !s.tryServe(a, c) {
			a.busy(c)
		}
	}
}

// busy sheds c: 503 busy, try again in a moment.
func (a *api) busy(c *gin.Context) {
	a.metrics.Shed.Inc()
	c.Header("Retry-After", "1")
	writeErrorCode(c, http.StatusServiceUnavailable, "busy", "too many orders at once; try again in a moment")
	c.Abort()
}
