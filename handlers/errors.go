package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/go-seckill/seckill/admission"

	"github.com/go-seckill/seckill/service"
)

// errorBody is every error response: a machine code and a sentence.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
	// OrderID names the order whose outcome is unknown (503 outcome_unknown).
	OrderID string `json:"order_id,omitempty"`
	// Captcha is where a client refused for its address fetches a captcha
	// that lets its next order through (429 rate_limited).
	Captcha string `json:"captcha,omitempty"`
}

// statusOf is the one table from service errors to HTTP.
var statusOf = []struct {
	err    error
	status int
	code   string
}{
	{service.ErrInvalid, http.StatusBadRequest, "invalid_request"},
	{service.ErrNotFound, http.StatusNotFound, "not_found"},
	{service.ErrSoldOut, http.StatusConflict, "sold_out"},
	{service.ErrNotStarted, http.StatusConflict, "not_started"},
	{service.ErrEnded, http.StatusConflict, "ended"},
	{service.ErrNotReserved, http.StatusForbidden, "not_reserved"},
	{service.ErrReservationsClosed, http.StatusConflict, "reservations_closed"},
	{service.ErrInProgress, http.StatusConflict, "request_in_progress"},
	{service.ErrLimitExceeded, http.StatusConflict, "limit_exceeded"},
	{service.ErrOrderCancelled, http.StatusConflict, "order_cancelled"},
	{service.ErrOrderExpired, http.StatusConflict, "order_expired"},
	{service.ErrOrderRefused, http.StatusConflict, "order_refused"},
	{service.ErrOrderPending, http.StatusConflict, "order_pending"},
	{service.ErrOutOfStock, http.StatusConflict, "out_of_stock"},
	{service.ErrCouponUsed, http.StatusConflict, "coupon_used"},
	{service.ErrCouponExpired, http.StatusConflict, "coupon_expired"},
	{service.ErrThresholdNotMet, http.StatusConflict, "threshold_not_met"},
	{service.ErrNotReplayable, http.StatusConflict, "not_replayable"},
	{service.ErrNotSplittable, http.StatusConflict, "not_splittable"},
	{service.ErrNotSplit, http.StatusConflict, "not_split"},
	{service.ErrKeyMismatch, http.StatusUnprocessableEntity, "idempotency_key_mismatch"},
	{service.ErrStockNotLoaded, http.StatusServiceUnavailable, "stock_not_loaded"},
	{service.ErrAmbiguous, http.StatusServiceUnavailable, "outcome_unknown"},
	{service.ErrMoving, http.StatusServiceUnavailable, "busy"},
	{service.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
	// The limits of the limited versions (V8).
	{admission.ErrTwin, http.StatusTooManyRequests, "too_many_requests"},
	{admission.ErrEarly, http.StatusForbidden, "ordered_early"},
}

// sentinelBodies are the encoded answers of statusOf's errors, with their
// sentinel's own message: encoded once, not per refusal (409 sold_out
// above all).
var sentinelBodies = func() [][]byte {
	out := make([][]byte, len(statusOf))
	for i, e := range statusOf {
		out[i], _ = json.Marshal(errorBody{Error: e.code, Message: e.err.Error()})
	}
	return out
}()

// jsonContentType is what gin's c.JSON answers with.
const jsonContentType = "application/json; charset=utf-8"

// writeError answers err by the table. Causes of 5xx are logged here, once,
// and not shown to the client.
func (a *api) writeError(c *gin.Context, err error) {
	// A refusal is most often a sentinel itself, unwrapped: its answer is
	// ready, with no errors.As or errors.Is to walk.
	for i, e := range statusOf {
		if err == e.err && e.status < 500 {
			c.Data(e.status, jsonContentType, sentinelBodies[i])
			return
		}
	}
	var unknown *service.UnknownOrder
	if errors.As(err, &unknown) {
		a.opts.Log.Warn("request failed", "path", c.FullPath(), "err", err)
		c.Header("Retry-After", "1")
		c.JSON(http.StatusServiceUnavailable, errorBody{Error: "outcome_unknown", OrderID: strconv.FormatInt(unknown.Order.ID, 10),
			Message: "the order may have been placed; retry with the same Idempotency-Key to learn its outcome"})
		return
	}
	for _, e := range statusOf {
		if !errors.Is(err, e.err) {
			continue
		}
		msg := err.Error()
		if e.status >= 500 {
			a.opts.Log.Warn("request failed", "path", c.FullPath(), "err", err)
			c.Header("Retry-After", "1")
			msg = "a dependency is unavailable; try again in a moment"
			if e.err == service.ErrMoving {
				msg = "this buyer's orders are moving to another host; try again in a moment"
			}
		}
		writeErrorCode(c, e.status, e.code, msg)
		return
	}
	a.opts.Log.Error("unexpected error", "path", c.FullPath(), "err", err)
	writeErrorCode(c, http.StatusInternalServerError, "internal", "internal error")
}

func writeErrorCode(c *gin.Context, status int, code, msg string) {
	c.JSON(status, errorBody{Error: code, Message: msg})
}

// decode reads one JSON object of at most MaxBodyBytes into dst and answers
// the client itself when it cannot: 415, 413 or 400. The body is read whole
// first: an order body in the usual form is then parsed by hand (see
// orderBody.parse), and anything else is decoded from the bytes read, and
// the read's error after them, as from the body itself.
func (a *api) decode(c *gin.Context, dst any) bool {
	// The usual Content-Type needs no parsing (nor its name canonicalizing).
	ct := ""
	if v := c.Request.Header["Content-Type"]; len(v) > 0 {
		ct = v[0]
	}
	if ct != "application/json" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeErrorCode(c, http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
			return false
		}
	}
	limit := a.opts.MaxBodyBytes
	if c.Request.ContentLength > limit {
		c.Header("Connection", "close")
		writeErrorCode(c, http.StatusRequestEntityTooLarge, "body_too_large", "request body is too large")
		return false
	}
	buf := bodies.Get().(*bytes.Buffer)
	defer bodies.Put(buf)
	buf.Reset()
	_, rerr := buf.ReadFrom(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if b, ok := dst.(*orderBody); ok && rerr == nil {
		if b.parse(buf.Bytes()) {
			return true
		}
		*b = orderBody{}
	}
	var body io.Reader = bytes.NewReader(buf.Bytes())
	if rerr != nil {
		body = io.MultiReader(body, failedRead{rerr})
	}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		// Exactly one value: trailing data, even past the limit, is an error.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errTrailing
			if terr != nil && !isSyntax(terr) {
				err = terr
			}
		}
	}
	var maxErr *http.MaxBytesError
	var timeErr *time.ParseError
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return true
	case errors.As(err, &maxErr):
		writeErrorCode(c, http.StatusRequestEntityTooLarge, "body_too_large", "request body is too large")
	case errors.As(err, &timeErr):
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "times must be RFC 3339, such as 2026-11-22T10:00:00Z")
	case errors.As(err, &typeErr) && typeErr.Field == "":
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "body must be a JSON object")
	case errors.As(err, &typeErr):
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "field "+typeErr.Field+" must be "+kindOf(typeErr))
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", strings.TrimPrefix(err.Error(), "json: "))
	default:
		writeErrorCode(c, http.StatusBadRequest, "invalid_json", "body is not one valid JSON object")
	}
	return false
}

// bodies are the buffers request bodies are read into, at most
// MaxBodyBytes each.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// failedRead replays a body's read error after the bytes read before it.
type failedRead struct{ err error }

func (f failedRead) Read([]byte) (int, error) { return 0, f.err }

var errTrailing = errors.New("trailing data after the JSON object")

func isSyntax(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF)
}

func kindOf(e *json.UnmarshalTypeError) string {
	switch e.Type.Kind().String() {
	case "int64":
		return "an integer within 64 bits"
	case "string":
		return "a string"
	}
	return e.Type.String()
}
