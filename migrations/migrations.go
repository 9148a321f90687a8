// Package migrations holds the versioned schema, embedded in the binary and
// applied in order by goose on every database at start-up: mysql/ for
// MySQL and MariaDB, sqlite/ for the standalone mode. The two folders hold
// the same versions of the same schema (schema_test.go compares them as
// the databases report them).
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

//go:embed mysql/*.sql sqlite/*.sql
var files embed.FS

// lockName serialises instances that start at once against one MySQL
// database; the database's name follows it.
const lockName = "seckill_migrations:"

// Up applies every migration db has not seen yet; sqlite picks the SQLite
// twin of the schema.
func Up(ctx context.Context, db *sql.DB, sqlite bool) error {
	dialect, dir := goose.DialectMySQL, "mysql"
	if sqlite {
		dialect, dir = goose.DialectSQLite3, "sqlite"
	} else {
		conn, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		var got sql.NullInt64
		// MySQL's named locks are the server's: the name carries the
		// database, so that migrations of other databases on the server
		// (other deployments, other tests) do not wait for each other.
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(CONCAT(?, DATABASE()), 60)", lockName).Scan(&got); err != nil || got.Int64 != 1 {
			return fmt.Errorf("take migration lock: %v (got %v)", err, got)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(CONCAT(?, DATABASE()))", lockName)
	}
	sub, err := fs.Sub(files, dir)
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(dialect, db, sub)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}
