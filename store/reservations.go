package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Reservations of a reservation sale: the list in MySQL, the admitted
// reservers in a Redis bitmap per goods (bit user_id set), built once at
// the sale from the list and marked built; a Redis that lost the bitmap
// builds it again from the list, the same way.

// Reserve records that userID reserved goodsID and returns the user's
// position among the goods' reservers (1 for the first); reserving again
// keeps the first place.
func (d *Database) Reserve(ctx context.Context, goodsID, userID int64) (position int64, err error) {
	insert := "INSERT IGNORE INTO reservations (goods_id, user_id) VALUES (?, ?)"
	if d.pools[0].sqlite {
		insert = "INSERT OR IGNORE INTO reservations (goods_id, user_id) VALUES (?, ?)"
	}
	if _, err := d.db.ExecContext(ctx, insert, goodsID, userID); err != nil {
		return 0, writeFailed(err)
	}
	err = d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM reservations WHERE goods_id = ? AND seq <= "+
		"(SELECT seq FROM reservations WHERE goods_id = ? AND user_id = ?)", goodsID, goodsID, userID).Scan(&position)
	return position, classify(err)
}

// FirstReservers lists the first n reservers of goodsID, in their order.
func (d *Database) FirstReservers(ctx context.Context, goodsID, n int64) ([]int64, error) {
	rows, err := d.db.QueryContext(ctx, "SELECT user_id FROM reservations WHERE goods_id = ? ORDER BY seq LIMIT ?", goodsID, n)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var users []int64
	for rows.Next() {
		var u int64
		if err := rows.Scan(&u); err != nil {
			return nil, classify(err)
		}
		users = append(users, u)
	}
	return users, classify(rows.Err())
}

func admittedKey(prefix string, goodsID int64) string { return GoodsKey(prefix, goodsID) + "_admitted" }
func admittedBuiltKey(prefix string, goodsID int64) string {
	return GoodsKey(prefix, goodsID) + "_admitted_built"
}

// Admitted says whether userID's bit is set in goodsID's bitmap, and how
// many were admitted; -1 while the bitmap was not built (or Redis lost it).
func (r *Redis) Admitted(ctx context.Context, goodsID, userID int64) (admitted bool, admits int64, err error) {
	var bit *redis.IntCmd
	var mark *redis.StringCmd
	_, err = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		mark = p.Get(ctx, admittedBuiltKey(r.prefix, goodsID))
		bit = p.GetBit(ctx, admittedKey(r.prefix, goodsID), userID)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, 0, unavailable(err)
	}
	admits, err = mark.Int64()
	if errors.Is(err, redis.Nil) {
		return false, -1, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("admitted count of goods %d: %w", goodsID, err)
	}
	return bit.Val() == 1, admits, nil
}

// Admit sets the bits of users in goodsID's bitmap, then marks it built
// with how many were admitted. Two instances building at once set the same
// bits.
func (r *Redis) Admit(ctx context.Context, goodsID int64, users []int64) error {
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		key := admittedKey(r.prefix, goodsID)
		for _, u := range users {
			p.SetBit(ctx, key, u, 1)
		}
		return nil
	})
	if err != nil {
		return unavailable(err)
	}
	if err := r.c.Set(ctx, admittedBuiltKey(r.prefix, goodsID), strconv.Itoa(len(users)), 0).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}
