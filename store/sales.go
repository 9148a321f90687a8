package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/go-seckill/seckill/service"
)

// The ledger's tables: goods_stock_logs (one sale row, op 0, and at most
// one return row, op 1, per order), the goods' stock and sale they move,
// and user_purchases, the database's guard of per-user limits.
//
// The consumer's transactions lock in one order: the stock log, the
// buyers' user_purchases rows, the goods row last. Every sale of a goods
// waits for its row, so it is held only from its update to the commit;
// and with one order, transactions of the same buyer cannot deadlock.
// V1's single transaction (SellInTx) keeps the seed's order, the goods row
// first: when one buyer's V1 order meets the consumer applying their order
// of another version, InnoDB rolls one of the two back, and V1 answers 503
// or the batch is applied message by message.

const (
	sqlDecrement    = "UPDATE goods SET stock = stock - ?, sale = sale + ? WHERE id = ? AND stock >= ?"
	sqlIncrement    = "UPDATE goods SET stock = stock + ?, sale = sale - ? WHERE id = ?"
	sqlInsertLog    = "INSERT INTO goods_stock_logs (goods_id, order_id, op, number) VALUES (?, ?, ?, ?)"
	sqlInsertLogsOf = "INSERT INTO goods_stock_logs (goods_id, order_id, op, number) VALUES "
)

// decrement takes n units off goods' stock: ErrSoldOut when it cannot cover them.
func decrement(ctx context.Context, tx *sql.Tx, goodsID, n int64) error {
	res, err := tx.ExecContext(ctx, sqlDecrement, n, n, goodsID, n)
	if err != nil {
		return classify(err)
	}
	if rows, err := res.RowsAffected(); err != nil || rows == 0 {
		return service.ErrSoldOut
	}
	return nil
}

// insertLog writes one stock log row: ErrAlreadyApplied when it exists.
func insertLog(ctx context.Context, tx *sql.Tx, op int, goodsID, orderID, n int64) error {
	_, err := tx.ExecContext(ctx, sqlInsertLog, goodsID, orderID, op, n)
	if isDuplicate(err) {
		return service.ErrAlreadyApplied
	}
	return classify(err)
}

func (d *Database) SellInTx(ctx context.Context, o service.Order, gate func() error) error {
	return d.inTx(ctx, func(tx *sql.Tx) error {
		if err := decrement(ctx, tx, o.GoodsID, o.Number); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, sqlInsertOrder[0], orderArgs(o)...); err != nil {
			if isKeyDuplicate(err) {
				return service.ErrKeyHeld
			}
			return classify(err)
		}
		if err := insertLog(ctx, tx, service.OpSale, o.GoodsID, o.ID, o.Number); err != nil {
			return err
		}
		if err := d.guardUserLimit(ctx, tx, o.GoodsID, o.UserID, o.Number); err != nil {
			return err
		}
		return gate()
	})
}

func (d *Database) ApplySale(ctx context.Context, m service.StockMessage) error {
	return d.inTx(ctx, func(tx *sql.Tx) error {
		// The log goes first: a duplicate stops here, before the hot row lock.
		if err := insertLog(ctx, tx, service.OpSale, m.GoodsID, m.OrderID, m.Number); err != nil {
			return err
		}
		if err := d.guardUserLimit(ctx, tx, m.GoodsID, m.UserID, m.Number); err != nil {
			return err
		}
		return decrement(ctx, tx, m.GoodsID, m.Number)
	})
}

func (d *Database) ApplySales(ctx context.Context, ms []service.StockMessage) error {
	var logs strings.Builder
	logs.WriteString(sqlInsertLogsOf)
	args := make([]any, 0, 4*len(ms))
	perGoods := map[int64]int64{}
	for i, m := range ms {
		if i > 0 {
			logs.WriteString(",")
		}
		logs.WriteString("(?,?,?,?)")
		args = append(args, m.GoodsID, m.OrderID, service.OpSale, m.Number)
		perGoods[m.GoodsID] += m.Number
	}
	return d.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, logs.String(), args...); err != nil {
			if isDuplicate(err) {
				return service.ErrAlreadyApplied
			}
			return classify(err)
		}
		if err := d.guardUserLimits(ctx, tx, ms); err != nil {
			return err
		}
		// Rows are locked in goods id order, so concurrent batches cannot deadlock.
		for _, id := range slices.Sorted(maps.Keys(perGoods)) {
			if err := decrement(ctx, tx, id, perGoods[id]); err != nil {
				return err
			}
		}
		return nil
	})
}

// guardUserLimits is guardUserLimit for a batch: per goods with a limit,
// one statement adds the batch's units to each buyer's row (made when
// missing) and one read checks that none went past the limit. When one
// did, the batch fails with ErrLimitExceeded: its transaction rolls back
// and each message is applied on its own, so that only that buyer's sale
// is refused. The rows are locked in (goods, user) order, so batches cannot
// deadlock on them, and held to the commit, so the read sees units no
// other transaction can change meanwhile.
func (d *Database) guardUserLimits(ctx context.Context, tx *sql.Tx, ms []service.StockMessage) error {
	units := map[int64]map[int64]int64{} // goods -> user -> units of the batch
	for _, m := range ms {
		if units[m.GoodsID] == nil {
			units[m.GoodsID] = map[int64]int64{}
		}
		units[m.GoodsID][m.UserID] += m.Number
	}
	for _, goodsID := range slices.Sorted(maps.Keys(units)) {
		limit, err := d.userLimit(ctx, tx, goodsID)
		if err != nil {
			return err
		}
		if limit == 0 {
			continue
		}
		users := slices.Sorted(maps.Keys(units[goodsID]))
		args := make([]any, 0, 3*len(users))
		for _, u := range users {
			args = append(args, goodsID, u, units[goodsID][u])
		}
		if _, err := tx.ExecContext(ctx, d.sqlAddUnits(len(users)), args...); err != nil {
			return classify(err)
		}
		in, inArgs := inList(users)
		var over int
		err = tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM user_purchases WHERE goods_id = ? AND units > ? AND user_id IN "+in,
			append([]any{goodsID, limit}, inArgs...)...).Scan(&over)
		if err != nil {
			return classify(err)
		}
		if over > 0 {
			return service.ErrLimitExceeded
		}
	}
	return nil
}

// guardUserLimit is the database's guard of goods' per-user limit, inside
// the transaction that applies a sale: user_purchases' key (goods_id,
// user_id) and the check after the add keep one user's units within it.
// One upsert, not an update and then an insert: an update finding no row
// locks the gap where it would be, and two first purchases of one buyer
// would each wait for the other's gap to insert.
func (d *Database) guardUserLimit(ctx context.Context, tx *sql.Tx, goodsID, userID, n int64) error {
	return d.guardUserLimits(ctx, tx, []service.StockMessage{{GoodsID: goodsID, UserID: userID, Number: n}})
}

func (d *Database) ReturnSale(ctx context.Context, m service.StockMessage) error {
	return d.inTx(ctx, func(tx *sql.Tx) error {
		var sold int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM goods_stock_logs WHERE order_id = ? AND op = ?", m.OrderID, service.OpSale).Scan(&sold); err != nil {
			return classify(err)
		}
		if sold == 0 {
			return fmt.Errorf("%w: the sale of order %d is not applied yet", service.ErrNotYet, m.OrderID)
		}
		if err := insertLog(ctx, tx, service.OpReturn, m.GoodsID, m.OrderID, m.Number); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE user_purchases SET units = units - ? WHERE goods_id = ? AND user_id = ? AND units >= ?",
			m.Number, m.GoodsID, m.UserID, m.Number); err != nil {
			return classify(err)
		}
		_, err := tx.ExecContext(ctx, sqlIncrement, m.Number, m.Number, m.GoodsID)
		return classify(err)
	})
}

func (d *Database) Settled(ctx context.Context, ids []int64) (map[int64]bool, error) {
	return d.idsAmong(ctx, ids, func(in string) string {
		return "SELECT order_id FROM goods_stock_logs WHERE op = ? AND order_id IN " + in +
			" UNION SELECT order_id FROM dead_letters WHERE order_id IN " + in
	}, 2)
}

// Applied says which of ids have their sale applied: a sale stock log.
func (d *Database) Applied(ctx context.Context, ids []int64) (map[int64]bool, error) {
	return d.idsAmong(ctx, ids, func(in string) string {
		return "SELECT order_id FROM goods_stock_logs WHERE op = ? AND order_id IN " + in
	}, 1)
}

// idsAmong says which of ids the query returns, 500 at a time: query
// makes the statement from the IN list of a chunk, which it uses lists
// times, after a first argument, the sale's op.
func (d *Database) idsAmong(ctx context.Context, ids []int64, query func(in string) string, lists int) (map[int64]bool, error) {
	found := make(map[int64]bool, len(ids))
	for chunk := range slices.Chunk(ids, 500) {
		in, args := inList(chunk)
		all := []any{service.OpSale}
		for range lists {
			all = append(all, args...)
		}
		err := queryEach(ctx, d.db, query(in), all, func(rows *sql.Rows) error {
			var id int64
			err := rows.Scan(&id)
			found[id] = true
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return found, nil
}

// liveStatuses is the IN list of service.LiveStatuses: orders that hold
// their units (void and refused rows never did).
func liveStatuses() (string, []any) {
	args := make([]any, len(service.LiveStatuses))
	for i, s := range service.LiveStatuses {
		args[i] = s
	}
	return "(?" + strings.Repeat(",?", len(args)-1) + ")", args
}

// inList is "(?,?,...)" for ids, with ids as arguments.
func inList(ids []int64) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return "(?" + strings.Repeat(",?", len(ids)-1) + ")", args
}

// SaleApplied says whether the order's sale is applied to the goods' stock.
func (d *Database) SaleApplied(ctx context.Context, orderID int64) (bool, error) {
	var n int
	err := d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM goods_stock_logs WHERE order_id = ? AND op = ?", orderID, service.OpSale).Scan(&n)
	return n > 0, classify(err)
}
