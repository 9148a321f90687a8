package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-seckill/seckill/service"
)

// The steps of moving one V7 logical database to another host, for the
// expansion command. They run on MySQL/MariaDB only (CRC32, REPLACE and
// DELETE ... LIMIT): the standalone mode has one host. Each step can be
// run again after a crash: copies replace, the freeze and the map changes
// are conditional, and the old copy is deleted only once the map points
// elsewhere.

// tableKind is one kind of table a logical database holds: all of them
// move together, copied and checked by the same code over their columns.
type tableKind struct {
	name    func(l, t int) string                   // table t of logical database l
	create  func(sqlite bool, name string) []string // its DDL, unless it exists
	columns string                                  // every column, copied as they are
	// rowSum is the checksum of one row over every column; NULLs are
	// told from empty strings by COALESCE, as CONCAT_WS skips them.
	rowSum string
}

// columnCount is how many columns k.columns names.
func (k *tableKind) columnCount() int { return strings.Count(k.columns, ",") + 1 }

var (
	orderKind = &tableKind{
		name:    service.LogicalTableName,
		create:  createOrderTable,
		columns: "id, user_id, goods_id, number, amount, discount, coupon_id, created_at, updated_at, deleted_at, status, pay_deadline, idem_key",
		rowSum: "CRC32(CONCAT_WS('|', id, user_id, goods_id, number, amount, discount, COALESCE(coupon_id, ''), created_at, updated_at, COALESCE(deleted_at, ''), status, " +
			"COALESCE(pay_deadline, ''), COALESCE(idem_key, '')))",
	}
	couponKind = &tableKind{
		name:    service.LogicalCouponTableName,
		create:  createCouponTable,
		columns: "id, template_id, user_id, seq, status, sub_stock, idem_key, order_id, claimed_at, expires_at, used_at",
		rowSum: "CRC32(CONCAT_WS('|', id, template_id, user_id, COALESCE(seq, ''), status, sub_stock, COALESCE(idem_key, ''), COALESCE(order_id, ''), " +
			"claimed_at, expires_at, COALESCE(used_at, '')))",
	}
	// movedKinds are the kinds of a logical database's tables, all made,
	// moved, verified and deleted together.
	movedKinds = []*tableKind{orderKind, couponKind}
)

// movedTable is one table of a logical database and its kind.
type movedTable struct {
	name string
	kind *tableKind
}

// movedTablesOf are logical database l's tables of the kinds given, each
// kind's 1..LogicalTables in turn.
func movedTablesOf(l int, kinds []*tableKind) []movedTable {
	var out []movedTable
	for _, k := range kinds {
		for t := 1; t <= service.LogicalTables; t++ {
			out = append(out, movedTable{k.name(l, t), k})
		}
	}
	return out
}

// copyChunk is how many rows one copy statement carries.
const copyChunk = 1000

// TableSum is one table's row count and checksum.
type TableSum struct {
	Rows int64
	Sum  int64
}

// LockResharding takes the primary's lock that lets one expansion run at a
// time; release gives it back. held is false when another one runs. MySQL's
// named locks are the server's: the name carries the database.
func (d *Database) LockResharding(ctx context.Context) (release func(), held bool, err error) {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, false, classify(err)
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(CONCAT('seckill_reshard:', DATABASE()), 0)").Scan(&got); err != nil {
		conn.Close()
		return nil, false, classify(err)
	}
	if got.Int64 != 1 {
		conn.Close()
		return nil, false, nil
	}
	return func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(CONCAT('seckill_reshard:', DATABASE()))")
		conn.Close()
	}, true, nil
}

// ClaimAll gives every logical database its tables and map row (on the
// first V7 host for those that had none), so that an expansion plans over
// all of them and no instance makes one while it runs; a logical database
// made before its coupons followed the map is given its coupon tables.
func (d *Database) ClaimAll(ctx context.Context) error {
	for l := range service.LogicalDBs {
		if err := d.claim(ctx, l); err != nil {
			return err
		}
		if _, _, err := d.couponsAt(ctx, l); err != nil {
			return err
		}
	}
	_, err := d.RefreshShardMap(ctx)
	return err
}

// lpool is a configured host of V7 by id.
func (d *Database) lpool(id string) (*sql.DB, error) {
	h, ok := d.lhostOf(id)
	if !ok {
		return nil, fmt.Errorf("host %s is not among mysql.v7_hosts", id)
	}
	if h.p.sqlite {
		return nil, errors.New("resharding needs MySQL or MariaDB hosts; the standalone mode has one")
	}
	return h.p.db, nil
}

// nextEpoch is the epoch after every one the map holds.
func nextEpoch(ctx context.Context, q querier) (int64, error) {
	var epoch int64
	err := queryEach(ctx, q, "SELECT COALESCE(MAX(epoch), 0) + 1 FROM shard_map", nil, func(r *sql.Rows) error { return r.Scan(&epoch) })
	return epoch, err
}

// setPlace changes logical database l's row if it still says host=from;
// it returns the new epoch (0 when the row said something else).
func (d *Database) setPlace(ctx context.Context, l int, from, host string, target *string) (int64, error) {
	epoch, err := nextEpoch(ctx, d.db)
	if err != nil {
		return 0, err
	}
	res, err := d.db.ExecContext(ctx, "UPDATE shard_map SET host = ?, target = ?, epoch = ? WHERE logical_db = ? AND host = ?",
		host, target, epoch, l, from)
	if err != nil {
		return 0, classify(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return 0, nil
	}
	_, err = d.RefreshShardMap(ctx)
	return epoch, err
}

// AnnounceMove names to as logical database l's target while it stays on
// from: every instance must know the host before the switch.
func (d *Database) AnnounceMove(ctx context.Context, l int, from, to string) (int64, error) {
	return d.setPlace(ctx, l, from, from, &to)
}

// SwitchMove points logical database l at to, keeping from as the target
// whose copy is to be deleted.
func (d *Database) SwitchMove(ctx context.Context, l int, from, to string) (int64, error) {
	return d.setPlace(ctx, l, from, to, &from)
}

// FinishMove forgets the old host of logical database l, now on host.
func (d *Database) FinishMove(ctx context.Context, l int, host string) (int64, error) {
	return d.setPlace(ctx, l, host, host, nil)
}

// PrepareTarget makes logical database l's tables on host and lifts its
// fence there: nothing routes to it before the switch.
func (d *Database) PrepareTarget(ctx context.Context, l int, host string) error {
	h, ok := d.lhostOf(host)
	if !ok {
		return fmt.Errorf("host %s is not among mysql.v7_hosts", host)
	}
	if err := createLogicalTables(ctx, h.p, l); err != nil {
		return err
	}
	return d.SetFrozen(ctx, l, host, false)
}

// SetFrozen freezes or thaws logical database l's writes on host. The
// freeze waits for the writes in flight there (they hold its fence row)
// and stops every later one.
func (d *Database) SetFrozen(ctx context.Context, l int, host string, frozen bool) error {
	db, err := d.lpool(host)
	if err != nil {
		return err
	}
	v := 0
	if frozen {
		v = 1
	}
	_, err = db.ExecContext(ctx, "UPDATE shard_fences SET frozen = ? WHERE logical_db = ?", v, l)
	return classify(err)
}

// CopyLogical copies every row of logical database l from one host to
// another, a chunk at a time, replacing what is there; it returns the rows
// copied.
func (d *Database) CopyLogical(ctx context.Context, l int, from, to string) (int64, error) {
	src, err := d.lpool(from)
	if err != nil {
		return 0, err
	}
	dst, err := d.lpool(to)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, t := range movedTablesOf(l, movedKinds) {
		for after := int64(-1 << 63); ; {
			rows, last, err := readRows(ctx, src, t.kind, "SELECT "+t.kind.columns+" FROM "+t.name+" WHERE id > ? ORDER BY id LIMIT ?", after, copyChunk)
			if err != nil {
				return n, err
			}
			if len(rows) == 0 {
				break
			}
			if err := replaceRows(ctx, dst, t, rows); err != nil {
				return n, err
			}
			n += int64(len(rows))
			after = last
		}
	}
	return n, nil
}

// readRows reads rows of kind k, every column, and the last id.
func readRows(ctx context.Context, db *sql.DB, k *tableKind, query string, args ...any) ([][]any, int64, error) {
	var out [][]any
	var last int64
	err := queryEach(ctx, db, query, args, func(r *sql.Rows) error {
		vals := make([]any, k.columnCount())
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			return err
		}
		last = toInt64(vals[0])
		out = append(out, vals)
		return nil
	})
	return out, last, err
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case []byte:
		var n int64
		fmt.Sscan(string(x), &n)
		return n
	}
	return 0
}

// replaceRows writes rows into table t as they are, replacing rows with
// the same id.
func replaceRows(ctx context.Context, db *sql.DB, t movedTable, rows [][]any) error {
	n := t.kind.columnCount()
	for start := 0; start < len(rows); start += copyChunk {
		chunk := rows[start:min(start+copyChunk, len(rows))]
		var q strings.Builder
		q.WriteString("REPLACE INTO " + t.name + " (" + t.kind.columns + ") VALUES ")
		args := make([]any, 0, n*len(chunk))
		row := "(?" + strings.Repeat(",?", n-1) + ")"
		for i, r := range chunk {
			if i > 0 {
				q.WriteString(",")
			}
			q.WriteString(row)
			args = append(args, r...)
		}
		if _, err := db.ExecContext(ctx, q.String(), args...); err != nil {
			return classify(err)
		}
	}
	return nil
}

// SumLogical is the row count and checksum of each table of logical
// database l on host: its order tables 1..16, then its coupon tables.
func (d *Database) SumLogical(ctx context.Context, l int, host string) ([]TableSum, error) {
	db, err := d.lpool(host)
	if err != nil {
		return nil, err
	}
	tables := movedTablesOf(l, movedKinds)
	sums := make([]TableSum, len(tables))
	for i, t := range tables {
		if sums[i], err = sumTable(ctx, db, t); err != nil {
			return nil, err
		}
	}
	return sums, nil
}

// sumTable is one table's row count and checksum.
func sumTable(ctx context.Context, db *sql.DB, t movedTable) (TableSum, error) {
	var s TableSum
	err := db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM("+t.kind.rowSum+"), 0) FROM "+t.name).Scan(&s.Rows, &s.Sum)
	return s, classify(err)
}

// SyncLogical makes logical database l's copy on to equal to its rows on
// from: the tables whose checksums differ are compared row by row, and the
// rows that differ or are missing are copied again, those that should not
// be there deleted. It returns how many rows it changed and the source's
// sums. With verify (the source frozen), the tables it changed are summed
// again on both hosts, and any difference left is an error: the copy then
// holds every table's rows, count and checksum, as the source does.
func (d *Database) SyncLogical(ctx context.Context, l int, from, to string, verify bool) (int64, []TableSum, error) {
	src, err := d.lpool(from)
	if err != nil {
		return 0, nil, err
	}
	dst, err := d.lpool(to)
	if err != nil {
		return 0, nil, err
	}
	a, err := d.SumLogical(ctx, l, from)
	if err != nil {
		return 0, nil, err
	}
	b, err := d.SumLogical(ctx, l, to)
	if err != nil {
		return 0, nil, err
	}
	var changed int64
	tables := movedTablesOf(l, movedKinds)
	for t := range a {
		if a[t] == b[t] {
			continue
		}
		table := tables[t]
		n, err := syncTable(ctx, src, dst, table)
		changed += n
		if err != nil {
			return changed, nil, err
		}
		if !verify {
			continue
		}
		var want, got TableSum
		if want, err = sumTable(ctx, src, table); err == nil {
			got, err = sumTable(ctx, dst, table)
		}
		if err != nil {
			return changed, nil, err
		}
		if want != got {
			return changed, nil, fmt.Errorf("verify: table %s holds %d rows (checksum %d) on %s and %d (checksum %d) on %s",
				table.name, want.Rows, want.Sum, from, got.Rows, got.Sum, to)
		}
		a[t] = want
	}
	return changed, a, nil
}

// syncTable copies again the rows of table that differ between src and
// dst, and deletes those dst should not hold; it returns how many.
func syncTable(ctx context.Context, src, dst *sql.DB, table movedTable) (int64, error) {
	want, err := rowSums(ctx, src, table)
	if err != nil {
		return 0, err
	}
	have, err := rowSums(ctx, dst, table)
	if err != nil {
		return 0, err
	}
	var stale, extra []int64
	for id, sum := range want {
		if s, ok := have[id]; !ok || s != sum {
			stale = append(stale, id)
		}
	}
	for id := range have {
		if _, ok := want[id]; !ok {
			extra = append(extra, id)
		}
	}
	for start := 0; start < len(stale); start += copyChunk {
		in, args := inList(stale[start:min(start+copyChunk, len(stale))])
		rows, _, err := readRows(ctx, src, table.kind, "SELECT "+table.kind.columns+" FROM "+table.name+" WHERE id IN "+in, args...)
		if err != nil {
			return 0, err
		}
		if err := replaceRows(ctx, dst, table, rows); err != nil {
			return 0, err
		}
	}
	for start := 0; start < len(extra); start += copyChunk {
		in, args := inList(extra[start:min(start+copyChunk, len(extra))])
		if _, err := dst.ExecContext(ctx, "DELETE FROM "+table.name+" WHERE id IN "+in, args...); err != nil {
			return 0, classify(err)
		}
	}
	return int64(len(stale) + len(extra)), nil
}

// rowSums is each row's checksum by id.
func rowSums(ctx context.Context, db *sql.DB, table movedTable) (map[int64]int64, error) {
	out := map[int64]int64{}
	err := queryEach(ctx, db, "SELECT id, "+table.kind.rowSum+" FROM "+table.name, nil, func(r *sql.Rows) error {
		var id, sum int64
		err := r.Scan(&id, &sum)
		out[id] = sum
		return err
	})
	return out, err
}

// DeleteLogical deletes logical database l's rows on host, a chunk at a
// time so that no statement holds its locks for long. The map must point
// elsewhere and the host's fence be frozen: nothing writes there anymore.
func (d *Database) DeleteLogical(ctx context.Context, l int, host string) (int64, error) {
	if m := d.ShardMap(); m.DBs[l].Host == host {
		return 0, fmt.Errorf("logical database %d is still on %s: its rows there are the only copy", l, host)
	}
	db, err := d.lpool(host)
	if err != nil {
		return 0, err
	}
	if frozen, err := fenced(ctx, db, l); err != nil || !frozen {
		return 0, cmpErr(err, fmt.Errorf("logical database %d is not frozen on %s", l, host))
	}
	var n int64
	for _, t := range movedTablesOf(l, movedKinds) {
		for {
			res, err := db.ExecContext(ctx, "DELETE FROM "+t.name+" ORDER BY id LIMIT ?", copyChunk)
			if err != nil {
				return n, classify(err)
			}
			k, _ := res.RowsAffected()
			n += k
			if k == 0 {
				break
			}
		}
	}
	return n, nil
}

func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}
