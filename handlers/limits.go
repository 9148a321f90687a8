package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/go-seckill/seckill/admission"
	"github.com/go-seckill/seckill/service"
)

// Limits are the edge's limits of the limited versions (V8). Without them
// a limited version's route sells like its unlimited twin.
type Limits struct {
	Admission *admission.Admission
	Captchas  *admission.Captchas
	// CaptchaIP and CaptchaInstance bound POST /captcha, which draws an
	// image.
	CaptchaIP       *admission.Shared
	CaptchaInstance *admission.Local
	// QueueSize limited orders may wait up to QueueWait for a slot past
	// the in-flight cap; more answer 503 busy at once.
	QueueSize int
	QueueWait time.Duration
}

// The headers a client sends a captcha's solution in.
const (
	CaptchaIDHeader       = "X-Captcha-Id"
	CaptchaSolutionHeader = "X-Captcha-Solution"
)

// captchaOffer is where a client refused for its address fetches a captcha.
const captchaOffer = "/captcha"

// writeLimitsError answers a refusal of the limits (the gate's is
// service.ErrSoldOut, answered as any sold out), or any other error as
// writeError does.
func (a *api) writeLimitsError(c *gin.Context, err error) {
	switch {
	case errors.Is(err, admission.ErrRateLimited) || errors.Is(err, admission.ErrCaptcha):
		code := "rate_limited"
		if errors.Is(err, admission.ErrCaptcha) {
			code = "captcha_invalid"
		}
		c.Header("Retry-After", "1")
		c.JSON(http.StatusTooManyRequests, errorBody{Error: code, Message: err.Error() +
			"; solve a captcha (POST " + captchaOffer + ") and send it with the next order in " +
			CaptchaIDHeader + " and " + CaptchaSolutionHeader, Captcha: captchaOffer})
	case errors.Is(err, admission.ErrBusyInstance):
		a.busy(c)
	default:
		if errors.Is(err, admission.ErrTwin) {
			c.Header("Retry-After", "1")
		}
		a.writeError(c, err)
	}
}

// closedGate answers a keyless limited order of a goods whose gate this
// instance saw closed 409 sold_out from memory, before the edge: that
// answer costs less than the address's bucket, a round trip to Redis, and
// a flood at a sold-out goods then costs what V6's sold-out flag does. It
// takes none of the address's tokens. A keyed order goes on to the edge:
// its key may hold the order a first attempt was sold. The body is
// decoded here, once, for the handler too.
func (a *api) closedGate(c *gin.Context) {
	req, ok := a.orderRequest(c)
	if !ok {
		c.Abort()
		return
	}
	c.Set(decodedRequest, req)
	if c.GetHeader("Idempotency-Key") == "" && a.opts.Limits.Admission.Closed(req.GoodsID) {
		a.writeLimitsError(c, service.ErrSoldOut)
		c.Abort()
	}
}

// edge takes the client address's and the instance's tokens of a limited
// order before anything but its body is read; a solved captcha skips the
// address's limit once.
func (a *api) edge(c *gin.Context) {
	lim := a.opts.Limits
	ctx := c.Request.Context()
	solved := false
	if id := c.GetHeader(CaptchaIDHeader); id != "" {
		ok, err := lim.Captchas.Solve(ctx, id, c.GetHeader(CaptchaSolutionHeader))
		if err == nil && !ok {
			a.metrics.RateLimited.WithLabelValues(admission.ReasonCaptcha).Inc()
			err = admission.ErrCaptcha
		}
		if err != nil {
			a.writeLimitsError(c, err)
			c.Abort()
			return
		}
		solved = true
	}
	if err := lim.Admission.Edge(ctx, c.ClientIP(), solved); err != nil {
		if ctx.Err() == nil { // else the client left while waiting its turn
			a.writeLimitsError(c, err)
		}
		c.Abort()
	}
}

// admit admits a decoded limited order to the sale; false when it answered
// a refusal. release ends the claim once the order is answered.
func (a *api) admit(c *gin.Context, req service.OrderRequest) (release func(error), ok bool) {
	adm := a.opts.Limits.Admission
	ctx := c.Request.Context()
	done, err := adm.Claim(ctx, req)
	if err != nil {
		a.writeLimitsError(c, err)
		return nil, false
	}
	return func(err error) {
		adm.Answered(ctx, req, err)
		done()
	}, true
}

// waitForSlot is shed for the limited orders: past the cap an order waits
// up to QueueWait for a slot, QueueSize of them at most, so that stock
// that could sell still does; the rest answer 503 busy.
func (a *api) waitForSlot(s *slots) gin.HandlerFunc {
	lim := a.opts.Limits
	waiting := make(chan struct{}, lim.QueueSize)
	return func(c *gin.Context) {
		if s.tryServe(a, c) {
			return
		}
		select {
		case waiting <- struct{}{}:
		default:
			a.busy(c)
			return
		}
		start := time.Now()
		t := time.NewTimer(lim.QueueWait)
		defer t.Stop()
		select {
		case s.ch <- struct{}{}:
			<-waiting
			a.metrics.QueueWait.WithLabelValues("served").Observe(time.Since(start).Seconds())
			s.serve(a, c)
		case <-t.C:
			<-waiting
			a.metrics.QueueWait.WithLabelValues("busy").Observe(time.Since(start).Seconds())
			a.busy(c)
		case <-c.Request.Context().Done():
			<-waiting
			c.Abort()
		}
	}
}

// captchaRoutes serve the captchas a client refused for its address solves.
func (a *api) captchaRoutes(r *gin.Engine) {
	r.POST("/captcha", a.newCaptcha)
	r.GET("/captcha/:id", a.captchaImage)
}

func (a *api) newCaptcha(c *gin.Context) {
	lim := a.opts.Limits
	if lim == nil {
		writeErrorCode(c, http.StatusNotFound, "not_found", "no limits are configured: no captcha to solve")
		return
	}
	ctx := c.Request.Context()
	if _, ok := lim.CaptchaIP.Take(ctx, c.ClientIP()); !ok {
		a.metrics.RateLimited.WithLabelValues(admission.ReasonIP).Inc()
		c.Header("Retry-After", "1")
		writeErrorCode(c, http.StatusTooManyRequests, "rate_limited", "too many captchas from this address; try again in a moment")
		return
	}
	if _, ok := lim.CaptchaInstance.Take(""); !ok {
		a.busy(c)
		return
	}
	id, err := lim.Captchas.New(ctx)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"captcha_id": id, "image": "/captcha/" + id, "digits": admission.CaptchaLength})
}

func (a *api) captchaImage(c *gin.Context) {
	if a.opts.Limits == nil {
		writeErrorCode(c, http.StatusNotFound, "not_found", "no such captcha")
		return
	}
	c.Header("Content-Type", "image/png")
	c.Header("Cache-Control", "no-store")
	ok, err := a.opts.Limits.Captchas.WriteImage(c.Request.Context(), c.Param("id"), c.Writer)
	switch {
	case err != nil:
		c.Header("Content-Type", "application/json; charset=utf-8")
		a.writeError(c, err)
	case !ok:
		c.Header("Content-Type", "application/json; charset=utf-8")
		writeErrorCode(c, http.StatusNotFound, "not_found", "no such captcha: it expired or was used; POST /captcha for a new one")
	}
}
