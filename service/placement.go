package service

import "strconv"

// MaxOrderTables is how many sharded order tables (order_1..order_N) the
// migrations create on every host; mysql.order_tables may use fewer.
const MaxOrderTables = 16

// OrderTable is where an order row goes. Host 0 is the primary, 1..n the
// order hosts of mysql.shards; Table 0 is the orders table of V1 and V2,
// 1..n the sharded order_1..order_n.
//
// DB, when set, is a logical database of V7 (its number + 1) and Table one
// of its tables, 1..LogicalTables; Host is then 0: which host holds a
// logical database is data (the shard map), not a formula, so that the
// address of a row never changes when its logical database moves.
type OrderTable struct{ Host, Table, DB int }

// Name is the table's SQL name. Names are made here only, from integers.
func (t OrderTable) Name() string {
	if t.DB > 0 {
		return LogicalTableName(t.DB-1, t.Table)
	}
	return TableName(t.Table)
}

// Logical says the table is one of a V7 logical database's.
func (t OrderTable) Logical() bool { return t.DB > 0 }

// V7's layout: LogicalDBs logical databases of LogicalTables tables each.
// A user's logical database is user_id % LogicalDBs, and its table
// user_id/10 % LogicalTables + 1, whatever the hosts: the hosts are doubled
// by moving whole logical databases, never by re-addressing a row.
const (
	LogicalDBs    = 8
	LogicalTables = 16
)

// LogicalTableName names table t (1..LogicalTables) of logical database db
// (0..LogicalDBs-1): l<db>_order_<t>, in the database of whichever host
// holds db.
func LogicalTableName(db, t int) string {
	return "l" + strconv.Itoa(db) + "_order_" + strconv.Itoa(t)
}

// LogicalDB is the logical database of a user's V7 orders.
func LogicalDB(userID int64) int { return int(userID % LogicalDBs) }

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
	// ByLogicalDB puts orders in logical database user_id % 8, table
	// user_id/10 % 16 + 1 (V7); the shard map says which host holds it.
	// The layout's table and host counts do not change it.
	ByLogicalDB Placement = func(userID int64, _ Layout) OrderTable {
		return OrderTable{DB: LogicalDB(userID) + 1, Table: int(userID/10%LogicalTables) + 1}
	}
)

func userTable(userID int64, l Layout) int {
	return int(userID/10%int64(max(l.Tables, 1))) + 1
}

// CouponTable is where a user's coupon records go: V7's rule, the table of
// the user's orders in its logical database (ByLogicalDB), in that logical
// database's coupon tables. The shard map says which host holds them, and
// the expansion moves them with the orders.
func CouponTable(userID int64) OrderTable { return ByLogicalDB(userID, Layout{}) }

// LogicalCouponTableName names coupon table t (1..LogicalTables) of logical
// database db (0..LogicalDBs-1): l<db>_coupon_<t>, beside its order tables.
func LogicalCouponTableName(db, t int) string {
	return "l" + strconv.Itoa(db) + "_coupon_" + strconv.Itoa(t)
}
