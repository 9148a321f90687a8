package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/go-seckill/seckill/service"
)

// The database's truth of goods' stock, and the marks that let it read
// only the orders that can still change it.

// truthChunk is how many orders one step of the truth reads of each table.
const truthChunk = 1000

// SettleTruthAfter lets TruthOfEach keep, per goods, a mark below which every
// order is settled (see goods_truth_marks), moved only past ids made more
// than horizon ago: no order row may commit later than that after its id
// was made (outbox.late_horizon, longer than the write budget). Without
// it TruthOfEach reads every order of the goods' history on each call, and
// neither reads nor moves the marks.
func (d *Database) SettleTruthAfter(horizon time.Duration) { d.truthHorizon = horizon }

// TruthOfEach is, for each of goodsIDs in turn, the goods' stock less the
// units of its live orders whose sale is not applied yet, in bounded
// memory: the orders are read a chunk per table at a time (all the tables
// of a database, for all the goods, in one statement), and each chunk's
// applied ones are looked up. The goods are read together because a
// statement's cost is mostly its tables', whatever goods it reads: with
// V1 to V6's 17 tables and V7's 128, empty, one goods a statement took 3.7
// ms here, 2.6 to 3.4 ms prepared once and run again (opening and
// planning the tables, not parsing, is most of it), and a hundred goods a
// statement 0.2 ms a goods (0.9 ms when each goods' read starts at an id
// of its own: see truthQuery).
//
// The stock and the stock logs are read in one snapshot of the primary,
// taken first; the orders are read after it. An order applied before the
// snapshot is in both the stock and the logs; one applied after it is in
// neither, so it counts as unapplied and its units come off a stock that
// does not hold its decrement yet. Either way each order counts once. An
// order written after its table was read is not counted: its reservation
// is then missing from the truth for a moment, which sells less, and the
// reconciliation repairs only a drift that lasts.
//
// Only the orders from each goods' mark on are read: those below it are
// settled, so they take nothing off. The mark is read in the snapshot, and
// was written after the stock logs that settled the orders below it, so
// the snapshot's stock holds their decrements. Each call then moves the
// mark up to its first unapplied order, or to the horizon when all are
// applied, so that a call costs the orders made since the mark: the last
// horizon's, and those a stopped consumer has not applied yet.
func (d *Database) TruthOfEach(ctx context.Context, goodsIDs []int64) ([]int64, error) {
	if len(goodsIDs) == 0 {
		return nil, nil
	}
	// Every order made before the cutoff committed before now, so before
	// the snapshot: the read below sees it.
	var cutoff int64
	if d.truthHorizon > 0 {
		cutoff = firstIDAt(time.Now().Add(-d.truthHorizon))
	}
	places := d.movablePlaces()
	goods := slices.Compact(slices.Sorted(slices.Values(goodsIDs)))
	each := make(map[int64]*goodsTruth, len(goods))
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		in, args := inList(goods)
		err := queryEach(ctx, tx, "SELECT id, stock, COALESCE((SELECT settled_below FROM goods_truth_marks WHERE goods_id = goods.id), 0)"+
			" FROM goods WHERE id IN "+in, args, func(rows *sql.Rows) error {
			var id int64
			g := &goodsTruth{firstUnapplied: math.MaxInt64, oldest: math.MaxInt64}
			err := rows.Scan(&id, &g.truth, &g.mark)
			if cutoff == 0 {
				g.mark = 0 // no marks: the whole history
			}
			each[id] = g
			return err
		})
		if err != nil {
			return err
		}
		for _, id := range goods {
			if each[id] == nil {
				return fmt.Errorf("goods %d: %w", id, classify(sql.ErrNoRows))
			}
		}
		for db, tables := range d.orderTablesByDB() {
			var q querier = db
			if db == d.db {
				q = tx // the primary's tables through the snapshot's own connection (SQLite has one)
			}
			if err := d.readTruthOrders(ctx, q, tx, tables, goods, each); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A mark moves only past orders it read: moving it over ids no order
	// of the goods holds would save no read, and cost a write per goods.
	var moves []truthMove
	for _, id := range goods {
		if to := min(cutoff, each[id].firstUnapplied); to > each[id].oldest {
			moves = append(moves, truthMove{id, to})
		}
	}
	if err := d.moveTruthMarks(ctx, moves, places); err != nil {
		return nil, err
	}
	truths := make([]int64, len(goodsIDs))
	for i, id := range goodsIDs {
		truths[i] = max(each[id].truth, 0)
	}
	return truths, nil
}

// goodsTruth is one goods' truth as it is being read.
type goodsTruth struct {
	truth          int64 // the stock, less the units of the unapplied orders read so far
	mark           int64 // the orders below it are settled
	firstUnapplied int64 // the least id of the unapplied orders read
	oldest         int64 // the least id of the orders read
}

// readTruthOrders reads the live orders of goods in tables, all of one
// database that q reads, from each goods' mark on, and takes the units of
// the unapplied ones off the goods' truths; tx is the snapshot the stock
// logs are read in.
func (d *Database) readTruthOrders(ctx context.Context, q querier, tx *sql.Tx, tables []service.OrderTable, goods []int64, each map[int64]*goodsTruth) error {
	// Each table's cursor; a table leaves once it has no more rows.
	cursors := make([]truthCursor, len(tables))
	for i, at := range tables {
		cursors[i] = truthCursor{at: at, goods: goods, after: each[goods[0]].mark - 1}
	}
	for len(cursors) > 0 {
		var ids []int64
		units := map[int64]int64{}
		owner := map[int64]int64{}
		read := make([]int, len(cursors))
		// Each table's last row read: its goods, its id.
		lastGoods, lastID := make([]int64, len(cursors)), make([]int64, len(cursors))
		query, args := truthQuery(cursors, each)
		err := queryEach(ctx, q, query, args, func(rows *sql.Rows) error {
			var t int
			var goodsID, id, n int64
			err := rows.Scan(&t, &goodsID, &id, &n)
			ids = append(ids, id)
			units[id], owner[id] = n, goodsID
			read[t]++
			if goodsID > lastGoods[t] || goodsID == lastGoods[t] && id > lastID[t] {
				lastGoods[t], lastID[t] = goodsID, id
			}
			if err == nil {
				each[goodsID].oldest = min(each[goodsID].oldest, id)
			}
			return err
		})
		if err != nil {
			return err
		}
		for chunk := range slices.Chunk(ids, truthChunk) {
			in, args := inList(chunk)
			err = queryEach(ctx, tx, "SELECT order_id FROM goods_stock_logs WHERE op = ? AND order_id IN "+in,
				append([]any{service.OpSale}, args...), func(rows *sql.Rows) error {
					var id int64
					err := rows.Scan(&id)
					delete(units, id)
					return err
				})
			if err != nil {
				return err
			}
		}
		for id, n := range units {
			g := each[owner[id]]
			g.truth -= n
			g.firstUnapplied = min(g.firstUnapplied, id)
		}
		// A table read to its chunk's end goes on from its last row: the
		// goods before it are done, the others start at their marks.
		next := cursors[:0]
		for t, c := range cursors {
			if read[t] == truthChunk {
				from, _ := slices.BinarySearch(c.goods, lastGoods[t])
				next = append(next, truthCursor{at: c.at, goods: c.goods[from:], after: lastID[t]})
			}
		}
		cursors = next
	}
	return nil
}

// truthCursor is where the read of one order table has got to: the goods
// still to read, the first of them past after, the others from their marks.
type truthCursor struct {
	at    service.OrderTable
	goods []int64 // ascending
	after int64   // the last id read of goods[0]
}

// truthQuery reads the next chunk of the goods' live orders of each table
// past its cursor, from tables all of one database, in one statement:
// rows (cursor index, goods id, id, number), a table's in order of goods
// and id. One statement per database instead of one per table and goods:
// with thousands of goods, each read holding nothing new, what a pass
// costs is its statements' tables. The goods whose reads start at the
// same id share one condition, a list of goods: their marks, moved to the
// same horizon by one call, often are the same (none, or that horizon),
// and a list costs the planner a fifth of what as many ranges of one goods
// each do.
func truthQuery(cursors []truthCursor, each map[int64]*goodsTruth) (string, []any) {
	live, liveArgs := liveStatuses()
	var q strings.Builder
	var args []any
	for i, c := range cursors {
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&q, "SELECT %d AS t, goods_id, id, number FROM (SELECT goods_id, id, number FROM %s WHERE (", i, c.at.Name())
		// The goods by the id their read starts after, in order of goods.
		var afters []int64
		byAfter := map[int64][]int64{}
		for k, g := range c.goods {
			after := each[g].mark - 1
			if k == 0 {
				after = c.after
			}
			if _, ok := byAfter[after]; !ok {
				afters = append(afters, after)
			}
			byAfter[after] = append(byAfter[after], g)
		}
		for k, after := range afters {
			if k > 0 {
				q.WriteString(" OR ")
			}
			in, ids := inList(byAfter[after])
			fmt.Fprintf(&q, "(goods_id IN %s AND id > ?)", in)
			args = append(append(args, ids...), after)
		}
		fmt.Fprintf(&q, ") AND status IN %s ORDER BY goods_id, id LIMIT ?) AS t%d", live, i)
		args = append(append(args, liveArgs...), truthChunk)
	}
	return q.String(), args
}

// truthMove is a goods' mark to be raised to to.
type truthMove struct{ goodsID, to int64 }

// moveTruthMarks raises each goods' mark to its to, never lowers it: every
// order below to was read settled, and settled orders stay so. Calls at
// once may each raise it; each one's mark is true. The reads count only if
// they saw every order where it is: when V7's logical databases were not
// where places (the map the reads went by) says (the map has changed
// since, or had already: the map only moves forward), their orders may
// have been read on a host that had them no more, and the marks stay.
func (d *Database) moveTruthMarks(ctx context.Context, moves []truthMove, places *ShardMap) error {
	if len(moves) == 0 {
		return nil
	}
	if places != nil {
		if _, err := d.RefreshShardMap(ctx); err != nil || d.ShardMap() != *places {
			return err
		}
	}
	for _, m := range moves {
		if err := d.raiseTruthMark(ctx, m.goodsID, m.to); err != nil {
			return err
		}
	}
	return nil
}

// raiseTruthMark raises goods' mark to to, unless it is there already.
func (d *Database) raiseTruthMark(ctx context.Context, goodsID, to int64) error {
	raise := func() (bool, error) {
		res, err := d.db.ExecContext(ctx, "UPDATE goods_truth_marks SET settled_below = ? WHERE goods_id = ? AND settled_below < ?", to, goodsID, to)
		if err != nil {
			return false, classify(err)
		}
		n, err := res.RowsAffected()
		return n > 0, classify(err)
	}
	if raised, err := raise(); err != nil || raised {
		return err
	}
	_, err := d.db.ExecContext(ctx, "INSERT INTO goods_truth_marks (goods_id, settled_below) VALUES (?, ?)", goodsID, to)
	if isDuplicate(err) {
		_, err = raise() // the goods had its mark already, or another call made it meanwhile
	}
	return classify(err)
}

// movablePlaces is this instance's map of V7's logical databases, which
// the order reads go by, when they can move (more than one host is
// configured); nil when they cannot.
func (d *Database) movablePlaces() *ShardMap {
	if len(d.lhosts) < 2 {
		return nil
	}
	m := d.ShardMap()
	return &m
}
