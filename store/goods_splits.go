package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/go-seckill/seckill/service"
)

// SaveSplit records goods' split unless it has one, and returns the split
// the goods has: two instances splitting at once agree on the first.
func (d *Database) SaveSplit(ctx context.Context, goodsID int64, s service.Split) (service.Split, error) {
	insert := "INSERT IGNORE INTO goods_splits (goods_id, tags, bucket_max) VALUES (?, ?, ?)"
	if d.pools[0].sqlite {
		insert = "INSERT OR IGNORE INTO goods_splits (goods_id, tags, bucket_max) VALUES (?, ?, ?)"
	}
	if _, err := d.db.ExecContext(ctx, insert, goodsID, strings.Join(s.Tags, ","), s.BucketMax); err != nil {
		return service.Split{}, writeFailed(err)
	}
	got, _, err := d.SplitOf(ctx, goodsID)
	return got, err
}

// SplitOf reads goods' split; ok is false when it is not split.
func (d *Database) SplitOf(ctx context.Context, goodsID int64) (s service.Split, ok bool, err error) {
	var tags string
	err = d.db.QueryRowContext(ctx, "SELECT tags, bucket_max FROM goods_splits WHERE goods_id = ?", goodsID).Scan(&tags, &s.BucketMax)
	if errors.Is(err, sql.ErrNoRows) {
		return service.Split{}, false, nil
	}
	if err != nil {
		return service.Split{}, false, classify(err)
	}
	s.Tags = strings.Split(tags, ",")
	return s, true, nil
}
