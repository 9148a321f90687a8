package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/coupon"
)

// The coupon tables: coupon_templates and coupon_stock_ops on the primary,
// and the coupon records in each V7 logical database, l<db>_coupon_1..16
// beside its order tables, placed by user like V7's orders
// (service.CouponTable) and found, written and moved through the shard map
// as they are.

const templateColumns = "id, name, type, value, threshold, stock, per_user_limit, start_at, end_at, valid_for_ms, sub_stocks, tags, ended, created_at"

func scanTemplate(row interface{ Scan(...any) error }) (coupon.Template, error) {
	var t coupon.Template
	var start, end sql.NullTime
	var validMs int64
	var tags string
	err := row.Scan(&t.ID, &t.Name, &t.Type, &t.Value, &t.Threshold, &t.Stock, &t.PerUserLimit, &start, &end, &validMs,
		&t.SubStocks, &tags, &t.Ended, &t.CreatedAt)
	if start.Valid {
		t.StartAt = &start.Time
	}
	if end.Valid {
		t.EndAt = &end.Time
	}
	t.ValidFor = time.Duration(validMs) * time.Millisecond
	t.Tags = strings.Split(tags, ",")
	return t, err
}

func nullTime(t *time.Time) sql.NullTime {
	if t == nil {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: *utcMillis(t), Valid: true}
}

// CreateTemplate records t and its initial stock as the pending addition
// "initial", in one transaction.
func (d *Database) CreateTemplate(ctx context.Context, t coupon.Template) (coupon.Template, error) {
	t.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	t.StartAt, t.EndAt = utcMillis(t.StartAt), utcMillis(t.EndAt)
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "INSERT INTO coupon_templates (name, type, value, threshold, stock, per_user_limit, start_at, end_at, valid_for_ms, sub_stocks, tags, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			t.Name, t.Type, t.Value, t.Threshold, t.Stock, t.PerUserLimit, nullTime(t.StartAt), nullTime(t.EndAt),
			t.ValidFor.Milliseconds(), t.SubStocks, strings.Join(t.Tags, ","), t.CreatedAt)
		if err != nil {
			return classify(err)
		}
		if t.ID, err = res.LastInsertId(); err != nil {
			return classify(err)
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO coupon_stock_ops (template_id, op_id, added) VALUES (?, ?, ?)", t.ID, coupon.InitialOp, t.Stock)
		return classify(err)
	})
	return t, err
}

func (d *Database) Template(ctx context.Context, id int64) (coupon.Template, error) {
	t, err := scanTemplate(d.db.QueryRowContext(ctx, "SELECT "+templateColumns+" FROM coupon_templates WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return coupon.Template{}, fmt.Errorf("%w: coupon template %d", service.ErrNotFound, id)
	}
	return t, classify(err)
}

func (d *Database) ListTemplates(ctx context.Context) ([]coupon.Template, error) {
	out := []coupon.Template{}
	err := queryEach(ctx, d.db, "SELECT "+templateColumns+" FROM coupon_templates ORDER BY id", nil, func(rows *sql.Rows) error {
		t, err := scanTemplate(rows)
		out = append(out, t)
		return err
	})
	return out, err
}

// AddTemplateStock records the addition and grows the template's stock in
// one transaction; an op id recorded before changes nothing.
func (d *Database) AddTemplateStock(ctx context.Context, op coupon.StockOp) (coupon.Template, bool, error) {
	added := false
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE coupon_templates SET stock = stock + ? WHERE id = ?", op.Added, op.TemplateID)
		if err != nil {
			return classify(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: coupon template %d", service.ErrNotFound, op.TemplateID)
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO coupon_stock_ops (template_id, op_id, added) VALUES (?, ?, ?)", op.TemplateID, op.OpID, op.Added)
		if isDuplicate(err) {
			return service.ErrDuplicate
		}
		added = err == nil
		return classify(err)
	})
	if errors.Is(err, service.ErrDuplicate) {
		err = nil
	}
	if err != nil {
		return coupon.Template{}, false, err
	}
	t, err := d.Template(ctx, op.TemplateID)
	return t, added, err
}

func (d *Database) PendingStockOps(ctx context.Context, templateID int64) ([]coupon.StockOp, error) {
	var ops []coupon.StockOp
	err := queryEach(ctx, d.db, "SELECT op_id, added FROM coupon_stock_ops WHERE in_redis = 0 AND template_id = ? ORDER BY created_at",
		[]any{templateID}, func(rows *sql.Rows) error {
			op := coupon.StockOp{TemplateID: templateID}
			err := rows.Scan(&op.OpID, &op.Added)
			ops = append(ops, op)
			return err
		})
	return ops, err
}

func (d *Database) SettleStockOp(ctx context.Context, templateID int64, opID string) error {
	_, err := d.db.ExecContext(ctx, "UPDATE coupon_stock_ops SET in_redis = 1 WHERE template_id = ? AND op_id = ?", templateID, opID)
	return classify(err)
}

func (d *Database) EndTemplate(ctx context.Context, id int64) error {
	_, err := d.db.ExecContext(ctx, "UPDATE coupon_templates SET ended = 1 WHERE id = ?", id)
	return classify(err)
}

func (d *Database) DueTemplates(ctx context.Context, now time.Time) ([]int64, error) {
	var ids []int64
	err := queryEach(ctx, d.db, "SELECT id FROM coupon_templates WHERE ended = 0 AND end_at <= ?", []any{now.UTC()}, func(rows *sql.Rows) error {
		var id int64
		err := rows.Scan(&id)
		ids = append(ids, id)
		return err
	})
	return ids, err
}

// couponTableName is the coupon table at names, in its logical database.
func couponTableName(at service.OrderTable) string {
	return service.LogicalCouponTableName(at.DB-1, at.Table)
}

// couponsAt is the pool of the host holding logical database l and makes
// sure of its coupon tables there, once per host and instance: a logical
// database made before its coupons followed the map has order tables
// only. ok is false when l has no tables yet: it holds no coupons.
func (d *Database) couponsAt(ctx context.Context, l int) (p pool, ok bool, err error) {
	if p, ok = d.logicalPool(l); !ok {
		// Another instance may have made it since this one's map was read.
		if _, err := d.RefreshShardMap(ctx); err != nil {
			return pool{}, false, err
		}
		if p, ok = d.logicalPool(l); !ok {
			return pool{}, false, nil
		}
	}
	return p, true, d.makeCouponTables(ctx, p, l)
}

// makeCouponTables makes logical database l's coupon tables on p unless
// this instance knows they are there. They are made once for every
// caller, as claim makes a logical database's tables: a request that
// gives up does not stop them, nor does its short budget fail them.
func (d *Database) makeCouponTables(ctx context.Context, p pool, l int) error {
	if _, done := d.couponsMade.Load(couponsKey(p.id, l)); done {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := createTables(cctx, p, l, []*tableKind{couponKind}); err != nil {
		return err
	}
	d.couponsMade.Store(couponsKey(p.id, l), true)
	return nil
}

// couponsKey names logical database l's coupon tables on host id.
func couponsKey(id string, l int) string { return id + "/" + strconv.Itoa(l) }

// readCoupons runs read on at's coupon table, on the host holding its
// logical database. A logical database without tables holds no coupons:
// read is not run and none is false. While the logical database moves,
// the map is read again first: a claim answered by another instance may
// be on the new host already.
func (d *Database) readCoupons(ctx context.Context, at service.OrderTable, read func(db *sql.DB, table string) error) (none bool, err error) {
	if err := logicalTable(at); err != nil {
		return false, err
	}
	if d.ShardMap().DBs[at.DB-1].Target != "" {
		if _, err := d.RefreshShardMap(ctx); err != nil {
			return false, err
		}
	}
	p, ok, err := d.couponsAt(ctx, at.DB-1)
	if err != nil || !ok {
		return !ok, err
	}
	return false, read(p.db, couponTableName(at))
}

// writeCoupons runs a write on at's coupon table as onLogical runs the
// order writes: on the host holding its logical database, waiting through
// a freeze, ErrMoving when it lasts. The write must carry the fence.
func (d *Database) writeCoupons(ctx context.Context, at service.OrderTable, write func(db *sql.DB, table string) error) error {
	return d.onLogicalHost(ctx, at, func(p pool) error {
		if err := d.makeCouponTables(ctx, p, at.DB-1); err != nil {
			return err
		}
		return write(p.db, couponTableName(at))
	})
}

// updateCoupon changes the coupon matching where, fenced; true when it did.
// A logical database without tables holds no coupon to change.
func (d *Database) updateCoupon(ctx context.Context, at service.OrderTable, set string, where string, args ...any) (bool, error) {
	if none, err := d.readCoupons(ctx, at, func(*sql.DB, string) error { return nil }); none || err != nil {
		return false, err
	}
	var updated bool
	err := d.writeCoupons(ctx, at, func(db *sql.DB, table string) (err error) {
		updated, err = fencedUpdate(ctx, db, at.DB-1, "UPDATE "+table+" SET "+set+" WHERE "+where, args...)
		return err
	})
	return updated, err
}

// sqlInsertCoupon inserts a coupon record into the table named by %s if
// its logical database is not frozen on that host: the fence's condition.
const sqlInsertCoupon = "INSERT INTO %s (id, template_id, user_id, seq, status, sub_stock, idem_key, claimed_at, expires_at)" +
	" SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? FROM shard_fences WHERE logical_db = ? AND frozen = 0"

func (d *Database) InsertCoupon(ctx context.Context, at service.OrderTable, c coupon.Coupon) error {
	return d.writeCoupons(ctx, at, func(db *sql.DB, table string) error {
		res, err := db.ExecContext(ctx, fmt.Sprintf(sqlInsertCoupon, table),
			c.ID, c.TemplateID, c.UserID, sql.NullInt64{Int64: int64(c.Seq), Valid: c.Seq > 0}, coupon.StatusUnused, c.SubStock,
			sql.NullString{String: c.Key, Valid: c.Key != ""}, c.ClaimedAt.UTC(), c.ExpiresAt.UTC(), at.DB-1)
		switch {
		case isKeyDuplicate(err):
			return service.ErrKeyHeld
		case isDuplicate(err) && (strings.Contains(err.Error(), "_slot") || strings.Contains(err.Error(), ".seq")):
			return service.ErrSlotTaken
		}
		return insertedOrFenced(res, err)
	})
}

// VoidCoupon fences a claim whose write had an unknown outcome: a void row
// under its id (no slot, no key), so that the claim's own write fails.
func (d *Database) VoidCoupon(ctx context.Context, at service.OrderTable, c coupon.Coupon) (bool, int, error) {
	err := d.writeCoupons(ctx, at, func(db *sql.DB, table string) error {
		res, err := db.ExecContext(ctx, fmt.Sprintf(sqlInsertCoupon, table),
			c.ID, c.TemplateID, c.UserID, nil, coupon.StatusVoid, c.SubStock, nil, c.ClaimedAt.UTC(), c.ExpiresAt.UTC(), at.DB-1)
		if isDuplicate(err) {
			return err
		}
		return insertedOrFenced(res, err)
	})
	switch {
	case err == nil:
		return true, coupon.StatusVoid, nil
	case !isDuplicate(err):
		return false, 0, classify(err)
	}
	row, err := d.Coupon(ctx, at, c.ID)
	return false, row.Status, err
}

const couponColumns = "id, template_id, user_id, seq, status, sub_stock, idem_key, order_id, claimed_at, expires_at, used_at"

func scanCoupon(row interface{ Scan(...any) error }) (coupon.Coupon, error) {
	var c coupon.Coupon
	var seq, order sql.NullInt64
	var key sql.NullString
	var used sql.NullTime
	err := row.Scan(&c.ID, &c.TemplateID, &c.UserID, &seq, &c.Status, &c.SubStock, &key, &order, &c.ClaimedAt, &c.ExpiresAt, &used)
	c.Seq, c.Key, c.OrderID = int(seq.Int64), key.String, order.Int64
	if used.Valid {
		c.UsedAt = &used.Time
	}
	return c, err
}

// couponWhere reads the coupon matching where; when there is none, the map
// is read again and, if it changed, the row looked for again (readMoving).
func (d *Database) couponWhere(ctx context.Context, at service.OrderTable, what string, where string, args ...any) (c coupon.Coupon, err error) {
	err = d.readMoving(ctx, at, func() error {
		none, err := d.readCoupons(ctx, at, func(db *sql.DB, table string) (err error) {
			c, err = scanCoupon(db.QueryRowContext(ctx, "SELECT "+couponColumns+" FROM "+table+" WHERE "+where, args...))
			return err
		})
		if none || errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", service.ErrNotFound, what)
		}
		return classify(err)
	})
	return c, err
}

func (d *Database) CouponByKey(ctx context.Context, at service.OrderTable, userID int64, key string) (coupon.Coupon, error) {
	return d.couponWhere(ctx, at, fmt.Sprintf("no coupon of user %d under key %q", userID, key), "user_id = ? AND idem_key = ?", userID, key)
}

func (d *Database) Coupon(ctx context.Context, at service.OrderTable, id int64) (coupon.Coupon, error) {
	return d.couponWhere(ctx, at, fmt.Sprintf("coupon %d", id), "id = ?", id)
}

func (d *Database) CountClaims(ctx context.Context, at service.OrderTable, templateID, userID int64) (int, error) {
	var n int
	_, err := d.readCoupons(ctx, at, func(db *sql.DB, table string) error {
		return classify(db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE template_id = ? AND user_id = ? AND status <> ?",
			templateID, userID, coupon.StatusVoid).Scan(&n))
	})
	return n, err
}

func (d *Database) UseCoupon(ctx context.Context, at service.OrderTable, id, userID, orderID int64, now time.Time) (bool, error) {
	return d.updateCoupon(ctx, at, "status = ?, order_id = ?, used_at = ?", "id = ? AND user_id = ? AND status = ? AND expires_at > ?",
		coupon.StatusUsed, orderID, now.UTC(), id, userID, coupon.StatusUnused, now.UTC())
}

func (d *Database) ReleaseCoupon(ctx context.Context, at service.OrderTable, id, userID, orderID int64) (bool, error) {
	return d.updateCoupon(ctx, at, "status = ?, order_id = NULL, used_at = NULL", "id = ? AND user_id = ? AND status = ? AND order_id = ?",
		coupon.StatusUnused, id, userID, coupon.StatusUsed, orderID)
}

func (d *Database) ExpireCoupon(ctx context.Context, at service.OrderTable, id int64, now time.Time) error {
	_, err := d.updateCoupon(ctx, at, "status = ?", "id = ? AND status = ? AND expires_at <= ?",
		coupon.StatusExpired, id, coupon.StatusUnused, now.UTC())
	return err
}

func (d *Database) UserCoupons(ctx context.Context, at service.OrderTable, userID int64) ([]coupon.Coupon, error) {
	var out []coupon.Coupon
	_, err := d.readCoupons(ctx, at, func(db *sql.DB, table string) error {
		return queryEach(ctx, db, "SELECT "+couponColumns+" FROM "+table+" WHERE user_id = ? AND status <> ?", []any{userID, coupon.StatusVoid},
			func(rows *sql.Rows) error {
				c, err := scanCoupon(rows)
				out = append(out, c)
				return err
			})
	})
	return out, err
}

// eachCouponDB runs fn on each logical database that has tables, on the
// host the map names for it (during a move, never both copies: no record
// is counted twice), with its coupon tables' names. While some logical
// database has none in this instance's map, the map is read again first:
// another instance may have made it, and reconciliation must not take
// its coupons for units lost.
func (d *Database) eachCouponDB(ctx context.Context, fn func(db *sql.DB, l int, tables []string) error) error {
	if m := d.ShardMap(); slices.ContainsFunc(m.DBs[:], func(p LogicalPlace) bool { return p.Host == "" }) {
		if _, err := d.RefreshShardMap(ctx); err != nil {
			return err
		}
	}
	for l := range service.LogicalDBs {
		p, ok := d.logicalPool(l)
		if !ok {
			continue
		}
		if err := d.makeCouponTables(ctx, p, l); err != nil {
			return err
		}
		tables := make([]string, service.LogicalTables)
		for t := range tables {
			tables[t] = service.LogicalCouponTableName(l, t+1)
		}
		if err := fn(p.db, l, tables); err != nil {
			return err
		}
	}
	return nil
}

// CouponCounts counts a template's records with one query per logical
// database, a UNION ALL over its coupon tables.
func (d *Database) CouponCounts(ctx context.Context, templateID int64, now time.Time) (coupon.Counts, error) {
	var total coupon.Counts
	err := d.eachCouponDB(ctx, func(db *sql.DB, _ int, tables []string) error {
		parts := make([]string, len(tables))
		args := []any{coupon.StatusVoid, coupon.StatusUsed, coupon.StatusExpired, coupon.StatusUnused, now.UTC()}
		for i, table := range tables {
			parts[i] = "SELECT status, expires_at FROM " + table + " WHERE template_id = ?"
			args = append(args, templateID)
		}
		query := "SELECT COALESCE(SUM(CASE WHEN status <> ? THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN status = ? THEN 1 ELSE 0 END), 0), " +
			"COALESCE(SUM(CASE WHEN status = ? OR (status = ? AND expires_at <= ?) THEN 1 ELSE 0 END), 0) FROM (" + strings.Join(parts, " UNION ALL ") + ") c"
		var c coupon.Counts
		if err := db.QueryRowContext(ctx, query, args...).Scan(&c.Issued, &c.Used, &c.Expired); err != nil {
			return classify(err)
		}
		total.Issued += c.Issued
		total.Used += c.Used
		total.Expired += c.Expired
		return nil
	})
	return total, err
}

// errSwept stops the sweep's walk once it has done its share.
var errSwept = errors.New("swept enough")

// ExpireDue marks unused coupons past their expiry expired, at most limit
// of them: their ids first, then an update by id (an UPDATE with LIMIT is
// not portable to SQLite, nor a LIMIT in an IN subquery to MariaDB). The
// update is fenced like every write of a logical database: during a
// freeze it changes nothing there, and a later sweep does it on the new
// host.
func (d *Database) ExpireDue(ctx context.Context, now time.Time, limit int) (int, error) {
	done := 0
	err := d.eachCouponDB(ctx, func(db *sql.DB, l int, tables []string) error {
		for _, table := range tables {
			if done >= limit {
				return errSwept
			}
			var ids []int64
			err := queryEach(ctx, db, "SELECT id FROM "+table+" WHERE status = ? AND expires_at <= ? LIMIT ?",
				[]any{coupon.StatusUnused, now.UTC(), limit - done}, func(rows *sql.Rows) error {
					var id int64
					err := rows.Scan(&id)
					ids = append(ids, id)
					return err
				})
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				continue
			}
			in, idArgs := inList(ids)
			res, err := db.ExecContext(ctx, "UPDATE "+table+" SET status = ? WHERE status = ? AND expires_at <= ? AND id IN "+in+" AND "+sqlUnfrozen,
				append(append([]any{coupon.StatusExpired, coupon.StatusUnused, now.UTC()}, idArgs...), l)...)
			if err != nil {
				return classify(err)
			}
			n, _ := res.RowsAffected()
			done += int(n)
		}
		return nil
	})
	if errors.Is(err, errSwept) {
		err = nil
	}
	return done, err
}
