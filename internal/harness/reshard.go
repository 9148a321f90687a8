package harness

import (
	"bytes"
	"context"
	"testing"

	"github.com/go-seckill/seckill/internal/app"
	"github.com/go-seckill/seckill/internal/reshard"
	"github.com/go-seckill/seckill/internal/testenv"
)

// LogicalHosts makes the env's V7 hosts its primary and n more databases,
// each on a MariaDB server of its own that the test starts (separate
// servers) or, with sameServer, on the test server (quicker). The
// instances reload the shard map every 100 ms.
func (e *Env) LogicalHosts(tb testing.TB, n int, sameServer bool) []string {
	tb.Helper()
	hosts := []string{e.DSNs[0]}
	for range n {
		dsn := testenv.MySQL(tb)
		if !sameServer {
			dsn = testenv.DatabaseOn(testenv.StartMariaDB(tb))
		}
		if _, err := e.AddDatabase(dsn); err != nil {
			tb.Fatal(err)
		}
		hosts = append(hosts, dsn)
	}
	list := hosts[0]
	for _, h := range hosts[1:] {
		list += "," + h
	}
	e.Settings["SECKILL_MYSQL_V7_HOSTS"] = list
	e.Settings["SECKILL_MYSQL_SHARD_MAP_INTERVAL"] = "100ms"
	return hosts
}

// Reshard runs `seckill reshard` with the env's configuration and returns
// the plan it carried out and what it printed.
func (e *Env) Reshard(tb testing.TB, opts reshard.Options) (reshard.Plan, string, error) {
	tb.Helper()
	var out bytes.Buffer
	plan, err := app.Reshard(context.Background(), e.Config(tb), opts, &out)
	return plan, out.String(), err
}
