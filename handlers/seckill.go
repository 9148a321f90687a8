package handlers

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/go-seckill/seckill/service"
)

// accept answers POST /seckill (and /order<V> of the versions that accept
// asynchronously) with 202 and the request's token once its units are
// reserved and it is on its way to the writers; the body is the same as
// POST /order's, and so are the refusals. Location names the poll.
func (a *api) accept(version string) gin.HandlerFunc {
	return func(c *gin.Context) {
		req, ok := a.orderRequest(c)
		if !ok {
			return
		}
		acc, err := a.svc.Orders.Accept(c.Request.Context(), version, req, c.GetHeader("Idempotency-Key"))
		if err != nil {
			a.writeError(c, err)
			return
		}
		a.writeAcceptance(c, http.StatusAccepted, acc)
	}
}

// acceptance answers GET /seckill/:token: pending (poll again after
// poll_after_ms, also in Retry-After), ordered with the order to pay, or
// failed with the reason; 404 for a token no request had.
func (a *api) acceptance(version string) gin.HandlerFunc {
	return func(c *gin.Context) {
		acc, err := a.svc.Orders.Acceptance(c.Request.Context(), version, c.Param("token"))
		if err != nil {
			a.writeError(c, err)
			return
		}
		a.writeAcceptance(c, http.StatusOK, acc)
	}
}

func (a *api) writeAcceptance(c *gin.Context, status int, acc service.Acceptance) {
	c.Header("Location", "/seckill/"+acc.Token)
	if acc.Status == service.AcceptPending {
		c.Header("Retry-After", strconv.FormatInt(max(1, (acc.PollAfterMs+999)/1000), 10))
	}
	c.JSON(status, acc)
}
