package main_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
)

// The service started with SECKILL_REDIS_CLUSTER_ADDRS keeps every key on
// the cluster, and a stampede through each version that sells from Redis
// first, on goods whose keys land on different masters, sells exactly the
// stock; once the queue drains, the cluster and MySQL agree.
func TestStampedeOnRedisCluster(t *testing.T) {
	t.Parallel()
	c, _ := testenv.SharedRedisCluster(t)
	e := harness.NewEnv(t)
	e.UseRedisCluster(t, c)
	in := e.Start(t)
	if code := in.Call(t, "GET", "/readyz", nil, nil); code != http.StatusOK {
		t.Fatalf("readyz on a cluster: %d", code)
	}
	single, _ := testenv.Redis(t)
	masters := map[int]bool{}
	for _, v := range service.Versions() {
		if v.Path != service.ReserveFirst {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			g := in.CreateGoods(t, 100)
			masters[c.MasterOf(e.GoodsKey(g.ID))] = true
			byStatus, ids := stampede(t, in, g.ID, 1000, v.Name)
			checkAccepted(t, byStatus, ids, 100)
			e.CheckInvariants(t, g.ID, harness.Sale{Initial: 100, Accepted: ids})
		})
	}
	if len(masters) < 2 {
		t.Errorf("the goods landed on masters %v: the test wants keys on several", masters)
	}
	// Nothing went to the single server the env would otherwise use.
	if n := keysOnServer(t, single, e.Prefix); n != 0 {
		t.Errorf("%d keys under the env's prefix on the single server %s", n, single)
	}
}

func keysOnServer(t *testing.T, addr, prefix string) int {
	t.Helper()
	s, err := harness.OpenServers(nil, addr, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys, err := s.Redis().Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// A master that dies takes only the goods whose keys it holds: their
// orders answer 503 while goods on the other masters keep selling; once
// it is back, its goods sell again, and nothing was sold twice or lost.
func TestKilledMasterFailsOnlyItsGoods(t *testing.T) {
	t.Parallel()
	c := testenv.RedisCluster(t)
	e := harness.NewEnv(t)
	e.UseRedisCluster(t, c)
	in := e.Start(t)
	// Goods on master 0, and on another one.
	var victim, other service.Goods
	for victim.ID == 0 || other.ID == 0 {
		g := in.CreateGoods(t, 20)
		if c.MasterOf(e.GoodsKey(g.ID)) == 0 {
			victim = g
		} else {
			other = g
		}
	}
	sale := map[int64]*harness.Sale{victim.ID: {Initial: 20}, other.ID: {Initial: 20}}
	user := int64(0)
	order := func(g service.Goods) (int, harness.OrderAnswer) {
		user++
		code, a := in.Order(t, "V6", user, g.ID, 1)
		if code == http.StatusCreated {
			sale[g.ID].Accepted = append(sale[g.ID].Accepted, a.ID)
		}
		return code, a
	}
	for _, g := range []service.Goods{victim, other} {
		if code, a := order(g); code != http.StatusCreated {
			t.Fatalf("goods %d before the kill: %d %s", g.ID, code, a.Error)
		}
	}

	c.Kill(t, 0)
	// Each order on the dead master costs the client's dial retries (about
	// 1.5 s): one shows it.
	if code, a := order(victim); code != http.StatusServiceUnavailable || a.Error != "unavailable" {
		t.Errorf("goods on the killed master: %d %s, want 503 unavailable", code, a.Error)
	}
	for range 3 {
		if code, a := order(other); code != http.StatusCreated {
			t.Errorf("goods on a live master while master 0 is down: %d %s", code, a.Error)
		}
	}

	c.Restart(t, 0)
	harness.Eventually(t, 10*time.Second, func() bool {
		code, _ := order(victim)
		return code == http.StatusCreated
	}, "goods %d selling again after its master's restart", victim.ID)
	for _, g := range []service.Goods{victim, other} {
		e.CheckInvariants(t, g.ID, *sale[g.ID])
	}
}
