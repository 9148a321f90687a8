package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
)

// V4 places by user_id % hosts: a start with another host count (or table
// count) is refused while orders of the old layout exist, and the message
// points at V7's expansion; without such orders the new layout is taken.
func TestChangedLayoutIsRefusedWhileItsOrdersExist(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, dsn := range map[string]string{
		"mysql":  testenv.MySQL(t),
		"sqlite": SQLitePrefix + filepath.Join(t.TempDir(), "s.db"),
	} {
		t.Run(name, func(t *testing.T) {
			d, err := OpenDatabase(ctx, dsn, []string{dsn}, 2)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if _, err := d.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			one := service.Layout{Tables: 16, Hosts: 1}
			two := service.Layout{Tables: 16, Hosts: 2}
			for _, l := range []service.Layout{one, one, two, one} {
				if err := d.CheckOrderLayout(ctx, l); err != nil {
					t.Fatalf("layout %+v with no orders: %v", l, err)
				}
			}
			o := service.Order{ID: 1, UserID: 7, GoodsID: 1, Number: 1, PayDeadline: time.Now().Add(time.Hour).UTC()}
			if err := d.InsertOrder(ctx, o, service.ByUserHost(o.UserID, one)); err != nil {
				t.Fatal(err)
			}
			err = d.CheckOrderLayout(ctx, two)
			if err == nil || !strings.Contains(err.Error(), "seckill reshard") || !strings.Contains(err.Error(), "404") {
				t.Errorf("two hosts after an order placed on one: %v, want a refusal pointing at V7's expansion", err)
			}
			if err := d.CheckOrderLayout(ctx, service.Layout{Tables: 8, Hosts: 1}); err == nil {
				t.Error("another table count was taken")
			}
			if err := d.CheckOrderLayout(ctx, one); err != nil {
				t.Errorf("the old layout: %v", err)
			}
		})
	}
}

// V7's orders go to their logical database's tables, made on its first
// write on the first V7 host, in SQLite as in MySQL; a frozen logical
// database takes no write, and its orders are still read.
func TestLogicalDatabasesAreMadeOnFirstWriteAndFenced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inBothDialects(t, func(t *testing.T, d *Database) {
		o := service.Order{ID: 42, UserID: 13, GoodsID: 1, Number: 1, PayDeadline: time.Now().Add(time.Hour).UTC()}
		at := service.ByLogicalDB(o.UserID, service.Layout{})
		if _, _, err := d.OrderStatus(ctx, at, o.ID); !errors.Is(err, service.ErrNotFound) {
			t.Errorf("before any write: %v, want not found", err)
		}
		if err := d.InsertOrder(ctx, o, at); err != nil {
			t.Fatal(err)
		}
		m := d.ShardMap()
		if m.DBs[5].Host != d.LogicalHostIDs()[0] || m.DBs[0].Host != "" {
			t.Errorf("map after l5's first order: %+v", m)
		}
		var n int
		for db, table := range d.orderTables() {
			if table.Logical() && db != nil {
				n++
			}
		}
		if n != service.LogicalTables {
			t.Errorf("%d logical tables scanned, want l5's %d", n, service.LogicalTables)
		}
		if _, err := d.pools[0].db.ExecContext(ctx, "UPDATE shard_fences SET frozen = 1 WHERE logical_db = 5"); err != nil {
			t.Fatal(err)
		}
		d.freezeWait = 200 * time.Millisecond // a write waits this long for a switch that never comes
		if err := d.InsertOrder(ctx, service.Order{ID: 43, UserID: 13, GoodsID: 1, Number: 1, PayDeadline: o.PayDeadline}, at); !errors.Is(err, service.ErrMoving) {
			t.Errorf("an order of a frozen logical database: %v, want ErrMoving", err)
		}
		if _, err := d.PayOrder(ctx, at, o.ID, o.UserID, time.Now(), 0, 0); !errors.Is(err, service.ErrMoving) {
			t.Errorf("paying in a frozen logical database: %v, want ErrMoving", err)
		}
		if status, _, err := d.OrderStatus(ctx, at, o.ID); err != nil || status != service.StatusUnpaid {
			t.Errorf("reading a frozen logical database: %d, %v", status, err)
		}
	})
}

// inBothDialects runs test on a migrated database of each dialect, its
// shard map loaded: MySQL's and SQLite's (the standalone mode's).
func inBothDialects(t *testing.T, test func(t *testing.T, d *Database)) {
	ctx := context.Background()
	for name, dsn := range map[string]string{
		"mysql":  testenv.MySQL(t),
		"sqlite": SQLitePrefix + filepath.Join(t.TempDir(), "s.db"),
	} {
		t.Run(name, func(t *testing.T) {
			d, err := OpenDatabase(ctx, dsn, nil, 2)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if _, err := d.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := d.RefreshShardMap(ctx); err != nil {
				t.Fatal(err)
			}
			test(t, d)
		})
	}
}
