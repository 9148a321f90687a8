package ordering

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/internal/fakes"
)

// batchStore records the batches written and the messages published, and
// answers each batch with batchErr and each single write with singleErr
// (by order id).
type batchStore struct {
	Orders    // only InsertOrder is called
	mu        sync.Mutex
	batches   [][]int64
	singles   []int64
	published [][]int64
	batchErr  error
	singleErr map[int64]error
}

func (s *batchStore) InsertOrders(_ context.Context, _ service.OrderTable, os []service.Order) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int64
	for _, o := range os {
		ids = append(ids, o.ID)
	}
	s.batches = append(s.batches, ids)
	return s.batchErr
}

func (s *batchStore) InsertOrder(_ context.Context, o service.Order, _ service.OrderTable) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.singles = append(s.singles, o.ID)
	return s.singleErr[o.ID]
}

func (s *batchStore) PublishBatch(_ context.Context, ms []service.StockMessage, _ int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int64
	for _, m := range ms {
		ids = append(ids, m.OrderID)
	}
	s.published = append(s.published, ids)
	return nil
}

// writeAll sends n orders (ids 1..n) into one table at once and returns
// each one's outcome.
func writeAll(t *testing.T, s *batchStore, n int, opts GroupCommitOptions) (published []bool, errs []error) {
	t.Helper()
	c := &committer{orders: s, batch: s, pub: s, opts: opts, log: fakes.Log(), open: map[service.OrderTable]*batch{}}
	published, errs = make([]bool, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			o := service.Order{ID: int64(i + 1), UserID: int64(100 + i), GoodsID: 1, Number: 1}
			published[i], errs[i] = c.write(ctx, o, service.OrderTable{Host: 1, Table: 3}, o.UserID)
		}()
	}
	wg.Wait()
	return published, errs
}

func TestConcurrentOrdersAreWrittenAndPublishedAsOneBatch(t *testing.T) {
	t.Parallel()
	s := &batchStore{}
	published, errs := writeAll(t, s, 8, GroupCommitOptions{MaxBatch: 8, Wait: time.Minute})
	for i := range errs {
		if errs[i] != nil || !published[i] {
			t.Errorf("order %d: published %v, %v", i+1, published[i], errs[i])
		}
	}
	if len(s.batches) != 1 || len(s.batches[0]) != 8 || len(s.singles) != 0 {
		t.Errorf("batches %v, single writes %v; want one batch of 8", s.batches, s.singles)
	}
	if len(s.published) != 1 || len(s.published[0]) != 8 {
		t.Errorf("published %v, want one publish of 8", s.published)
	}
}

func TestABatchIsWrittenAfterItsWaitWhenItDoesNotFill(t *testing.T) {
	t.Parallel()
	s := &batchStore{}
	_, errs := writeAll(t, s, 3, GroupCommitOptions{MaxBatch: 64, Wait: 20 * time.Millisecond})
	n := 0
	for _, b := range s.batches {
		n += len(b)
	}
	if errors.Join(errs...) != nil || n != 3 {
		t.Errorf("errors %v, batches %v; want the 3 orders written", errs, s.batches)
	}
}

// A statement the database refused wrote nothing: each order is written
// alone, and only the refused one fails, with its own error; the others
// go out in one publish.
func TestARefusedBatchIsSettledOrderByOrder(t *testing.T) {
	t.Parallel()
	s := &batchStore{batchErr: service.ErrKeyHeld, singleErr: map[int64]error{3: service.ErrKeyHeld}}
	published, errs := writeAll(t, s, 5, GroupCommitOptions{MaxBatch: 5, Wait: time.Minute})
	for i, err := range errs {
		if id := int64(i + 1); id == 3 {
			if !errors.Is(err, service.ErrKeyHeld) || published[i] {
				t.Errorf("the refused order: published %v, %v; want ErrKeyHeld", published[i], err)
			}
		} else if err != nil || !published[i] {
			t.Errorf("order %d: published %v, %v", id, published[i], err)
		}
	}
	if len(s.singles) != 5 || len(s.published) != 1 || len(s.published[0]) != 4 {
		t.Errorf("single writes %v, publishes %v; want 5 alone and one publish of the 4 written", s.singles, s.published)
	}
}

// A batch whose outcome is unknown, or that was never sent, is each
// order's to settle: every caller gets the error, nothing is published.
func TestAFailedBatchLeavesEachOrderToSettle(t *testing.T) {
	t.Parallel()
	for _, failure := range []error{
		fmt.Errorf("%w: %w: connection reset", service.ErrUnavailable, service.ErrAmbiguous),
		fmt.Errorf("%w: no connection", service.ErrUnavailable),
	} {
		s := &batchStore{batchErr: failure}
		published, errs := writeAll(t, s, 4, GroupCommitOptions{MaxBatch: 4, Wait: time.Minute})
		for i, err := range errs {
			if !errors.Is(err, service.ErrUnavailable) || errors.Is(err, service.ErrAmbiguous) != errors.Is(failure, service.ErrAmbiguous) || published[i] {
				t.Errorf("%v: order %d got published %v, %v", failure, i+1, published[i], err)
			}
		}
		if len(s.singles) != 0 || len(s.published) != 0 {
			t.Errorf("%v: single writes %v, publishes %v; want none", failure, s.singles, s.published)
		}
	}
}

// A caller whose write budget ends before its batch answers cannot know
// whether its row was written.
func TestACallerThatStopsWaitingHasAnUnknownOutcome(t *testing.T) {
	t.Parallel()
	s := &batchStore{}
	c := &committer{orders: s, batch: s, pub: s, opts: GroupCommitOptions{MaxBatch: 64, Wait: time.Second}, log: fakes.Log(), open: map[service.OrderTable]*batch{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := c.write(ctx, service.Order{ID: 1, UserID: 1, GoodsID: 1, Number: 1}, service.OrderTable{Host: 1, Table: 1}, 1)
	if !errors.Is(err, service.ErrAmbiguous) {
		t.Errorf("got %v, want an unknown outcome", err)
	}
}
