// Package handlers is the HTTP face of the service: routes in one place,
// each handler decodes, calls the service and encodes.
package handlers

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/go-seckill/seckill/metrics"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/recovery"
	"github.com/go-seckill/seckill/service/reservation"
	"github.com/go-seckill/seckill/web"
)

// Orders places orders.
type Orders interface {
	PlaceOrderOnce(ctx context.Context, version string, req service.OrderRequest, idempotencyKey string) (service.Order, error)
	// PriorOrder is the order a key was already answered with for req.
	PriorOrder(ctx context.Context, version string, req service.OrderRequest, idempotencyKey string) (service.Order, bool, error)
	// Accept and Acceptance are async accept and poll (V13).
	Accept(ctx context.Context, version string, req service.OrderRequest, idempotencyKey string) (service.Acceptance, error)
	Acceptance(ctx context.Context, version, token string) (service.Acceptance, error)
}

// Catalog is the goods, for admins and shoppers.
type Catalog interface {
	CreateGoods(ctx context.Context, g service.NewGoods) (service.Goods, error)
	AddStock(ctx context.Context, goodsID, n int64, opID string) (service.Goods, bool, error)
	Goods(ctx context.Context, id int64) (service.Goods, error)
	ListGoods(ctx context.Context) ([]service.Goods, error)
	ShopperGoods(ctx context.Context) ([]service.Goods, error)
	Stats(ctx context.Context, id int64) (service.Stats, error)
	EditGoods(ctx context.Context, id int64, name string, w service.SaleWindow) (service.Goods, error)
}

// Payments pays orders and finds them for their buyer.
type Payments interface {
	Pay(ctx context.Context, orderID, userID, couponID int64) (service.OrderDetail, error)
	Order(ctx context.Context, orderID, userID int64) (service.OrderDetail, error)
	UserOrders(ctx context.Context, userID int64) ([]service.OrderDetail, error)
}

// Reservations takes the reservations of a reservation sale.
type Reservations interface {
	Reserve(ctx context.Context, goodsID, userID int64) (reservation.Reservation, error)
}

// Reconciler runs a reconciliation pass now: a full one, or one that
// skips the goods whose stocks did not move since they were found in line.
type Reconciler interface {
	Reconcile(ctx context.Context) ([]recovery.Drift, error)
	ReconcileAll(ctx context.Context) ([]recovery.Drift, error)
}

// Service is every unit of the domain the routes call, and readiness.
type Service struct {
	Orders      Orders
	Catalog     Catalog
	Payments    Payments
	Reconciler  Reconciler
	Coupons     Coupons
	DeadLetters DeadLetters
	// Reservations may be nil: POST /goods/:id/reservations then answers 503.
	Reservations Reservations
	// Buckets may be nil: the bucket routes then answer 503.
	Buckets Buckets
	// Ready reports the first dependency that does not answer.
	Ready func(ctx context.Context) error
}

// Options configure the routes.
type Options struct {
	AdminToken   string
	MaxBodyBytes int64
	// MaxInFlight bounds the order requests served at once: past it the
	// instance sheds load with 503 busy instead of queueing without bound.
	MaxInFlight int
	// Draining turns readiness off while the instance shuts down.
	Draining func() bool
	Log      *slog.Logger
	// Metrics count and time the answers; nil: metrics of the router's own,
	// served nowhere.
	Metrics *metrics.Metrics
	// RequestLogSuccesses is the most successes (2xx) and expected refusals
	// (409) logged a second; every other answer is logged.
	RequestLogSuccesses int
	// Limits admit the limited versions' orders; nil: they are not limited.
	Limits *Limits
	// TrustedProxies are the proxies whose X-Forwarded-For and X-Real-IP
	// name the client; none: the peer is the client.
	TrustedProxies []string
}

type api struct {
	svc       Service
	opts      Options
	metrics   *metrics.Metrics
	successes *sampler
}

// New returns the router with every route of the service.
func New(svc Service, opts Options) http.Handler {
	a := &api{svc: svc, opts: opts, metrics: opts.Metrics, successes: &sampler{per: opts.RequestLogSuccesses}}
	if a.metrics == nil {
		a.metrics = metrics.New()
	}
	// The version each order route sells through, for the metrics and the
	// request log.
	versions := map[string]string{"/order": service.BestVersion().Name, "/seckill": service.AcceptVersion().Name}
	for _, v := range service.VersionNames() {
		versions["/order"+v] = v
	}
	r := gin.New()
	// No proxy is trusted until one is configured: ClientIP is the peer.
	// config.Validate checks the addresses.
	_ = r.SetTrustedProxies(opts.TrustedProxies)
	r.Use(a.observe(versions), a.recover)
	// Unknown paths and wrong methods answer JSON like every other error;
	// Gin sets the 405's Allow header.
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) {
		writeErrorCode(c, http.StatusNotFound, "not_found", "no such route")
	})
	r.NoMethod(func(c *gin.Context) {
		writeErrorCode(c, http.StatusMethodNotAllowed, "method_not_allowed", "this route does not take "+c.Request.Method+"; the Allow header lists the methods it takes")
	})

	r.GET("/healthz", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "ok", "versions": service.VersionNames(), "order": service.BestVersion().Name})
	})
	r.GET("/readyz", a.ready)
	r.GET("/goods", a.shopperGoods)
	r.GET("/goods/:id", a.goods)
	r.POST("/goods/:id/reservations", a.reserve)
	inFlight := a.newSlots(opts.MaxInFlight)
	orders := r.Group("/", a.shed(inFlight))
	for _, v := range service.Versions() {
		if v.AsyncAccept {
			orders.POST("/order"+v.Name, a.accept(v.Name))
			continue
		}
		if v.Limits && opts.Limits != nil {
			r.POST("/order"+v.Name, a.closedGate, a.edge, a.waitForSlot(inFlight), a.order(v.Name))
			continue
		}
		orders.POST("/order"+v.Name, a.order(v.Name))
	}
	orders.POST("/order", a.order(service.BestVersion().Name))
	orders.POST("/seckill", a.accept(service.AcceptVersion().Name))
	r.GET("/seckill/:token", a.acceptance(service.AcceptVersion().Name))

	// The pages: the admin page is public, the API calls it makes are not.
	pages := http.FS(web.Files())
	r.GET("/", func(c *gin.Context) { c.FileFromFS("/", pages) })
	r.GET("/admin", func(c *gin.Context) { c.FileFromFS("admin.html", pages) })
	r.GET("/docs", func(c *gin.Context) { c.FileFromFS("api.html", pages) })
	r.GET("/openapi.json", serveOpenAPI)
	r.StaticFS("/static", pages)

	admin := r.Group("/admin", a.requireAdmin)
	admin.GET("/goods", a.listGoods)
	admin.POST("/goods", a.adminGoods)
	admin.GET("/goods/:id/stats", a.stats)
	admin.POST("/reconcile", a.reconcile)
	a.bucketRoutes(admin)
	a.couponRoutes(r, orders, admin)
	a.shopRoutes(r, admin)
	a.captchaRoutes(r)
	return r
}

func (a *api) ready(c *gin.Context) {
	if a.opts.Draining != nil && a.opts.Draining() {
		writeErrorCode(c, http.StatusServiceUnavailable, "not_ready", "shutting down")
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := a.svc.Ready(ctx); err != nil {
		// The failing dependency and its error (addresses, driver text) are
		// for the admin only; a probe needs only the status.
		msg := "a dependency is not answering"
		if a.isAdmin(c) {
			msg += ": " + err.Error()
		}
		writeErrorCode(c, http.StatusServiceUnavailable, "not_ready", msg)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// orderBody is POST /order*'s body. Pointers tell a missing field from zero.
type orderBody struct {
	UserID  *int64 `json:"user_id"`
	GoodsID *int64 `json:"goods_id"`
	Number  *int64 `json:"number"`
}

// orderRequest decodes an order's body; false when it answered a 400.
func (a *api) orderRequest(c *gin.Context) (service.OrderRequest, bool) {
	var b orderBody
	if !a.decode(c, &b) {
		return service.OrderRequest{}, false
	}
	if b.UserID == nil || b.GoodsID == nil || b.Number == nil {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request",
			missingFields(map[string]*int64{"user_id": b.UserID, "goods_id": b.GoodsID, "number": b.Number}))
		return service.OrderRequest{}, false
	}
	return service.OrderRequest{UserID: *b.UserID, GoodsID: *b.GoodsID, Number: *b.Number}, true
}

// decodedRequest is the context key of an order's body decoded before
// its handler (closedGate).
const decodedRequest = "seckill.order_request"

// decodedOrder is the order's body, decoded already or now; false when it
// answered a 400.
func (a *api) decodedOrder(c *gin.Context) (service.OrderRequest, bool) {
	if req, ok := c.Get(decodedRequest); ok {
		return req.(service.OrderRequest), true
	}
	return a.orderRequest(c)
}

func (a *api) order(version string) gin.HandlerFunc {
	v, _ := service.FindVersion(version)
	limited := v.Limits && a.opts.Limits != nil
	return func(c *gin.Context) {
		var (
			o   service.Order
			err error
		)
		req, ok := a.decodedOrder(c)
		if !ok {
			return
		}
		key := c.GetHeader("Idempotency-Key")
		if limited && key != "" {
			// The limits refuse from what they remember of the goods (a
			// closed gate): a retry whose first attempt was sold an order
			// gets that order, whatever they would say.
			if o, found, err := a.svc.Orders.PriorOrder(c.Request.Context(), version, req, key); err == nil && found {
				c.JSON(http.StatusCreated, o)
				return
			}
		}
		if limited {
			release, ok := a.admit(c, req)
			if !ok {
				return
			}
			defer func() { release(err) }()
		}
		o, err = a.svc.Orders.PlaceOrderOnce(c.Request.Context(), version, req, key)
		if err != nil {
			a.writeError(c, err)
			return
		}
		c.JSON(http.StatusCreated, o)
	}
}

func (a *api) goods(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	g, err := a.svc.Catalog.Goods(c.Request.Context(), id)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, g)
}

// reserve takes a reservation for a reservation sale ({user_id}): 201
// with the user's position in the list, the same position again for a
// second reservation; 409 reservations_closed once the sale has begun.
func (a *api) reserve(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var b struct {
		UserID *int64 `json:"user_id"`
	}
	if !a.decode(c, &b) {
		return
	}
	if missing := missingFields(map[string]*int64{"user_id": b.UserID}); missing != "" {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", missing)
		return
	}
	if a.svc.Reservations == nil {
		writeErrorCode(c, http.StatusServiceUnavailable, "unavailable", "reservation sales are not available")
		return
	}
	r, err := a.svc.Reservations.Reserve(c.Request.Context(), id, *b.UserID)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, r)
}

// shopperGoods lists the goods on sale with the stock a shopper may still buy.
func (a *api) shopperGoods(c *gin.Context) {
	gs, err := a.svc.Catalog.ShopperGoods(c.Request.Context())
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"goods": gs, "server_time": time.Now().UTC()})
}

func (a *api) listGoods(c *gin.Context) {
	gs, err := a.svc.Catalog.ListGoods(c.Request.Context())
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"goods": gs})
}

// adminGoodsBody creates goods ({name, stock, start_at, end_at}) or adds
// stock ({id, add_stock, op_id}). Times are RFC 3339.
type adminGoodsBody struct {
	Name     *string    `json:"name"`
	Price    *int64     `json:"price"`
	Stock    *int64     `json:"stock"`
	StartAt  *time.Time `json:"start_at"`
	EndAt    *time.Time `json:"end_at"`
	Limit    *int64     `json:"per_user_limit"`
	Checkout *string    `json:"checkout"`
	ID       *int64     `json:"id"`
	AddStock *int64     `json:"add_stock"`
	OpID     string     `json:"op_id"`
}

// Bounds of the admin's numbers, set by the columns that store them. Past
// them MySQL refuses the write, which would surface as a failed dependency
// (503) rather than as the client's mistake (400).
const (
	// maxPerUserLimit: goods.per_user_limit is a signed INT.
	maxPerUserLimit = math.MaxInt32
	// maxStock bounds a new goods' stock and maxAddStock one addition.
	// goods.stock, goods.sale and admin_stock_ops.delta are BIGINT, but the
	// stock only grows, by additions, and Redis's scripts compare it as a
	// Lua number, exact only up to 2^53: 10^12 a time keeps the stock exact
	// for thousands of additions and far from overflowing a BIGINT.
	maxStock    = 1_000_000_000_000
	maxAddStock = 1_000_000_000_000
)

func (a *api) adminGoods(c *gin.Context) {
	var b adminGoodsBody
	if !a.decode(c, &b) {
		return
	}
	ctx := c.Request.Context()
	if b.ID != nil || b.AddStock != nil {
		if b.Name != nil || b.Price != nil || b.Stock != nil || b.StartAt != nil || b.EndAt != nil || b.Limit != nil || b.Checkout != nil {
			writeErrorCode(c, http.StatusBadRequest, "invalid_request", "send either {name, stock} to create goods or {id, add_stock} to add stock")
			return
		}
		if missing := missingFields(map[string]*int64{"id": b.ID, "add_stock": b.AddStock}); missing != "" {
			writeErrorCode(c, http.StatusBadRequest, "invalid_request", missing)
			return
		}
		if *b.AddStock < 1 || *b.AddStock > maxAddStock {
			writeErrorCode(c, http.StatusBadRequest, "invalid_request",
				fmt.Sprintf("add_stock must be between 1 and %d: stock is only ever added, at most that much at a time", maxAddStock))
			return
		}
		g, replayed, err := a.svc.Catalog.AddStock(ctx, *b.ID, *b.AddStock, b.OpID)
		if err != nil {
			a.writeError(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"id": g.ID, "name": g.Name, "stock": g.Stock, "sale": g.Sale, "replayed": replayed})
		return
	}
	if b.Name == nil || b.Stock == nil {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "name and stock are required")
		return
	}
	if *b.Stock < 0 || *b.Stock > maxStock {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", fmt.Sprintf("stock must be between 0 and %d", maxStock))
		return
	}
	if b.Limit != nil && (*b.Limit < 0 || *b.Limit > maxPerUserLimit) {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", fmt.Sprintf("per_user_limit must be between 0 (no limit) and %d", maxPerUserLimit))
		return
	}
	ng := service.NewGoods{Name: *b.Name, Stock: *b.Stock, SaleWindow: service.SaleWindow{StartAt: b.StartAt, EndAt: b.EndAt}}
	if b.Limit != nil {
		ng.PerUserLimit = *b.Limit
	}
	if b.Checkout != nil {
		ng.Checkout = *b.Checkout
	}
	if b.Price != nil {
		ng.Price = *b.Price
	}
	g, err := a.svc.Catalog.CreateGoods(ctx, ng)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, g)
}

func (a *api) stats(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	st, err := a.svc.Catalog.Stats(c.Request.Context(), id)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

// reconcile runs one reconciliation pass now and reports every goods' drift:
// a full pass, or with ?scope=changed one like most passes on the interval,
// which skips the goods whose stocks did not move since they were in line.
func (a *api) reconcile(c *gin.Context) {
	pass := a.svc.Reconciler.ReconcileAll
	switch c.Query("scope") {
	case "", "all":
	case "changed":
		pass = a.svc.Reconciler.Reconcile
	default:
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "scope must be all or changed")
		return
	}
	report, err := pass(c.Request.Context())
	if err != nil {
		a.writeError(c, err)
		return
	}
	coupons, err := a.svc.Coupons.Reconcile(c.Request.Context())
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"goods": report, "coupons": coupons, "repair_after": recovery.RepairAfter})
}

func (a *api) requireAdmin(c *gin.Context) {
	if !a.isAdmin(c) {
		writeErrorCode(c, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <admin token>")
		c.Abort()
	}
}

// isAdmin reports whether the request carries the admin bearer token. An
// empty configured token matches nothing.
func (a *api) isAdmin(c *gin.Context) bool {
	token, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	return ok && a.opts.AdminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(a.opts.AdminToken)) == 1
}

func (a *api) recover(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			a.opts.Log.Error("panic in handler", "path", c.FullPath(), "panic", p)
			writeErrorCode(c, http.StatusInternalServerError, "internal", "internal error")
			c.Abort()
		}
	}()
	c.Next()
}

func pathID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "id must be a positive integer")
		return 0, false
	}
	return id, true
}

func missingFields(fields map[string]*int64) string {
	var missing []string
	for name, v := range fields {
		if v == nil {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	slices.Sort(missing)
	return "missing integer field(s): " + strings.Join(missing, ", ")
}
