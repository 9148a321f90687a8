package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/store"
)

// A reservation sale (V12): shoppers reserve before the start; at the
// start the first reservers, as many as the units, are admitted, and a
// stampede of reservers and strangers sells exactly the stock to the
// first reservers, the others answered 403 not_reserved before the stock.
// Redis losing the bitmap admits the same reservers again.
func TestReservationSaleSellsOnlyToTheFirstReservers(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)
	const stock, reservers = 5, 30
	start := time.Now().Add(3 * time.Second).UTC()
	var g service.Goods
	if code := in.Call(t, "POST", "/admin/goods", map[string]any{"name": "masks", "price": 100, "stock": stock, "start_at": start}, &g); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	type reservation struct {
		Position int64  `json:"position"`
		Error    string `json:"error"`
	}
	reserve := func(user int64) (int, reservation) {
		var r reservation
		code := in.Call(t, "POST", fmt.Sprintf("/goods/%d/reservations", g.ID), map[string]any{"user_id": user}, &r)
		return code, r
	}
	for u := int64(1); u <= reservers; u++ {
		if code, r := reserve(1000 + u); code != http.StatusCreated || r.Position != u {
			t.Fatalf("reservation %d: %d %+v, want 201 at position %d", u, code, r, u)
		}
	}
	if code, r := reserve(1001); code != http.StatusCreated || r.Position != 1 {
		t.Errorf("reserving again: %d %+v, want the first place kept", code, r)
	}
	for _, bad := range []struct {
		path string
		body any
		code int
		err  string
	}{
		{fmt.Sprintf("/goods/%d/reservations", g.ID), map[string]any{}, http.StatusBadRequest, "invalid_request"},
		{fmt.Sprintf("/goods/%d/reservations", g.ID), map[string]any{"user_id": 0}, http.StatusBadRequest, "invalid_request"},
		{fmt.Sprintf("/goods/%d/reservations", g.ID), map[string]any{"user_id": int64(1) << 40}, http.StatusBadRequest, "invalid_request"},
		{"/goods/999999/reservations", map[string]any{"user_id": 5}, http.StatusNotFound, "not_found"},
	} {
		var a reservation
		if code := in.Call(t, "POST", bad.path, bad.body, &a); code != bad.code || a.Error != bad.err {
			t.Errorf("%s %v: %d %s, want %d %s", bad.path, bad.body, code, a.Error, bad.code, bad.err)
		}
	}
	if code, _ := in.Order(t, "V12", 1001, g.ID, 1); code != http.StatusConflict {
		t.Errorf("order before the start: %d, want 409 not_started", code)
	}
	time.Sleep(time.Until(start) + 100*time.Millisecond)
	if code, r := reserve(5000); code != http.StatusConflict || r.Error != "reservations_closed" {
		t.Errorf("reservation after the start: %d %+v, want 409 reservations_closed", code, r)
	}

	// Every reserver and as many strangers, twice each, at once.
	var mu sync.Mutex
	byCode := map[string]int{}
	var accepted []int64
	buyers := map[int64]bool{}
	var wg sync.WaitGroup
	for u := int64(1); u <= 2*reservers; u++ {
		user := 1000 + u
		if u > reservers {
			user = 9000 + u
		}
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, a := in.Order(t, "V12", user, g.ID, 1)
				mu.Lock()
				defer mu.Unlock()
				byCode[fmt.Sprint(code, " ", a.Error)]++
				if code == http.StatusCreated {
					accepted = append(accepted, a.ID)
					buyers[user] = true
				}
			}()
		}
	}
	wg.Wait()
	if len(accepted) != stock {
		t.Fatalf("answers %v: %d sold, want the %d units", byCode, len(accepted), stock)
	}
	for user := range buyers {
		if user > 1000+stock {
			t.Errorf("user %d bought, but only the first %d reservers are admitted (answers %v)", user, stock, byCode)
		}
	}
	// Strangers and late reservers are refused before the stock: 2 × 25
	// late reservers and 2 × 30 strangers.
	if n := byCode["403 not_reserved"]; n != 2*(2*reservers-stock) {
		t.Errorf("answers %v: %d not_reserved, want %d", byCode, n, 2*(2*reservers-stock))
	}
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: stock, Accepted: accepted})

	// Redis loses the bitmap: it is built again from the list, the same.
	if err := e.Redis().Del(context.Background(), store.GoodsKey(e.Prefix, g.ID)+"_admitted", store.GoodsKey(e.Prefix, g.ID)+"_admitted_built").Err(); err != nil {
		t.Fatal(err)
	}
	admitted := []string{}
	for _, user := range []int64{1001, 1005, 1006, 9031} {
		code, a := in.Order(t, "V12", user, g.ID, 1)
		admitted = append(admitted, fmt.Sprint(code, " ", a.Error))
	}
	if want := []string{"409 sold_out", "409 sold_out", "403 not_reserved", "403 not_reserved"}; !slices.Equal(admitted, want) {
		t.Errorf("after the bitmap was lost: %v, want %v", admitted, want)
	}
}
