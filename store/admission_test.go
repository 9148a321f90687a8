package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-seckill/seckill/admission"
	"github.com/go-seckill/seckill/service"
)

// One claim script admits an attempt: an early user first, then a twin,
// then the gate refuse, in that order; an admitted attempt holds the claim
// and counts at the gate, a refused one leaves neither.
func TestClaimOrderChecksEarlyTwinAndGateInOneStep(t *testing.T) {
	ctx := context.Background()
	r := openTestRedis(t)
	const goods, allowance = 9, 2
	claim := func(user int64, token string) error {
		return r.ClaimOrder(ctx, goods, user, token, time.Minute, allowance)
	}
	gate := func() int64 {
		n, _ := r.c.Get(ctx, GateKey(r.prefix, goods)).Int64()
		return n
	}
	if err := claim(1, "a"); err != nil {
		t.Fatalf("first attempt: %v", err)
	}
	if err := claim(1, "b"); !errors.Is(err, admission.ErrTwin) {
		t.Fatalf("twin: %v, want ErrTwin", err)
	}
	if err := r.MarkEarly(ctx, goods, 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := claim(2, "c"); !errors.Is(err, admission.ErrEarly) {
		t.Fatalf("early user: %v, want ErrEarly", err)
	}
	if n := gate(); n != 1 {
		t.Fatalf("gate count %d after a twin and an early user, want 1: refusals are not counted", n)
	}
	if err := claim(3, "d"); err != nil {
		t.Fatalf("second admitted attempt: %v", err)
	}
	if err := claim(4, "e"); !errors.Is(err, service.ErrSoldOut) {
		t.Fatalf("attempt past the allowance: %v, want ErrSoldOut", err)
	}
	if n, _ := r.c.Exists(ctx, ClaimKey(r.prefix, goods, 4)).Result(); n != 0 {
		t.Fatal("a refused attempt left a claim")
	}
	// The twin and the early user are told so even past the allowance.
	if err := claim(1, "f"); !errors.Is(err, admission.ErrTwin) {
		t.Fatalf("twin past the allowance: %v, want ErrTwin", err)
	}
	if err := claim(2, "g"); !errors.Is(err, admission.ErrEarly) {
		t.Fatalf("early user past the allowance: %v, want ErrEarly", err)
	}
	if n := gate(); n != allowance {
		t.Fatalf("gate count %d, want %d", n, allowance)
	}
	// A released claim lets its user try again; the claim's token guards it.
	if err := r.ReleaseClaim(ctx, goods, 1, "wrong"); err != nil {
		t.Fatal(err)
	}
	if err := claim(1, "h"); !errors.Is(err, admission.ErrTwin) {
		t.Fatalf("after a release by another token: %v, want ErrTwin", err)
	}
	if err := r.ReleaseClaim(ctx, goods, 1, "a"); err != nil {
		t.Fatal(err)
	}
	if err := claim(1, "i"); !errors.Is(err, service.ErrSoldOut) {
		t.Fatalf("released user past the allowance: %v, want ErrSoldOut", err)
	}
}
