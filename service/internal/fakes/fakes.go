// Package fakes holds what the tests of the domain's units share: a record
// of the calls their fakes receive, and in-memory fakes of the ports that
// several units declare alike (ids, the stock-message publisher). Every
// fake has one func field per method; a method whose field is nil panics,
// so that a test notices a call it did not expect.
package fakes

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"

	"github.com/go-seckill/seckill/service"
)

// Call is one call a fake received: "Port.Method" and its arguments.
type Call struct {
	Name string
	Args []any
}

// Recorder records the calls of the fakes sharing it, in the order they
// were made, so that a test can assert which port was called with what, in
// which order, and which was not called at all. It is safe for concurrent
// use; the zero value is ready.
type Recorder struct {
	mu    sync.Mutex
	calls []Call
}

// Record notes a call. A nil recorder records nothing.
func (r *Recorder) Record(name string, args ...any) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, Call{Name: name, Args: args})
}

// Calls lists every call so far.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Names lists the names of the calls so far, in order.
func (r *Recorder) Names() []string {
	var names []string
	for _, c := range r.Calls() {
		names = append(names, c.Name)
	}
	return names
}

// Of lists the arguments of every call to name, in order.
func (r *Recorder) Of(name string) [][]any {
	var args [][]any
	for _, c := range r.Calls() {
		if c.Name == name {
			args = append(args, c.Args)
		}
	}
	return args
}

// Only lists the names of the calls so far that are among names, in order.
func (r *Recorder) Only(names ...string) []string {
	var only []string
	for _, c := range r.Calls() {
		if slices.Contains(names, c.Name) {
			only = append(only, c.Name)
		}
	}
	return only
}

// Count is how many calls name received.
func (r *Recorder) Count(name string) int { return len(r.Of(name)) }

// Unexpected panics for a call to a method whose func field is nil.
func Unexpected(name string) {
	panic(fmt.Sprintf("fakes: unexpected call to %s", name))
}

// Log is a logger that writes nowhere.
func Log() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// IDs makes ids 1, 2, 3... unless NewIDFn is set.
type IDs struct {
	NewIDFn func() int64
	Rec     *Recorder

	mu   sync.Mutex
	last int64
}

// NewID records the call and returns the next id.
func (f *IDs) NewID() int64 {
	if f.NewIDFn != nil {
		id := f.NewIDFn()
		f.Rec.Record("IDs.NewID", id)
		return id
	}
	f.mu.Lock()
	f.last++
	id := f.last
	f.mu.Unlock()
	f.Rec.Record("IDs.NewID", id)
	return id
}

// Publisher stands for nsqd: Publish(m, route).
type Publisher struct {
	PublishFn func(ctx context.Context, m service.StockMessage, route int64) error
	Rec       *Recorder
}

// Publish records the message and its route.
func (f *Publisher) Publish(ctx context.Context, m service.StockMessage, route int64) error {
	f.Rec.Record("Publish", m, route)
	if f.PublishFn == nil {
		Unexpected("Publish")
	}
	return f.PublishFn(ctx, m, route)
}
