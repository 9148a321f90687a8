package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/go-seckill/seckill/service"
)

// The records of stock coming in (admin_stock_ops rows, the return rows of
// goods_stock_logs) say in cached whether Redis holds the movement. A
// movement's Redis step runs while its record's row is locked and only if
// cached is 0, and cached is set before the transaction ends; the marker
// the step leaves in Redis is deleted only after that commit. So a copy of
// the movement either waits for the lock and then sees cached = 1, or runs
// its step while the marker is still there and adds nothing.

// CacheAddition runs step, the Redis step of the admin addition opID, with
// the goods and delta its record holds, unless the record says Redis holds
// it already; then records that Redis does. applied says step ran and the
// record says so. A failed step leaves the record as it was.
func (d *Database) CacheAddition(ctx context.Context, opID string, step func(goodsID, delta int64) error) (applied bool, err error) {
	err = d.inTx(ctx, func(tx *sql.Tx) error {
		var goodsID, delta int64
		var cached int
		err := tx.QueryRowContext(ctx, "SELECT goods_id, delta, cached FROM admin_stock_ops WHERE op_id = ?"+d.forUpdate(), opID).
			Scan(&goodsID, &delta, &cached)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: admin operation %q", service.ErrNotFound, opID)
		}
		if err != nil || cached == 1 {
			return classify(err)
		}
		if err := step(goodsID, delta); err != nil {
			return err
		}
		applied = true
		_, err = tx.ExecContext(ctx, "UPDATE admin_stock_ops SET cached = 1 WHERE op_id = ?", opID)
		return classify(err)
	})
	return applied && err == nil, err
}

// CacheReturn does for the return of order orderID what CacheAddition does
// for an addition.
func (d *Database) CacheReturn(ctx context.Context, orderID int64, step func() error) (applied bool, err error) {
	err = d.inTx(ctx, func(tx *sql.Tx) error {
		var cached int
		err := tx.QueryRowContext(ctx, "SELECT cached FROM goods_stock_logs WHERE order_id = ? AND op = ?"+d.forUpdate(),
			orderID, service.OpReturn).Scan(&cached)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: return of order %d", service.ErrNotFound, orderID)
		}
		if err != nil || cached == 1 {
			return classify(err)
		}
		if err := step(); err != nil {
			return err
		}
		applied = true
		_, err = tx.ExecContext(ctx, "UPDATE goods_stock_logs SET cached = 1 WHERE order_id = ? AND op = ?", orderID, service.OpReturn)
		return classify(err)
	})
	return applied && err == nil, err
}

// MarkCached records that Redis holds goods' movements ops and returns,
// whose markers it has, and returns those of them that have a record: the
// markers that may go now. A marker without a record stays: a repair of a
// buyer's units set it for a return yet to be recorded.
func (d *Database) MarkCached(ctx context.Context, goodsID int64, ops []string, returns []int64) (recorded []string, recordedReturns []int64, err error) {
	// Rows are locked in key order, so that two of these cannot deadlock.
	ops, returns = slices.Sorted(slices.Values(ops)), slices.Sorted(slices.Values(returns))
	for part := range slices.Chunk(slices.Compact(ops), 500) {
		in, args := inListOf(part)
		err := d.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "UPDATE admin_stock_ops SET cached = 1 WHERE goods_id = ? AND cached = 0 AND op_id IN "+in,
				append([]any{goodsID}, args...)...); err != nil {
				return classify(err)
			}
			return queryEach(ctx, tx, "SELECT op_id FROM admin_stock_ops WHERE goods_id = ? AND op_id IN "+in, append([]any{goodsID}, args...),
				func(rows *sql.Rows) error {
					var op string
					err := rows.Scan(&op)
					recorded = append(recorded, op)
					return err
				})
		})
		if err != nil {
			return nil, nil, err
		}
	}
	for part := range slices.Chunk(slices.Compact(returns), 500) {
		in, args := inListOf(part)
		err := d.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "UPDATE goods_stock_logs SET cached = 1 WHERE goods_id = ? AND op = ? AND cached = 0 AND order_id IN "+in,
				append([]any{goodsID, service.OpReturn}, args...)...); err != nil {
				return classify(err)
			}
			return queryEach(ctx, tx, "SELECT order_id FROM goods_stock_logs WHERE goods_id = ? AND op = ? AND order_id IN "+in,
				append([]any{goodsID, service.OpReturn}, args...), func(rows *sql.Rows) error {
					var id int64
					err := rows.Scan(&id)
					recordedReturns = append(recordedReturns, id)
					return err
				})
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return recorded, recordedReturns, nil
}

// CancelledUnreturned lists, per user of users, the user's cancelled
// orders of goods whose return Redis may still have to give (no return
// record, or one that says Redis does not hold it): a repair of the user's
// units in Redis stands in for those returns and marks them. Only the
// users' orders are read, through their user_id keys.
func (d *Database) CancelledUnreturned(ctx context.Context, goodsID int64, users []int64) (map[int64][]int64, error) {
	owner := map[int64]int64{} // order id -> user
	for part := range slices.Chunk(users, 500) {
		in, args := inListOf(part)
		err := d.eachOrderTable(func(db *sql.DB, at service.OrderTable) error {
			return queryEach(ctx, db, "SELECT id, user_id FROM "+at.Name()+" WHERE goods_id = ? AND status = ? AND user_id IN "+in,
				append([]any{goodsID, service.StatusCancelled}, args...), func(rows *sql.Rows) error {
					var id, user int64
					err := rows.Scan(&id, &user)
					owner[id] = user
					return err
				})
		})
		if err != nil {
			return nil, err
		}
	}
	ids := slices.Sorted(maps.Keys(owner))
	for part := range slices.Chunk(ids, 500) {
		in, args := inListOf(part)
		err := queryEach(ctx, d.db, "SELECT order_id FROM goods_stock_logs WHERE op = ? AND cached = 1 AND order_id IN "+in,
			append([]any{service.OpReturn}, args...), func(rows *sql.Rows) error {
				var id int64
				err := rows.Scan(&id)
				delete(owner, id)
				return err
			})
		if err != nil {
			return nil, err
		}
	}
	out := map[int64][]int64{}
	for id, user := range owner {
		out[user] = append(out[user], id)
	}
	return out, nil
}

// inListOf is inList for any ordered ids.
func inListOf[T cmp.Ordered](ids []T) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return "(?" + strings.Repeat(",?", len(ids)-1) + ")", args
}
