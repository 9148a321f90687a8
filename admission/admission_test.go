package admission_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-seckill/seckill/admission"
	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/store"
)

// countingStore is the Redis store, counting the claim round trips.
type countingStore struct {
	*store.Redis
	claims int
}

func (s *countingStore) ClaimOrder(ctx context.Context, goodsID, userID int64, token string, ttl time.Duration, allowance int64) error {
	s.claims++
	return s.Redis.ClaimOrder(ctx, goodsID, userID, token, ttl, allowance)
}

// units is the goods' units on sale, as the database would say.
type units struct{ stock, sale int64 }

func (u units) Goods(_ context.Context, id int64) (service.Goods, error) {
	return service.Goods{ID: id, Stock: u.stock, Sale: u.sale}, nil
}

// Once the gate refused a goods, the instance refuses it from memory, with
// no round trip, until stock comes back: a Forget (the broadcast of an
// addition or a return) asks Redis again, and StockBack reopens it.
func TestClosedGateIsRememberedUntilStockComesBack(t *testing.T) {
	ctx := context.Background()
	addr, prefix := testenv.Redis(t)
	r, err := store.OpenRedis(ctx, store.RedisOptions{Addr: addr, PoolSize: 4, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	s := &countingStore{Redis: r}
	gateRefusals := 0
	a := admission.New(s, units{stock: 0, sale: 2}, admission.Options{StockFactor: 1.5, ClaimTTL: time.Minute, EarlyTTL: time.Minute,
		TotalsTTL: time.Minute, Counted: func(reason string) {
			if reason == admission.ReasonGate {
				gateRefusals++
			}
		}})
	const goods = 5
	order := func(user int64) error {
		release, err := a.Claim(ctx, service.OrderRequest{UserID: user, GoodsID: goods, Number: 1})
		if err == nil {
			release()
		}
		return err
	}
	for user := int64(1); user <= 3; user++ { // 2 units on sale: floor(1.5 × 2) = 3 pass
		if err := order(user); err != nil {
			t.Fatalf("attempt %d: %v", user, err)
		}
	}
	for user := int64(4); user <= 6; user++ {
		if err := order(user); !errors.Is(err, service.ErrSoldOut) {
			t.Fatalf("attempt %d past the gate: %v, want ErrSoldOut", user, err)
		}
	}
	if s.claims != 4 || gateRefusals != 3 {
		t.Fatalf("%d claim round trips and %d gate refusals for 6 attempts, want 4 and 3: the closed gate is answered from memory",
			s.claims, gateRefusals)
	}

	a.Forget(goods)
	if err := order(7); !errors.Is(err, service.ErrSoldOut) || s.claims != 5 {
		t.Fatalf("after a Forget: %v with %d round trips, want ErrSoldOut read from Redis (5)", err, s.claims)
	}

	if err := r.Put(ctx, service.Goods{ID: goods, Stock: 2}); err != nil {
		t.Fatal(err)
	}
	a.StockBack(goods)
	if err := order(8); err != nil {
		t.Fatalf("after stock came back: %v, want admitted", err)
	}
}
