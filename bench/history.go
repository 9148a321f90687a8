package main

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/internal/harness"
	domain "github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/store"
)

// historyChunk is how many orders one INSERT ... SELECT writes per table
// pass: the rows of benchNumbers.
const historyChunk = 100_000

// writeHistory gives goods n orders sold in the past, written straight
// into MySQL in bulk, as the service leaves a sale it has settled: paid
// orders of one unit (user_id/10 % 16 puts each in the order table V3 to
// V6 place its user's orders in), ids made at made (so that, made long
// enough ago, they are below the truth's horizon), each with its sale's
// stock log; the goods row and its Redis stock lose the n units. Each
// statement commits alone: until the goods row is updated, the logs of the
// orders written so far are not in its stock, so the truth (stock less
// the unapplied orders) is the same before and after every statement.
func writeHistory(ctx context.Context, servers *harness.Servers, goodsID, n int64, made time.Time) error {
	db := servers.DB(0)
	if err := benchNumbers(ctx, db); err != nil {
		return err
	}
	var ids store.IDs // its FirstIDAt needs no node
	firstID := ids.FirstIDAt(made)
	// Users far above the loads' (1..2e9), so no buyer of a load has them.
	const firstUser = 3_000_000_000
	for from := int64(0); from < n; from += historyChunk {
		rows := min(historyChunk, n-from)
		for t := 1; t <= domain.MaxOrderTables; t++ {
			q := "INSERT INTO " + domain.TableName(t) + " (id, user_id, goods_id, number, status)" +
				" SELECT ? + i, ? + i, ?, 1, ? FROM bench_numbers WHERE i < ? AND (? + i) DIV 10 % ? = ?"
			if _, err := db.ExecContext(ctx, q, firstID+from, firstUser+from, goodsID, domain.StatusPaid, rows,
				firstUser+from, domain.MaxOrderTables, t-1); err != nil {
				return err
			}
		}
		q := "INSERT INTO goods_stock_logs (goods_id, order_id, op, number) SELECT ?, ? + i, ?, 1 FROM bench_numbers WHERE i < ?"
		if _, err := db.ExecContext(ctx, q, goodsID, firstID+from, domain.OpSale, rows); err != nil {
			return err
		}
	}
	res, err := db.ExecContext(ctx, "UPDATE goods SET stock = stock - ?, sale = sale + ? WHERE id = ? AND stock >= ?", n, n, goodsID, n)
	if err != nil {
		return err
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return fmt.Errorf("goods %d has fewer than %d units", goodsID, n)
	}
	return servers.Redis().HIncrBy(ctx, servers.GoodsKey(goodsID), "stock", -n).Err()
}

// benchNumbers fills bench_numbers with 0..historyChunk-1, once per
// database.
func benchNumbers(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS bench_numbers (i INT NOT NULL PRIMARY KEY)"); err != nil {
		return err
	}
	var have int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM bench_numbers").Scan(&have); err != nil || have == historyChunk {
		return err
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM bench_numbers"); err != nil {
		return err
	}
	// MariaDB stops a recursion at 1,000 rows (max_recursive_iterations):
	// the numbers are pairs of 0..999.
	_, err := db.ExecContext(ctx, "INSERT INTO bench_numbers (i) WITH RECURSIVE n (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)"+
		" SELECT a.i * 1000 + b.i FROM n a, n b WHERE a.i * 1000 + b.i < ?", historyChunk)
	return err
}

// goodsCount is one goods as MySQL and Redis hold it, in counts: the
// figures harness.Snapshot reads order by order, summed by the database,
// for checking thousands of goods, or one of millions of orders, at once.
type goodsCount struct {
	Stock, Sale   int64
	Orders, Units int64 // order rows (void ones left out) and their units
	Sales         int64 // stock logs of sales, and their units
	SaleUnits     int64
	ReturnUnits   int64
	Redis         *int64 // the goods hash's stock; nil when Redis holds none
	Pending       int64  // units accepted asynchronously whose orders are not written yet
}

// goodsTally is goodsCount by goods id.
type goodsTally map[int64]goodsCount

// tallyGoods counts ids (sorted) in every order table of the primary, the
// stock logs, the goods rows and Redis, a range of ids per statement.
func tallyGoods(ctx context.Context, servers *harness.Servers, ids []int64) (goodsTally, error) {
	t := goodsTally{}
	for _, id := range ids {
		t[id] = goodsCount{}
	}
	if len(ids) == 0 {
		return t, nil
	}
	lo, hi := ids[0], ids[len(ids)-1]
	db := servers.DB(0)
	add := func(query string, f func(c *goodsCount, r []int64)) error {
		rows, err := db.QueryContext(ctx, query, lo, hi)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r := make([]int64, 4)
			if err := rows.Scan(&r[0], &r[1], &r[2], &r[3]); err != nil {
				return err
			}
			if c, ok := t[r[0]]; ok {
				f(&c, r[1:])
				t[r[0]] = c
			}
		}
		return rows.Err()
	}
	err := add("SELECT id, stock, sale, 0 FROM goods WHERE id BETWEEN ? AND ?", func(c *goodsCount, r []int64) { c.Stock, c.Sale = r[0], r[1] })
	if err != nil {
		return nil, err
	}
	for _, name := range domain.TableNames() {
		err := add("SELECT goods_id, COUNT(*), COALESCE(SUM(number), 0), 0 FROM "+name+" WHERE goods_id BETWEEN ? AND ? AND status <> "+
			strconv.Itoa(domain.StatusVoid)+" GROUP BY goods_id", func(c *goodsCount, r []int64) { c.Orders += r[0]; c.Units += r[1] })
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	err = add("SELECT goods_id, op, COUNT(*), SUM(number) FROM goods_stock_logs WHERE goods_id BETWEEN ? AND ? GROUP BY goods_id, op", func(c *goodsCount, r []int64) {
		if r[0] == domain.OpSale {
			c.Sales, c.SaleUnits = r[1], r[2]
		} else {
			c.ReturnUnits += r[2]
		}
	})
	if err != nil {
		return nil, err
	}
	pipe := servers.Redis().Pipeline()
	cmds := make(map[int64]*redis.SliceCmd, len(ids))
	for _, id := range ids {
		cmds[id] = pipe.HMGet(ctx, servers.GoodsKey(id), harness.GoodsHashFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	for id, cmd := range cmds {
		c := t[id]
		if c.Redis, c.Pending, err = harness.ReadGoodsHash(cmd.Val()); err != nil {
			return nil, err
		}
		t[id] = c
	}
	return t, nil
}

// drained says every goods' orders are applied and Redis holds MySQL's
// stock.
func (t goodsTally) drained() bool {
	for _, c := range t {
		if c.Sales != c.Orders || c.Redis == nil || *c.Redis != c.Stock || c.Pending != 0 {
			return false
		}
	}
	return true
}

func (t goodsTally) equal(u goodsTally) bool {
	if len(t) != len(u) {
		return false
	}
	for id, c := range t {
		d, ok := u[id]
		if !ok || c.Stock != d.Stock || c.Sale != d.Sale || c.Orders != d.Orders || c.Sales != d.Sales ||
			(c.Redis == nil) != (d.Redis == nil) || (c.Redis != nil && *c.Redis != *d.Redis) {
			return false
		}
	}
	return true
}

// violations are the drained sale's broken invariants, per goods, against
// the stock each was made with (no admin adds any): none oversold, every
// order applied once, the units adding up, Redis holding MySQL's stock. A
// few are listed, then how many goods broke one.
func (t goodsTally) violations(initial map[int64]int64) []string {
	var out []string
	broken := 0
	for id, want := range initial {
		c := t[id]
		var v []string
		if c.Stock < 0 {
			v = append(v, fmt.Sprintf("stock %d", c.Stock))
		}
		if c.Stock+c.Sale != want {
			v = append(v, fmt.Sprintf("stock %d + sale %d != %d made", c.Stock, c.Sale, want))
		}
		if c.Sales != c.Orders {
			v = append(v, fmt.Sprintf("%d orders but %d applied", c.Orders, c.Sales))
		}
		if c.Units != c.SaleUnits || c.Sale != c.SaleUnits-c.ReturnUnits {
			v = append(v, fmt.Sprintf("order units %d, sold %d, returned %d, sale %d", c.Units, c.SaleUnits, c.ReturnUnits, c.Sale))
		}
		if c.Redis == nil || *c.Redis != c.Stock {
			v = append(v, fmt.Sprintf("redis stock %s, mysql %d", fmtRedis(c.Redis), c.Stock))
		}
		if len(v) > 0 {
			broken++
			if broken <= 3 {
				out = append(out, fmt.Sprintf("goods %d: %v", id, v))
			}
		}
	}
	if broken > 3 {
		out = append(out, fmt.Sprintf("%d goods in all broke an invariant", broken))
	}
	return out
}

func fmtRedis(n *int64) string {
	if n == nil {
		return "missing"
	}
	return strconv.FormatInt(*n, 10)
}

// settleWrites waits, at most limit, until InnoDB holds no more dirty
// pages than a quarter of its buffer pool, and says how long it waited. A
// bulk write leaves the pool dirty: a load right after it waits for pages
// to be flushed before it can read into them, seconds of stalls that say
// nothing of what a large history costs an order.
func settleWrites(ctx context.Context, db *sql.DB, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		var dirty, total int64
		err := queryEach(ctx, db, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_buffer_pool_pages_dirty', 'Innodb_buffer_pool_pages_total')", func(name string, v int64) {
			if name == "Innodb_buffer_pool_pages_dirty" {
				dirty = v
			} else {
				total = v
			}
		})
		if err != nil || dirty*4 <= total || time.Since(start) >= limit {
			return time.Since(start), err
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// queryEach calls f with each (name, value) row of a status query.
func queryEach(ctx context.Context, db *sql.DB, query string, f func(string, int64)) error {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return err
		}
		f(name, v)
	}
	return rows.Err()
}
