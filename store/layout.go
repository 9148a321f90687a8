package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/go-seckill/seckill/service"
)

// CheckOrderLayout keeps V3 and V4 from losing orders to a new layout.
// They place a user's orders by formulas of the layout, user_id % hosts
// and user_id/10 % tables: with another mysql.shards count or
// mysql.order_tables, the orders placed before are looked for elsewhere
// and payment answers 404. The first start records the layout; a start in
// another one is refused while order_1..order_16 of any host hold a row,
// and records the new one when they are empty.
//
// Refusing, rather than migrating the rows: with user_id % hosts, going
// from n to n+1 hosts moves about n/(n+1) of every user's orders, all at
// once and for every user, under a freeze of the whole sale. V7 is the
// answer to growth: its logical databases keep their addresses and move
// one at a time (seckill reshard).
func (d *Database) CheckOrderLayout(ctx context.Context, l service.Layout) error {
	var hosts, tables int
	err := d.db.QueryRowContext(ctx, "SELECT hosts, tables FROM order_layout WHERE id = 1").Scan(&hosts, &tables)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = d.db.ExecContext(ctx, "INSERT INTO order_layout (id, hosts, tables) VALUES (1, ?, ?)", l.Hosts, l.Tables)
		if isDuplicate(err) {
			return d.CheckOrderLayout(ctx, l) // another instance recorded it meanwhile
		}
		return classify(err)
	}
	if err != nil {
		return classify(err)
	}
	if hosts == l.Hosts && tables == l.Tables {
		return nil
	}
	placed, err := d.layoutOrders(ctx)
	if err != nil {
		return err
	}
	if placed {
		return fmt.Errorf("mysql.shards names %d order hosts and mysql.order_tables is %d, but the orders of V3 and V4 "+
			"were placed with %d hosts and %d tables: they place a user's orders by user_id %% hosts and "+
			"user_id/10 %% tables, so those orders could no longer be found (payment would answer 404). "+
			"Start with the old values; to grow while selling, sell through V7 (POST /orderV7), whose logical "+
			"databases move to new hosts one at a time with `seckill reshard` (see the README)",
			l.Hosts, l.Tables, hosts, tables)
	}
	_, err = d.db.ExecContext(ctx, "UPDATE order_layout SET hosts = ?, tables = ? WHERE id = 1", l.Hosts, l.Tables)
	return classify(err)
}

// layoutOrders says whether any order_N table of any host holds a row.
func (d *Database) layoutOrders(ctx context.Context) (bool, error) {
	for host, db := range d.hosts {
		if slices.Index(d.hosts, db) != host {
			continue
		}
		for t := 1; t <= service.MaxOrderTables; t++ {
			var one int
			err := db.QueryRowContext(ctx, "SELECT 1 FROM "+service.TableName(t)+" LIMIT 1").Scan(&one)
			if err == nil {
				return true, nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return false, classify(err)
			}
		}
	}
	return false, nil
}
