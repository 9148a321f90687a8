package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/go-seckill/seckill/service"
)

// InsertOrders writes many orders into one order table in one multi-row
// INSERT, committed as one: group commit's write. The statement is all or
// nothing; a row the database refuses (a held idempotency key, an id
// fenced by a void row) refuses them all, and the caller writes each alone
// to learn which. V7's fenced logical tables are not written this way.
func (d *Database) InsertOrders(ctx context.Context, at service.OrderTable, orders []service.Order) error {
	if at.Logical() {
		return fmt.Errorf("%w: group commit does not write logical tables", service.ErrInvalid)
	}
	db, table, err := d.table(ctx, at)
	if err != nil {
		return err
	}
	var q strings.Builder
	q.WriteString("INSERT INTO " + table + " (id, user_id, goods_id, number, amount, pay_deadline, idem_key) VALUES ")
	args := make([]any, 0, 7*len(orders))
	for i, o := range orders {
		if i > 0 {
			q.WriteString(",")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		args = append(args, orderArgs(o)...)
	}
	_, err = db.ExecContext(ctx, q.String(), args...)
	if isKeyDuplicate(err) && len(orders) == 1 {
		// One row: the key held is its key, as InsertOrder says. With more,
		// which row holds it is unknown: the caller writes each alone.
		return service.ErrKeyHeld
	}
	return writeFailed(err)
}

// PublishBatch sends ms as one message, the JSON array of their sales (up
// to maxPublishBatch in each), to nsqd number route modulo their count,
// and to each of the others in turn when that fails: group commit's
// publish, one round trip, one delivery and one FIN for a batch.
func (p *Publisher) PublishBatch(ctx context.Context, ms []service.StockMessage, route int64) error {
	for chunk := range slices.Chunk(ms, maxPublishBatch) {
		body, err := json.Marshal(chunk)
		if err != nil {
			return err
		}
		if err := p.publish(p.topic, body, route); err != nil {
			return err
		}
	}
	return nil
}
