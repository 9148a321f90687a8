package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-seckill/seckill/internal/testenv"
)

// The standalone mode's SQLite schema is the MySQL schema: after both sets
// of migrations, every table has the same columns, with the same type class
// and nullability, and the same unique keys.
func TestSQLiteSchemaMatchesMySQL(t *testing.T) {
	ctx := context.Background()
	my, err := OpenDatabase(ctx, testenv.MySQL(t), nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	lite, err := OpenDatabase(ctx, SQLitePrefix+filepath.Join(t.TempDir(), "s.db"), nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	for _, d := range []*Database{my, lite} {
		if _, err := d.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want, got := mysqlSchema(t, my.db), sqliteSchema(t, lite.db)
	if len(want) < 20 {
		t.Fatalf("only %d tables in MySQL", len(want))
	}
	for table, cols := range want {
		if got[table] != cols {
			t.Errorf("table %s\n mysql:  %s\n sqlite: %s", table, cols, got[table])
		}
	}
	for table := range got {
		if _, ok := want[table]; !ok {
			t.Errorf("table %s exists in SQLite only", table)
		}
	}
}

// typeClass folds both dialects' column types into what the code relies on.
func typeClass(t string) string {
	t = strings.ToLower(t)
	switch {
	case strings.Contains(t, "int"):
		return "integer"
	case strings.Contains(t, "char"), strings.Contains(t, "text"):
		return "text"
	case strings.Contains(t, "date"), strings.Contains(t, "time"):
		return "datetime"
	case strings.Contains(t, "blob"), strings.Contains(t, "binary"):
		return "blob" // bytes, whatever their length
	}
	return t
}

// describe renders a table: columns in name order, then unique keys.
func describe(cols map[string]string, uniques [][]string) string {
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range cols {
			if !yield(n) {
				return
			}
		}
	})
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s; ", n, cols[n])
	}
	var keys []string
	for _, u := range uniques {
		slices.Sort(u)
		keys = append(keys, "unique("+strings.Join(u, ",")+")")
	}
	slices.Sort(keys)
	return b.String() + strings.Join(keys, " ")
}

func mysqlSchema(t *testing.T, db *sql.DB) map[string]string {
	rows, err := db.Query(`SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, IS_NULLABLE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME <> 'goose_db_version'`)
	if err != nil {
		t.Fatal(err)
	}
	cols := map[string]map[string]string{}
	for rows.Next() {
		var table, col, typ, nullable string
		if err := rows.Scan(&table, &col, &typ, &nullable); err != nil {
			t.Fatal(err)
		}
		if cols[table] == nil {
			cols[table] = map[string]string{}
		}
		cols[table][col] = typeClass(typ) + map[string]string{"YES": " null", "NO": " not null"}[nullable]
	}
	rows.Close()
	uniques := map[string]map[string][]string{}
	rows, err = db.Query(`SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = DATABASE() AND NON_UNIQUE = 0 AND TABLE_NAME <> 'goose_db_version'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table, index, col string
		if err := rows.Scan(&table, &index, &col); err != nil {
			t.Fatal(err)
		}
		if uniques[table] == nil {
			uniques[table] = map[string][]string{}
		}
		uniques[table][index] = append(uniques[table][index], col)
	}
	rows.Close()
	out := map[string]string{}
	for table, c := range cols {
		out[table] = describe(c, slices.Collect(func(yield func([]string) bool) {
			for _, u := range uniques[table] {
				if !yield(u) {
					return
				}
			}
		}))
	}
	return out
}

// names runs a query of one text column and returns its values.
func names(t *testing.T, db *sql.DB, query string, args ...any) []string {
	rows, err := db.Query(query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func sqliteSchema(t *testing.T, db *sql.DB) map[string]string {
	tables := names(t, db, `SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT IN ('sqlite_sequence', 'goose_db_version')`)
	out := map[string]string{}
	for _, table := range tables {
		cols := map[string]string{}
		var uniques [][]string
		var pk []string
		rows, err := db.Query("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)", table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name, typ string
			var notNull, isPK int
			if err := rows.Scan(&name, &typ, &notNull, &isPK); err != nil {
				t.Fatal(err)
			}
			cols[name] = typeClass(typ) + map[int]string{0: " null", 1: " not null"}[notNull]
			if isPK > 0 {
				pk = append(pk, name)
			}
		}
		rows.Close()
		uniques = append(uniques, pk)
		for _, index := range names(t, db, `SELECT name FROM pragma_index_list(?) WHERE "unique" = 1 AND origin <> 'pk'`, table) {
			uniques = append(uniques, names(t, db, "SELECT name FROM pragma_index_info(?)", index))
		}
		out[table] = describe(cols, uniques)
	}
	return out
}

func TestCheckDatabaseName(t *testing.T) {
	for name, ok := range map[string]bool{"seckill": true, "seckill_test_1": true, "a$b": true, "": false, "a-b": false, "a`b": false, "a b": false} {
		if err := CheckDatabaseName(name); (err == nil) != ok {
			t.Errorf("%q: %v", name, err)
		}
	}
}
