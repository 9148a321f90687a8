package service

import "strconv"

// MaxOrderTables is how many sharded order tables (order_1..order_N) the
// migrations create on every host; mysql.order_tables may use fewer.
const MaxOrderTables = 16

// OrderTable is where an order row goes. Host 0 is the primary, 1..n the
// order hosts of mysql.shards; Table 0 is the orders table of V1 and V2,
// 1..n the sharded order_1..order_n.
type OrderTable struct{ Host, Table int }

// Name is the table's SQL name. Names are made here only, from integers.
func (t OrderTable) Name() string { return TableName(t.Table) }

// TableName names order table number i: orders for 0, else order_i.
func TableName(i int) string {
	if i == 0 {
		return "orders"
	}
	return "order_" + strconv.Itoa(i)
}

// TableNames are every order table the migrations create, orders first.
func TableNames() []string {
	names := make([]string, MaxOrderTables+1)
	for i := range names {
		names[i] = TableName(i)
	}
	return names
}

// Layout is how many order tables and order hosts a deployment uses.
type Layout struct {
	Tables int // order_1..order_Tables on each host (1..MaxOrderTables)
	Hosts  int // order hosts of mysql.shards (at least 1)
}

// Placement says where the order of a user goes, in a layout.
type Placement func(userID int64, l Layout) OrderTable

// The placements of the seed's versions.
var (
	// OnPrimary puts every order in the primary's orders table (V1, V2).
	OnPrimary Placement = func(int64, Layout) OrderTable { return OrderTable{} }
	// ByUserTable spreads orders over the primary's order tables by the
	// seed's user_id/10 % N + 1 (V3).
	ByUserTable Placement = func(userID int64, l Layout) OrderTable {
		return OrderTable{Table: userTable(userID, l)}
	}
	// ByUserHost also spreads those tables over the order hosts by
	// user_id % hosts (V4 and later).
	ByUserHost Placement = func(userID int64, l Layout) OrderTable {
		return OrderTable{Host: int(userID%int64(max(l.Hosts, 1))) + 1, Table: userTable(userID, l)}
	}
)

func userTable(userID int64, l Layout) int {
	return int(userID/10%int64(max(l.Tables, 1))) + 1
}

// CouponTable is where a user's coupon records go: the orders' rule by user
// (ByUserHost), in the coupon tables coupon_1..coupon_N of that host.
func CouponTable(userID int64, l Layout) OrderTable { return ByUserHost(userID, l) }

// CouponTableName names coupon table number i (1..MaxOrderTables).
func CouponTableName(i int) string { return "coupon_" + strconv.Itoa(i) }
