package store

import (
	"context"
	"database/sql"
	"errors"
	"math"
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
// is not applied yet, in bounded memory: the orders are read table by
// table, a chunk at a time, and each chunk's applied ones are looked up.
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
	placesBefore, err := d.logicalPlaces(ctx)
	if err != nil {
		return 0, err
	}
	var truth, mark int64
	firstUnapplied := int64(math.MaxInt64)
	live, liveArgs := liveStatuses()
	err = d.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT stock FROM goods WHERE id = ?", goodsID).Scan(&truth); err != nil {
			return classify(err)
		}
		if cutoff > 0 {
			err := tx.QueryRowContext(ctx, "SELECT settled_below FROM goods_truth_marks WHERE goods_id = ?", goodsID).Scan(&mark)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return classify(err)
			}
		}
		return d.eachOrderTable(func(db *sql.DB, at service.OrderTable) error {
			var q querier = db
			if db == d.db {
				q = tx // the primary's tables through the snapshot's own connection (SQLite has one)
			}
			for after := mark - 1; ; {
				var ids []int64
				units := map[int64]int64{}
				err := queryEach(ctx, q, "SELECT id, number FROM "+at.Name()+" WHERE goods_id = ? AND id > ? AND status IN "+live+
					" ORDER BY id LIMIT ?", append(append([]any{goodsID, after}, liveArgs...), truthChunk), func(rows *sql.Rows) error {
					var id, n int64
					err := rows.Scan(&id, &n)
					ids = append(ids, id)
					units[id] = n
					return err
				})
				if err != nil || len(ids) == 0 {
					return err
				}
				in, args := inList(ids)
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
				for id, n := range units {
					truth -= n
					firstUnapplied = min(firstUnapplied, id)
				}
				after = ids[len(ids)-1]
			}
		})
	})
	if err != nil {
		return 0, err
	}
	if to := min(cutoff, firstUnapplied); to > mark {
		if err := d.moveTruthMark(ctx, goodsID, to, placesBefore); err != nil {
			return 0, err
		}
	}
	return max(truth, 0), nil
}

// moveTruthMark raises goods' mark to to, never lowers it: every order
// below to was read settled, and settled orders stay so. Calls at once may
// each raise it; each one's mark is true. The reads count only if they saw
// every order where it is: when a logical database moved to another host
// meanwhile (its map changed), its orders may have been read on a host
// that had them no more, and the mark stays.
func (d *Database) moveTruthMark(ctx context.Context, goodsID, to int64, placesBefore *ShardMap) error {
	if placesBefore != nil {
		after, err := d.logicalPlaces(ctx)
		if err != nil || *after != *placesBefore {
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

// logicalPlaces is the map of V7's logical databases as the primary holds
// it now, when they can move (more than one host is configured); nil when
// they cannot.
func (d *Database) logicalPlaces(ctx context.Context) (*ShardMap, error) {
	if len(d.lhosts) < 2 {
		return nil, nil
	}
	if _, err := d.RefreshShardMap(ctx); err != nil {
		return nil, err
	}
	m := d.ShardMap()
	return &m, nil
}
