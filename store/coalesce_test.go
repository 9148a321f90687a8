package store

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// Concurrent publishes go out together, each caller answered with its own
// batch's acknowledgement, every message sent once; a failed batch fails
// each of its callers.
func TestConcurrentPublishesAreBatched(t *testing.T) {
	var mu sync.Mutex
	var sends, sent int
	fail := errors.New("nsqd down")
	b := newCoalescer(maxPublishBatch, func(bodies [][]byte) []error {
		time.Sleep(2 * time.Millisecond) // a round trip, during which others queue
		mu.Lock()
		defer mu.Unlock()
		sends++
		sent += len(bodies)
		errs := make([]error, len(bodies))
		for _, body := range bodies {
			if string(body) == "poison" {
				for i := range errs {
					errs[i] = fail
				}
			}
		}
		return errs
	})
	const n = 500
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := []byte("ok")
			if i == 7 {
				body = []byte("poison")
			}
			errs[i] = b.do(body)
		}()
	}
	wg.Wait()
	if sent != n {
		t.Fatalf("%d messages sent for %d publishes", sent, n)
	}
	if sends > n/5 {
		t.Errorf("%d sends for %d concurrent publishes: want batches", sends, n)
	}
	failed := 0
	for _, err := range errs {
		if errors.Is(err, fail) {
			failed++
		}
	}
	if !errors.Is(errs[7], fail) || failed > maxPublishBatch {
		t.Errorf("the poisoned message's caller got %v; %d callers failed, want those of its batch only", errs[7], failed)
	}
}
