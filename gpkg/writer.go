package gpkg

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/mattn/go-sqlite3"
)

// pageSize is the SQLite page size of packages written by Create. Tiles are
// BLOBs of a few to a few hundred KiB; SQLite's own measurements
// (https://www.sqlite.org/intern-v-extern-blob.html) show 8–16 KiB pages
// reading such BLOBs fastest, and larger pages mean shorter overflow chains
// than the 4 KiB default. Readers accept any valid page size.
const pageSize = 16384

// cacheKiB is the page cache of the writer connection, in KiB.
const cacheKiB = 32 << 10

// writerPragmas set up the single writer connection for a bulk load into a
// file that nobody else reads until it is closed:
//
//   - journal_mode=MEMORY keeps the rollback journal in memory, so no
//     -journal or -wal file is ever created and the closed file is a plain
//     self-contained database (MEMORY is not persistent: the file itself
//     stays in the default rollback mode). A crash mid-load leaves a file to
//     throw away, which the caller does anyway because Close never ran.
//   - synchronous=OFF skips fsync on every commit; Close syncs the file once
//     (unless Options.NoSync).
//   - locking_mode=EXCLUSIVE keeps the write lock between transactions, so
//     no other process can read a half-written package.
var writerPragmas = []string{
	fmt.Sprintf("PRAGMA page_size = %d", pageSize),
	"PRAGMA journal_mode = MEMORY",
	"PRAGMA synchronous = OFF",
	"PRAGMA locking_mode = EXCLUSIVE",
	"PRAGMA temp_store = MEMORY",
	fmt.Sprintf("PRAGMA cache_size = -%d", cacheKiB),
	fmt.Sprintf("PRAGMA application_id = %d", applicationID),
	fmt.Sprintf("PRAGMA user_version = %d", userVersion),
}

// Writer writes tiles into a new GeoPackage. Create it with Create, write
// with Put, and finish with Close (keep the file) or Abort (remove it).
// A Writer is safe for concurrent use, but writes are serialised: SQLite
// has one writer per file.
type Writer struct {
	path string
	opt  Options

	mu      sync.Mutex
	db      *sql.DB
	conn    *sql.Conn
	insert  *sql.Stmt
	inTx    bool
	pending int    // tiles written in the open transaction
	zooms   uint32 // bit z set: zoom z holds at least one tile
	err     error  // sticky: the first SQLite failure while writing
	closed  bool
	rec     *partRecord // with Options.Record
}

// Create creates a new tiles GeoPackage at path and returns a Writer for it.
// It fails with ErrExists if path (or a journal beside it) already exists,
// with ErrInvalidOptions (see Options.Validate) for bad options, and with
// the classified SQLite error otherwise; on failure nothing is left at path.
// The caller owns the Writer and must call Close or Abort.
func Create(ctx context.Context, path string, opt Options) (*Writer, error) {
	w, err := create(ctx, path, opt, nil)
	if err == nil && opt.Record {
		w.rec = newPartRecord()
	}
	return w, err
}

// create is Create with hook setting up the writer connection (nil: none).
func create(ctx context.Context, path string, opt Options, hook func(*sqlite3.SQLiteConn) error) (*Writer, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	opt = opt.withDefaults()
	for _, p := range []string{path + "-journal", path + "-wal"} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("create %s: %w: %s exists", path, ErrExists, p)
		}
	}
	// O_EXCL claims the name atomically; SQLite then treats the empty file
	// as a new database.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create %s: %w", path, ErrExists)
		}
		return nil, fmt.Errorf("create %s: %w", path, unwrapPath(err))
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	w := &Writer{path: path, opt: opt}
	if err := w.init(ctx, hook); err != nil {
		_ = w.discard()
		return nil, fmt.Errorf("create %s: %w", path, translate(ctx, err))
	}
	return w, nil
}

// init opens the database, sets up the connection and writes the schema
// and metadata rows.
func (w *Writer) init(ctx context.Context, hook func(*sqlite3.SQLiteConn) error) error {
	if err := w.open(ctx, hook, writerPragmas); err != nil {
		return err
	}
	tx, err := w.conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	table := quoteIdent(w.opt.Table)
	b := w.opt.Extent
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{sql: coreSchema},
		{sql: tileTableSchema(table)},
		{
			sql: `INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change, min_x, min_y, max_x, max_y, srs_id)
				VALUES (?, 'tiles', ?, ?, ?, ?, ?, ?, ?, ?)`,
			args: []any{w.opt.Table, w.opt.Identifier, w.opt.Description, formatTime(w.opt.Now()), b.MinX, b.MinY, b.MaxX, b.MaxY, srsID},
		},
		{
			sql:  `INSERT INTO gpkg_tile_matrix_set (table_name, srs_id, min_x, min_y, max_x, max_y) VALUES (?, ?, ?, ?, ?, ?)`,
			args: []any{w.opt.Table, srsID, grid.World.MinX, grid.World.MinY, grid.World.MaxX, grid.World.MaxY},
		},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	w.insert, err = w.conn.PrepareContext(ctx, `INSERT INTO `+table+` (zoom_level, tile_column, tile_row, tile_data) VALUES (?, ?, ?, ?)
		ON CONFLICT (zoom_level, tile_column, tile_row) DO UPDATE SET tile_data = excluded.tile_data`)
	return err
}

// open opens the database and sets up its one connection with hook and
// pragmas.
func (w *Writer) open(ctx context.Context, hook func(*sqlite3.SQLiteConn) error, pragmas []string) error {
	var err error
	if w.db, err = openDB(w.path, "", 1, hook); err != nil {
		return err
	}
	if w.conn, err = w.db.Conn(ctx); err != nil {
		return err
	}
	for _, p := range pragmas {
		if _, err := w.conn.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// Put writes one encoded tile (PNG or JPEG bytes, see CheckTileData) at
// address t, replacing any tile already there, so repeating a Put is
// idempotent. Tiles are committed in transactions of Options.BatchSize;
// a tile is durable only once Close returns nil.
//
// Errors wrap ErrInvalidTile for an address outside the grid and
// ErrTileFormat or ErrTooLarge for bad data (the Writer stays usable after
// these), ctx.Err() if ctx is done before the write starts, ErrClosed after
// Close or Abort, and a classified SQLite error (ErrFull, ErrIO, …) if the
// write fails; after such a failure every later Put and Close returns it.
// Put does not keep data.
func (w *Writer) Put(ctx context.Context, t grid.Tile, data []byte) error {
	if err := checkTile(t); err != nil {
		return fmt.Errorf("write tile %s: %w", t, err)
	}
	if _, err := CheckTileData(data); err != nil {
		return fmt.Errorf("write tile %s: %w", t, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write tile %s: %w", t, err)
	}
	var (
		sum   [sha256.Size]byte
		lanes [TileSetSize]byte
	)
	if w.rec != nil {
		// Hashed before the lock: encoders put tiles concurrently.
		sum = tileSum(int64(t.Zoom), t.Col, t.Row, data)
		expand(&lanes, sum[:])
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return fmt.Errorf("write tile %s: %w", t, err)
	}
	// One insert takes microseconds; running it without ctx's cancellation
	// spares the driver a goroutine per statement that would only watch ctx.
	ctx = context.WithoutCancel(ctx)
	if !w.inTx {
		if _, err := w.conn.ExecContext(ctx, "BEGIN"); err != nil {
			return w.fail(fmt.Errorf("write tile %s: begin: %w", t, translate(ctx, err)))
		}
		w.inTx = true
	}
	if _, err := w.insert.ExecContext(ctx, int64(t.Zoom), t.Col, t.Row, data); err != nil {
		return w.fail(fmt.Errorf("write tile %s: %w", t, translate(ctx, err)))
	}
	w.zooms |= 1 << uint(t.Zoom)
	if w.rec != nil {
		w.rec.put(t, sum, &lanes, int64(len(data)))
	}
	w.pending++
	if w.pending >= w.opt.BatchSize {
		if err := w.commit(ctx); err != nil {
			return w.fail(fmt.Errorf("write tile %s: commit: %w", t, err))
		}
	}
	return nil
}

// usable reports why the Writer can no longer write, if it cannot.
func (w *Writer) usable() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

// fail records err as the sticky error and returns it.
func (w *Writer) fail(err error) error {
	w.err = err
	return err
}

// commit commits the open transaction, if any.
func (w *Writer) commit(ctx context.Context) error {
	if !w.inTx {
		return nil
	}
	if _, err := w.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return translate(ctx, err)
	}
	w.inTx = false
	w.pending = 0
	return nil
}

// Close commits the last batch, writes a gpkg_tile_matrix row for every
// zoom level that holds a tile, updates gpkg_contents.last_change, runs
// PRAGMA optimize (which leaves query planner statistics in sqlite_stat1),
// closes the database and syncs the file to disk. On success the file at the
// Create path is a complete, self-contained GeoPackage owned by the caller.
//
// If anything fails (including an earlier Put that failed in SQLite), Close
// removes the file and returns the error. Close runs to completion without
// a context: stopping half-way would leave nothing usable. Calling Close or
// Abort again afterwards does nothing and returns nil, so `defer w.Abort()`
// after Create is safe.
func (w *Writer) Close() error {
	return w.end(func() error {
		if err := w.finish(); err != nil {
			_ = w.discard()
			return fmt.Errorf("close %s: %w", w.path, err)
		}
		return nil
	})
}

// end runs f under the lock when neither Close nor Abort has run yet, and
// marks the writer closed; afterwards it returns nil without running f.
func (w *Writer) end(f func() error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	return f()
}

// finish completes and closes the package; see Close.
func (w *Writer) finish() error {
	if w.err != nil {
		return w.err
	}
	ctx := context.Background()
	if err := w.commit(ctx); err != nil {
		return err
	}
	if err := w.writeMetadata(ctx); err != nil {
		return translate(ctx, err)
	}
	// optimize is bounded work (SQLite caps its ANALYZE) and leaves
	// statistics for the readers' query planner.
	if _, err := w.conn.ExecContext(ctx, "PRAGMA optimize"); err != nil {
		return translate(ctx, err)
	}
	if err := w.closeDB(); err != nil {
		return err
	}
	if w.opt.NoSync {
		return nil
	}
	return syncFile(w.path)
}

// writeMetadata writes the tile matrix rows and last_change in one
// transaction.
func (w *Writer) writeMetadata(ctx context.Context) error {
	tx, err := w.conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for z := grid.Zoom(0); z <= grid.MaxZoom; z++ {
		if w.zooms&(1<<uint(z)) == 0 {
			continue
		}
		m := matrixFor(z)
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO gpkg_tile_matrix
			(table_name, zoom_level, matrix_width, matrix_height, tile_width, tile_height, pixel_x_size, pixel_y_size)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			w.opt.Table, int64(m.Zoom), m.MatrixWidth, m.MatrixHeight, m.TileWidth, m.TileHeight, m.PixelXSize, m.PixelYSize); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE gpkg_contents SET last_change = ? WHERE table_name = ?`,
		formatTime(w.opt.Now()), w.opt.Table); err != nil {
		return err
	}
	if w.rec != nil {
		if err := w.rec.write(ctx, tx); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Abort discards the package: it rolls back, closes the database and
// removes the file. It returns only a failure to remove the file. Abort
// after a successful Close does nothing and keeps the finished file; calling
// Abort more than once is safe.
func (w *Writer) Abort() error {
	return w.end(w.discard)
}

// discard closes the database, ignoring errors, and removes the file.
func (w *Writer) discard() error {
	_ = w.closeDB()
	if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", w.path, err)
	}
	return nil
}

// closeDB closes the statement, the connection and the pool, in that order.
func (w *Writer) closeDB() error {
	var errs []error
	if w.insert != nil {
		errs = append(errs, w.insert.Close())
		w.insert = nil
	}
	if w.conn != nil {
		errs = append(errs, w.conn.Close())
		w.conn = nil
	}
	if w.db != nil {
		errs = append(errs, w.db.Close())
		w.db = nil
	}
	if err := errors.Join(errs...); err != nil {
		return translate(context.Background(), err)
	}
	return nil
}

// syncFile flushes path to stable storage: the writer runs with
// synchronous=OFF, so this is the one fsync of the whole load.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}
