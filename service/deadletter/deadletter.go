// Package deadletter records the messages the consumers gave up on and
// lets an admin act on them: list and read them, replay one (its body
// republished to its topic) or resolve it (handled by a person). Every
// action is recorded with who took it, when, and a note.
package deadletter

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-seckill/seckill/service"
)

// A letter's statuses.
const (
	// Open: given up on, nobody has acted on it yet (or its replay was
	// given up on again).
	Open = "open"
	// Replayed: its body was republished to its topic.
	Replayed = "replayed"
	// Resolved: a person handled it; it cannot be replayed any more.
	Resolved = "resolved"
)

// Letter is one message given up on.
type Letter struct {
	ID      int64  `json:"id"`
	OrderID int64  `json:"order_id,string,omitempty"` // the order it names, if any
	GoodsID int64  `json:"goods_id,omitempty"`
	Topic   string `json:"topic"`
	// Body is the message as it was received, as text.
	Body   string `json:"body"`
	Reason string `json:"reason"`
	// Attempts counts the times the message was given up on: a replay
	// that fails again adds one and opens the letter again.
	Attempts int    `json:"attempts"`
	Status   string `json:"status"`
	// SaleApplied says, for a letter naming an order, whether the order's
	// stock is applied now (its sale's stock log exists): a letter of
	// V10's double check whose decrement arrived after all needs no replay.
	SaleApplied *bool      `json:"sale_applied,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   *time.Time `json:"updated_at"`
	Actions     []Action   `json:"actions,omitempty"` // oldest first; only when one letter is read
}

// Action is what a person did to a letter.
type Action struct {
	Action string    `json:"action"` // replay, resolve
	Actor  string    `json:"actor"`
	Note   string    `json:"note"`
	At     time.Time `json:"at"`
}

// Letters is the dead_letters table and its actions.
type Letters interface {
	// DeadLetter writes a letter. A second letter for the same order adds
	// an attempt to the first, and opens it again if it was replayed.
	DeadLetter(ctx context.Context, topic string, m service.StockMessage, body []byte, reason string) error
	// Letters lists up to limit letters, newest first, with status
	// status ("" for all), before the id before (0: from the newest).
	Letters(ctx context.Context, status string, before int64, limit int) ([]Letter, error)
	// Letter reads one letter with its actions; ErrNotFound.
	Letter(ctx context.Context, id int64) (Letter, error)
	// Act takes action on letter id while its row is locked: decide says
	// from the letter as it stands whether to act (false: the action was
	// taken before, nothing changes) and may fail; when it acts, the letter
	// gets status and the action is recorded, in one transaction.
	Act(ctx context.Context, id int64, a Action, status string, decide func(Letter) (bool, error)) (Letter, bool, error)
}

// Publisher republishes a body to a topic.
type Publisher interface {
	PublishRaw(ctx context.Context, topic string, body []byte) error
}

// Book is the dead letters.
type Book struct {
	letters Letters
	pub     Publisher
	log     *slog.Logger
}

// New wires the book.
func New(letters Letters, pub Publisher, log *slog.Logger) *Book {
	return &Book{letters: letters, pub: pub, log: log}
}

// Writer is what a consumer of topic writes its letters through.
type Writer struct {
	book  *Book
	topic string
}

// For is the writer of topic's letters.
func (b *Book) For(topic string) Writer { return Writer{book: b, topic: topic} }

// DeadLetter records a message of the writer's topic given up on. m holds
// what could be decoded of body, possibly nothing.
func (w Writer) DeadLetter(ctx context.Context, m service.StockMessage, body []byte, reason string) error {
	w.book.log.Error("message dead-lettered", "topic", w.topic, "order_id", m.OrderID, "goods_id", m.GoodsID, "reason", reason)
	return w.book.letters.DeadLetter(ctx, w.topic, m, body, reason)
}

// Limits of what the list and the actions take.
const (
	MaxList     = 200
	MaxActorLen = 100
	MaxNoteLen  = 1000
)

// List lists up to limit letters (1..MaxList), newest first.
func (b *Book) List(ctx context.Context, status string, before int64, limit int) ([]Letter, error) {
	switch {
	case status != "" && status != Open && status != Replayed && status != Resolved:
		return nil, service.Invalid("status must be open, replayed or resolved")
	case limit < 1 || limit > MaxList:
		return nil, service.Invalid("limit must be from 1 to %d", MaxList)
	case before < 0:
		return nil, service.Invalid("before must be a positive letter id")
	}
	return b.letters.Letters(ctx, status, before, limit)
}

// Letter reads one letter with its actions.
func (b *Book) Letter(ctx context.Context, id int64) (Letter, error) {
	if id < 1 {
		return Letter{}, service.Invalid("id must be a positive integer")
	}
	return b.letters.Letter(ctx, id)
}

// Replay republishes a letter's body to its topic, once: a letter replayed
// before answers as it stands without publishing again (replayed false).
// The body is published while the letter's row is locked and the letter
// is marked after: two replays at once publish once, and a failed publish
// leaves the letter open. Should the mark fail after the publish, the
// letter stays open and a later replay publishes again, which the
// consumers take as the duplicate delivery they already handle (a stock
// message applies by order id once; a cancellation is conditional).
func (b *Book) Replay(ctx context.Context, id int64, actor, note string) (Letter, bool, error) {
	a, err := action(id, "replay", actor, note)
	if err != nil {
		return Letter{}, false, err
	}
	return b.letters.Act(ctx, id, a, Replayed, func(l Letter) (bool, error) {
		switch {
		case l.Status == Replayed:
			return false, nil
		case l.Status == Resolved:
			return false, fmt.Errorf("%w: letter %d is resolved", service.ErrNotReplayable, id)
		case l.Topic == "":
			return false, fmt.Errorf("%w: letter %d names no topic", service.ErrNotReplayable, id)
		}
		return true, b.pub.PublishRaw(ctx, l.Topic, []byte(l.Body))
	})
}

// Resolve marks a letter handled by a person, once: a resolved letter
// answers as it stands (resolved false).
func (b *Book) Resolve(ctx context.Context, id int64, actor, note string) (Letter, bool, error) {
	a, err := action(id, "resolve", actor, note)
	if err != nil {
		return Letter{}, false, err
	}
	return b.letters.Act(ctx, id, a, Resolved, func(l Letter) (bool, error) { return l.Status != Resolved, nil })
}

// action checks and builds an action; an empty actor is "admin".
func action(id int64, what, actor, note string) (Action, error) {
	actor = strings.TrimSpace(actor)
	if actor == "" {
		actor = "admin"
	}
	switch {
	case id < 1:
		return Action{}, service.Invalid("id must be a positive integer")
	case utf8.RuneCountInString(actor) > MaxActorLen:
		return Action{}, service.Invalid("by must have at most %d characters", MaxActorLen)
	case utf8.RuneCountInString(note) > MaxNoteLen:
		return Action{}, service.Invalid("note must have at most %d characters", MaxNoteLen)
	}
	return Action{Action: what, Actor: actor, Note: note}, nil
}
