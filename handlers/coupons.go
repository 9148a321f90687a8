package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/go-seckill/seckill/service/coupon"
)

// Coupons is the coupon domain.
type Coupons interface {
	CreateTemplate(ctx context.Context, n coupon.NewTemplate) (coupon.Template, error)
	AddStock(ctx context.Context, templateID, n int64, opID string) (coupon.Template, bool, error)
	Template(ctx context.Context, id int64) (coupon.Template, error)
	Claimable(ctx context.Context) ([]coupon.Template, error)
	ListTemplates(ctx context.Context) ([]coupon.Template, error)
	Remaining(ctx context.Context, t coupon.Template) (int64, bool)
	Stats(ctx context.Context, id int64) (coupon.Stats, error)
	Claim(ctx context.Context, userID, templateID int64, key string) (coupon.Coupon, error)
	UserCoupons(ctx context.Context, userID int64, status string) ([]coupon.Coupon, error)
	Redeem(ctx context.Context, couponID, userID, orderID int64, amount *int64) (coupon.Redemption, error)
	Reconcile(ctx context.Context) ([]coupon.Drift, error)
}

// couponRoutes adds the coupon routes: claims share the order routes'
// in-flight cap (hot), the rest are reads and admin calls.
func (a *api) couponRoutes(r *gin.Engine, hot, admin *gin.RouterGroup) {
	admin.POST("/coupon-templates", a.createTemplate)
	admin.GET("/coupon-templates", a.adminTemplates)
	admin.POST("/coupon-templates/:id/stock", a.addTemplateStock)
	admin.GET("/coupon-templates/:id/stats", a.templateStats)
	r.GET("/coupon-templates", a.claimableTemplates)
	r.GET("/coupon-templates/:id", a.template)
	hot.POST("/coupons/claim", a.claim)
	r.POST("/coupons/:id/redeem", a.redeem)
	r.GET("/users/:id/coupons", a.userCoupons)
}

// templateJSON is a template as the API shows it.
type templateJSON struct {
	ID           int64      `json:"id"`
	Name         string     `json:"name"`
	Type         string     `json:"type"`
	Value        int64      `json:"value"`
	Threshold    int64      `json:"threshold"`
	Stock        int64      `json:"stock"`
	PerUserLimit int        `json:"per_user_limit"`
	StartAt      *time.Time `json:"start_at"`
	EndAt        *time.Time `json:"end_at"`
	ValidFor     string     `json:"valid_for"`
	SubStocks    int        `json:"sub_stocks"`
	Ended        bool       `json:"ended"`
	CreatedAt    time.Time  `json:"created_at"`
	Remaining    *int64     `json:"remaining,omitempty"` // nil: not asked, or Redis did not answer
}

func templateOut(t coupon.Template) templateJSON {
	return templateJSON{ID: t.ID, Name: t.Name, Type: t.Type, Value: t.Value, Threshold: t.Threshold, Stock: t.Stock,
		PerUserLimit: t.PerUserLimit, StartAt: t.StartAt, EndAt: t.EndAt, ValidFor: t.ValidFor.String(),
		SubStocks: t.SubStocks, Ended: t.Ended, CreatedAt: t.CreatedAt}
}

func (a *api) withRemaining(ctx context.Context, t coupon.Template) templateJSON {
	out := templateOut(t)
	if n, ok := a.svc.Coupons.Remaining(ctx, t); ok {
		out.Remaining = &n
	}
	return out
}

// createTemplateBody is POST /admin/coupon-templates's body; pointers tell
// a missing field from zero.
type createTemplateBody struct {
	Name         *string    `json:"name"`
	Type         *string    `json:"type"`
	Value        *int64     `json:"value"`
	Threshold    int64      `json:"threshold"`
	Stock        *int64     `json:"stock"`
	PerUserLimit *int       `json:"per_user_limit"`
	StartAt      *time.Time `json:"start_at"`
	EndAt        *time.Time `json:"end_at"`
	ValidFor     string     `json:"valid_for"`
	SubStocks    *int       `json:"sub_stocks"`
}

func (a *api) createTemplate(c *gin.Context) {
	var b createTemplateBody
	if !a.decode(c, &b) {
		return
	}
	if b.Name == nil || b.Type == nil || b.Value == nil || b.Stock == nil {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "name, type, value and stock are required")
		return
	}
	t, err := a.svc.Coupons.CreateTemplate(c.Request.Context(), coupon.NewTemplate{
		Name: *b.Name, Type: *b.Type, Value: *b.Value, Threshold: b.Threshold, Stock: *b.Stock, PerUserLimit: b.PerUserLimit,
		StartAt: b.StartAt, EndAt: b.EndAt, ValidFor: b.ValidFor, SubStocks: b.SubStocks,
	})
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, templateOut(t))
}

func (a *api) adminTemplates(c *gin.Context) {
	ts, err := a.svc.Coupons.ListTemplates(c.Request.Context())
	if err != nil {
		a.writeError(c, err)
		return
	}
	out := make([]templateJSON, len(ts))
	for i, t := range ts {
		out[i] = a.withRemaining(c.Request.Context(), t)
	}
	c.JSON(http.StatusOK, gin.H{"templates": out})
}

func (a *api) addTemplateStock(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var b struct {
		Add  *int64 `json:"add"`
		OpID string `json:"op_id"`
	}
	if !a.decode(c, &b) {
		return
	}
	if b.Add == nil {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "missing integer field(s): add")
		return
	}
	t, added, err := a.svc.Coupons.AddStock(c.Request.Context(), id, *b.Add, b.OpID)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"template": templateOut(t), "added": added})
}

func (a *api) templateStats(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	s, err := a.svc.Coupons.Stats(c.Request.Context(), id)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, s)
}

func (a *api) claimableTemplates(c *gin.Context) {
	ts, err := a.svc.Coupons.Claimable(c.Request.Context())
	if err != nil {
		a.writeError(c, err)
		return
	}
	out := make([]templateJSON, len(ts))
	for i, t := range ts {
		out[i] = a.withRemaining(c.Request.Context(), t)
	}
	c.JSON(http.StatusOK, gin.H{"templates": out, "server_time": time.Now().UTC()})
}

func (a *api) template(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	t, err := a.svc.Coupons.Template(c.Request.Context(), id)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, a.withRemaining(c.Request.Context(), t))
}

// couponJSON is a coupon as the API shows it; ids past 2^53 travel as
// strings, which JavaScript cannot hold as numbers.
type couponJSON struct {
	CouponID   string     `json:"coupon_id"`
	TemplateID int64      `json:"template_id"`
	UserID     int64      `json:"user_id"`
	Status     string     `json:"status"`
	ClaimedAt  time.Time  `json:"claimed_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	OrderID    string     `json:"order_id,omitempty"`
	UsedAt     *time.Time `json:"used_at,omitempty"`
}

func couponOut(cp coupon.Coupon) couponJSON {
	out := couponJSON{CouponID: strconv.FormatInt(cp.ID, 10), TemplateID: cp.TemplateID, UserID: cp.UserID,
		Status: coupon.StatusNames[cp.StatusAt(time.Now())], ClaimedAt: cp.ClaimedAt, ExpiresAt: cp.ExpiresAt, UsedAt: cp.UsedAt}
	if cp.OrderID != 0 {
		out.OrderID = strconv.FormatInt(cp.OrderID, 10)
	}
	return out
}

func (a *api) claim(c *gin.Context) {
	var b struct {
		UserID     *int64 `json:"user_id"`
		TemplateID *int64 `json:"template_id"`
	}
	if !a.decode(c, &b) {
		return
	}
	if missing := missingFields(map[string]*int64{"user_id": b.UserID, "template_id": b.TemplateID}); missing != "" {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", missing)
		return
	}
	cp, err := a.svc.Coupons.Claim(c.Request.Context(), *b.UserID, *b.TemplateID, c.GetHeader("Idempotency-Key"))
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, couponOut(cp))
}

// flexID is an id sent as a JSON number or as a string of digits: order
// ids pass 2^53, so clients in JavaScript send them as strings. bad says
// it was sent as something else.
type flexID struct {
	v   *int64
	bad bool
}

func (f *flexID) UnmarshalJSON(b []byte) error {
	n, err := strconv.ParseInt(string(bytes.Trim(b, `"`)), 10, 64)
	if err != nil {
		f.bad = true
		return nil
	}
	f.v = &n
	return nil
}

func (a *api) redeem(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var b struct {
		UserID  *int64 `json:"user_id"`
		OrderID flexID `json:"order_id"`
		Amount  *int64 `json:"amount"`
	}
	if !a.decode(c, &b) {
		return
	}
	if b.OrderID.bad {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "order_id must be an integer id: a number or a string of digits")
		return
	}
	if missing := missingFields(map[string]*int64{"user_id": b.UserID, "order_id": b.OrderID.v}); missing != "" {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", missing)
		return
	}
	r, err := a.svc.Coupons.Redeem(c.Request.Context(), id, *b.UserID, *b.OrderID.v, b.Amount)
	if err != nil {
		a.writeError(c, err)
		return
	}
	out := gin.H{"status": "used", "coupon_id": strconv.FormatInt(r.Coupon.ID, 10), "order_id": strconv.FormatInt(r.Coupon.OrderID, 10)}
	if r.Discount != nil {
		out["discount"] = *r.Discount
	}
	c.JSON(http.StatusOK, out)
}

func (a *api) userCoupons(c *gin.Context) {
	userID, ok := pathID(c)
	if !ok {
		return
	}
	cps, err := a.svc.Coupons.UserCoupons(c.Request.Context(), userID, c.Query("status"))
	if err != nil {
		a.writeError(c, err)
		return
	}
	out := make([]gin.H, len(cps))
	for i, cp := range cps {
		j := couponOut(cp)
		h := gin.H{"coupon_id": j.CouponID, "template_id": j.TemplateID, "user_id": j.UserID, "status": j.Status,
			"claimed_at": j.ClaimedAt, "expires_at": j.ExpiresAt}
		if j.OrderID != "" {
			h["order_id"] = j.OrderID
			h["used_at"] = j.UsedAt
		}
		// What the shopper needs to read the coupon, from the cache.
		if t, err := a.svc.Coupons.Template(c.Request.Context(), cp.TemplateID); err == nil {
			h["name"], h["type"], h["value"], h["threshold"] = t.Name, t.Type, t.Value, t.Threshold
		}
		out[i] = h
	}
	c.JSON(http.StatusOK, gin.H{"coupons": out})
}

var _ json.Unmarshaler = (*flexID)(nil)
