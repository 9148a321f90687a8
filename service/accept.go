package service

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Async accept and poll (V13): POST /seckill reserves the units in Redis
// and answers 202 with a token at once; a writer turns the accepted
// request into an order later; the client polls the token.
//
// Between the 202 and its order row an accepted request lives in two
// places that fail independently: its record in the goods' Redis hash
// (beside the stock it holds, so that both are lost together or not at
// all) and its message on nsqd. The writer works from the message; a
// sweep writes from the record what a lost message left behind, and a
// message whose record Redis lost reserves its units again.

// Token names one accepted request: the goods, the buyer, when it was
// accepted and an id unique within the goods. Its string form is what the
// client polls with.
type Token struct {
	GoodsID    int64
	UserID     int64
	AcceptedAt time.Time
	ID         string // a snowflake id, or "k" and a digest of an Idempotency-Key
}

// String is the token as the client sees it: goods.user.ms.id.
func (t Token) String() string {
	return fmt.Sprintf("%d.%d.%d.%s", t.GoodsID, t.UserID, t.AcceptedAt.UnixMilli(), t.ID)
}

// OrderKey is the key the token's order row carries (unique per user in
// its table): a second write of the same request fails on it.
func (t Token) OrderKey() string { return "seckill:" + t.ID }

// Keyed says the request was made under an idempotency key.
func (t Token) Keyed() bool { return strings.HasPrefix(t.ID, "k") }

// ParseToken reads a token's string form.
func ParseToken(s string) (Token, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 || parts[3] == "" || len(parts[3]) > 64 {
		return Token{}, Invalid("malformed token")
	}
	var n [3]int64
	for i := range n {
		v, err := strconv.ParseInt(parts[i], 10, 64)
		if err != nil || v < 1 {
			return Token{}, Invalid("malformed token")
		}
		n[i] = v
	}
	for _, r := range parts[3] {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'z') {
			return Token{}, Invalid("malformed token")
		}
	}
	return Token{GoodsID: n[0], UserID: n[1], AcceptedAt: time.UnixMilli(n[2]).UTC(), ID: parts[3]}, nil
}

// Accepted is an accepted request on its way to becoming an order: the
// writer's message, and the record Redis keeps of it.
type Accepted struct {
	Token  string `json:"token"`
	Number int64  `json:"number"`
	// Route picks the nsqd its order's stock message goes to.
	Route int64 `json:"route"`
}

// AcceptState is where an accepted request stands in Redis: pending with
// its record, failed with its reason, or neither (its order is written,
// or Redis never had it or lost it).
type AcceptState struct {
	Pending *Accepted
	Failure string
}

// Acceptance states, as GET /seckill/:token tells them.
const (
	AcceptPending = "pending" // accepted; its order is not written yet
	AcceptOrdered = "ordered" // its order is written: pay it
	AcceptFailed  = "failed"  // it will never be an order; its units are back on sale
)

// Acceptance is what a token stands for now.
type Acceptance struct {
	Token  string `json:"token"`
	Status string `json:"status"`
	// Order is the token's order once ordered.
	Order *Order `json:"order,omitempty"`
	// Reason says why it failed: expired, sold_out, ...
	Reason string `json:"reason,omitempty"`
	// PollAfterMs is how long the client should wait before asking again.
	PollAfterMs int64 `json:"poll_after_ms,omitempty"`
}

// failReasons name the refusals an accepted request whose record Redis
// lost can meet when its units are reserved again, as the API's error
// codes do.
var failReasons = []struct {
	err    error
	reason string
}{
	{ErrSoldOut, "sold_out"},
	{ErrLimitExceeded, "limit_exceeded"},
	{ErrNotStarted, "not_started"},
	{ErrEnded, "ended"},
	{ErrNotFound, "not_found"},
}

// ReasonOf is why a request failed with err: its code, or "refused".
func ReasonOf(err error) string {
	for _, r := range failReasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "refused"
}
