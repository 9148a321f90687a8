package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/service"
)

// V7's logical databases and the map of the hosts that hold them.
//
// Each logical database is a set of tables, l<n>_order_1..l<n>_order_16,
// in the database of one host; which host is a row of the primary's
// shard_map, not a formula, so that one logical database at a time can
// move. Every instance keeps a copy of the map, reloaded every
// mysql.shard_map_interval and whenever a write meets a freeze, and says in
// Redis which epoch of it it holds; the expansion switches a logical
// database only after every instance knows its new host, and deletes the
// old copy only after every instance uses the new one.
//
// A logical database's tables are made on its first write (on the first
// of mysql.v7_hosts) and its map row only then: a deployment that never
// sells through V7 never makes its 256 tables (orders and coupons), and a
// logical database without a row holds no orders.
//
// Writes are fenced, on the host itself: every insert or status change of
// a logical database's row reads that logical database's row of the
// host's shard_fences in the same statement, and does nothing when it is
// frozen. InnoDB locks the fence row it reads (shared) until the write
// commits, so the expansion's freeze (an UPDATE of that row) waits for the
// writes in flight and every write after it sees the freeze: a cut that
// needs no instance's cooperation and no clock.

// ShardMap is which host holds each logical database.
type ShardMap struct {
	Epoch int64
	DBs   [service.LogicalDBs]LogicalPlace
}

// LogicalPlace is where one logical database is. Host is empty while it
// has no tables yet. Target is set while it moves: the host it goes to,
// until the switch; after the switch, the host it came from, until its
// old copy is deleted.
type LogicalPlace struct {
	Host, Target string
	Epoch        int64
}

// lhost is a host V7's logical databases may live on.
type lhost struct {
	id string // databaseID: address and database, no credentials
	p  pool
}

// errFenced: the write met its logical database's freeze on this host.
var errFenced = errors.New("logical database frozen on this host")

// freezeWait is how long a write waits for a frozen logical database to
// be switched to its new host before it answers ErrMoving.
const freezeWait = 3 * time.Second

// OpenLogicalHosts connects to the hosts V7's logical databases may live
// on (mysql.v7_hosts), the first of which takes each new logical database;
// without it they live on the primary. Call it before Migrate: the hosts
// need the fences. It loads the map.
func (d *Database) OpenLogicalHosts(ctx context.Context, dsns []string, maxOpen int) error {
	d.lhosts = nil
	for _, dsn := range dsns {
		p, ok := d.pool(dsn)
		if !ok {
			var err error
			if p, err = openPool(ctx, dsn, maxOpen, d.obs); err != nil {
				return err
			}
			d.pools = append(d.pools, p)
		}
		if !slices.ContainsFunc(d.lhosts, func(h lhost) bool { return h.id == p.id }) {
			d.lhosts = append(d.lhosts, lhost{id: p.id, p: p})
		}
	}
	return nil
}

// logicalHosts are the configured hosts of V7, the primary when none are.
func (d *Database) logicalHosts() []lhost {
	if len(d.lhosts) == 0 {
		return []lhost{{id: d.pools[0].id, p: d.pools[0]}}
	}
	return d.lhosts
}

// LogicalHostIDs names the configured hosts of V7, in their order.
func (d *Database) LogicalHostIDs() []string {
	var ids []string
	for _, h := range d.logicalHosts() {
		ids = append(ids, h.id)
	}
	return ids
}

// lhostOf finds a configured host by id.
func (d *Database) lhostOf(id string) (lhost, bool) {
	for _, h := range d.logicalHosts() {
		if h.id == id {
			return h, true
		}
	}
	return lhost{}, false
}

// ShardMap is the map this instance holds now.
func (d *Database) ShardMap() ShardMap {
	if m := d.smap.Load(); m != nil {
		return *m
	}
	return ShardMap{}
}

// ReadShardMap reads the map from the primary.
func (d *Database) ReadShardMap(ctx context.Context) (ShardMap, error) {
	var m ShardMap
	err := queryEach(ctx, d.db, "SELECT logical_db, host, target, epoch FROM shard_map", nil, func(rows *sql.Rows) error {
		var l int
		var p LogicalPlace
		var target sql.NullString
		if err := rows.Scan(&l, &p.Host, &target, &p.Epoch); err != nil {
			return err
		}
		if l < 0 || l >= service.LogicalDBs {
			return fmt.Errorf("shard_map names logical database %d: there are %d", l, service.LogicalDBs)
		}
		p.Target = target.String
		m.DBs[l] = p
		m.Epoch = max(m.Epoch, p.Epoch)
		return nil
	})
	return m, err
}

// RefreshShardMap reloads the map from the primary and returns its epoch.
// A map naming a host this instance is not configured with is refused (the
// old copy stays), and its epoch is not acknowledged: the expansion then
// waits instead of switching to a host some instance cannot reach.
func (d *Database) RefreshShardMap(ctx context.Context) (int64, error) {
	m, err := d.ReadShardMap(ctx)
	if err != nil {
		return 0, err
	}
	for l, p := range m.DBs {
		for _, id := range []string{p.Host, p.Target} {
			if _, ok := d.lhostOf(id); id != "" && !ok {
				return 0, fmt.Errorf("the shard map puts logical database %d on %s, which is not among mysql.v7_hosts", l, id)
			}
		}
	}
	d.smapMu.Lock()
	defer d.smapMu.Unlock()
	if cur := d.smap.Load(); cur == nil || *cur != m && m.newer(*cur) {
		d.smap.Store(&m)
	}
	return d.smap.Load().Epoch, nil
}

// newer says m is a later read of the map than cur: refreshes running at
// once may finish in any order, and an earlier read must not undo a later
// one. The expansion raises the epoch; a logical database's first row
// leaves it, and rows are never removed.
func (m ShardMap) newer(cur ShardMap) bool {
	if m.Epoch != cur.Epoch {
		return m.Epoch > cur.Epoch
	}
	made := func(x ShardMap) (n int) {
		for _, p := range x.DBs {
			if p.Host != "" {
				n++
			}
		}
		return n
	}
	return made(m) >= made(cur)
}

// logicalPool is the pool of the host holding logical database l; false
// when l has no tables yet (it holds no orders).
func (d *Database) logicalPool(l int) (pool, bool) {
	m := d.smap.Load()
	if m == nil || m.DBs[l].Host == "" {
		return pool{}, false
	}
	h, ok := d.lhostOf(m.DBs[l].Host)
	return h.p, ok
}

// logicalTable checks at, a table of a logical database.
func logicalTable(at service.OrderTable) error {
	if at.DB < 1 || at.DB > service.LogicalDBs || at.Table < 1 || at.Table > service.LogicalTables || at.Host != 0 {
		return fmt.Errorf("%w: order table %+v: no such logical database or table", service.ErrInvalid, at)
	}
	return nil
}

// claim makes logical database l's tables on the first V7 host and gives
// it its map row, unless it has one.
func (d *Database) claim(ctx context.Context, l int) error {
	d.claimMu[l].Lock()
	defer d.claimMu[l].Unlock()
	if _, ok := d.logicalPool(l); ok {
		return nil
	}
	if _, err := d.RefreshShardMap(ctx); err != nil {
		return err
	}
	if _, ok := d.logicalPool(l); ok {
		return nil
	}
	seed := d.logicalHosts()[0]
	if err := createLogicalTables(ctx, seed.p, l); err != nil {
		return err
	}
	d.couponsMade.Store(couponsKey(seed.id, l), true)
	_, err := d.db.ExecContext(ctx, "INSERT INTO shard_map (logical_db, host, epoch) VALUES (?, ?, 0)", l, seed.id)
	if err != nil && !isDuplicate(err) {
		return classify(err)
	}
	_, err = d.RefreshShardMap(ctx)
	return err
}

// createLogicalTables makes logical database l's tables on p, its order
// and coupon tables, those it does not have yet, several at once: each
// costs MySQL a file and its syncs, and the first order of the logical
// database waits for them.
func createLogicalTables(ctx context.Context, p pool, l int) error {
	return createTables(ctx, p, l, movedKinds)
}

// createTables makes logical database l's tables of the kinds given on p.
func createTables(ctx context.Context, p pool, l int, kinds []*tableKind) error {
	tables := movedTablesOf(l, kinds)
	errs := make([]error, len(tables))
	var wg sync.WaitGroup
	slots := make(chan struct{}, 4) // a few connections, not the pool
	for i, t := range tables {
		create := func() {
			for _, stmt := range t.kind.create(p.sqlite, t.name) {
				if _, err := p.db.ExecContext(ctx, stmt); err != nil {
					errs[i] = classify(err)
					return
				}
			}
		}
		if p.sqlite {
			create() // one connection: nothing to gain
			continue
		}
		wg.Add(1)
		slots <- struct{}{}
		go func() { defer wg.Done(); create(); <-slots }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// onLogical runs write on the host holding at's logical database, making
// its tables first when it has none. A write that meets the freeze of a
// move waits for the switch (reloading the map) and runs again on the new
// host; after freezeWait, or at ctx's end, it answers ErrMoving.
func (d *Database) onLogical(ctx context.Context, at service.OrderTable, write func(db *sql.DB, table string) error) error {
	return d.onLogicalHost(ctx, at, func(p pool) error { return write(p.db, at.Name()) })
}

// onLogicalHost is onLogical with the host's pool.
func (d *Database) onLogicalHost(ctx context.Context, at service.OrderTable, write func(p pool) error) error {
	if err := logicalTable(at); err != nil {
		return err
	}
	l := at.DB - 1
	deadline := time.Now().Add(cmp.Or(d.freezeWait, freezeWait))
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		p, ok := d.logicalPool(l)
		if !ok {
			// The tables are made once for every buyer of the logical
			// database: a buyer who gives up does not stop them.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			err := d.claim(cctx, l)
			cancel()
			if err != nil {
				return err
			}
			if p, ok = d.logicalPool(l); !ok {
				return fmt.Errorf("%w: logical database %d has no host", service.ErrUnavailable, l)
			}
		}
		err := write(p)
		if !errors.Is(err, errFenced) {
			return err
		}
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%w: logical database %d", service.ErrMoving, l)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: logical database %d", service.ErrMoving, l)
		case <-time.After(wait):
		}
		if _, err := d.RefreshShardMap(ctx); err != nil {
			return err
		}
	}
}

// fenced says whether logical database l is frozen on db: a write there
// that changed nothing may have met the freeze.
func fenced(ctx context.Context, db *sql.DB, l int) (bool, error) {
	var frozen int
	err := db.QueryRowContext(ctx, "SELECT frozen FROM shard_fences WHERE logical_db = ?", l).Scan(&frozen)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil // a host without fences takes no writes of V7
	}
	return frozen != 0, classify(err)
}

// sqlUnfrozen is the condition every write to a logical database's table
// carries: its fence on the same host is not frozen. Its argument is the
// logical database.
const sqlUnfrozen = "EXISTS (SELECT 1 FROM shard_fences WHERE logical_db = ? AND frozen = 0)"

// logicalTables yields each table of each logical database that has a
// host, on that host; during a move, on the host the map names, never
// both, so that no row is counted twice.
func (d *Database) logicalTables(yield func(*sql.DB, service.OrderTable) bool) bool {
	for l := range service.LogicalDBs {
		p, ok := d.logicalPool(l)
		if !ok {
			continue
		}
		for t := 1; t <= service.LogicalTables; t++ {
			if !yield(p.db, service.OrderTable{DB: l + 1, Table: t}) {
				return false
			}
		}
	}
	return true
}

// ShardAckKey holds the epoch of the shard map an instance (by its
// snowflake node) holds; it lives as long as the node's lease.
func ShardAckKey(prefix string, node int64) string {
	return prefix + "shardmap:ack:" + strconv.FormatInt(node, 10)
}

// nodeKeyPrefix starts the keys of the snowflake node leases: one per
// running instance.
func nodeKeyPrefix(prefix string) string { return prefix + "snowflake:node:" }

// AckShardMap says in Redis that the instance on node holds the map's
// epoch, for ttl.
func (r *Redis) AckShardMap(ctx context.Context, node, epoch int64, ttl time.Duration) error {
	return r.c.Set(ctx, ShardAckKey(r.prefix, node), epoch, ttl).Err()
}

// ShardMapLaggards lists the running instances (by node) that have not
// said they hold epoch, or a later one, of the shard map.
func (r *Redis) ShardMapLaggards(ctx context.Context, epoch int64) ([]int64, error) {
	var behind []int64
	iter := r.c.Scan(ctx, 0, nodeKeyPrefix(r.prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		node, err := strconv.ParseInt(iter.Val()[len(nodeKeyPrefix(r.prefix)):], 10, 64)
		if err != nil {
			continue
		}
		acked, err := r.c.Get(ctx, ShardAckKey(r.prefix, node)).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		if acked < epoch {
			behind = append(behind, node)
		}
	}
	return behind, iter.Err()
}

// shardMapState guards the map this instance holds.
type shardMapState struct {
	smapMu  sync.Mutex
	claimMu [service.LogicalDBs]sync.Mutex
	// freezeWait overrides the const of the same name (tests).
	freezeWait time.Duration
	// couponsMade holds the hosts (by id) and logical databases whose
	// coupon tables this instance has made sure of: see couponHost.
	couponsMade sync.Map
}
