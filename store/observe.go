package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Observer times the calls the store makes to its dependencies: Redis
// (each command, or a pipeline), the database (each statement, begin,
// commit, rollback) and nsqd (each publish). err is nil for a call that
// succeeded; redis.Nil, an absent key, is a success.
type Observer interface {
	Observe(dependency, op string, d time.Duration, err error)
}

// StatementObserver, when the Observer is one too, counts each database
// statement with the context it was made with (the route a request
// serves, say).
type StatementObserver interface {
	ObserveStatement(ctx context.Context, dependency string)
}

// redisHook times every command of a go-redis client.
type redisHook struct{ obs Observer }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.obs.Observe("redis", cmd.Name(), time.Since(start), redisFailure(err))
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.obs.Observe("redis", "pipeline", time.Since(start), redisFailure(err))
		return err
	}
}

func redisFailure(err error) error {
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}

// observedConnector gives database/sql connections that time their
// statements: ExecContext and QueryContext (to the first answer; reading
// the rows is the caller's), BeginTx, Commit and Rollback. With MySQL's
// interpolateParams no statement is prepared; a prepared one is timed at
// its prepare only.
type observedConnector struct {
	driver.Connector
	dep string
	obs Observer
}

func (c observedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	start := time.Now()
	conn, err := c.Connector.Connect(ctx)
	c.obs.Observe(c.dep, "connect", time.Since(start), err)
	if err != nil {
		return nil, err
	}
	return &observedConn{Conn: conn, dep: c.dep, obs: c.obs}, nil
}

// dsnConnector is a Connector for a driver without one of its own.
type dsnConnector struct {
	dsn string
	drv driver.Driver
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

// connectorOf is the driver's Connector for dsn.
func connectorOf(drv driver.Driver, dsn string) (driver.Connector, error) {
	if dc, ok := drv.(driver.DriverContext); ok {
		return dc.OpenConnector(dsn)
	}
	return dsnConnector{dsn: dsn, drv: drv}, nil
}

type observedConn struct {
	driver.Conn
	dep string
	obs Observer
}

// statement counts a statement made with ctx.
func (c *observedConn) statement(ctx context.Context) {
	if so, ok := c.obs.(StatementObserver); ok {
		so.ObserveStatement(ctx, c.dep)
	}
}

func (c *observedConn) observe(op string, start time.Time, err error) {
	if errors.Is(err, driver.ErrSkip) {
		return // database/sql takes another way, timed there
	}
	c.obs.Observe(c.dep, op, time.Since(start), err)
}

func (c *observedConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.statement(ctx)
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	start := time.Now()
	r, err := e.ExecContext(ctx, q, args)
	c.observe("exec", start, err)
	return r, err
}

func (c *observedConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.statement(ctx)
	qc, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	start := time.Now()
	r, err := qc.QueryContext(ctx, q, args)
	c.observe("query", start, err)
	return r, err
}

func (c *observedConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.statement(ctx)
	start := time.Now()
	var s driver.Stmt
	var err error
	if pc, ok := c.Conn.(driver.ConnPrepareContext); ok {
		s, err = pc.PrepareContext(ctx, q)
	} else {
		s, err = c.Conn.Prepare(q)
	}
	c.observe("prepare", start, err)
	return s, err
}

func (c *observedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.statement(ctx)
	start := time.Now()
	var tx driver.Tx
	var err error
	if bc, ok := c.Conn.(driver.ConnBeginTx); ok {
		tx, err = bc.BeginTx(ctx, opts)
	} else {
		tx, err = c.Conn.Begin() //nolint:staticcheck // the driver has nothing else
	}
	c.observe("begin", start, err)
	if err != nil {
		return nil, err
	}
	return observedTx{tx: tx, c: c}, nil
}

func (c *observedConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *observedConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *observedConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *observedConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip // the default conversion
}

type observedTx struct {
	tx driver.Tx
	c  *observedConn
}

func (t observedTx) Commit() error {
	start := time.Now()
	err := t.tx.Commit()
	t.c.observe("commit", start, err)
	return err
}

func (t observedTx) Rollback() error {
	start := time.Now()
	err := t.tx.Rollback()
	t.c.observe("rollback", start, err)
	return err
}

var (
	_ driver.ExecerContext      = (*observedConn)(nil)
	_ driver.QueryerContext     = (*observedConn)(nil)
	_ driver.ConnPrepareContext = (*observedConn)(nil)
	_ driver.ConnBeginTx        = (*observedConn)(nil)
	_ driver.Pinger             = (*observedConn)(nil)
	_ driver.SessionResetter    = (*observedConn)(nil)
	_ driver.Validator          = (*observedConn)(nil)
	_ driver.NamedValueChecker  = (*observedConn)(nil)
)
