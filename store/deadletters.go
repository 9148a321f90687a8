package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/deadletter"
)

// dead_letters: the messages the consumers gave up on, at most one row per
// order or, for those naming none, per topic and body; and
// dead_letter_actions: what people did about them.

// maxReason bounds a dead letter's reason, as its column does.
const maxReason = 1000

func (d *Database) DeadLetter(ctx context.Context, topic string, m service.StockMessage, body []byte, reason string) error {
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	if body == nil {
		body = []byte{} // the column holds what arrived, even nothing
	}
	// A letter is kept once: by its order, or, naming none, by its topic
	// and body (a message of several requests retried whole gives up on
	// the same one again).
	var bodyKey any // NULL when the order keeps it once
	same, args := "order_id = ?", []any{m.OrderID}
	if m.OrderID <= 0 {
		sum := sha256.Sum256(body)
		bodyKey = sum[:]
		same, args = "topic = ? AND body_key = ?", []any{topic, bodyKey}
	}
	_, err := d.db.ExecContext(ctx, "INSERT INTO dead_letters (order_id, goods_id, topic, body, body_key, reason) VALUES (?, ?, ?, ?, ?, ?)",
		nullIfZero(m.OrderID), nullIfZero(m.GoodsID), topic, body, bodyKey, reason)
	if !isDuplicate(err) {
		return classify(err)
	}
	// This message is dead-lettered already: one more attempt given up on.
	// A replayed letter is open again, with the new reason; a resolved one
	// stays resolved.
	_, err = d.db.ExecContext(ctx, "UPDATE dead_letters SET attempts = attempts + 1, updated_at = ?, "+
		"reason = CASE WHEN status = ? THEN ? ELSE reason END, status = CASE WHEN status = ? THEN ? ELSE status END WHERE "+same,
		append([]any{time.Now().UTC(), deadletter.Replayed, reason, deadletter.Replayed, deadletter.Open}, args...)...)
	return classify(err)
}

func nullIfZero(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id > 0} }

const letterColumns = "id, order_id, goods_id, topic, body, reason, attempts, status, created_at, updated_at"

func scanLetter(scan func(...any) error) (deadletter.Letter, error) {
	var l deadletter.Letter
	var order, goods sql.NullInt64
	var updated sql.NullTime
	var body []byte
	err := scan(&l.ID, &order, &goods, &l.Topic, &body, &l.Reason, &l.Attempts, &l.Status, &l.CreatedAt, &updated)
	l.OrderID, l.GoodsID, l.Body = order.Int64, goods.Int64, string(body)
	if updated.Valid {
		l.UpdatedAt = &updated.Time
	}
	return l, err
}

func (d *Database) Letters(ctx context.Context, status string, before int64, limit int) ([]deadletter.Letter, error) {
	where, args := []string{"1 = 1"}, []any{}
	if status != "" {
		where, args = append(where, "status = ?"), append(args, status)
	}
	if before > 0 {
		where, args = append(where, "id < ?"), append(args, before)
	}
	out := []deadletter.Letter{}
	err := queryEach(ctx, d.db, "SELECT "+letterColumns+" FROM dead_letters WHERE "+strings.Join(where, " AND ")+" ORDER BY id DESC LIMIT ?",
		append(args, limit), func(rows *sql.Rows) error {
			l, err := scanLetter(rows.Scan)
			out = append(out, l)
			return err
		})
	if err != nil {
		return out, err
	}
	return out, d.markApplied(ctx, out)
}

// markApplied tells each letter naming an order whether the order's sale
// is applied now.
func (d *Database) markApplied(ctx context.Context, ls []deadletter.Letter) error {
	var ids []int64
	for _, l := range ls {
		if l.OrderID > 0 {
			ids = append(ids, l.OrderID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	applied, err := d.Applied(ctx, ids)
	for i := range ls {
		if ls[i].OrderID > 0 {
			a := applied[ls[i].OrderID]
			ls[i].SaleApplied = &a
		}
	}
	return err
}

func (d *Database) Letter(ctx context.Context, id int64) (deadletter.Letter, error) {
	l, err := letterIn(ctx, d.db, id, "")
	if err != nil {
		return l, err
	}
	if l.Actions, err = actionsOf(ctx, d.db, id); err != nil {
		return l, err
	}
	one := []deadletter.Letter{l}
	err = d.markApplied(ctx, one)
	return one[0], err
}

// rowQuerier is a pool or a transaction.
type rowQuerier interface {
	querier
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func letterIn(ctx context.Context, q rowQuerier, id int64, lock string) (deadletter.Letter, error) {
	l, err := scanLetter(q.QueryRowContext(ctx, "SELECT "+letterColumns+" FROM dead_letters WHERE id = ?"+lock, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("%w: dead letter %d", service.ErrNotFound, id)
	}
	return l, classify(err)
}

func actionsOf(ctx context.Context, q querier, id int64) ([]deadletter.Action, error) {
	out := []deadletter.Action{}
	err := queryEach(ctx, q, "SELECT action, actor, note, created_at FROM dead_letter_actions WHERE letter_id = ? ORDER BY id",
		[]any{id}, func(rows *sql.Rows) error {
			var a deadletter.Action
			err := rows.Scan(&a.Action, &a.Actor, &a.Note, &a.At)
			out = append(out, a)
			return err
		})
	return out, err
}

func (d *Database) Act(ctx context.Context, id int64, a deadletter.Action, status string, decide func(deadletter.Letter) (bool, error)) (deadletter.Letter, bool, error) {
	var l deadletter.Letter
	acted := false
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if l, err = letterIn(ctx, tx, id, d.forUpdate()); err != nil {
			return err
		}
		if acted, err = decide(l); err != nil || !acted {
			return err
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		if _, err := tx.ExecContext(ctx, "UPDATE dead_letters SET status = ?, updated_at = ? WHERE id = ?", status, now, id); err != nil {
			return classify(err)
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO dead_letter_actions (letter_id, action, actor, note, created_at) VALUES (?, ?, ?, ?, ?)",
			id, a.Action, a.Actor, a.Note, now)
		return classify(err)
	})
	if err != nil {
		return deadletter.Letter{}, false, err
	}
	l, err = d.Letter(ctx, id)
	return l, acted, err
}
