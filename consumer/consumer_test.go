package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/go-seckill/seckill/service"
)

// recorder stands in for the service to test the handler's FIN/REQ and
// dead-letter decisions; storage itself is tested against real servers.
type recorder struct {
	applyErr   error
	deadErr    error
	deadLetter []string
	deadOrders []int64 // the order id each letter names
}

func (r *recorder) ApplySales(_ context.Context, ms []service.StockMessage) []error {
	errs := make([]error, len(ms))
	for i := range errs {
		errs[i] = r.applyErr
	}
	return errs
}

// answers records how the handler answered nsqd.
type answers struct{ fin, req int }

func (a *answers) OnFinish(*nsq.Message)                       { a.fin++ }
func (a *answers) OnRequeue(*nsq.Message, time.Duration, bool) { a.req++ }
func (a *answers) OnTouch(*nsq.Message)                        {}

func (r *recorder) DeadLetter(_ context.Context, m service.StockMessage, _ []byte, reason string) error {
	r.deadLetter = append(r.deadLetter, reason)
	r.deadOrders = append(r.deadOrders, m.OrderID)
	return r.deadErr
}

func TestHandlerDecisions(t *testing.T) {
	transient := errors.New("mysql: connection refused")
	valid := `{"order_id":1,"goods_id":2,"user_id":3,"number":1}`
	cases := []struct {
		name     string
		body     string
		attempts uint16
		applyErr error
		deadErr  error
		wantErr  bool // true: REQ
		wantDead bool
		// wantOrder: the letter names the message's order (and so marks it
		// settled); a stray message's letter names none.
		wantOrder int64
	}{
		{"applied", valid, 1, nil, nil, false, false, 0},
		{"transient error is retried", valid, 1, transient, nil, true, false, 0},
		{"last attempt is dead-lettered", valid, 5, transient, nil, false, true, 1},
		{"dead letter write failing is retried", valid, 5, transient, transient, true, true, 1},
		{"invalid message is dead-lettered at once", valid, 1, service.ErrInvalid, nil, false, true, 1},
		{"stray message's letter names no order", valid, 1, fmt.Errorf("%w: %w", service.ErrInvalid, service.ErrStray), nil, false, true, 0},
		{"undecodable body is dead-lettered at once", "{", 1, nil, nil, false, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &recorder{applyErr: c.applyErr, deadErr: c.deadErr}
			h := &stockHandler{sales: r, dead: r, maxAttempts: 5, timeout: time.Second, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			var a answers
			m := nsq.NewMessage(nsq.MessageID{}, []byte(c.body))
			m.Attempts = c.attempts
			m.Delegate = &a
			m.DisableAutoResponse()
			h.apply([]*nsq.Message{m})
			if a.fin+a.req != 1 || (a.req == 1) != c.wantErr || (len(r.deadLetter) > 0) != c.wantDead {
				t.Errorf("FIN %d REQ %d dead letters %q; want REQ=%v dead-lettered=%v", a.fin, a.req, r.deadLetter, c.wantErr, c.wantDead)
			}
			for _, id := range r.deadOrders {
				if id != c.wantOrder {
					t.Errorf("the letter names order %d, want %d", id, c.wantOrder)
				}
			}
		})
	}
}

// perOrder applies sales with an outcome per order, and keeps the dead
// letters it is given and the batches it was asked to apply.
type perOrder struct {
	outcome map[int64]error
	batches [][]int64
	letters []letter
}

func (p *perOrder) ApplySales(_ context.Context, ms []service.StockMessage) []error {
	errs := make([]error, len(ms))
	var ids []int64
	for i, m := range ms {
		errs[i], ids = p.outcome[m.OrderID], append(ids, m.OrderID)
	}
	p.batches = append(p.batches, ids)
	return errs
}

func (p *perOrder) DeadLetter(_ context.Context, m service.StockMessage, body []byte, _ string) error {
	p.letters = append(p.letters, letter{m.OrderID, string(body)})
	return nil
}

// A message holding the sales published together is FINed once each is
// applied or given up on, and REQed whole while one can still be applied;
// a sale given up on gets a letter of its own, its body the sale alone.
func TestAMessageOfSeveralSalesIsFinishedOnceEachOfThemIs(t *testing.T) {
	sale := func(id int64) string {
		return fmt.Sprintf(`{"order_id":%d,"goods_id":2,"user_id":%d,"number":1}`, id, id)
	}
	several := "[" + sale(1) + "," + sale(2) + "," + sale(3) + "]"
	transient := errors.New("mysql: connection refused")
	cases := []struct {
		name       string
		attempts   uint16
		outcome    map[int64]error
		wantREQ    bool
		wantLetter map[int64]string
	}{
		{"all applied", 1, nil, false, nil},
		{"one to retry", 1, map[int64]error{2: transient}, true, nil},
		{"one invalid", 1, map[int64]error{3: service.ErrInvalid}, false, map[int64]string{3: sale(3)}},
		{"one invalid, one to retry", 1, map[int64]error{1: transient, 3: service.ErrInvalid}, true, map[int64]string{3: sale(3)}},
		{"the last attempt", 5, map[int64]error{2: transient}, false, map[int64]string{2: sale(2)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &perOrder{outcome: c.outcome}
			h := &stockHandler{sales: p, dead: p, maxAttempts: 5, timeout: time.Second, batchSize: 2, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			var a answers
			m := nsq.NewMessage(nsq.MessageID{}, []byte(several))
			m.Attempts = c.attempts
			m.Delegate = &a
			m.DisableAutoResponse()
			h.apply([]*nsq.Message{m})
			if a.fin+a.req != 1 || (a.req == 1) != c.wantREQ {
				t.Errorf("FIN %d REQ %d; want REQ=%v", a.fin, a.req, c.wantREQ)
			}
			if !slices.EqualFunc(p.batches, [][]int64{{1, 2}, {3}}, slices.Equal) {
				t.Errorf("applied in batches %v, want [[1 2] [3]] (two at most)", p.batches)
			}
			got := map[int64]string{}
			for _, l := range p.letters {
				got[l.order] = l.body
			}
			if len(got) != len(p.letters) || !maps.Equal(got, c.wantLetter) {
				t.Errorf("letters %v, want %v", p.letters, c.wantLetter)
			}
		})
	}
}

// canceller cancels every order it is asked to, but those outcome names an
// error for, and keeps the dead letters it is given.
type canceller struct {
	calls   int
	outcome map[int64]error
	letters []letter
}

type letter struct {
	order int64 // the order the letter is keyed by
	body  string
}

func (c *canceller) CancelUnpaid(_ context.Context, m service.StockMessage) error {
	c.calls++
	return c.outcome[m.OrderID]
}
func (c *canceller) DeadLetter(_ context.Context, m service.StockMessage, body []byte, _ string) error {
	c.letters = append(c.letters, letter{m.OrderID, string(body)})
	return nil
}

type requeues struct {
	answers
	delay   time.Duration
	backoff bool
}

func (r *requeues) OnRequeue(_ *nsq.Message, d time.Duration, backoff bool) {
	r.req++
	r.delay, r.backoff = d, backoff
}

// A payment-timeout message that arrives before its deadline (nsqd delivers
// deferred messages early after a restart) is deferred again for the time
// left, without backoff, and cancels nothing.
func TestEarlyTimeoutIsDeferredAgain(t *testing.T) {
	c := &canceller{}
	h := &timeoutHandler{cancel: c, deferred: deferred{dead: c, maxAttempts: 5, timeout: time.Second, log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	body := fmt.Sprintf(`{"order_id":1,"goods_id":2,"user_id":3,"number":1,"deadline_ms":%d}`, time.Now().Add(time.Minute).UnixMilli())
	var r requeues
	m := nsq.NewMessage(nsq.MessageID{}, []byte(body))
	m.Delegate = &r
	if err := h.HandleMessage(m); err != nil {
		t.Fatal(err)
	}
	if c.calls != 0 || r.req != 1 || r.backoff || r.delay < 55*time.Second || r.delay > time.Minute {
		t.Errorf("cancelled %d times, requeued %d with %v (backoff %v); want a requeue of ~1m and no cancel", c.calls, r.req, r.delay, r.backoff)
	}
	past := fmt.Sprintf(`{"order_id":1,"goods_id":2,"user_id":3,"number":1,"deadline_ms":%d}`, time.Now().Add(-time.Second).UnixMilli())
	if err := h.HandleMessage(nsq.NewMessage(nsq.MessageID{}, []byte(past))); err != nil || c.calls != 1 {
		t.Errorf("a due message: err %v, cancelled %d times", err, c.calls)
	}
}

// A payment-timeout message of several orders waits for the latest of
// their deadlines, then cancels each. An order that names nothing is given
// up on alone; a store that is down brings the message back whole (with
// backoff) until its last attempt, which gives up on the failed orders one
// by one, each in a letter of its own that names no order; a sale not
// applied yet brings it back whole after a pause, without backoff.
func TestATimeoutMessageSettlesEachOfItsOrders(t *testing.T) {
	due := time.Now().Add(-time.Second).UnixMilli()
	clock := func(id int64) string {
		return fmt.Sprintf(`{"order_id":%d,"goods_id":2,"user_id":3,"number":1,"deadline_ms":%d}`, id, due)
	}
	body := "[" + clock(1) + "," + clock(2) + "," + clock(3) + "]"
	down := errors.New("mysql: connection refused")
	for _, c := range []struct {
		name     string
		outcome  map[int64]error
		attempts uint16
		want     error
		req      int
		backoff  bool
		letters  []letter
	}{
		{name: "all cancelled", attempts: 1},
		{name: "one names nothing", outcome: map[int64]error{2: service.ErrInvalid}, attempts: 1,
			letters: []letter{{0, clock(2)}}},
		{name: "a store is down", outcome: map[int64]error{2: down}, attempts: 1, want: down},
		{name: "a store is down at the last attempt", outcome: map[int64]error{1: down, 3: down}, attempts: 5,
			letters: []letter{{0, clock(1)}, {0, clock(3)}}},
		{name: "a sale not applied yet", outcome: map[int64]error{3: service.ErrNotYet}, attempts: 1, req: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			cn := &canceller{outcome: c.outcome}
			h := &timeoutHandler{cancel: cn, deferred: deferred{dead: cn, maxAttempts: 5, timeout: time.Second, log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
			var r requeues
			m := nsq.NewMessage(nsq.MessageID{}, []byte(body))
			m.Attempts, m.Delegate = c.attempts, &r
			if err := h.HandleMessage(m); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Errorf("answered %v, want %v", err, c.want)
			}
			if cn.calls != 3 {
				t.Errorf("%d cancels, want one per order", cn.calls)
			}
			if r.req != c.req || (c.req > 0 && (r.backoff || r.delay != notYetDelay)) {
				t.Errorf("requeued %d times (%v, backoff %v), want %d", r.req, r.delay, r.backoff, c.req)
			}
			if !slices.Equal(cn.letters, c.letters) {
				t.Errorf("dead letters %v, want %v", cn.letters, c.letters)
			}
		})
	}
	// The message waits for its latest deadline, whichever order has it.
	later := fmt.Sprintf(`{"order_id":4,"goods_id":2,"user_id":3,"number":1,"deadline_ms":%d}`, time.Now().Add(time.Minute).UnixMilli())
	cn := &canceller{}
	h := &timeoutHandler{cancel: cn, deferred: deferred{dead: cn, maxAttempts: 5, timeout: time.Second, log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	var r requeues
	m := nsq.NewMessage(nsq.MessageID{}, []byte("["+clock(1)+","+later+"]"))
	m.Delegate = &r
	if err := h.HandleMessage(m); err != nil || cn.calls != 0 || r.req != 1 || r.delay < 55*time.Second {
		t.Errorf("err %v, %d cancels, %d requeues of %v; want one requeue of ~1m and no cancel", err, cn.calls, r.req, r.delay)
	}
	// Bodies that name no order with a deadline are kept for a person.
	for _, bad := range []string{"[]", "not json", `[{"order_id":1,"goods_id":2}]`, `{"order_id":1}`} {
		cn := &canceller{}
		h.cancel, h.dead = cn, cn
		if err := h.HandleMessage(nsq.NewMessage(nsq.MessageID{}, []byte(bad))); err != nil || cn.calls != 0 || len(cn.letters) != 1 || cn.letters[0].body != bad {
			t.Errorf("%s: err %v, %d cancels, letters %v; want it kept as it came", bad, err, cn.calls, cn.letters)
		}
	}
}

// batches records the size of every batch it is given.
type batches struct {
	recorder
	mu    sync.Mutex
	sizes []int
}

func (b *batches) ApplySales(ctx context.Context, ms []service.StockMessage) []error {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(ms))
	b.mu.Unlock()
	time.Sleep(time.Millisecond) // a transaction takes a while; messages pile up meanwhile
	return make([]error, len(ms))
}

type counted struct {
	answers
	mu   *sync.Mutex
	done *sync.WaitGroup
}

func (c *counted) OnFinish(*nsq.Message) { c.done.Done() }

// Messages handed over one at a time, as go-nsq's single handler does, are
// applied in batches: the buffer lets them pile up while a batch commits.
func TestMessagesAreAppliedInBatches(t *testing.T) {
	b := &batches{}
	o := Options{Concurrency: 2, BatchSize: 50}
	sh := &stockHandler{sales: b, dead: b, timeout: applyTimeout(o), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := newBatcher(o, sh.apply)
	var done sync.WaitGroup
	var mu sync.Mutex
	const n = 500
	done.Add(n)
	for i := range n {
		m := nsq.NewMessage(nsq.MessageID{}, []byte(fmt.Sprintf(`{"order_id":%d,"goods_id":1,"user_id":1,"number":1}`, i+1)))
		m.Delegate = &counted{mu: &mu, done: &done}
		if err := h.HandleMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	done.Wait()
	h.close()
	biggest := slices.Max(b.sizes)
	if len(b.sizes) > n/5 || biggest < 10 {
		t.Errorf("%d messages in %d batches, the biggest of %d: want batches, not messages one by one", n, len(b.sizes), biggest)
	}
}
