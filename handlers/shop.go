package handlers

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/deadletter"
)

// The shopper's orders and the admin's edits and dead letters.

// DeadLetters are the messages given up on, for the admin.
type DeadLetters interface {
	List(ctx context.Context, status string, before int64, limit int) ([]deadletter.Letter, error)
	Letter(ctx context.Context, id int64) (deadletter.Letter, error)
	Replay(ctx context.Context, id int64, actor, note string) (deadletter.Letter, bool, error)
	Resolve(ctx context.Context, id int64, actor, note string) (deadletter.Letter, bool, error)
}

func (a *api) shopRoutes(r *gin.Engine, admin *gin.RouterGroup) {
	r.POST("/orders/:id/pay", a.pay)
	r.GET("/orders/:id", a.orderDetail)
	r.GET("/users/:id/orders", a.userOrders)
	admin.PATCH("/goods/:id", a.editGoods)
	admin.GET("/dead-letters", a.deadLetters)
	admin.GET("/dead-letters/:id", a.deadLetter)
	admin.POST("/dead-letters/:id/replay", a.letterAction(func(d DeadLetters) letterAct { return d.Replay }))
	admin.POST("/dead-letters/:id/resolve", a.letterAction(func(d DeadLetters) letterAct { return d.Resolve }))
}

// pay marks an order paid: POST /orders/:id/pay {"user_id": 1,
// "coupon_id": "…"}, the coupon optional.
func (a *api) pay(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var b struct {
		UserID   *int64 `json:"user_id"`
		CouponID flexID `json:"coupon_id"`
	}
	if !a.decode(c, &b) {
		return
	}
	if b.UserID == nil {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "missing integer field(s): user_id")
		return
	}
	coupon := int64(0)
	if b.CouponID.bad || (b.CouponID.v != nil && *b.CouponID.v < 1) {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "coupon_id must be a positive integer, as a number or a string of digits")
		return
	} else if b.CouponID.v != nil {
		coupon = *b.CouponID.v
	}
	o, err := a.svc.Payments.Pay(c.Request.Context(), id, *b.UserID, coupon)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

// orderDetail answers GET /orders/:id?user_id=: the buyer's order as it stands.
func (a *api) orderDetail(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	user, err := strconv.ParseInt(c.Query("user_id"), 10, 64)
	if err != nil || user < 1 {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "query parameter user_id must be a positive integer")
		return
	}
	o, err := a.svc.Payments.Order(c.Request.Context(), id, user)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

func (a *api) userOrders(c *gin.Context) {
	user, ok := pathID(c)
	if !ok {
		return
	}
	os, err := a.svc.Payments.UserOrders(c.Request.Context(), user)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"orders": os, "server_time": time.Now().UTC()})
}

// editGoods answers PATCH /admin/goods/:id {"name", "start_at", "end_at"}:
// every field is set as sent, a null or missing time opening that side.
func (a *api) editGoods(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var b struct {
		Name    *string    `json:"name"`
		StartAt *time.Time `json:"start_at"`
		EndAt   *time.Time `json:"end_at"`
	}
	if !a.decode(c, &b) {
		return
	}
	if b.Name == nil {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "name is required; start_at and end_at are set as sent (missing or null: open)")
		return
	}
	g, err := a.svc.Catalog.EditGoods(c.Request.Context(), id, *b.Name, service.SaleWindow{StartAt: b.StartAt, EndAt: b.EndAt})
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, g)
}

func (a *api) deadLetters(c *gin.Context) {
	limit, before := 50, int64(0)
	var err error
	if s := c.Query("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil {
			limit = -1
		}
	}
	if s := c.Query("before"); s != "" {
		if before, err = strconv.ParseInt(s, 10, 64); err != nil {
			before = -1
		}
	}
	ls, err := a.svc.DeadLetters.List(c.Request.Context(), c.Query("status"), before, limit)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"dead_letters": ls})
}

func (a *api) deadLetter(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	l, err := a.svc.DeadLetters.Letter(c.Request.Context(), id)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, l)
}

// letterAct is a replay or a resolve.
type letterAct func(ctx context.Context, id int64, actor, note string) (deadletter.Letter, bool, error)

// letterAction answers a replay or a resolve: {"by", "note"}, both
// optional (the body too). The admin token names nobody, so the request
// says who acts; "admin" when it does not.
func (a *api) letterAction(action func(DeadLetters) letterAct) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := pathID(c)
		if !ok {
			return
		}
		var b struct {
			By   string `json:"by"`
			Note string `json:"note"`
		}
		if c.Request.ContentLength != 0 && !a.decode(c, &b) {
			return
		}
		l, acted, err := action(a.svc.DeadLetters)(c.Request.Context(), id, b.By, b.Note)
		if err != nil {
			a.writeError(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"letter": l, "acted": acted})
	}
}
