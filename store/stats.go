package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-seckill/seckill/service"
)

// Stats reads a goods' row and its counts (void rows are no orders). The primary's share (the goods
// row, its order tables, the stock logs and dead letters) comes from one
// snapshot, so the figures add up while the consumer works; the other
// hosts' orders are counted after it.
func (d *Database) Stats(ctx context.Context, goodsID int64) (service.Stats, error) {
	st := service.Stats{GoodsID: goodsID}
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT stock, sale,
			(SELECT COUNT(*) FROM goods_stock_logs WHERE goods_id = ? AND op = ?),
			(SELECT COUNT(*) FROM goods_stock_logs WHERE goods_id = ? AND op = ?),
			(SELECT COUNT(*) FROM dead_letters WHERE goods_id = ?)
			FROM goods WHERE id = ? AND deleted_at IS NULL`,
			goodsID, service.OpSale, goodsID, service.OpReturn, goodsID, goodsID).
			Scan(&st.MySQLStock, &st.MySQLSale, &st.StockLogs, &st.Returns, &st.DeadLetters)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: goods %d", service.ErrNotFound, goodsID)
		}
		if err != nil {
			return classify(err)
		}
		return d.countOrders(ctx, tx, d.db, goodsID, &st.Orders)
	})
	if err != nil {
		return service.Stats{}, err
	}
	for _, p := range d.pools[1:] {
		if err := d.countOrders(ctx, p.db, p.db, goodsID, &st.Orders); err != nil {
			return service.Stats{}, err
		}
	}
	return st, nil
}

// countOrders adds to n the goods' orders over the order tables of the
// database db, read through q (db itself or a transaction on it), in one
// statement: the stats are read every quarter second while the benchmark
// loads a version, and one statement per table cost the service and MySQL
// a share of what they measured.
func (d *Database) countOrders(ctx context.Context, q querier, db *sql.DB, goodsID int64, n *int64) error {
	var parts []string
	var args []any
	for table, at := range d.orderTables() {
		if table == db {
			parts = append(parts, "SELECT COUNT(*) AS c FROM "+at.Name()+" WHERE goods_id = ? AND status <> ?")
			args = append(args, goodsID, service.StatusVoid)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return queryEach(ctx, q, "SELECT COALESCE(SUM(c), 0) FROM ("+strings.Join(parts, " UNION ALL ")+") AS counts", args,
		func(rows *sql.Rows) error {
			var c int64
			err := rows.Scan(&c)
			*n += c
			return err
		})
}
