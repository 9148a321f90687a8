package store

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/deadletter"
)

// A second letter for an order adds an attempt to the first; a replayed
// letter opens again with the new reason, a resolved one stays resolved;
// a failed action changes nothing.
func TestDeadLetterAttemptsAndActions(t *testing.T) {
	d := openTestDatabase(t)
	ctx := context.Background()
	m := service.StockMessage{OrderID: 41, GoodsID: 7, UserID: 1, Number: 1}
	if err := d.DeadLetter(ctx, "stock", m, []byte(`{"order_id":41}`), "first"); err != nil {
		t.Fatal(err)
	}
	ls, err := d.Letters(ctx, deadletter.Open, 0, 10)
	if err != nil || len(ls) != 1 || ls[0].Attempts != 1 || ls[0].Topic != "stock" || ls[0].Body != `{"order_id":41}` {
		t.Fatalf("letters %+v, %v", ls, err)
	}
	id := ls[0].ID
	replay := deadletter.Action{Action: "replay", Actor: "ops"}
	errPublish := errors.New("nsqd down")
	if _, acted, err := d.Act(ctx, id, replay, deadletter.Replayed, func(deadletter.Letter) (bool, error) { return true, errPublish }); !errors.Is(err, errPublish) || acted {
		t.Errorf("failed replay: acted %v, %v", acted, err)
	}
	if l, _ := d.Letter(ctx, id); l.Status != deadletter.Open || len(l.Actions) != 0 {
		t.Errorf("after a failed replay: %+v, want open without actions", l)
	}
	if l, acted, err := d.Act(ctx, id, replay, deadletter.Replayed, func(deadletter.Letter) (bool, error) { return true, nil }); err != nil || !acted || l.Status != deadletter.Replayed || len(l.Actions) != 1 {
		t.Fatalf("replay: %+v, %v, %v", l, acted, err)
	}
	if err := d.DeadLetter(ctx, "stock", m, []byte(`{"order_id":41}`), "again"); err != nil {
		t.Fatal(err)
	}
	if l, _ := d.Letter(ctx, id); l.Status != deadletter.Open || l.Attempts != 2 || l.Reason != "again" {
		t.Errorf("a replay given up on: %+v, want open, 2 attempts, the new reason", l)
	}
	if _, _, err := d.Act(ctx, id, deadletter.Action{Action: "resolve", Actor: "ann", Note: "by hand"}, deadletter.Resolved,
		func(deadletter.Letter) (bool, error) { return true, nil }); err != nil {
		t.Fatal(err)
	}
	if err := d.DeadLetter(ctx, "stock", m, nil, "once more"); err != nil {
		t.Fatal(err)
	}
	if l, _ := d.Letter(ctx, id); l.Status != deadletter.Resolved || l.Attempts != 3 || l.Reason != "again" || len(l.Actions) != 2 || l.Actions[1].Note != "by hand" {
		t.Errorf("a resolved letter given up on again: %+v", l)
	}
	if _, err := d.Letter(ctx, id+1000); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("unknown letter: %v", err)
	}
}

// A letter naming no order (an accepted request given up on, an
// undecodable body) is kept once per topic and body: the same request
// given up on again, as when a message of several requests is retried
// whole, adds an attempt, not a row.
func TestALetterNamingNoOrderIsKeptOnce(t *testing.T) {
	d := openTestDatabase(t)
	ctx := context.Background()
	letter := func(topic, body, reason string) {
		t.Helper()
		if err := d.DeadLetter(ctx, topic, service.StockMessage{}, []byte(body), reason); err != nil {
			t.Fatal(err)
		}
	}
	letter("accepted", `{"token":"a"}`, "invalid")
	letter("accepted", `{"token":"a"}`, "invalid again")
	letter("accepted", `{"token":"b"}`, "invalid")
	letter("stock", `{"token":"a"}`, "undecodable")
	letter("stock", "", "empty")
	letter("stock", "", "empty")
	ls, err := d.Letters(ctx, "", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	attempts := map[string]int{} // by topic and body
	for _, l := range ls {
		if _, twice := attempts[l.Topic+" "+l.Body]; twice {
			t.Errorf("two letters on %s for %q", l.Topic, l.Body)
		}
		attempts[l.Topic+" "+l.Body] = l.Attempts
	}
	want := map[string]int{`accepted {"token":"a"}`: 2, `accepted {"token":"b"}`: 1, `stock {"token":"a"}`: 1, "stock ": 2}
	if !maps.Equal(attempts, want) {
		t.Errorf("attempts by topic and body %v, want %v", attempts, want)
	}
}
