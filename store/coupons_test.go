package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/coupon"
)

// Coupon records live in the coupon tables of the user's logical
// database, on the host the shard map names, in SQLite as in MySQL: a
// logical database made with order tables only (before its coupons
// followed the map) is given its coupon tables on the first coupon; every
// write is fenced (a frozen logical database takes none and answers
// ErrMoving, the expiry sweep skips it) while reads, counts and lists go
// on; logical databases without tables are skipped by the scans.
func TestCouponRecordsFollowTheShardMapAndItsFences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inBothDialects(t, func(t *testing.T, d *Database) {
		// Logical database 5 as an older release made it: order tables
		// and its map row, no coupon tables.
		seed := d.logicalHosts()[0]
		if err := createTables(ctx, seed.p, 5, []*tableKind{orderKind}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.db.ExecContext(ctx, "INSERT INTO shard_map (logical_db, host, epoch) VALUES (5, ?, 0)", seed.id); err != nil {
			t.Fatal(err)
		}
		if _, err := d.RefreshShardMap(ctx); err != nil {
			t.Fatal(err)
		}

		const user, tpl = 13, 7 // logical database 5, table 2
		at := service.CouponTable(user)
		if at != (service.OrderTable{DB: 6, Table: 2}) {
			t.Fatalf("user %d's coupon table: %+v", user, at)
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		c := coupon.Coupon{ID: 100, TemplateID: tpl, UserID: user, Seq: 1, ClaimedAt: now, ExpiresAt: now.Add(time.Hour)}
		if _, err := d.Coupon(ctx, at, c.ID); !errors.Is(err, service.ErrNotFound) {
			t.Errorf("before any coupon: %v, want not found", err)
		}
		if err := d.InsertCoupon(ctx, at, c); err != nil {
			t.Fatal(err)
		}
		if err := d.InsertCoupon(ctx, at, coupon.Coupon{ID: 101, TemplateID: tpl, UserID: user, Seq: 1, ClaimedAt: now, ExpiresAt: now.Add(time.Hour)}); !errors.Is(err, service.ErrSlotTaken) {
			t.Errorf("a second coupon in the same slot: %v, want ErrSlotTaken", err)
		}
		short := coupon.Coupon{ID: 102, TemplateID: tpl, UserID: user, Seq: 2, ClaimedAt: now, ExpiresAt: now.Add(-time.Second)}
		if err := d.InsertCoupon(ctx, at, short); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := seed.p.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+service.LogicalCouponTableName(5, 2)).Scan(&n); err != nil || n != 2 {
			t.Errorf("l5_coupon_2 on the map's host holds %d rows (%v), want 2", n, err)
		}

		// Frozen: no write, reads go on.
		if _, err := seed.p.db.ExecContext(ctx, "UPDATE shard_fences SET frozen = 1 WHERE logical_db = 5"); err != nil {
			t.Fatal(err)
		}
		d.freezeWait = 200 * time.Millisecond // a write waits this long for a switch that never comes
		if err := d.InsertCoupon(ctx, at, coupon.Coupon{ID: 103, TemplateID: tpl, UserID: user, Seq: 3, ClaimedAt: now, ExpiresAt: now.Add(time.Hour)}); !errors.Is(err, service.ErrMoving) {
			t.Errorf("a claim in a frozen logical database: %v, want ErrMoving", err)
		}
		if _, _, err := d.VoidCoupon(ctx, at, coupon.Coupon{ID: 104, TemplateID: tpl, UserID: user, ClaimedAt: now, ExpiresAt: now}); !errors.Is(err, service.ErrMoving) {
			t.Errorf("a fence in a frozen logical database: %v, want ErrMoving", err)
		}
		if _, err := d.UseCoupon(ctx, at, c.ID, user, 55, now); !errors.Is(err, service.ErrMoving) {
			t.Errorf("a redemption in a frozen logical database: %v, want ErrMoving", err)
		}
		if err := d.ExpireCoupon(ctx, at, short.ID, now); !errors.Is(err, service.ErrMoving) {
			t.Errorf("an expiry in a frozen logical database: %v, want ErrMoving", err)
		}
		if swept, err := d.ExpireDue(ctx, now, 100); err != nil || swept != 0 {
			t.Errorf("the sweep over a frozen logical database: %d, %v; want 0", swept, err)
		}
		if got, err := d.Coupon(ctx, at, c.ID); err != nil || got.Status != coupon.StatusUnused {
			t.Errorf("reading a frozen logical database: %+v, %v", got, err)
		}
		if mine, err := d.UserCoupons(ctx, at, user); err != nil || len(mine) != 2 {
			t.Errorf("listing a frozen logical database: %d coupons, %v; want 2", len(mine), err)
		}
		counts, err := d.CouponCounts(ctx, tpl, now)
		if err != nil || counts.Issued != 2 || counts.Expired != 1 {
			t.Errorf("counts: %+v, %v; want 2 issued, 1 expired", counts, err)
		}

		// Thawed: the writes go through.
		if _, err := seed.p.db.ExecContext(ctx, "UPDATE shard_fences SET frozen = 0 WHERE logical_db = 5"); err != nil {
			t.Fatal(err)
		}
		if used, err := d.UseCoupon(ctx, at, c.ID, user, 55, now); err != nil || !used {
			t.Errorf("redeem: %v, %v", used, err)
		}
		if released, err := d.ReleaseCoupon(ctx, at, c.ID, user, 55); err != nil || !released {
			t.Errorf("release: %v, %v", released, err)
		}
		if swept, err := d.ExpireDue(ctx, now, 100); err != nil || swept != 1 {
			t.Errorf("the sweep: %d, %v; want 1", swept, err)
		}
		if got, err := d.Coupon(ctx, at, short.ID); err != nil || got.Status != coupon.StatusExpired {
			t.Errorf("the swept coupon: %+v, %v", got, err)
		}
		// A user of a logical database with no tables holds no coupons.
		other := service.CouponTable(8)
		if mine, err := d.UserCoupons(ctx, other, 8); err != nil || len(mine) != 0 {
			t.Errorf("coupons of a user of l0, which has no tables: %v, %v", mine, err)
		}
		if used, err := d.UseCoupon(ctx, other, 1, 8, 1, now); err != nil || used {
			t.Errorf("redeeming in l0, which has no tables: %v, %v", used, err)
		}
		if m := d.ShardMap(); m.DBs[0].Host != "" {
			t.Errorf("a read made l0: %+v", m.DBs[0])
		}
	})
}
