package deadletter

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-seckill/seckill/service"
)

// memLetters holds one letter; Act runs decide on it as the store does.
type memLetters struct {
	l       Letter
	actions []Action
}

func (m *memLetters) DeadLetter(context.Context, string, service.StockMessage, []byte, string) error {
	return nil
}
func (m *memLetters) Letters(context.Context, string, int64, int) ([]Letter, error) { return nil, nil }
func (m *memLetters) Letter(context.Context, int64) (Letter, error)                 { return m.l, nil }
func (m *memLetters) Act(_ context.Context, _ int64, a Action, status string, decide func(Letter) (bool, error)) (Letter, bool, error) {
	acted, err := decide(m.l)
	if err != nil || !acted {
		return m.l, false, err
	}
	m.l.Status = status
	m.actions = append(m.actions, a)
	return m.l, true, nil
}

type memPub struct {
	sent []string
	err  error
}

func (p *memPub) PublishRaw(_ context.Context, topic string, body []byte) error {
	if p.err != nil {
		return p.err
	}
	p.sent = append(p.sent, topic+" "+string(body))
	return nil
}

func book(l Letter) (*Book, *memLetters, *memPub) {
	ls, pub := &memLetters{l: l}, &memPub{}
	return New(ls, pub, slog.New(slog.NewTextHandler(io.Discard, nil))), ls, pub
}

// A replay publishes an open letter's body to its topic once; replayed
// letters publish nothing more, resolved or topic-less ones cannot be
// replayed, and a failed publish leaves the letter open.
func TestReplay(t *testing.T) {
	ctx := context.Background()
	b, ls, pub := book(Letter{ID: 1, Topic: "stock", Body: "{}", Status: Open})
	pub.err = service.ErrUnavailable
	if _, _, err := b.Replay(ctx, 1, "", ""); !errors.Is(err, service.ErrUnavailable) || ls.l.Status != Open {
		t.Errorf("failed publish: %v, status %s", err, ls.l.Status)
	}
	pub.err = nil
	for i, want := range []bool{true, false} {
		if _, acted, err := b.Replay(ctx, 1, "ops", "n"); err != nil || acted != want {
			t.Errorf("replay %d: acted %v, %v; want %v", i, acted, err, want)
		}
	}
	if len(pub.sent) != 1 || pub.sent[0] != "stock {}" || len(ls.actions) != 1 || ls.actions[0].Actor != "ops" {
		t.Errorf("sent %v, actions %+v", pub.sent, ls.actions)
	}
	for _, l := range []Letter{{ID: 1, Topic: "stock", Status: Resolved}, {ID: 1, Status: Open}} {
		b, _, pub := book(l)
		if _, _, err := b.Replay(ctx, 1, "", ""); !errors.Is(err, service.ErrNotReplayable) || len(pub.sent) != 0 {
			t.Errorf("%+v: %v, sent %v", l, err, pub.sent)
		}
	}
}

// Resolving is recorded once, by "admin" unless someone is named; bad
// input changes nothing.
func TestResolve(t *testing.T) {
	ctx := context.Background()
	b, ls, _ := book(Letter{ID: 1, Status: Replayed})
	for i, want := range []bool{true, false} {
		if l, acted, err := b.Resolve(ctx, 1, "", "done"); err != nil || acted != want || l.Status != Resolved {
			t.Errorf("resolve %d: %+v %v %v", i, l, acted, err)
		}
	}
	if len(ls.actions) != 1 || ls.actions[0].Actor != "admin" || ls.actions[0].Note != "done" {
		t.Errorf("actions %+v", ls.actions)
	}
	for _, c := range []struct {
		id          int64
		actor, note string
	}{{0, "", ""}, {1, strings.Repeat("a", MaxActorLen+1), ""}, {1, "", strings.Repeat("n", MaxNoteLen+1)}} {
		if _, _, err := b.Resolve(ctx, c.id, c.actor, c.note); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("id %d, actor %d, note %d characters: %v, want invalid", c.id, len(c.actor), len(c.note), err)
		}
	}
	if _, err := b.List(ctx, "lost", 0, 10); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("list by an unknown status: %v", err)
	}
}
