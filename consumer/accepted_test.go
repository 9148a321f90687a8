package consumer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/go-seckill/seckill/service"
)

// writer answers each accepted request by its token, records the sizes of
// the batches it is given and keeps the dead letters' bodies.
type writer struct {
	outcome map[string]error
	sizes   []int
	letters []string
}

func (w *writer) WriteAccepted(_ context.Context, _ string, as []service.Accepted) []error {
	w.sizes = append(w.sizes, len(as))
	errs := make([]error, len(as))
	for i, a := range as {
		errs[i] = w.outcome[a.Token]
	}
	return errs
}

func (w *writer) DeadLetter(_ context.Context, _ service.StockMessage, body []byte, _ string) error {
	w.letters = append(w.letters, string(body))
	return nil
}

// A message of the accept topic holds one request or the array of those
// accepted together. It is finished once each of its requests is settled
// or given up on (alone, in a letter of its own); it comes back whole while
// one can still be written; the writer gets at most a batch of requests at
// once, whatever the messages hold.
func TestAnAcceptedMessageIsFinishedOnceEachOfItsRequestsIs(t *testing.T) {
	req := func(tok string) string { return fmt.Sprintf(`{"token":%q,"number":1,"route":3}`, tok) }
	down := fmt.Errorf("%w: connection reset", service.ErrUnavailable)
	for _, c := range []struct {
		name     string
		body     string
		attempts uint16
		outcome  map[string]error
		fin, req int
		letters  []string
	}{
		{name: "one request", body: req("a"), attempts: 1, fin: 1},
		{name: "an array, all written", body: "[" + req("a") + "," + req("b") + "," + req("c") + "]", attempts: 1, fin: 1},
		{name: "one to try again", body: "[" + req("a") + "," + req("b") + "]", attempts: 1,
			outcome: map[string]error{"b": down}, req: 1},
		{name: "one to try again at the last attempt", body: "[" + req("a") + "," + req("b") + "]", attempts: 5,
			outcome: map[string]error{"b": down}, fin: 1, letters: []string{req("b")}},
		{name: "one that never will be", body: "[" + req("a") + "," + req("b") + "]", attempts: 1,
			outcome: map[string]error{"a": fmt.Errorf("%w: bad token", service.ErrInvalid)}, fin: 1, letters: []string{req("a")}},
		{name: "undecodable", body: `[{"token":"a","extra":1}]`, attempts: 1, fin: 1, letters: []string{`[{"token":"a","extra":1}]`}},
		{name: "an empty array", body: `[]`, attempts: 1, fin: 1, letters: []string{`[]`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &writer{outcome: c.outcome}
			h := &acceptedHandler{w: w, version: "V13", dead: w, maxAttempts: 5, timeout: time.Second, batchSize: 10,
				log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			var a answers
			m := nsq.NewMessage(nsq.MessageID{}, []byte(c.body))
			m.Attempts, m.Delegate = c.attempts, &a
			h.write([]*nsq.Message{m})
			if a.fin != c.fin || a.req != c.req {
				t.Errorf("finished %d, requeued %d; want %d, %d", a.fin, a.req, c.fin, c.req)
			}
			if !slices.Equal(w.letters, c.letters) {
				t.Errorf("dead letters %q, want %q", w.letters, c.letters)
			}
		})
	}

	w := &writer{}
	h := &acceptedHandler{w: w, version: "V13", dead: w, maxAttempts: 5, timeout: time.Second, batchSize: 2,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var a answers
	var batch []*nsq.Message
	for _, body := range []string{"[" + req("a") + "," + req("b") + "," + req("c") + "]", req("d"), "[" + req("e") + "]"} {
		m := nsq.NewMessage(nsq.MessageID{}, []byte(body))
		m.Delegate = &a
		batch = append(batch, m)
	}
	h.write(batch)
	if !slices.Equal(w.sizes, []int{2, 2, 1}) || a.fin != 3 {
		t.Errorf("writes of %v requests, %d messages finished; want 2, 2, 1 and all 3", w.sizes, a.fin)
	}
}
