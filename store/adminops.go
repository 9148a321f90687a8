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

func (d *Database) AppliedChanges(ctx context.Context, goodsID int64) (opIDs []string, returned []int64, err error) {
	err = queryEach(ctx, d.db, "SELECT op_id FROM admin_stock_ops WHERE goods_id = ?", []any{goodsID}, func(rows *sql.Rows) error {
		var op string
		err := rows.Scan(&op)
		opIDs = append(opIDs, op)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	err = queryEach(ctx, d.db, "SELECT order_id FROM goods_stock_logs WHERE goods_id = ? AND op = ?", []any{goodsID, service.OpReturn},
		func(rows *sql.Rows) error {
			var id int64
			err := rows.Scan(&id)
			returned = append(returned, id)
			return err
		})
	if err != nil {
		return nil, nil, err
	}
	return opIDs, returned, nil
}
