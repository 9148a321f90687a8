package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/recovery"
)

// openMiniRedis starts an in-process Redis, as the standalone mode does.
func openMiniRedis(tb testing.TB) (*Redis, *miniredis.Miniredis) {
	tb.Helper()
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Close)
	r, err := OpenRedis(context.Background(), RedisOptions{Addr: m.Addr(), PoolSize: 8})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r, m
}

// openSQLiteDatabase opens a migrated SQLite database, as the standalone
// mode does.
func openSQLiteDatabase(tb testing.TB) *Database {
	tb.Helper()
	ctx := context.Background()
	db, err := OpenDatabase(ctx, SQLitePrefix+filepath.Join(tb.TempDir(), "s.db"), nil, 1)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

// insertRows inserts rows into table, a thousand per statement.
func insertRows(tb testing.TB, db *Database, table, columns string, rows [][]any) {
	tb.Helper()
	for len(rows) > 0 {
		n := min(len(rows), 1000)
		one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(rows[0])), ",") + ")"
		var args []any
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		q := "INSERT INTO " + table + " (" + columns + ") VALUES " + strings.TrimSuffix(strings.Repeat(one+",", n), ",")
		if _, err := db.db.Exec(q, args...); err != nil {
			tb.Fatal(err)
		}
		rows = rows[n:]
	}
}

// bigSale writes a goods with a per-user limit of 5 after a sale: buyers
// users with a live order of one unit in the orders table, the first
// quarter of them also an order of two units in a sharded table, and
// cancelled orders of one unit each whose returns Redis does not hold yet
// (Redis refused them). Every sale is applied. It returns the goods.
func bigSale(tb testing.TB, g *rig, buyers, cancelled int) service.Goods {
	tb.Helper()
	ctx := context.Background()
	const stock = 1_000_000
	gd, err := g.db.CreateGoods(ctx, service.NewGoods{Name: "big", Stock: stock, PerUserLimit: 5})
	if err != nil {
		tb.Fatal(err)
	}
	id := lastOrderID.Add(int64(2*buyers + cancelled))
	var liveRows, shardedRows, goneRows, logRows [][]any
	sold := int64(0)
	for u := int64(1); u <= int64(buyers); u++ {
		id--
		liveRows = append(liveRows, []any{id, u, gd.ID, 1, service.StatusPaid})
		logRows = append(logRows, []any{gd.ID, id, service.OpSale, 1, 0})
		sold++
		if u <= int64(buyers/4) {
			id--
			shardedRows = append(shardedRows, []any{id, u, gd.ID, 2, service.StatusUnpaid})
			logRows = append(logRows, []any{gd.ID, id, service.OpSale, 2, 0})
			sold += 2
		}
	}
	for i := range int64(cancelled) {
		id--
		goneRows = append(goneRows, []any{id, 1_000_000 + i, gd.ID, 1, service.StatusCancelled})
		logRows = append(logRows, []any{gd.ID, id, service.OpSale, 1, 0}, []any{gd.ID, id, service.OpReturn, 1, 0})
	}
	const cols = "id, user_id, goods_id, number, status"
	insertRows(tb, g.db, "orders", cols, liveRows)
	insertRows(tb, g.db, "order_7", cols, shardedRows)
	insertRows(tb, g.db, "order_3", cols, goneRows)
	insertRows(tb, g.db, "goods_stock_logs", "goods_id, order_id, op, number, cached", logRows)
	if _, err := g.db.db.Exec("UPDATE goods SET stock = ?, sale = ? WHERE id = ?", stock-sold, sold, gd.ID); err != nil {
		tb.Fatal(err)
	}
	gd.Stock, gd.Sale = stock-sold, sold
	return gd
}

// bigRigs are the stores the bounded steps are shown on, with how many
// buyers and returns: real Redis, whose scripts refused past about 8,000
// values, with 20,000; the standalone mode's in-process Redis, which
// refused past about 2,500 and runs slowly under the race detector, with
// 6,000.
func bigRigs() []struct {
	name string
	size int
	rig  func(t *testing.T) *rig
} {
	return []struct {
		name string
		size int
		rig  func(t *testing.T) *rig
	}{
		{"redis+mariadb", 20_000, func(t *testing.T) *rig { return newRig(t) }},
		// Every chunk and script of a goods runs on its one master.
		{"redis-cluster+mariadb", 5_000, func(t *testing.T) *rig { return newRigOn(t, openTestDatabase(t), openClusterRedis(t)) }},
		{"miniredis+sqlite", 6_000, func(t *testing.T) *rig {
			r, _ := openMiniRedis(t)
			return newRigOn(t, openSQLiteDatabase(t), r)
		}},
	}
}

// Restore rebuilds a goods with tens of thousands of buyers and of returns
// Redis did not hold, on real Redis and on the standalone mode's stores:
// the stock, every buyer's units (summed over the tables their orders are
// in), and the returns' markers, which then go once their records say
// Redis holds them. A replayed return adds nothing; the limits hold.
func TestRestoreOfManyBuyersAndReturns(t *testing.T) {
	for _, c := range bigRigs() {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			g := c.rig(t)
			buyers, cancelled := c.size, c.size
			gd := bigSale(t, g, buyers, cancelled)
			restored, err := g.l.Repairs().RestoreMissing(ctx)
			if err != nil || len(restored) != 1 {
				t.Fatalf("restored %v: %v", restored, err)
			}
			if got := g.redisStock(t, gd.ID); got != gd.Stock {
				t.Errorf("stock %d, want %d", got, gd.Stock)
			}
			units, err := g.r.c.HGetAll(ctx, BuyersKey(g.r.prefix, gd.ID)).Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(units) != buyers {
				t.Errorf("%d buyers restored, want %d", len(units), buyers)
			}
			for u := int64(1); u <= int64(buyers); u++ {
				want := int64(1)
				if u <= int64(buyers/4) {
					want = 3
				}
				if got, _ := strconv.ParseInt(units[strconv.FormatInt(u, 10)], 10, 64); got != want {
					t.Fatalf("user %d holds %d units in redis, want %d", u, got, want)
				}
			}
			if ms := g.markers(t, gd.ID); len(ms) != 0 {
				t.Errorf("%d markers stay in the goods hash", len(ms))
			}
			var pending int
			if err := g.db.db.QueryRow("SELECT COUNT(*) FROM goods_stock_logs WHERE goods_id = ? AND op = 1 AND cached = 0", gd.ID).Scan(&pending); err != nil || pending != 0 {
				t.Errorf("%d returns still pending (%v)", pending, err)
			}
			keys, err := keysUnder(ctx, g.r)
			if err != nil || len(keys) != 3 || !slices.Contains(keys, GoodsIndexKey(g.r.prefix)) {
				t.Errorf("keys after the restore: %v (%v), want the goods, its buyers and the goods index", keys, err)
			}
			// A cancelled order's return, replayed: nothing changes.
			var orderID int64
			if err := g.db.db.QueryRow("SELECT id FROM order_3 WHERE goods_id = ? LIMIT 1", gd.ID).Scan(&orderID); err != nil {
				t.Fatal(err)
			}
			if err := g.l.ReturnOrder(ctx, service.StockMessage{OrderID: orderID, GoodsID: gd.ID, UserID: 1, Number: 1, Table: 3}); err != nil {
				t.Fatal(err)
			}
			if got := g.redisStock(t, gd.ID); got != gd.Stock {
				t.Errorf("stock %d after a replayed return, want %d", got, gd.Stock)
			}
			// The limits hold: user 1 holds 3 of 5, user buyers holds 1.
			if err := g.r.Reserve(ctx, gd.ID, 1, 3, time.Now()); !errors.Is(err, service.ErrLimitExceeded) {
				t.Errorf("user 1 buying 3 more: %v, want limit exceeded", err)
			}
			if err := g.r.Reserve(ctx, gd.ID, int64(buyers), 4, time.Now()); err != nil {
				t.Errorf("user %d buying 4 more: %v", buyers, err)
			}
		})
	}
}

// A restore that fails midway, in the database or in Redis, leaves the
// goods not loaded, never half loaded, and no key that stays for good.
func TestRestoreFailingMidwayLeavesTheGoodsNotLoaded(t *testing.T) {
	type failure func(m *miniredis.Miniredis, cancel context.CancelFunc) error
	failures := map[string]failure{
		"database": func(*miniredis.Miniredis, context.CancelFunc) error {
			return fmt.Errorf("%w: connection lost", service.ErrUnavailable)
		},
		"context": func(_ *miniredis.Miniredis, cancel context.CancelFunc) error {
			cancel()
			return nil
		},
		"miniredis refusing": func(m *miniredis.Miniredis, _ context.CancelFunc) error {
			m.SetError("LOADING Redis is loading the dataset in memory")
			return nil
		},
	}
	for name, fail := range failures {
		for _, backend := range []string{"redis", "miniredis"} {
			if backend == "redis" && strings.HasPrefix(name, "miniredis") {
				continue
			}
			t.Run(name+"/"+backend, func(t *testing.T) {
				var r *Redis
				var m *miniredis.Miniredis
				if backend == "redis" {
					r = openTestRedis(t)
				} else {
					r, m = openMiniRedis(t)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				gd := service.Goods{ID: 7, Stock: 100, PerUserLimit: 2}
				st := service.RestoredStock{Stock: 100, PendingReturns: []int64{1, 2, 3},
					UserUnits: func(each func(userID, units int64) error) error {
						for u := int64(1); u <= 10_000; u++ {
							if u == 5_000 {
								if err := fail(m, cancel); err != nil {
									return err
								}
							}
							if err := each(u, 1); err != nil {
								return err
							}
						}
						return nil
					}}
				if restored, err := r.Restore(ctx, gd, st); err == nil || restored {
					t.Fatalf("restored %v, err %v; want an error", restored, err)
				}
				if m != nil {
					m.SetError("")
				}
				bg := context.Background()
				if _, ok, err := r.Stock(bg, gd.ID); ok || err != nil {
					t.Errorf("goods loaded after a failed restore (%v)", err)
				}
				keys, err := r.c.Keys(bg, r.prefix+"*").Result()
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range keys {
					if ttl := r.c.PTTL(bg, k).Val(); ttl <= 0 {
						t.Errorf("key %s stays for good after a failed restore (ttl %v)", k, ttl)
					}
				}
				// The next restore works.
				st.UserUnits = func(each func(userID, units int64) error) error { return each(1, 2) }
				if restored, err := r.Restore(bg, gd, st); !restored || err != nil {
					t.Fatalf("restore after the failure: %v %v", restored, err)
				}
				if n, _ := r.c.HGet(bg, BuyersKey(r.prefix, gd.ID), "1").Int(); n != 2 {
					t.Errorf("user 1 holds %d after the restore, want 2", n)
				}
				if n, _ := r.c.HLen(bg, BuyersKey(r.prefix, gd.ID)).Result(); n != 1 {
					t.Errorf("%d buyers after the restore, want 1", n)
				}
			})
		}
	}
}

// A repair standing in for tens of thousands of returns Redis refused
// marks them all in its one script, on real Redis and on miniredis; their
// retries add nothing.
func TestRepairStandingInForManyReturns(t *testing.T) {
	for _, c := range bigRigs() {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			g := c.rig(t)
			cancelled := c.size
			gd := bigSale(t, g, 0, cancelled)
			short := gd
			short.Stock -= int64(cancelled) // Redis never got the returns
			if err := g.r.Put(ctx, short); err != nil {
				t.Fatal(err)
			}
			if d := g.passes(t, gd.ID, recovery.RepairAfter); !d.Repaired {
				t.Fatalf("not repaired: %+v", d)
			}
			var orderID int64
			if err := g.db.db.QueryRow("SELECT id FROM order_3 WHERE goods_id = ? LIMIT 1", gd.ID).Scan(&orderID); err != nil {
				t.Fatal(err)
			}
			if err := g.l.ReturnOrder(ctx, service.StockMessage{OrderID: orderID, GoodsID: gd.ID, UserID: 1_000_000, Number: 1, Table: 3}); err != nil {
				t.Fatal(err)
			}
			if got := g.redisStock(t, gd.ID); got != gd.Stock {
				t.Errorf("redis %d, want %d", got, gd.Stock)
			}
			if ms := g.markers(t, gd.ID); len(ms) != 0 {
				t.Errorf("%d markers stay", len(ms))
			}
		})
	}
}
