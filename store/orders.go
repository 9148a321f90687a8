package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-seckill/seckill/service"
)

// The order tables: orders and order_1..order_16 on every host.

// sqlInsertOrder holds the insert statement of each order table, by number.
var sqlInsertOrder = func() []string {
	stmts := make([]string, service.MaxOrderTables+1)
	for i, t := range service.TableNames() {
		stmts[i] = "INSERT INTO " + t + " (id, user_id, goods_id, number, amount, pay_deadline, idem_key) VALUES (?, ?, ?, ?, ?, ?, ?)"
	}
	return stmts
}()

func (d *Database) InsertOrder(ctx context.Context, o service.Order, at service.OrderTable) error {
	if at.Logical() {
		return d.onLogical(ctx, at, func(db *sql.DB, table string) error {
			res, err := db.ExecContext(ctx, "INSERT INTO "+table+" (id, user_id, goods_id, number, amount, pay_deadline, idem_key)"+
				" SELECT ?, ?, ?, ?, ?, ?, ? FROM shard_fences WHERE logical_db = ? AND frozen = 0", append(orderArgs(o), at.DB-1)...)
			if isKeyDuplicate(err) {
				return service.ErrKeyHeld
			}
			return insertedOrFenced(res, err)
		})
	}
	db, _, err := d.table(ctx, at)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, sqlInsertOrder[at.Table], orderArgs(o)...)
	if isKeyDuplicate(err) {
		return service.ErrKeyHeld
	}
	return writeFailed(err)
}

// insertedOrFenced is the outcome of a fenced insert: a row, or none
// because the logical database is frozen on that host.
func insertedOrFenced(res sql.Result, err error) error {
	if err != nil {
		return writeFailed(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return writeFailed(err)
	}
	if n == 0 {
		return errFenced
	}
	return nil
}

// orderArgs are the values sqlInsertOrder takes.
func orderArgs(o service.Order) []any {
	return []any{o.ID, o.UserID, o.GoodsID, o.Number, o.Amount, o.PayDeadline, sql.NullString{String: o.Key, Valid: o.Key != ""}}
}

// OrderByKey finds the user's order placed under the idempotency key key in
// table at; ErrNotFound when there is none.
func (d *Database) OrderByKey(ctx context.Context, at service.OrderTable, userID int64, key string) (o service.Order, err error) {
	err = d.readMoving(ctx, at, func() error { o, err = d.orderByKey(ctx, at, userID, key); return err })
	return o, err
}

func (d *Database) orderByKey(ctx context.Context, at service.OrderTable, userID int64, key string) (service.Order, error) {
	db, table, err := d.table(ctx, at)
	if err != nil {
		return service.Order{}, err
	}
	o := service.Order{UserID: userID, Key: key}
	var deadline sql.NullTime
	err = db.QueryRowContext(ctx, "SELECT id, goods_id, number, amount, pay_deadline FROM "+table+" WHERE user_id = ? AND idem_key = ?",
		userID, key).Scan(&o.ID, &o.GoodsID, &o.Number, &o.Amount, &deadline)
	if errors.Is(err, sql.ErrNoRows) {
		return service.Order{}, fmt.Errorf("%w: no order of user %d under key %q", service.ErrNotFound, userID, key)
	}
	o.PayDeadline = deadline.Time
	return o, classify(err)
}

// VoidOrder fences the order o whose write had an unknown outcome: it
// writes a void row (status void, no units) under the order's id where the
// order would be, so that the order's own write, should the server still
// finish it, fails on the id. voided says this call wrote it; otherwise a
// row was there and status is its status (void when another caller fenced
// it, anything else when the order was written).
func (d *Database) VoidOrder(ctx context.Context, at service.OrderTable, o service.Order) (voided bool, status int, err error) {
	if at.Logical() {
		err = d.onLogical(ctx, at, func(db *sql.DB, table string) error {
			res, err := db.ExecContext(ctx, "INSERT INTO "+table+" (id, user_id, goods_id, number, status)"+
				" SELECT ?, ?, ?, 0, ? FROM shard_fences WHERE logical_db = ? AND frozen = 0",
				o.ID, o.UserID, o.GoodsID, service.StatusVoid, at.DB-1)
			if isDuplicate(err) {
				return err
			}
			return insertedOrFenced(res, err)
		})
	} else {
		var db *sql.DB
		var table string
		if db, table, err = d.table(ctx, at); err != nil {
			return false, 0, err
		}
		_, err = db.ExecContext(ctx, "INSERT INTO "+table+" (id, user_id, goods_id, number, status) VALUES (?, ?, ?, 0, ?)",
			o.ID, o.UserID, o.GoodsID, service.StatusVoid)
	}
	switch {
	case err == nil:
		return true, service.StatusVoid, nil
	case !isDuplicate(err):
		return false, 0, classify(err)
	}
	status, _, err = d.OrderStatus(ctx, at, o.ID)
	return false, status, err
}

// MarkRefused marks the order a stock message names refused, if it is
// still unpaid: the database would not apply its sale.
func (d *Database) MarkRefused(ctx context.Context, m service.StockMessage) error {
	_, err := d.setStatus(ctx, m.At(), service.StatusRefused, "id = ? AND status = ?", m.OrderID, service.StatusUnpaid)
	return err
}

// OrderRows reads the rows of the orders the messages name, each in the
// table its message says, in one query per database (a UNION ALL over its
// tables: the consumer asks this for every batch); orders not found are
// left out. Host indexes naming one database (an order host that is also
// the primary) reach the same rows.
func (d *Database) OrderRows(ctx context.Context, ms []service.StockMessage) (map[service.OrderRef]service.OrderRow, error) {
	m := d.smap.Load()
	rows, err := d.orderRows(ctx, ms)
	if err != nil {
		return rows, err
	}
	for _, msg := range ms {
		if _, ok := rows[msg.Ref()]; !ok && msg.At().Logical() {
			// Its logical database may have moved: this instance's map may
			// not know yet, or have changed during the read.
			if _, err := d.RefreshShardMap(ctx); err != nil {
				return nil, err
			}
			if d.smap.Load() != m {
				return d.orderRows(ctx, ms)
			}
			break
		}
	}
	return rows, nil
}

func (d *Database) orderRows(ctx context.Context, ms []service.StockMessage) (map[service.OrderRef]service.OrderRow, error) {
	byTable := map[service.OrderTable][]service.OrderRef{}
	for _, m := range ms {
		if at, ok := d.canonical(ctx, m.At()); ok {
			byTable[at] = append(byTable[at], m.Ref())
		}
	}
	byDB := map[*sql.DB][]service.OrderTable{}
	for at := range byTable {
		db, _, _ := d.table(ctx, at)
		byDB[db] = append(byDB[db], at)
	}
	rows := make(map[service.OrderRef]service.OrderRow, len(ms))
	for db, tables := range byDB {
		var query strings.Builder
		var args []any
		for i, at := range tables {
			ids := make([]int64, len(byTable[at]))
			for k, r := range byTable[at] {
				ids[k] = r.ID
			}
			in, idArgs := inList(ids)
			if i > 0 {
				query.WriteString(" UNION ALL ")
			}
			query.WriteString("SELECT ? AS t, id, goods_id, user_id, number, status FROM " + at.Name() + " WHERE id IN " + in)
			args = append(append(args, i), idArgs...)
		}
		type found struct {
			table int
			id    int64
		}
		got := map[found]service.OrderRow{}
		err := queryEach(ctx, db, query.String(), args, func(r *sql.Rows) error {
			var row service.OrderRow
			var i int
			if err := r.Scan(&i, &row.ID, &row.GoodsID, &row.UserID, &row.Number, &row.Status); err != nil {
				return err
			}
			got[found{i, row.ID}] = row
			return nil
		})
		if err != nil {
			return nil, err
		}
		for i, at := range tables {
			for _, ref := range byTable[at] {
				if row, ok := got[found{i, ref.ID}]; ok {
					row.At = ref.At // as the message names it
					rows[ref] = row
				}
			}
		}
	}
	return rows, nil
}

// canonical is at on the lowest host index that reaches its database;
// false when at names no host or table.
func (d *Database) canonical(ctx context.Context, at service.OrderTable) (service.OrderTable, bool) {
	if _, _, err := d.table(ctx, at); err != nil {
		return at, false
	}
	if !at.Logical() {
		at.Host = slices.Index(d.hosts, d.hosts[at.Host])
	}
	return at, true
}

func (d *Database) PayOrder(ctx context.Context, at service.OrderTable, id, userID int64, now time.Time, discount, couponID int64) (bool, error) {
	return d.updateOrder(ctx, at, "status = ?, discount = ?, coupon_id = ?", []any{service.StatusPaid, discount, nullIfZero(couponID)},
		"id = ? AND user_id = ? AND status = ? AND pay_deadline > ?", id, userID, service.StatusUnpaid, now.UTC())
}

// detailColumns are the columns scanDetail reads.
const detailColumns = "id, user_id, goods_id, number, amount, discount, coupon_id, status, pay_deadline, created_at"

func scanDetail(scan func(...any) error) (service.OrderDetail, error) {
	var o service.OrderDetail
	var coupon sql.NullInt64
	var deadline sql.NullTime
	err := scan(&o.ID, &o.UserID, &o.GoodsID, &o.Number, &o.Amount, &o.Discount, &coupon, &o.Code, &deadline, &o.CreatedAt)
	o.CouponID, o.PayDeadline = coupon.Int64, deadline.Time
	return o, err
}

// OrderDetail reads order id in table at; ErrNotFound when it is not there.
// A void row is returned as it is: the caller tells it apart by its Code.
func (d *Database) OrderDetail(ctx context.Context, at service.OrderTable, id int64) (o service.OrderDetail, err error) {
	err = d.readMoving(ctx, at, func() error { o, err = d.orderDetail(ctx, at, id); return err })
	return o, err
}

func (d *Database) orderDetail(ctx context.Context, at service.OrderTable, id int64) (service.OrderDetail, error) {
	db, table, err := d.table(ctx, at)
	if err != nil {
		return service.OrderDetail{}, err
	}
	o, err := scanDetail(db.QueryRowContext(ctx, "SELECT "+detailColumns+" FROM "+table+" WHERE id = ?", id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return service.OrderDetail{}, fmt.Errorf("%w: order %d", service.ErrNotFound, id)
	}
	return o, classify(err)
}

// UserOrders reads up to limit of the user's orders in table at, newest
// first, void rows left out.
func (d *Database) UserOrders(ctx context.Context, at service.OrderTable, userID int64, limit int) ([]service.OrderDetail, error) {
	db, table, err := d.table(ctx, at)
	if err != nil {
		return nil, err
	}
	var out []service.OrderDetail
	err = queryEach(ctx, db, "SELECT "+detailColumns+" FROM "+table+" WHERE user_id = ? AND status <> ? ORDER BY id DESC LIMIT ?",
		[]any{userID, service.StatusVoid, limit}, func(rows *sql.Rows) error {
			o, err := scanDetail(rows.Scan)
			out = append(out, o)
			return err
		})
	return out, err
}

func (d *Database) CancelOrder(ctx context.Context, at service.OrderTable, id int64, now time.Time) (bool, error) {
	return d.setStatus(ctx, at, service.StatusCancelled, "id = ? AND status = ? AND pay_deadline <= ?",
		id, service.StatusUnpaid, now.UTC())
}

// setStatus sets the status of the order matching where; true when it did.
// A logical database's row changes only where its fence is not frozen.
func (d *Database) setStatus(ctx context.Context, at service.OrderTable, status int, where string, args ...any) (bool, error) {
	return d.updateOrder(ctx, at, "status = ?", []any{status}, where, args...)
}

// updateOrder sets the columns set (with setArgs) of the order matching
// where; true when it did. A logical database's row changes only where its
// fence is not frozen.
func (d *Database) updateOrder(ctx context.Context, at service.OrderTable, set string, setArgs []any, where string, args ...any) (bool, error) {
	if at.Logical() {
		if _, _, err := d.table(ctx, at); err != nil {
			return false, err // no tables yet: no such order
		}
		var updated bool
		err := d.onLogical(ctx, at, func(db *sql.DB, table string) (err error) {
			updated, err = fencedUpdate(ctx, db, at.DB-1, "UPDATE "+table+" SET "+set+" WHERE "+where, append(slices.Clone(setArgs), args...)...)
			return err
		})
		return updated, err
	}
	db, table, err := d.table(ctx, at)
	if err != nil {
		return false, err
	}
	res, err := db.ExecContext(ctx, "UPDATE "+table+" SET "+set+" WHERE "+where, append(slices.Clone(setArgs), args...)...)
	if err != nil {
		return false, classify(err)
	}
	n, err := res.RowsAffected()
	return n == 1, classify(err)
}

func (d *Database) OrderStatus(ctx context.Context, at service.OrderTable, id int64) (status int, userID int64, err error) {
	err = d.readMoving(ctx, at, func() error { status, userID, err = d.orderStatus(ctx, at, id); return err })
	return status, userID, err
}

// fencedUpdate runs update (an UPDATE ... WHERE) of a row of logical
// database l on db where l's fence there is not frozen; true when it
// changed the row, errFenced when it did not and the fence is frozen.
func fencedUpdate(ctx context.Context, db *sql.DB, l int, update string, args ...any) (bool, error) {
	res, err := db.ExecContext(ctx, update+" AND "+sqlUnfrozen, append(args, l)...)
	if err != nil {
		return false, classify(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, classify(err)
	}
	if n == 1 {
		return true, nil
	}
	if frozen, err := fenced(ctx, db, l); err != nil || frozen {
		return false, cmp.Or(err, errFenced)
	}
	return false, nil
}

// readMoving runs a read of a row; when it finds none in a logical
// database, it reloads the map, and reads again if the map changed: the
// logical database may have moved, and its row been written on the new
// host (or deleted on the old) before this instance's map said so.
func (d *Database) readMoving(ctx context.Context, at service.OrderTable, read func() error) error {
	m := d.smap.Load()
	err := read()
	if !at.Logical() || !errors.Is(err, service.ErrNotFound) {
		return err
	}
	if _, rerr := d.RefreshShardMap(ctx); rerr != nil {
		return rerr
	}
	if d.smap.Load() != m {
		err = read()
	}
	return err
}

func (d *Database) orderStatus(ctx context.Context, at service.OrderTable, id int64) (status int, userID int64, err error) {
	db, table, err := d.table(ctx, at)
	if err != nil {
		return 0, 0, err
	}
	err = db.QueryRowContext(ctx, "SELECT status, user_id FROM "+table+" WHERE id = ?", id).Scan(&status, &userID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("%w: order %d", service.ErrNotFound, id)
	}
	return status, userID, classify(err)
}

// messageColumns are the columns readMessage reads.
const messageColumns = "id, goods_id, user_id, number, pay_deadline"

// readMessage reads messageColumns, after the columns of first, into a
// stock message naming no table.
func readMessage(rows *sql.Rows, first ...any) (service.StockMessage, error) {
	var m service.StockMessage
	var deadline sql.NullTime
	if err := rows.Scan(append(first, &m.OrderID, &m.GoodsID, &m.UserID, &m.Number, &deadline)...); err != nil {
		return m, err
	}
	if deadline.Valid {
		m.Deadline = deadline.Time.UnixMilli()
	}
	return m, nil
}

// ExpiredOrders reads the unpaid orders whose deadline is before before:
// up to limit of each order table, soonest first.
func (d *Database) ExpiredOrders(ctx context.Context, before time.Time, limit int) ([]service.StockMessage, error) {
	return d.firstOfEachTable(ctx, "status = ? AND pay_deadline <= ?", []any{service.StatusUnpaid, before.UTC()}, "pay_deadline", limit, 0)
}

// ScanOrders looks at every order table of every database for the first
// limit orders by id (the outbox sweep asks this every 200 ms, and pages
// through the orders of the last two minutes every 30 s). Each table's
// first limit rows would hold them, but a sale spreads its orders over
// the tables, so a page of limit takes about limit/tables rows of each:
// reading limit rows of every table made the server read sixteen rows for
// each one it kept. So each table gives its first k rows, k learnt from
// the full pages before, and the page is read again with k doubled when a
// table that gave all k could hold rows the page lacks.
func (d *Database) ScanOrders(ctx context.Context, afterID, beforeID int64, limit int) ([]service.StockMessage, error) {
	if limit < 1 {
		return nil, nil
	}
	k := int(d.scanPerTable.Load())
	if k == 0 {
		k = 2 * ((limit + service.MaxOrderTables - 1) / service.MaxOrderTables) // an even spread, twice over
	}
	k = min(k, limit)
	for {
		page, err := d.firstOfEachTable(ctx, "id > ? AND id < ? AND status <> ?", []any{afterID, beforeID, service.StatusVoid}, "id", k, limit)
		if err != nil {
			return nil, err
		}
		slices.SortFunc(page, func(a, b service.StockMessage) int { return cmp.Compare(a.OrderID, b.OrderID) })
		page = page[:min(len(page), limit)]
		fullest, exact := pageIsExact(page, limit, k)
		if k == limit || exact {
			if len(page) == limit {
				// The next page is likely spread as this one: twice its
				// fullest table's share leaves room without reading much
				// more. A short page (the end of a window) says little.
				d.scanPerTable.Store(int64(max(2*fullest, 1)))
			}
			return page, nil
		}
		k = min(2*k, limit)
	}
}

// pageIsExact says whether page, the first limit by id of each table's
// first k rows in a window, is the first limit of the whole window. A
// table with fewer than k rows in the page has rows past the page's end,
// or none left; one with all k in it may hold more past its last, which
// the page lacks unless the page is full and that last row is its end.
// fullest is the most rows of one table in the page.
func pageIsExact(page []service.StockMessage, limit, k int) (fullest int, exact bool) {
	type table struct{ host, db, table int }
	n, last := map[table]int{}, map[table]int64{}
	for _, m := range page {
		t := table{m.Host, m.DB, m.Table}
		n[t]++
		last[t] = m.OrderID // the page is sorted by id
		fullest = max(fullest, n[t])
	}
	for t, rows := range n {
		if rows == k && (len(page) < limit || last[t] < page[len(page)-1].OrderID) {
			return fullest, false
		}
	}
	return fullest, true
}

// firstOfEachTable reads the first perTable order rows by orderBy of each
// order table that match where (whereArgs are those of one table), in one
// statement per database: a UNION ALL of each table's first rows, which
// the server cuts to the first keep of all when keep > 0. One statement
// per table cost the service and MySQL more than the orders themselves
// once a sale had filled its tables: the outbox sweep's pages were 145
// statements every 200 ms, sending 16 × limit rows for each page of limit.
func (d *Database) firstOfEachTable(ctx context.Context, where string, whereArgs []any, orderBy string, perTable, keep int) ([]service.StockMessage, error) {
	var out []service.StockMessage
	for db, tables := range d.orderTablesByDB() {
		for chunk := range slices.Chunk(tables, scanTablesPerStatement) {
			var q strings.Builder
			args := make([]any, 0, (len(whereArgs)+1)*len(chunk)+1)
			for i, at := range chunk {
				if i > 0 {
					q.WriteString(" UNION ALL ")
				}
				fmt.Fprintf(&q, "SELECT %d AS t, %s FROM (SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT ?) AS t%d",
					i, messageColumns, messageColumns, at.Name(), where, orderBy, i)
				args = append(append(args, whereArgs...), perTable)
			}
			if keep > 0 {
				q.WriteString(" ORDER BY " + orderBy + " LIMIT ?")
				args = append(args, keep)
			}
			err := queryEach(ctx, db, q.String(), args, func(rows *sql.Rows) error {
				var i int
				m, err := readMessage(rows, &i)
				if err != nil {
					return err
				}
				if i < 0 || i >= len(chunk) {
					return fmt.Errorf("order rows: table index %d of %d", i, len(chunk))
				}
				m.Host, m.Table, m.DB = chunk[i].Host, chunk[i].Table, chunk[i].DB
				out = append(out, m)
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// scanTablesPerStatement bounds the tables one statement of
// firstOfEachTable reads, and so its placeholders.
const scanTablesPerStatement = 100

// UserUnits streams, table by table, each user's units of goods over the
// user's live orders: unpaid or paid (status 0 or 1). Cancelled orders
// hold none, nor do orders of any other status (void, refused). A user
// with orders in several tables comes once per table: the units add up.
// Only one table's sums are read at a time, and each goes on to each as
// it is read, so that no map of every user is ever built.
func (d *Database) UserUnits(ctx context.Context, goodsID int64, each func(userID, units int64) error) error {
	return d.eachOrderTable(func(db *sql.DB, at service.OrderTable) error {
		return queryEach(ctx, db, "SELECT user_id, SUM(number) FROM "+at.Name()+" WHERE goods_id = ? AND status IN (?, ?) GROUP BY user_id",
			[]any{goodsID, service.StatusUnpaid, service.StatusPaid}, func(rows *sql.Rows) error {
				var user, n int64
				if err := rows.Scan(&user, &n); err != nil {
					return err
				}
				return each(user, n)
			})
	})
}
