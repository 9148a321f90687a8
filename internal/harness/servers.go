package harness

import (
	"database/sql"
	"strings"
	"sync"
	"testing"

	_ "github.com/glebarez/go-sqlite" // "sqlite", for the standalone mode's files
	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/store"
)

// Servers is the share of MySQL and Redis one test (or one benchmark run)
// gives the service: its databases, the primary first, and its Redis key
// prefix. It reads them directly, with plain SQL and the key layout, for
// the tests' own looks and for the invariant check.
type Servers struct {
	DSNs   []string // the primary, then the other order hosts
	Prefix string   // the Redis key prefix

	dbs []*sql.DB
	ids []string // store.HostID of each of DSNs
	// aliases are other ids of some of them (AliasHost).
	aliases map[string]int

	mu        sync.Mutex
	redisAddr string // "cluster:" and the seed nodes on a cluster
	rdb       redis.UniversalClient
}

// NewServers names databases fresh databases on the test server and a
// Redis key prefix of the test's own; the service creates the databases,
// and the test's end drops them and deletes the keys.
func NewServers(tb testing.TB, databases int) *Servers {
	tb.Helper()
	addr, prefix := testenv.Redis(tb)
	dsns := make([]string, databases)
	for i := range dsns {
		dsns[i] = testenv.MySQL(tb)
	}
	s, err := OpenServers(dsns, addr, prefix)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// OpenServers reads the databases at dsns (MySQL DSNs, or sqlite:FILE as
// the service takes them) and the Redis at redisAddr under prefix.
// Connections are made when first used.
func OpenServers(dsns []string, redisAddr, prefix string) (*Servers, error) {
	s := &Servers{Prefix: prefix}
	for _, dsn := range dsns {
		if _, err := s.AddDatabase(dsn); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.UseRedis(redisAddr)
	return s, nil
}

// AddDatabase reads one more database (a host V7's logical databases may
// move to) and returns its index.
func (s *Servers) AddDatabase(dsn string) (int, error) {
	driver, source := "mysql", dsn
	if path, ok := strings.CutPrefix(dsn, store.SQLitePrefix); ok {
		driver, source = "sqlite", path+"?_pragma=busy_timeout(5000)"
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		return 0, err
	}
	db.SetMaxOpenConns(4)
	s.DSNs = append(s.DSNs, dsn)
	s.dbs = append(s.dbs, db)
	s.ids = append(s.ids, store.HostID(dsn))
	return len(s.dbs) - 1, nil
}

// HostDB is the database the shard map names by id; nil when the servers
// do not read it.
func (s *Servers) HostDB(id string) *sql.DB {
	for i, have := range s.ids {
		if have == id {
			return s.dbs[i]
		}
	}
	if i, ok := s.aliases[id]; ok {
		return s.dbs[i]
	}
	return nil
}

// AliasHost says that dsn (a proxy's address, say) names database i: the
// shard map of instances that reach it so names it by dsn's id.
func (s *Servers) AliasHost(dsn string, i int) {
	if s.aliases == nil {
		s.aliases = map[string]int{}
	}
	s.aliases[store.HostID(dsn)] = i
}

// DB is database i (0 is the primary), for plain SQL.
func (s *Servers) DB(i int) *sql.DB { return s.dbs[i] }

// Redis is a client of the Redis the service uses, one server's or a
// cluster's; keys are under Prefix. It is nil while a standalone env has
// started no instance.
func (s *Servers) Redis() redis.UniversalClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rdb
}

// UseRedis points the reads at the Redis at addr: an instance of the
// standalone mode has its own, new at every start.
func (s *Servers) UseRedis(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rdb != nil && s.redisAddr == addr {
		return
	}
	if s.rdb != nil {
		s.rdb.Close()
	}
	s.redisAddr, s.rdb = addr, nil
	if addr != "" {
		s.rdb = redis.NewClient(&redis.Options{Addr: addr, PoolSize: 4})
	}
}

// UseRedisCluster points the reads at the Redis Cluster of the seed nodes
// addrs.
func (s *Servers) UseRedisCluster(addrs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := "cluster:" + strings.Join(addrs, ",")
	if s.rdb != nil && s.redisAddr == id {
		return
	}
	if s.rdb != nil {
		s.rdb.Close()
	}
	s.redisAddr, s.rdb = id, redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: 4})
}

// RedisAddr is where the reads go: a server's address, or "cluster:" and
// the seed nodes.
func (s *Servers) RedisAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.redisAddr
}

// GoodsKey is the goods' Redis hash (stock, sale window, limit).
func (s *Servers) GoodsKey(goodsID int64) string { return store.GoodsKey(s.Prefix, goodsID) }

// BuyersKey is the hash of each user's units of the goods.
func (s *Servers) BuyersKey(goodsID int64) string { return store.BuyersKey(s.Prefix, goodsID) }

// Close closes the connections (the data stays).
func (s *Servers) Close() {
	for _, db := range s.dbs {
		db.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rdb != nil {
		s.rdb.Close()
		s.rdb = nil
	}
}
