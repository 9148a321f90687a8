package migrations

import (
	"strings"
	"testing"
)

// OrderTables must match the tables the SQL creates.
func TestOrderTablesMatchTheSQL(t *testing.T) {
	b, err := files.ReadFile("00002_order_tables.sql")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "CREATE TABLE order_"); n != OrderTables {
		t.Errorf("the migration creates %d order tables, OrderTables says %d", n, OrderTables)
	}
}
