package store

import (
	"context"
	"database/sql"

	"github.com/go-seckill/seckill/service"
)

// dead_letters: the stock messages the consumer gave up on, at most one
// row per order.

// maxReason bounds a dead letter's reason, as its column does.
const maxReason = 1000

func (d *Database) DeadLetter(ctx context.Context, m service.StockMessage, body []byte, reason string) error {
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	_, err := d.db.ExecContext(ctx, "INSERT INTO dead_letters (order_id, goods_id, body, reason) VALUES (?, ?, ?, ?)",
		nullIfZero(m.OrderID), nullIfZero(m.GoodsID), body, reason)
	if isDuplicate(err) {
		return nil // this order is dead-lettered already
	}
	return classify(err)
}

func nullIfZero(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id > 0} }
