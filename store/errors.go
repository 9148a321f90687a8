package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/go-sql-driver/mysql"

	"github.com/go-seckill/seckill/service"
)

// Driver errors become the service's errors here, so that callers branch
// on meaning: ErrUnavailable (try again) for a database that cannot answer
// now, ErrInvalid for a value its column cannot hold, and a plain error
// (an internal error, 500) for a bug such as bad SQL, which no retry fixes.

// classify translates the error of a statement that changed nothing, or
// of a read.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if c, ok := serverError(err); ok {
		return c
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %w", service.ErrNotFound, err)
	}
	if errors.Is(err, sql.ErrTxDone) || errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("database: %w", err)
	}
	// Anything else failed on the way: a connection, a timeout, a pool.
	return unavailable(err)
}

// writeFailed translates the error of a write that may have reached the
// server: when the connection broke after the statement was sent (or the
// wait for its answer ran out), the write may have committed, and the error
// says so with service.ErrAmbiguous. An error the server answered, or one
// before anything was sent, means it did not.
func writeFailed(err error) error {
	var netErr net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, driver.ErrBadConn):
		return unavailable(err) // the driver sent nothing
	case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &netErr) && netErr.Timeout():
		if _, answered := serverError(err); !answered {
			return fmt.Errorf("%w: %w: %w", service.ErrUnavailable, service.ErrAmbiguous, err)
		}
	}
	return classify(err)
}

// unavailable marks an error as the dependency failing; nil stays nil.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", service.ErrUnavailable, err)
}
