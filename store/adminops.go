package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/go-seckill/seckill/service"
)

// admin_stock_ops: each stock addition once, by its op id.

func (d *Database) AddStock(ctx context.Context, goodsID, n int64, opID string) error {
	return d.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO admin_stock_ops (op_id, goods_id, delta) VALUES (?, ?, ?)", opID, goodsID, n)
		if isDuplicate(err) {
			return fmt.Errorf("%w: op_id %q", service.ErrDuplicate, opID)
		}
		if err != nil {
			return classify(err)
		}
		res, err := tx.ExecContext(ctx, "UPDATE goods SET stock = stock + ? WHERE id = ? AND deleted_at IS NULL", n, goodsID)
		if err != nil {
			return classify(err)
		}
		if rows, err := res.RowsAffected(); err != nil || rows == 0 {
			return fmt.Errorf("%w: goods %d", service.ErrNotFound, goodsID)
		}
		return nil
	})
}

// PendingMovements lists goods' admin additions and returned orders whose
// record says Redis does not hold them yet (cached = 0): the movements in
// flight, and those whose Redis step failed and was not retried. Both come
// from one snapshot, through the keys on (goods_id, [op,] cached), so that
// the history of movements Redis holds is never read.
func (d *Database) PendingMovements(ctx context.Context, goodsID int64) (ops []string, returns []int64, err error) {
	// One statement reads both in one snapshot (a statement's own, in
	// InnoDB and SQLite alike): one round trip, where a transaction of two
	// reads took four, once or twice per goods in every reconciliation pass.
	err = queryEach(ctx, d.db, "SELECT 0, op_id, 0 FROM admin_stock_ops WHERE goods_id = ? AND cached = 0"+
		" UNION ALL SELECT 1, '', order_id FROM goods_stock_logs WHERE goods_id = ? AND op = ? AND cached = 0",
		[]any{goodsID, goodsID, service.OpReturn}, func(rows *sql.Rows) error {
			var kind int
			var op string
			var id int64
			if err := rows.Scan(&kind, &op, &id); err != nil {
				return err
			}
			if kind == 0 {
				ops = append(ops, op)
			} else {
				returns = append(returns, id)
			}
			return nil
		})
	if err != nil {
		return nil, nil, err
	}
	return ops, returns, nil
}
