package ordering

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
)

// memAccepts keeps accepted requests as Redis does: pending records and
// outcomes by token id.
type memAccepts struct {
	mu       sync.Mutex
	pending  map[string]service.Accepted
	outcome  map[string]string // "ordered" or a failure's reason
	reserve  error             // what reserving again answers
	accepted []string          // ids reserved again
	applied  []int64           // the users whose orders' sales were applied
	applyErr map[int64]error   // what applying a user's order's sale answers
}

func (m *memAccepts) ApplySales(_ context.Context, ms []service.StockMessage) []error {
	m.mu.Lock()
	defer m.mu.Unlock()
	errs := make([]error, len(ms))
	for i, sm := range ms {
		if errs[i] = m.applyErr[sm.UserID]; errs[i] == nil {
			m.applied = append(m.applied, sm.UserID)
		}
	}
	return errs
}

func newMemAccepts() *memAccepts {
	return &memAccepts{pending: map[string]service.Accepted{}, outcome: map[string]string{}}
}

func (m *memAccepts) Accept(_ context.Context, t service.Token, a service.Accepted) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.pending[t.ID]; ok {
		return p.Token, nil
	}
	if m.reserve != nil {
		return "", m.reserve
	}
	m.pending[t.ID] = a
	m.accepted = append(m.accepted, t.ID)
	return "", nil
}

func (m *memAccepts) AcceptStates(_ context.Context, ts []service.Token) ([]service.AcceptState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]service.AcceptState, len(ts))
	for i, t := range ts {
		if o := m.outcome[t.ID]; o != "" && o != "ordered" {
			out[i].Failure = o
		} else if p, ok := m.pending[t.ID]; ok {
			out[i].Pending = &p
		}
	}
	return out, nil
}

func (m *memAccepts) SettleAccepted(_ context.Context, ts []service.Token, _ []service.Accepted) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range ts {
		delete(m.pending, t.ID)
		m.outcome[t.ID] = "ordered"
	}
	return nil
}

func (m *memAccepts) FailAccepted(_ context.Context, t service.Token, _ int64, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pending, t.ID)
	m.outcome[t.ID] = reason
	return nil
}

func (m *memAccepts) AcceptedRecords(_ context.Context, _ int64, each func([]service.Accepted) error) error {
	m.mu.Lock()
	var recs []service.Accepted
	for _, a := range m.pending {
		recs = append(recs, a)
	}
	m.mu.Unlock()
	return each(recs)
}

func (m *memAccepts) AcceptedUnits(_ context.Context, ids []int64) (map[int64]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int64]int64{}
	for _, a := range m.pending {
		t, _ := service.ParseToken(a.Token)
		out[t.GoodsID] += a.Number
	}
	return out, nil
}

// keyedStore answers each order's write by its user: refused, held, or
// unavailable; the rest are written.
type keyedStore struct {
	batchStore
	byUser map[int64]error
	found  map[int64]bool // users whose order the key finds
}

func (s *keyedStore) InsertOrders(ctx context.Context, at service.OrderTable, os []service.Order) error {
	s.batchStore.InsertOrders(ctx, at, os)
	for _, o := range os {
		if s.byUser[o.UserID] != nil {
			return fmt.Errorf("%w: one row refused", service.ErrInvalid)
		}
	}
	return nil
}

func (s *keyedStore) InsertOrder(ctx context.Context, o service.Order, at service.OrderTable) error {
	s.batchStore.InsertOrder(ctx, o, at)
	return s.byUser[o.UserID]
}

func (s *keyedStore) OrderByKey(_ context.Context, _ service.OrderTable, userID int64, _ string) (service.Order, error) {
	if s.found[userID] {
		return service.Order{ID: 1, UserID: userID}, nil
	}
	return service.Order{}, service.ErrNotFound
}

// The writer's decision for each request of a batch: written and settled;
// held by an earlier write of the same request, settled without a second
// order; refused by the database for good, failed with its units back;
// the database unavailable, tried again; a request Redis lost, reserved
// again, or failed as expired when too old, or settled when its order is
// there.
func TestTheWriterSettlesEachAcceptedRequestOnItsOwn(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	acc := newMemAccepts()
	acc.applyErr = map[int64]error{5: fmt.Errorf("%w: connection reset", service.ErrUnavailable)}
	store := &keyedStore{byUser: map[int64]error{
		2: service.ErrKeyHeld,
		3: fmt.Errorf("%w: bad row", service.ErrInvalid),
		4: fmt.Errorf("%w: connection reset", service.ErrUnavailable),
	}, found: map[int64]bool{7: true}}
	store.batchStore.Orders = store
	w.placer.orders = store
	w.placer.EnableAsyncAccept(acc, nil, store, store, AcceptOptions{MaxAge: time.Hour})
	v := service.AcceptVersion()
	now := time.Now().UTC().Truncate(time.Millisecond)
	var batch []service.Accepted
	for user := int64(1); user <= 7; user++ {
		at := now
		if user == 6 {
			at = now.Add(-2 * time.Hour) // past max_age
		}
		tok := service.Token{GoodsID: 9, UserID: user, AcceptedAt: at, ID: fmt.Sprint(100 + user)}
		a := service.Accepted{Token: tok.String(), Number: 1, Route: user}
		if user <= 4 {
			acc.pending[tok.ID] = a // users 5..7: Redis lost the record
		}
		batch = append(batch, a)
	}
	errs := w.placer.WriteAccepted(context.Background(), v.Name, batch)
	want := map[int64]struct {
		err     error
		outcome string
	}{
		1: {nil, "ordered"}, 2: {nil, "ordered"}, 3: {nil, "refused"}, 4: {service.ErrUnavailable, ""},
		5: {nil, "ordered"}, 6: {nil, "expired"}, 7: {nil, ""},
	}
	for i, err := range errs {
		user := int64(i + 1)
		id := fmt.Sprint(100 + user)
		if w := want[user]; !errors.Is(err, w.err) && !(err == nil && w.err == nil) || acc.outcome[id] != w.outcome {
			t.Errorf("user %d: err %v, outcome %q; want %v, %q", user, err, acc.outcome[id], w.err, w.outcome)
		}
	}
	if len(acc.accepted) != 1 || acc.accepted[0] != "105" {
		t.Errorf("reserved again: %v, want only the young request Redis lost", acc.accepted)
	}
	if _, ok := acc.pending["104"]; !ok {
		t.Error("the request the database could not take left Redis: its retry must find it pending")
	}
	// The writer applies the sales of the orders it wrote itself; the one
	// it could not apply goes to the stock consumer as a stock message.
	slices.Sort(acc.applied)
	if !slices.Equal(acc.applied, []int64{1}) {
		t.Errorf("sales applied by the writer: users %v, want 1 (5's failed)", acc.applied)
	}
	var published []int64
	for _, p := range store.published {
		published = append(published, p...)
	}
	if len(published) != 1 {
		t.Errorf("stock messages published: %v, want the one order whose sale the writer could not apply", published)
	}
}

// An accept whose Redis answer was lost is ended on the spot: its 503 is
// true, whether or not the script ran (a recorded request gives its units
// back and is never written).
func TestAnAcceptWithALostAnswerIsEnded(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	acc := newMemAccepts()
	acc.reserve = fmt.Errorf("%w: i/o timeout", service.ErrUnavailable)
	w.placer.EnableAsyncAccept(acc, nil, nil, nil, AcceptOptions{MaxAge: time.Hour})
	_, err := w.placer.Accept(context.Background(), service.AcceptVersion().Name, service.OrderRequest{UserID: 3, GoodsID: 9, Number: 1}, "")
	if !errors.Is(err, service.ErrUnavailable) {
		t.Fatalf("accept: %v, want unavailable", err)
	}
	if len(acc.outcome) != 1 {
		t.Fatalf("outcomes %v, want the request ended", acc.outcome)
	}
	for _, o := range acc.outcome {
		if o != "unavailable" {
			t.Errorf("ended as %q, want unavailable", o)
		}
	}
}
