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

// truthChunk is how many of a goods' orders one step of Truth reads.
const truthChunk = 1000

// SettleTruthAfter lets Truth keep, per goods, a mark below which every
// order is settled (see goods_truth_marks), moved only past ids made more
// than horizon ago: no order row may commit later than that after its id
// was made (outbox.late_horizon, longer than the write budget). Without
// it Truth reads every order of the goods' history on each call, and
// neither reads nor moves the marks.
func (d *Database) SettleTruthAfter(horizon time.Duration) { d.truthHorizon = horizon }

// Truth is the goods' stock less the units of its live orders whose sale
// is not applied yet, in bounded memory: the orders are read a chunk per
// table at a time (all the tables of a database in one statement), and
// each chunk's applied ones are looked up.
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
// Only the orders from the goods' mark on are read: those below it are
// settled, so they take nothing off. The mark is read in the snapshot, and
// was written after the stock logs that settled the orders below it, so
// the snapshot's stock holds their decrements. Each call then moves the
// mark up to its first unapplied order, or to the horizon when all are
// applied, so that a call costs the orders made since the mark: the last
// horizon's, and those a stopped consumer has not applied yet.
func (d *Database) Truth(ctx context.Context, goodsID int64) (int64, error) {
	// Every order made before the cutoff committed before now, so before
	// the snapshot: the read below sees it.
	var cutoff int64
	if d.truthHorizon > 0 {
		cutoff = firstIDAt(time.Now().Add(-d.truthHorizon))
	}
	places := d.movablePlaces()
	var truth, mark int64
	firstUnapplied, oldest := int64(math.MaxInt64), int64(math.MaxInt64)
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, "SELECT stock, COALESCE((SELECT settled_below FROM goods_truth_marks WHERE goods_id = goods.id), 0)"+
			" FROM goods WHERE id = ?", goodsID).Scan(&truth, &mark)
		if err != nil {
			return classify(err)
		}
		if cutoff == 0 {
			mark = 0 // no marks: the whole history
		}
		for db, tables := range d.orderTablesByDB() {
			var q querier = db
			if db == d.db {
				q = tx // the primary's tables through the snapshot's own connection (SQLite has one)
			}
			// Each table's cursor; a table leaves once it has no more rows.
			cursors := make([]truthCursor, len(tables))
			for i, at := range tables {
				cursors[i] = truthCursor{at, mark - 1}
			}
			for len(cursors) > 0 {
				var ids []int64
				units := map[int64]int64{}
				read := make([]int, len(cursors))
				query, args := truthQuery(cursors, goodsID)
				err := queryEach(ctx, q, query, args, func(rows *sql.Rows) error {
					var t int
					var id, n int64
					err := rows.Scan(&t, &id, &n)
					ids = append(ids, id)
					units[id] = n
					read[t]++
					cursors[t].after = max(cursors[t].after, id)
					oldest = min(oldest, id)
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
					truth -= n
					firstUnapplied = min(firstUnapplied, id)
				}
				next := cursors[:0]
				for t, c := range cursors {
					if read[t] == truthChunk {
						next = append(next, c)
					}
				}
				cursors = next
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// The mark moves only past orders it read: moving it over ids no order
	// of the goods holds would save no read, and cost a write per goods.
	if to := min(cutoff, firstUnapplied); to > oldest {
		if err := d.moveTruthMark(ctx, goodsID, to, places); err != nil {
			return 0, err
		}
	}
	return max(truth, 0), nil
}

// moveTruthMark raises goods' mark to to, never lowers it: every order
// below to was read settled, and settled orders stay so. Calls at once may
// each raise it; each one's mark is true. The reads count only if they saw
// every order where it is: when V7's logical databases were not where
// places (the map the reads went by) says (the map has changed since, or
// had already: the map only moves forward), their orders may have been
// read on a host that had them no more, and the mark stays.
func (d *Database) moveTruthMark(ctx context.Context, goodsID, to int64, places *ShardMap) error {
	if places != nil {
		if _, err := d.RefreshShardMap(ctx); err != nil || d.ShardMap() != *places {
			return err
		}
	}
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

// truthCursor is where the read of one order table has got to.
type truthCursor struct {
	at    service.OrderTable
	after int64 // the last id read
}

// truthQuery reads the next chunk of goods' live orders of each table
// past its cursor, from tables all of one database, in one statement:
// rows (cursor index, id, number). One round trip per database instead of
// one per table: with thousands of goods, each read holding nothing new,
// the round trips are what a pass costs.
func truthQuery(cursors []truthCursor, goodsID int64) (string, []any) {
	live, liveArgs := liveStatuses()
	var q strings.Builder
	var args []any
	for i, c := range cursors {
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&q, "SELECT %d AS t, id, number FROM (SELECT id, number FROM %s WHERE goods_id = ? AND id > ? AND status IN %s ORDER BY id LIMIT ?) AS t%d",
			i, c.at.Name(), live, i)
		args = append(append(append(args, goodsID, c.after), liveArgs...), truthChunk)
	}
	return q.String(), args
}
