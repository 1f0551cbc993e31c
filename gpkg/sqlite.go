package gpkg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/mattn/go-sqlite3"
)

// connector opens SQLite connections to one file with a fixed setup hook,
// without registering a driver name globally.
type connector struct {
	dsn string
	drv *sqlite3.SQLiteDriver
}

func (c *connector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }

func (c *connector) Driver() driver.Driver { return c.drv }

// fileURI turns path into an SQLite URI filename with the given query, so
// that '?', '#' and '%' in the path are not taken as URI syntax.
func fileURI(path, query string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: query}
	return u.String(), nil
}

// openDB opens path with a pool of at most maxConns connections, each set up
// by hook.
func openDB(path, query string, maxConns int, hook func(*sqlite3.SQLiteConn) error) (*sql.DB, error) {
	dsn, err := fileURI(path, query)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", path, err)
	}
	db := sql.OpenDB(&connector{dsn: dsn, drv: &sqlite3.SQLiteDriver{ConnectHook: hook}})
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	return db, nil
}
