package gpkg

import (
	"fmt"
	"testing"
)

// Exec runs statements on the SQLite file at path, read-write and without
// any of the package's checks, so tests can build broken or hostile files.
// It creates the file if it does not exist.
func Exec(tb testing.TB, path string, stmts ...string) {
	tb.Helper()
	db, err := openDB(path, "", 1, nil)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	defer db.Close() //nolint:errcheck // test helper; the next open reports problems
	for _, s := range stmts {
		if _, err := db.ExecContext(tb.Context(), s); err != nil {
			tb.Fatalf("exec %q on %s: %v", s, path, err)
		}
	}
}

// PageSize is the page size of written packages.
const PageSize = pageSize

// ApplicationID and UserVersion are the header values Create writes.
const (
	ApplicationID = applicationID
	UserVersion   = userVersion
)

// QueryString runs a query returning one value on the SQLite file at path
// and returns it as text.
func QueryString(tb testing.TB, path, query string) string {
	tb.Helper()
	db, err := openDB(path, "mode=ro", 1, nil)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	defer db.Close() //nolint:errcheck // test helper; the next open reports problems
	var s string
	if err := db.QueryRowContext(tb.Context(), query).Scan(&s); err != nil {
		tb.Fatalf("query %q on %s: %v", query, path, err)
	}
	return s
}

// LimitPages caps the database of w at n pages, so tests can make a write
// fail as on a full disk (SQLITE_FULL).
func LimitPages(tb testing.TB, w *Writer, n int) {
	tb.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.conn.ExecContext(tb.Context(), fmt.Sprintf("PRAGMA max_page_count = %d", n)); err != nil {
		tb.Fatalf("limit pages: %v", err)
	}
}
