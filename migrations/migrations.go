// Package migrations holds the versioned schema, embedded in the binary and
// applied in order by goose on every MySQL host at start-up.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/pressly/goose/v3"
)

//go:embed *.sql
var files embed.FS

// OrderTables is how many sharded order tables (order_1..order_N) the
// migrations create on every host.
const OrderTables = 16

// lockName serialises instances that start at once against one host.
const lockName = "seckill_migrations"

// Up applies every migration db has not seen yet.
func Up(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 60)", lockName).Scan(&got); err != nil || got.Int64 != 1 {
		return fmt.Errorf("take migration lock: %v (got %v)", err, got)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(?)", lockName)

	p, err := goose.NewProvider(goose.DialectMySQL, db, files)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}
