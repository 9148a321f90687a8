package admission_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-seckill/seckill/admission"
	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/store"
)

// taker is either kind of bucket, keyed.
type taker func(key string) (time.Duration, bool)

// The four modes, on one instance (x/time/rate) and across instances
// (redis_rate's GCRA): a burst of Burst+2 requests within one refill
// (an hour) is admitted at once up to the mode's instant part, then waits
// one interval per request up to the burst, then is refused.
func TestModes(t *testing.T) {
	addr, prefix := testenv.Redis(t)
	r, err := store.OpenRedis(context.Background(), store.RedisOptions{Addr: addr, PoolSize: 4, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	const h = time.Hour
	refused := time.Duration(-1)
	for _, tc := range []struct {
		name  string
		limit admission.Limit
		want  []time.Duration // per request: its wait, or refused
	}{
		{"fixed rate", admission.Limit{Rate: 1, Period: h, Burst: 1, Mode: admission.Fixed}, []time.Duration{0, refused, refused}},
		{"burst that waits", admission.Limit{Rate: 1, Period: h, Burst: 3, Mode: admission.Queue}, []time.Duration{0, h, 2 * h, refused, refused}},
		{"burst without delay", admission.Limit{Rate: 1, Period: h, Burst: 3, Mode: admission.NoDelay}, []time.Duration{0, 0, 0, refused, refused}},
		{"partial no-delay", admission.Limit{Rate: 2, Period: h, Burst: 4, Mode: admission.Partial, Delay: 2}, []time.Duration{0, 0, h / 2, h, refused, refused}},
	} {
		if err := tc.limit.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		shared := admission.NewShared(testenv.Name("modes"), tc.limit, r)
		local := admission.NewLocal(tc.limit)
		for kind, take := range map[string]taker{
			"local":  local.Take,
			"shared": func(key string) (time.Duration, bool) { return shared.Take(context.Background(), key) },
		} {
			for _, key := range []string{"a", "b"} { // each key its own bucket
				for i, want := range tc.want {
					wait, ok := take(key)
					if !ok {
						wait = refused
					}
					// GCRA counts in whole milliseconds or so: compare to a second.
					if (want == refused) != (wait == refused) || (want != refused && (wait-want).Abs() > time.Second) {
						t.Errorf("%s, %s, key %s, request %d: wait %v, want %v (-1: refused)", tc.name, kind, key, i+1, wait, want)
					}
				}
			}
		}
	}
}

func TestLimitValidate(t *testing.T) {
	for _, l := range []admission.Limit{
		{Rate: -1, Period: time.Second, Burst: 1, Mode: admission.Fixed},
		{Rate: 1, Period: 0, Burst: 1, Mode: admission.Fixed},
		{Rate: 1, Period: time.Second, Burst: 0, Mode: admission.NoDelay},
		{Rate: 1, Period: time.Second, Burst: 3, Mode: admission.Fixed},
		{Rate: 1, Period: time.Second, Burst: 3, Mode: admission.Partial, Delay: 3},
		{Rate: 1, Period: time.Second, Burst: 3, Mode: "leaky"},
	} {
		if l.Validate() == nil {
			t.Errorf("%+v accepted", l)
		}
	}
	if err := (admission.Limit{}).Validate(); err != nil {
		t.Errorf("rate 0 (no limit) refused: %v", err)
	}
}

// With Redis down the address limit holds on each instance alone (fails
// open to the local bucket), and says so.
func TestSharedFallsBackToTheInstance(t *testing.T) {
	addr, prefix := testenv.Redis(t)
	r, err := store.OpenRedis(context.Background(), store.RedisOptions{Addr: addr, PoolSize: 4, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // every call fails from now on
	s := admission.NewShared("ip", admission.Limit{Rate: 1, Period: time.Hour, Burst: 2, Mode: admission.NoDelay}, r)
	fallbacks := 0
	s.Fallbacks = func() { fallbacks++ }
	admitted := 0
	for range 4 {
		if _, ok := s.Take(context.Background(), "x"); ok {
			admitted++
		}
	}
	if admitted != 2 || fallbacks != 4 {
		t.Errorf("redis down: %d admitted, %d fallbacks; want the burst (2) and 4", admitted, fallbacks)
	}
}
