package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/coupon"
)

// The coupon tables: coupon_templates and coupon_stock_ops on the primary,
// coupon_1..coupon_16 on every host, placed by user like the orders.

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

// couponTable checks at and returns the pool and coupon table it names.
func (d *Database) couponTable(at service.OrderTable) (*sql.DB, string, error) {
	if at.Host < 0 || at.Host >= len(d.hosts) || at.Table < 1 || at.Table > service.MaxOrderTables {
		return nil, "", fmt.Errorf("%w: coupon table %+v: no such host or table", service.ErrInvalid, at)
	}
	return d.hosts[at.Host], service.CouponTableName(at.Table), nil
}

// distinctHosts are the databases among the hosts, each once.
func (d *Database) distinctHosts() []*sql.DB {
	var dbs []*sql.DB
	for _, db := range d.hosts {
		if !slices.Contains(dbs, db) {
			dbs = append(dbs, db)
		}
	}
	return dbs
}

func (d *Database) InsertCoupon(ctx context.Context, at service.OrderTable, c coupon.Coupon) error {
	db, table, err := d.couponTable(at)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "INSERT INTO "+table+" (id, template_id, user_id, seq, status, sub_stock, idem_key, claimed_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		c.ID, c.TemplateID, c.UserID, sql.NullInt64{Int64: int64(c.Seq), Valid: c.Seq > 0}, coupon.StatusUnused, c.SubStock,
		sql.NullString{String: c.Key, Valid: c.Key != ""}, c.ClaimedAt.UTC(), c.ExpiresAt.UTC())
	switch {
	case isKeyDuplicate(err):
		return service.ErrKeyHeld
	case isDuplicate(err) && (strings.Contains(err.Error(), "_slot") || strings.Contains(err.Error(), ".seq")):
		return service.ErrSlotTaken
	}
	return writeFailed(err)
}

// VoidCoupon fences a claim whose write had an unknown outcome: a void row
// under its id (no slot, no key), so that the claim's own write fails.
func (d *Database) VoidCoupon(ctx context.Context, at service.OrderTable, c coupon.Coupon) (bool, int, error) {
	db, table, err := d.couponTable(at)
	if err != nil {
		return false, 0, err
	}
	_, err = db.ExecContext(ctx, "INSERT INTO "+table+" (id, template_id, user_id, status, sub_stock, claimed_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		c.ID, c.TemplateID, c.UserID, coupon.StatusVoid, c.SubStock, c.ClaimedAt.UTC(), c.ExpiresAt.UTC())
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

func (d *Database) couponWhere(ctx context.Context, at service.OrderTable, what string, where string, args ...any) (coupon.Coupon, error) {
	db, table, err := d.couponTable(at)
	if err != nil {
		return coupon.Coupon{}, err
	}
	c, err := scanCoupon(db.QueryRowContext(ctx, "SELECT "+couponColumns+" FROM "+table+" WHERE "+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return coupon.Coupon{}, fmt.Errorf("%w: %s", service.ErrNotFound, what)
	}
	return c, classify(err)
}

func (d *Database) CouponByKey(ctx context.Context, at service.OrderTable, userID int64, key string) (coupon.Coupon, error) {
	return d.couponWhere(ctx, at, fmt.Sprintf("no coupon of user %d under key %q", userID, key), "user_id = ? AND idem_key = ?", userID, key)
}

func (d *Database) Coupon(ctx context.Context, at service.OrderTable, id int64) (coupon.Coupon, error) {
	return d.couponWhere(ctx, at, fmt.Sprintf("coupon %d", id), "id = ?", id)
}

func (d *Database) CountClaims(ctx context.Context, at service.OrderTable, templateID, userID int64) (int, error) {
	db, table, err := d.couponTable(at)
	if err != nil {
		return 0, err
	}
	var n int
	err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE template_id = ? AND user_id = ? AND status <> ?",
		templateID, userID, coupon.StatusVoid).Scan(&n)
	return n, classify(err)
}

func (d *Database) UseCoupon(ctx context.Context, at service.OrderTable, id, userID, orderID int64, now time.Time) (bool, error) {
	db, table, err := d.couponTable(at)
	if err != nil {
		return false, err
	}
	res, err := db.ExecContext(ctx, "UPDATE "+table+" SET status = ?, order_id = ?, used_at = ? WHERE id = ? AND user_id = ? AND status = ? AND expires_at > ?",
		coupon.StatusUsed, orderID, now.UTC(), id, userID, coupon.StatusUnused, now.UTC())
	if err != nil {
		return false, classify(err)
	}
	n, err := res.RowsAffected()
	return n == 1, classify(err)
}

func (d *Database) ReleaseCoupon(ctx context.Context, at service.OrderTable, id, userID, orderID int64) (bool, error) {
	db, table, err := d.couponTable(at)
	if err != nil {
		return false, err
	}
	res, err := db.ExecContext(ctx, "UPDATE "+table+" SET status = ?, order_id = NULL, used_at = NULL WHERE id = ? AND user_id = ? AND status = ? AND order_id = ?",
		coupon.StatusUnused, id, userID, coupon.StatusUsed, orderID)
	if err != nil {
		return false, classify(err)
	}
	n, err := res.RowsAffected()
	return n == 1, classify(err)
}

func (d *Database) ExpireCoupon(ctx context.Context, at service.OrderTable, id int64, now time.Time) error {
	db, table, err := d.couponTable(at)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "UPDATE "+table+" SET status = ? WHERE id = ? AND status = ? AND expires_at <= ?",
		coupon.StatusExpired, id, coupon.StatusUnused, now.UTC())
	return classify(err)
}

func (d *Database) UserCoupons(ctx context.Context, at service.OrderTable, userID int64) ([]coupon.Coupon, error) {
	db, table, err := d.couponTable(at)
	if err != nil {
		return nil, err
	}
	var out []coupon.Coupon
	err = queryEach(ctx, db, "SELECT "+couponColumns+" FROM "+table+" WHERE user_id = ? AND status <> ?", []any{userID, coupon.StatusVoid},
		func(rows *sql.Rows) error {
			c, err := scanCoupon(rows)
			out = append(out, c)
			return err
		})
	return out, err
}

// CouponCounts counts a template's records with one query per database, a
// UNION ALL over its coupon tables.
func (d *Database) CouponCounts(ctx context.Context, templateID int64, now time.Time) (coupon.Counts, error) {
	var total coupon.Counts
	parts := make([]string, service.MaxOrderTables)
	var args []any
	for i := range parts {
		parts[i] = "SELECT status, expires_at FROM " + service.CouponTableName(i+1) + " WHERE template_id = ?"
		args = append(args, templateID)
	}
	query := "SELECT COALESCE(SUM(CASE WHEN status <> ? THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN status = ? THEN 1 ELSE 0 END), 0), " +
		"COALESCE(SUM(CASE WHEN status = ? OR (status = ? AND expires_at <= ?) THEN 1 ELSE 0 END), 0) FROM (" + strings.Join(parts, " UNION ALL ") + ") c"
	args = append([]any{coupon.StatusVoid, coupon.StatusUsed, coupon.StatusExpired, coupon.StatusUnused, now.UTC()}, args...)
	for _, db := range d.distinctHosts() {
		var c coupon.Counts
		if err := db.QueryRowContext(ctx, query, args...).Scan(&c.Issued, &c.Used, &c.Expired); err != nil {
			return total, classify(err)
		}
		total.Issued += c.Issued
		total.Used += c.Used
		total.Expired += c.Expired
	}
	return total, nil
}

// ExpireDue marks unused coupons past their expiry expired, at most limit
// of them: their ids first, then an update by id (an UPDATE with LIMIT is
// not portable to SQLite, nor a LIMIT in an IN subquery to MariaDB).
func (d *Database) ExpireDue(ctx context.Context, now time.Time, limit int) (int, error) {
	done := 0
	for _, db := range d.distinctHosts() {
		for i := 1; i <= service.MaxOrderTables && done < limit; i++ {
			table := service.CouponTableName(i)
			var ids []int64
			err := queryEach(ctx, db, "SELECT id FROM "+table+" WHERE status = ? AND expires_at <= ? LIMIT ?",
				[]any{coupon.StatusUnused, now.UTC(), limit - done}, func(rows *sql.Rows) error {
					var id int64
					err := rows.Scan(&id)
					ids = append(ids, id)
					return err
				})
			if err != nil || len(ids) == 0 {
				if err != nil {
					return done, err
				}
				continue
			}
			in, idArgs := inList(ids)
			res, err := db.ExecContext(ctx, "UPDATE "+table+" SET status = ? WHERE status = ? AND expires_at <= ? AND id IN "+in,
				append([]any{coupon.StatusExpired, coupon.StatusUnused, now.UTC()}, idArgs...)...)
			if err != nil {
				return done, classify(err)
			}
			n, _ := res.RowsAffected()
			done += int(n)
		}
	}
	return done, nil
}
