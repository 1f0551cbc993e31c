package gpkg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/mattn/go-sqlite3"
)

// readerConns is the size of a Reader's connection pool: concurrent reads
// of one file, each connection with its own page cache.
const readerConns = 4

// maxZoomLevels caps the distinct zoom levels Zooms and CountByZoom walk
// through, so that a hostile table cannot make them loop for long.
const maxZoomLevels = 64

// readerHook sets up every read connection for an untrusted file: no
// value longer than a tile (SQLITE_LIMIT_LENGTH), no writes, no functions
// with side effects in the schema, cell sizes checked as pages are read,
// and no memory mapping, so corruption surfaces as an error.
func readerHook(c *sqlite3.SQLiteConn) error {
	c.SetLimit(sqlite3.SQLITE_LIMIT_LENGTH, MaxTileSize)
	_, err := c.Exec(`PRAGMA query_only = ON;
		PRAGMA trusted_schema = OFF;
		PRAGMA cell_size_check = ON;
		PRAGMA mmap_size = 0`, nil)
	return err
}

// Reader reads tiles and metadata from a tiles GeoPackage opened read-only.
// It is safe for concurrent use. Close it when done.
type Reader struct {
	path string
	db   *sql.DB

	mu     sync.Mutex
	tables map[string]*table
	closed bool
}

// table is a resolved tile table.
type table struct {
	name   string // as in gpkg_contents
	quoted string
	read   *sql.Stmt
}

// Open opens the GeoPackage at path read-only and checks that it is a tiles
// GeoPackage with at least one tile table. It treats the file as untrusted
// and checks its header before SQLite reads it (see the package comment).
//
// Errors wrap ErrNotGeoPackage (not SQLite, no GeoPackage application_id
// or required tables), ErrNotTiles (no tile table), ErrCorrupt, or the os
// error for a missing or unreadable file (errors.Is(err, fs.ErrNotExist)).
// The caller owns the Reader and must Close it.
func Open(ctx context.Context, path string) (*Reader, error) {
	h, err := readHeader(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db, err := openDB(path, readQuery(path, h), readerConns, readerHook)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r := &Reader{path: path, db: db, tables: make(map[string]*table)}
	if err := r.check(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return r, nil
}

// readQuery returns the SQLite URI parameters for reading path read-only.
// A WAL-mode file (which third-party tools may produce; Create never does)
// with no -wal file beside it is opened as immutable: there is no log to
// read, and a plain read-only open would create -wal and -shm files that a
// read-only connection cannot remove again, or fail in a read-only
// directory.
func readQuery(path string, h header) string {
	if h.wal {
		if _, err := os.Lstat(path + "-wal"); errors.Is(err, fs.ErrNotExist) {
			return "mode=ro&immutable=1"
		}
	}
	return "mode=ro"
}

// check verifies the required GeoPackage tables are real tables and that
// at least one tile table exists.
func (r *Reader) check(ctx context.Context) error {
	if err := checkSchema(ctx, r.db, "main"); err != nil {
		return err
	}
	names, err := r.Tables(ctx)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("%w: no table of data_type tiles in gpkg_contents", ErrNotTiles)
	}
	return nil
}

// queryer is what the checks below need: a *sql.DB (Reader), a *sql.Conn
// (Merge, with the part attached) or a *sql.Tx (WriteMetadata).
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkSchema verifies that the required GeoPackage tables of the database
// attached as schema exist and are plain tables, not views or virtual
// tables whose content the file's author controls. Errors wrap
// ErrNotGeoPackage or ErrNotTiles, or are classified SQLite errors.
func checkSchema(ctx context.Context, q queryer, schema string) error {
	rows, err := q.QueryContext(ctx, `SELECT lower(coalesce(name, '')), coalesce(type, ''), coalesce(sql, '') FROM `+quoteIdent(schema)+`.sqlite_master
		WHERE lower(name) IN ('gpkg_spatial_ref_sys', 'gpkg_contents', 'gpkg_tile_matrix_set', 'gpkg_tile_matrix')`)
	if err != nil {
		return translate(ctx, err)
	}
	found := map[string]bool{}
	for rows.Next() {
		var name, typ, ddl string
		if err := rows.Scan(&name, &typ, &ddl); err != nil {
			_ = rows.Close()
			return translate(ctx, err)
		}
		if typ != "table" || isVirtual(ddl) {
			_ = rows.Close()
			return fmt.Errorf("%w: %s is a %s, not a table", ErrNotGeoPackage, name, typ)
		}
		found[name] = true
	}
	if err := closeRows(ctx, rows); err != nil {
		return err
	}
	for _, name := range []string{"gpkg_spatial_ref_sys", "gpkg_contents"} {
		if !found[name] {
			return fmt.Errorf("%w: no %s table", ErrNotGeoPackage, name)
		}
	}
	for _, name := range []string{"gpkg_tile_matrix_set", "gpkg_tile_matrix"} {
		if !found[name] {
			return fmt.Errorf("%w: no %s table", ErrNotTiles, name)
		}
	}
	return nil
}

// lookupTable checks that the database attached as schema has a tile table
// name: a gpkg_contents row of data_type "tiles" for a plain table with the
// four tile columns. Errors wrap ErrTableNotFound or ErrNotTiles, or are
// classified SQLite errors.
func lookupTable(ctx context.Context, q queryer, schema, name string) error {
	s := quoteIdent(schema)
	var ddl string
	err := q.QueryRowContext(ctx, `SELECT coalesce(m.sql, '')
		FROM `+s+`.gpkg_contents c JOIN `+s+`.sqlite_master m ON lower(m.name) = lower(c.table_name)
		WHERE c.table_name = ? AND c.data_type = 'tiles' AND m.type = 'table'`, name).Scan(&ddl)
	if errors.Is(err, sql.ErrNoRows) || err == nil && (isVirtual(ddl) || strings.ContainsRune(name, 0)) {
		return fmt.Errorf("%w: %q", ErrTableNotFound, name)
	}
	if err != nil {
		return translate(ctx, err)
	}
	var cols int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?, ?)
		WHERE name IN ('zoom_level', 'tile_column', 'tile_row', 'tile_data')`, name, schema).Scan(&cols); err != nil {
		return translate(ctx, err)
	}
	if cols != 4 {
		return fmt.Errorf("%w: table %q lacks the tile columns", ErrNotTiles, name)
	}
	return nil
}

func isVirtual(ddl string) bool {
	return strings.HasPrefix(strings.ToUpper(strings.TrimSpace(ddl)), "CREATE VIRTUAL")
}

// Tables returns the names of the tile tables, sorted: the rows of
// gpkg_contents with data_type "tiles" whose table exists as a plain
// table. It returns ErrClosed after Close and classified SQLite errors.
func (r *Reader) Tables(ctx context.Context) ([]string, error) {
	if err := r.usable(); err != nil {
		return nil, err
	}
	rows, err := r.db.QueryContext(ctx, `SELECT c.table_name, coalesce(m.sql, '')
		FROM gpkg_contents c JOIN sqlite_master m ON lower(m.name) = lower(c.table_name)
		WHERE c.data_type = 'tiles' AND m.type = 'table' AND typeof(c.table_name) = 'text'
		ORDER BY c.table_name`)
	if err != nil {
		return nil, translate(ctx, err)
	}
	var names []string
	for rows.Next() {
		var name, ddl string
		if err := rows.Scan(&name, &ddl); err != nil {
			_ = rows.Close()
			return nil, translate(ctx, err)
		}
		if !isVirtual(ddl) && !strings.ContainsRune(name, 0) {
			names = append(names, name)
		}
	}
	if err := closeRows(ctx, rows); err != nil {
		return nil, err
	}
	return slices.Compact(names), nil
}

// usable reports ErrClosed after Close.
func (r *Reader) usable() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	return nil
}

// table resolves name to a tile table with the tile columns, caching the
// result. Errors wrap ErrTableNotFound, ErrNotTiles or ErrClosed.
func (r *Reader) table(ctx context.Context, name string) (*table, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if t, ok := r.tables[name]; ok {
		return t, nil
	}
	if err := lookupTable(ctx, r.db, "main", name); err != nil {
		return nil, err
	}
	t := &table{name: name, quoted: quoteIdent(name)}
	var err error
	t.read, err = r.db.PrepareContext(ctx, `SELECT typeof(tile_data), length(tile_data),
		CASE WHEN typeof(tile_data) = 'blob' AND length(tile_data) <= `+fmt.Sprint(MaxTileSize)+` THEN tile_data END
		FROM `+t.quoted+` WHERE zoom_level = ? AND tile_column = ? AND tile_row = ? LIMIT 1`)
	if err != nil {
		return nil, translate(ctx, err)
	}
	r.tables[name] = t
	return t, nil
}

// ReadTile returns the data of tile t in table. The data is checked like
// Put checks it (CheckTileData), so it is a PNG or JPEG of
// grid.TileSize × grid.TileSize pixels, at most MaxTileSize bytes; the
// caller owns the returned slice.
//
// Errors wrap ErrInvalidTile (address outside the grid), ErrTableNotFound,
// ErrTileNotFound, ErrTooLarge, ErrTileFormat, ErrCorrupt (tile_data not a
// BLOB, or SQLite found damage), ErrClosed, or ctx.Err().
func (r *Reader) ReadTile(ctx context.Context, tableName string, t grid.Tile) ([]byte, error) {
	data, err := r.readTile(ctx, tableName, t)
	if err != nil {
		return nil, fmt.Errorf("read tile %s from %q: %w", t, tableName, err)
	}
	return data, nil
}

func (r *Reader) readTile(ctx context.Context, tableName string, t grid.Tile) ([]byte, error) {
	if err := checkTile(t); err != nil {
		return nil, err
	}
	tbl, err := r.table(ctx, tableName)
	if err != nil {
		return nil, err
	}
	var (
		typ  string
		size sql.NullInt64
		data []byte
	)
	err = tbl.read.QueryRowContext(ctx, int64(t.Zoom), t.Col, t.Row).Scan(&typ, &size, &data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, ErrTileNotFound
	case err != nil:
		return nil, translate(ctx, err)
	case typ != "blob":
		return nil, fmt.Errorf("%w: tile_data is %s, not a blob", ErrCorrupt, typ)
	case size.Int64 > MaxTileSize:
		return nil, fmt.Errorf("%w: tile data is %d bytes, at most %d allowed", ErrTooLarge, size.Int64, MaxTileSize)
	}
	if _, err := CheckTileData(data); err != nil {
		return nil, err
	}
	return data, nil
}

// Count returns the number of tiles in table. Errors wrap
// ErrTableNotFound, ErrCorrupt, ErrClosed or ctx.Err().
func (r *Reader) Count(ctx context.Context, tableName string) (int64, error) {
	tbl, err := r.table(ctx, tableName)
	if err != nil {
		return 0, fmt.Errorf("count tiles in %q: %w", tableName, err)
	}
	var n int64
	if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM `+tbl.quoted).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tiles in %q: %w", tableName, translate(ctx, err))
	}
	return n, nil
}

// Zooms returns the zoom levels of table that hold at least one tile, in
// ascending order. Errors wrap ErrNotGrid for a zoom level outside the grid,
// ErrTableNotFound, ErrCorrupt, ErrClosed or ctx.Err().
func (r *Reader) Zooms(ctx context.Context, tableName string) ([]grid.Zoom, error) {
	counts, err := r.countByZoom(ctx, tableName, false)
	if err != nil {
		return nil, fmt.Errorf("list zooms of %q: %w", tableName, err)
	}
	zooms := make([]grid.Zoom, 0, len(counts))
	for _, c := range counts {
		zooms = append(zooms, c.zoom)
	}
	return zooms, nil
}

// CountByZoom returns the number of tiles at each zoom level of table that
// holds at least one. Errors are those of Zooms.
func (r *Reader) CountByZoom(ctx context.Context, tableName string) (map[grid.Zoom]int64, error) {
	counts, err := r.countByZoom(ctx, tableName, true)
	if err != nil {
		return nil, fmt.Errorf("count tiles by zoom in %q: %w", tableName, err)
	}
	m := make(map[grid.Zoom]int64, len(counts))
	for _, c := range counts {
		m[c.zoom] = c.n
	}
	return m, nil
}

// ZoomSize is what one zoom level of a table holds: its tiles and the
// sum of their tile_data lengths.
type ZoomSize struct {
	Tiles int64
	Bytes int64
}

// SizeByZoom returns the tiles and tile bytes at each zoom level of table
// that holds at least one. SQLite reads a blob's length from its record
// header, so this reads no tile data. Errors are those of Zooms.
func (r *Reader) SizeByZoom(ctx context.Context, tableName string) (map[grid.Zoom]ZoomSize, error) {
	zooms, err := r.countByZoom(ctx, tableName, false)
	if err != nil {
		return nil, fmt.Errorf("size tiles by zoom in %q: %w", tableName, err)
	}
	tbl, err := r.table(ctx, tableName)
	if err != nil {
		return nil, fmt.Errorf("size tiles by zoom in %q: %w", tableName, err)
	}
	m := make(map[grid.Zoom]ZoomSize, len(zooms))
	for _, z := range zooms {
		var s ZoomSize
		q := `SELECT count(*), coalesce(sum(length(tile_data)), 0) FROM ` + tbl.quoted + ` WHERE zoom_level = ?`
		if err := r.db.QueryRowContext(ctx, q, int64(z.zoom)).Scan(&s.Tiles, &s.Bytes); err != nil {
			return nil, fmt.Errorf("size tiles by zoom in %q: %w", tableName, translate(ctx, err))
		}
		m[z.zoom] = s
	}
	return m, nil
}

type zoomCount struct {
	zoom grid.Zoom
	n    int64
}

// countByZoom walks the distinct zoom levels of a table with index seeks
// (one per level) rather than a scan of every tile, counting the tiles of
// each if count is set.
func (r *Reader) countByZoom(ctx context.Context, tableName string, count bool) ([]zoomCount, error) {
	tbl, err := r.table(ctx, tableName)
	if err != nil {
		return nil, err
	}
	// Only integer zoom levels address tiles; the filter also keeps Scan
	// from meeting a value of another type.
	next := `SELECT min(zoom_level) FROM ` + tbl.quoted + ` WHERE zoom_level > ? AND typeof(zoom_level) = 'integer'`
	var out []zoomCount
	prev := int64(-1 << 62)
	for range maxZoomLevels + 1 {
		var z sql.NullInt64
		if err := r.db.QueryRowContext(ctx, next, prev).Scan(&z); err != nil {
			return nil, translate(ctx, err)
		}
		if !z.Valid {
			return out, nil
		}
		if !grid.Zoom(z.Int64).Valid() {
			return nil, fmt.Errorf("%w: zoom level %d", ErrNotGrid, z.Int64)
		}
		c := zoomCount{zoom: grid.Zoom(z.Int64)}
		if count {
			if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM `+tbl.quoted+` WHERE zoom_level = ?`, z.Int64).Scan(&c.n); err != nil {
				return nil, translate(ctx, err)
			}
		}
		out = append(out, c)
		prev = z.Int64
	}
	return nil, fmt.Errorf("%w: more than %d zoom levels", ErrNotGrid, maxZoomLevels)
}

// Extent returns the bounds of table from gpkg_contents, or from
// gpkg_tile_matrix_set where gpkg_contents leaves them empty (the
// specification allows that). Errors wrap ErrNotGrid if the table is not
// in EPSG:4326 or the bounds are not a valid grid.BBox, and otherwise
// ErrTableNotFound, ErrCorrupt, ErrClosed or ctx.Err().
func (r *Reader) Extent(ctx context.Context, tableName string) (grid.BBox, error) {
	b, err := r.extent(ctx, tableName)
	if err != nil {
		return grid.BBox{}, fmt.Errorf("read extent of %q: %w", tableName, err)
	}
	return b, nil
}

func (r *Reader) extent(ctx context.Context, tableName string) (grid.BBox, error) {
	tbl, err := r.table(ctx, tableName)
	if err != nil {
		return grid.BBox{}, err
	}
	var (
		minX, minY, maxX, maxY sql.NullFloat64
		srs                    sql.NullInt64
	)
	err = r.db.QueryRowContext(ctx, `SELECT CAST(coalesce(c.min_x, s.min_x) AS REAL), CAST(coalesce(c.min_y, s.min_y) AS REAL),
		CAST(coalesce(c.max_x, s.max_x) AS REAL), CAST(coalesce(c.max_y, s.max_y) AS REAL),
		CAST(coalesce(c.srs_id, s.srs_id) AS INTEGER)
		FROM gpkg_contents c LEFT JOIN gpkg_tile_matrix_set s ON s.table_name = c.table_name
		WHERE c.table_name = ?`, tbl.name).Scan(&minX, &minY, &maxX, &maxY, &srs)
	if err != nil {
		return grid.BBox{}, translate(ctx, err)
	}
	if !srs.Valid || srs.Int64 != srsID {
		return grid.BBox{}, fmt.Errorf("%w: srs_id %v, want %d", ErrNotGrid, srs.Int64, srsID)
	}
	if !minX.Valid || !minY.Valid || !maxX.Valid || !maxY.Valid {
		return grid.BBox{}, fmt.Errorf("%w: no bounds in gpkg_contents or gpkg_tile_matrix_set", ErrNotGrid)
	}
	b := grid.BBox{MinX: minX.Float64, MinY: minY.Float64, MaxX: maxX.Float64, MaxY: maxY.Float64}
	if err := b.Validate(); err != nil {
		return grid.BBox{}, fmt.Errorf("%w: %w", ErrNotGrid, err)
	}
	return b, nil
}

// TileMatrices returns the gpkg_tile_matrix rows of table as stored,
// ordered by zoom level; TileMatrix.InGrid tells whether a row matches the
// grid. Errors wrap ErrTableNotFound, ErrCorrupt, ErrClosed or ctx.Err().
func (r *Reader) TileMatrices(ctx context.Context, tableName string) ([]TileMatrix, error) {
	ms, err := r.tileMatrices(ctx, tableName)
	if err != nil {
		return nil, fmt.Errorf("read tile matrices of %q: %w", tableName, err)
	}
	return ms, nil
}

func (r *Reader) tileMatrices(ctx context.Context, tableName string) ([]TileMatrix, error) {
	tbl, err := r.table(ctx, tableName)
	if err != nil {
		return nil, err
	}
	return queryTileMatrices(ctx, r.db, "main", tbl.name)
}

// queryTileMatrices reads the gpkg_tile_matrix rows of table in the
// database attached as schema, ordered by zoom level. Errors wrap ErrNotGrid
// for more rows than a grid can have, or are classified SQLite errors.
func queryTileMatrices(ctx context.Context, q queryer, schema, table string) ([]TileMatrix, error) {
	// CAST and coalesce give every column the type Scan expects, whatever
	// the file holds; a missing value reads as 0, which InGrid rejects.
	rows, err := q.QueryContext(ctx, `SELECT coalesce(CAST(zoom_level AS INTEGER), -1),
		coalesce(CAST(matrix_width AS INTEGER), 0), coalesce(CAST(matrix_height AS INTEGER), 0),
		coalesce(CAST(tile_width AS INTEGER), 0), coalesce(CAST(tile_height AS INTEGER), 0),
		coalesce(CAST(pixel_x_size AS REAL), 0), coalesce(CAST(pixel_y_size AS REAL), 0)
		FROM `+quoteIdent(schema)+`.gpkg_tile_matrix WHERE table_name = ? ORDER BY zoom_level LIMIT ?`, table, maxZoomLevels+1)
	if err != nil {
		return nil, translate(ctx, err)
	}
	var ms []TileMatrix
	for rows.Next() {
		var (
			m TileMatrix
			z int64
		)
		if err := rows.Scan(&z, &m.MatrixWidth, &m.MatrixHeight, &m.TileWidth, &m.TileHeight, &m.PixelXSize, &m.PixelYSize); err != nil {
			_ = rows.Close()
			return nil, translate(ctx, err)
		}
		m.Zoom = grid.Zoom(z)
		ms = append(ms, m)
	}
	if err := closeRows(ctx, rows); err != nil {
		return nil, err
	}
	if len(ms) > maxZoomLevels {
		return nil, fmt.Errorf("%w: more than %d tile matrix rows", ErrNotGrid, maxZoomLevels)
	}
	return ms, nil
}

// Close closes the database. It returns nil when called again; every other
// method returns ErrClosed afterwards.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	for _, t := range r.tables {
		errs = append(errs, t.read.Close())
	}
	errs = append(errs, r.db.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close %s: %w", r.path, translate(context.Background(), err))
	}
	return nil
}

// closeRows reports the error that ended iteration, if any, and closes
// rows. Queries select values through CAST, typeof filters or text columns
// so that Scan never meets a type it cannot convert: every error here and
// from Scan comes from SQLite or database/sql.
func closeRows(ctx context.Context, rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return translate(ctx, err)
}
