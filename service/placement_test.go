package service

import (
	"slices"
	"testing"
)

// The seed's placement: user_id/10 % tables + 1, and user_id % hosts.
func TestPlacement(t *testing.T) {
	t.Parallel()
	l := Layout{Tables: 16, Hosts: 2}
	for _, c := range []struct {
		user int64
		want OrderTable
	}{
		{1, OrderTable{Host: 2, Table: 1}},
		{10, OrderTable{Host: 1, Table: 2}},
		{165, OrderTable{Host: 2, Table: 1}},
		{159, OrderTable{Host: 2, Table: 16}},
	} {
		if got := ByUserHost(c.user, l); got != c.want {
			t.Errorf("user %d: %+v, want %+v", c.user, got, c.want)
		}
		if got := ByUserTable(c.user, l); got != (OrderTable{Table: c.want.Table}) {
			t.Errorf("user %d on the primary: %+v, want table %d", c.user, got, c.want.Table)
		}
	}
	if got := ByUserTable(15, Layout{Tables: 1, Hosts: 1}); got != (OrderTable{Table: 1}) {
		t.Errorf("one table: %+v", got)
	}
}

// Payment finds an order from its user alone: every version's placement
// is among the tables listed, each once.
func TestTablesOfCoverEveryVersion(t *testing.T) {
	t.Parallel()
	l := Layout{Tables: 16, Hosts: 2}
	for _, user := range []int64{1, 10, 159, 1 << 40} {
		tables := TablesOf(user, l)
		for _, v := range Versions() {
			if !slices.Contains(tables, v.Place(user, l)) {
				t.Errorf("user %d: %s's table %+v missing from %+v", user, v.Name, v.Place(user, l), tables)
			}
		}
		seen := map[OrderTable]bool{}
		for _, at := range tables {
			if seen[at] {
				t.Errorf("user %d: %+v listed twice", user, at)
			}
			seen[at] = true
		}
	}
	if got := TablesOf(7, Layout{Tables: 16, Hosts: 1}); len(got) != 4 {
		t.Errorf("one host: %+v, want orders, order_1 on the primary, order_1 on host 1, l7_order_1", got)
	}
}

func TestTableNames(t *testing.T) {
	t.Parallel()
	names := TableNames()
	if len(names) != MaxOrderTables+1 || names[0] != "orders" || names[16] != "order_16" {
		t.Errorf("%v", names)
	}
	if BestVersion().Name != "V6" {
		t.Errorf("POST /order sells through %s, want V6", BestVersion().Name)
	}
	if _, ok := FindVersion("V0"); ok {
		t.Error("unknown version found")
	}
}

// V7's address of a user: logical database user_id % 8, table
// user_id/10 % 16 + 1, the same whatever the layout; only the map says
// which host holds it.
func TestLogicalPlacement(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		user int64
		want OrderTable
		name string
	}{
		{1, OrderTable{DB: 2, Table: 1}, "l1_order_1"},
		{10, OrderTable{DB: 3, Table: 2}, "l2_order_2"},
		{168, OrderTable{DB: 1, Table: 1}, "l0_order_1"},
		{159, OrderTable{DB: 8, Table: 16}, "l7_order_16"},
	} {
		for _, l := range []Layout{{Tables: 16, Hosts: 1}, {Tables: 3, Hosts: 4}} {
			if got := ByLogicalDB(c.user, l); got != c.want || got.Name() != c.name || !got.Logical() {
				t.Errorf("user %d in %+v: %+v (%s), want %+v (%s)", c.user, l, got, got.Name(), c.want, c.name)
			}
		}
	}
	m := MessageOf(Order{ID: 1, UserID: 10, GoodsID: 2, Number: 1}, ByLogicalDB(10, Layout{}))
	if m.At() != (OrderTable{DB: 3, Table: 2}) {
		t.Errorf("the message names %+v", m.At())
	}
}

// A user's coupon records go where the user's V7 orders go, in the coupon
// tables beside them, whatever mysql.shards says: the shard map finds them.
func TestCouponsArePlacedByTheLogicalDatabase(t *testing.T) {
	for _, c := range []struct {
		user int64
		name string
	}{{1, "l1_coupon_1"}, {10, "l2_coupon_2"}, {168, "l0_coupon_1"}, {159, "l7_coupon_16"}} {
		at := CouponTable(c.user)
		if at != ByLogicalDB(c.user, Layout{}) || LogicalCouponTableName(at.DB-1, at.Table) != c.name {
			t.Errorf("user %d's coupons: %+v (%s), want %s", c.user, at, LogicalCouponTableName(at.DB-1, at.Table), c.name)
		}
	}
}
