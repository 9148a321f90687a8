package migrations

import (
	"github.com/go-seckill/seckill/service"

	"strings"
	"testing"
)

// service.MaxOrderTables, the one home of the table count, must match the
// tables the SQL creates.
func TestOrderTablesMatchTheSQL(t *testing.T) {
	b, err := files.ReadFile("mysql/00002_order_tables.sql")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "CREATE TABLE order_"); n != service.MaxOrderTables {
		t.Errorf("the migration creates %d order tables, service.MaxOrderTables says %d", n, service.MaxOrderTables)
	}
}

// Every MySQL migration has its SQLite twin, version for version.
func TestBothDialectsHaveTheSameVersions(t *testing.T) {
	names := func(dir string) []string {
		entries, err := files.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	my, lite := names("mysql"), names("sqlite")
	if strings.Join(my, ",") != strings.Join(lite, ",") {
		t.Errorf("mysql %v, sqlite %v", my, lite)
	}
}
