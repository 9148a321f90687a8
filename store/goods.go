package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/go-seckill/seckill/service"
)

// The goods table, mapped by GORM.

type goodsRow struct {
	ID           int64
	Name         string
	Price        int64
	Stock        int64
	Sale         int64
	PerUserLimit int64
	Checkout     string
	StartAt      *time.Time
	EndAt        *time.Time
	CreatedAt    time.Time
}

func (goodsRow) TableName() string { return "goods" }

func (r goodsRow) goods() service.Goods {
	return service.Goods{ID: r.ID, Name: r.Name, Price: r.Price, Stock: r.Stock, Sale: r.Sale, PerUserLimit: r.PerUserLimit, Checkout: r.Checkout,
		SaleWindow: service.SaleWindow{StartAt: r.StartAt, EndAt: r.EndAt}, CreatedAt: r.CreatedAt}
}

func (d *Database) CreateGoods(ctx context.Context, g service.NewGoods) (service.Goods, error) {
	row := goodsRow{Name: g.Name, Price: g.Price, Stock: g.Stock, PerUserLimit: g.PerUserLimit, Checkout: g.Checkout, StartAt: utcMillis(g.StartAt), EndAt: utcMillis(g.EndAt),
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := d.gdb.WithContext(ctx).Create(&row).Error; err != nil {
		return service.Goods{}, classify(err)
	}
	d.prices.Store(row.ID, row.Price)
	return row.goods(), nil
}

// utcMillis is t as a DATETIME(3) column holds it.
func utcMillis(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Millisecond)
	return &u
}

func (d *Database) Goods(ctx context.Context, id int64) (service.Goods, error) {
	var row goodsRow
	err := d.gdb.WithContext(ctx).Where("id = ? AND deleted_at IS NULL", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return service.Goods{}, fmt.Errorf("%w: goods %d", service.ErrNotFound, id)
	}
	if err != nil {
		return service.Goods{}, classify(err)
	}
	return row.goods(), nil
}

// goodsPage is how many goods one read of ListGoods takes.
const goodsPage = 1000

// ListGoods lists every goods by id, read in pages so that no read is
// unbounded and none is left out.
func (d *Database) ListGoods(ctx context.Context) ([]service.Goods, error) {
	var out []service.Goods
	after := int64(0)
	for {
		var rows []goodsRow
		err := d.gdb.WithContext(ctx).Where("deleted_at IS NULL AND id > ?", after).Order("id").Limit(goodsPage).Find(&rows).Error
		if err != nil {
			return nil, classify(err)
		}
		for _, r := range rows {
			out = append(out, r.goods())
		}
		if len(rows) < goodsPage {
			return out, nil
		}
		after = rows[len(rows)-1].ID
	}
}

// userLimit is goods' per-user limit. It is set when the goods are created
// and never changes, so it is read once per goods and kept.
func (d *Database) userLimit(ctx context.Context, tx *sql.Tx, goodsID int64) (int64, error) {
	if limit, ok := d.limits.Load(goodsID); ok {
		return limit.(int64), nil
	}
	var limit int64
	if err := tx.QueryRowContext(ctx, "SELECT per_user_limit FROM goods WHERE id = ?", goodsID).Scan(&limit); err != nil {
		return 0, classify(err)
	}
	d.limits.Store(goodsID, limit)
	return limit, nil
}

// Price is one unit of goods' price in cents. Prices never change once
// set, so each is read once per goods and kept: the order path asks for it
// on every order. The first orders of a sale arrive together: they share
// one read (singleflight), which would otherwise take the pool from the
// sales themselves.
func (d *Database) Price(ctx context.Context, goodsID int64) (int64, error) {
	if price, ok := d.prices.Load(goodsID); ok {
		return price.(int64), nil
	}
	v, err, _ := d.priceReads.Do(strconv.FormatInt(goodsID, 10), func() (any, error) {
		var price int64
		err := d.db.QueryRowContext(ctx, "SELECT price FROM goods WHERE id = ? AND deleted_at IS NULL", goodsID).Scan(&price)
		if errors.Is(err, sql.ErrNoRows) {
			return int64(0), fmt.Errorf("%w: goods %d", service.ErrNotFound, goodsID)
		}
		if err != nil {
			return int64(0), classify(err)
		}
		d.prices.Store(goodsID, price)
		return price, nil
	})
	return v.(int64), err
}

// EditGoods changes goods' name and sale window in MySQL, with the row
// locked while apply puts the new window in Redis, so that two edits
// reach Redis in the order MySQL took them.
func (d *Database) EditGoods(ctx context.Context, id int64, name string, w service.SaleWindow, apply func(service.Goods) error) (service.Goods, error) {
	var g service.Goods
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		var found int64
		err := tx.QueryRowContext(ctx, "SELECT id FROM goods WHERE id = ? AND deleted_at IS NULL"+d.forUpdate(), id).Scan(&found)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: goods %d", service.ErrNotFound, id)
		}
		if err != nil {
			return classify(err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE goods SET name = ?, start_at = ?, end_at = ? WHERE id = ?",
			name, utcMillis(w.StartAt), utcMillis(w.EndAt), id); err != nil {
			return classify(err)
		}
		g = service.Goods{ID: id, Name: name, SaleWindow: service.SaleWindow{StartAt: utcMillis(w.StartAt), EndAt: utcMillis(w.EndAt)}}
		return apply(g)
	})
	if err != nil {
		return service.Goods{}, err
	}
	return d.Goods(ctx, id)
}
