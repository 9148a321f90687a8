package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/doublecheck"
)

// checker counts the checks it is given and fails them with err.
type checker struct {
	calls int
	err   error
}

func (c *checker) Check(context.Context, doublecheck.Check) error { c.calls++; return c.err }

// A check delivered before it is due waits for the rest without backoff;
// one that is due is acted on; one that keeps failing, or is no check,
// becomes a dead letter naming no order, so that it settles nothing for
// the outbox sweep.
func TestCheckHandlerDecisions(t *testing.T) {
	c, dead := &checker{}, &recorder{}
	h := &checkHandler{check: c, deferred: deferred{dead: dead, maxAttempts: 3, timeout: time.Second, log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	check := func(due time.Time) []byte {
		return fmt.Appendf(nil, `{"stock":{"order_id":9,"goods_id":2,"user_id":3,"number":1},"route":3,"republished":1,"due_ms":%d}`, due.UnixMilli())
	}

	var r requeues
	m := nsq.NewMessage(nsq.MessageID{}, check(time.Now().Add(time.Minute)))
	m.Delegate = &r
	if err := h.HandleMessage(m); err != nil || c.calls != 0 || r.req != 1 || r.backoff || r.delay < 55*time.Second {
		t.Fatalf("early: err %v, checked %d, requeued %d after %v (backoff %v)", err, c.calls, r.req, r.delay, r.backoff)
	}
	if err := h.HandleMessage(nsq.NewMessage(nsq.MessageID{}, check(time.Now()))); err != nil || c.calls != 1 {
		t.Fatalf("due: err %v, checked %d", err, c.calls)
	}
	c.err = errors.New("mysql down")
	failing := nsq.NewMessage(nsq.MessageID{}, check(time.Now()))
	failing.Attempts = 1
	if err := h.HandleMessage(failing); err == nil || len(dead.deadLetter) != 0 {
		t.Fatalf("failing: err %v, letters %v; want a requeue", err, dead.deadLetter)
	}
	failing.Attempts = 3
	c.err = fmt.Errorf("%w: bad", service.ErrInvalid)
	for _, m := range []*nsq.Message{failing, nsq.NewMessage(nsq.MessageID{}, []byte("not json"))} {
		if err := h.HandleMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	if len(dead.deadLetter) != 2 || dead.deadOrders[0] != 0 || dead.deadOrders[1] != 0 ||
		!strings.Contains(dead.deadLetter[0], "double check of order 9") || !strings.Contains(dead.deadLetter[1], "undecodable") {
		t.Fatalf("letters %v naming %v", dead.deadLetter, dead.deadOrders)
	}
}
