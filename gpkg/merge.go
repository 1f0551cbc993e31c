package gpkg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/mattn/go-sqlite3"
)

// MaxMergeParts is the largest number of parts Merge accepts. An export
// split into batches of a few thousand tiles stays far below it; a longer
// list is a bug upstream, not an export to finish.
const MaxMergeParts = 100_000

// partSchema is the name a part is attached under while Merge copies it.
const partSchema = "part"

// maxRowSize is SQLITE_LIMIT_LENGTH of writeHook connections: a tile
// table row of the largest tile. SQLite refuses to materialise a longer
// value (SQLITE_TOOBIG, classified as ErrTooLarge), so a hostile part cannot
// make Merge hold more than that in memory per value.
const maxRowSize = MaxTileSize + 1024

// MergeResult describes the package Merge wrote.
type MergeResult struct {
	// Tiles is the number of tiles in the merged package.
	Tiles int64
	// ByZoom is the number of tiles at each zoom level that holds one.
	ByZoom map[grid.Zoom]int64
	// Parts is the number of distinct part files merged: a path listed more
	// than once is merged once.
	Parts int
}

// writeHook sets up a connection that writes to a package and reads files
// it did not write (the parts Merge attaches, the package WriteMetadata
// opens): no value or row longer than a tile, at most one attached part, no
// functions with side effects in the files' schemas, cell sizes checked as
// pages are read, and no memory mapping, so corruption surfaces as an error
// (as readerHook does for Open).
func writeHook(c *sqlite3.SQLiteConn) error {
	c.SetLimit(sqlite3.SQLITE_LIMIT_LENGTH, maxRowSize)
	c.SetLimit(sqlite3.SQLITE_LIMIT_ATTACHED, 1)
	_, err := c.Exec(`PRAGMA trusted_schema = OFF;
		PRAGMA cell_size_check = ON;
		PRAGMA mmap_size = 0`, nil)
	return err
}

// part is one file to merge.
type part struct {
	name string // as the caller gave it, for errors
	uri  string // SQLite URI that opens it read-only
}

// Merge creates a tiles GeoPackage at dst, exactly as Create does with opt
// (schema, pragmas, table, identifier, description, extent, clock), and
// copies into it every tile of the table opt.Table of each part, in order.
// It then writes the gpkg_tile_matrix rows and gpkg_contents.last_change,
// closes and syncs dst like Writer.Close. opt.BatchSize is not used: each
// part is copied by one INSERT … SELECT in one transaction.
//
// Parts are the packages batches wrote. They are untrusted: each must pass
// the header checks of Open, is attached read-only, and must be a tiles
// GeoPackage whose table opt.Table is in the grid (a gpkg_tile_matrix_set
// of EPSG:4326 over grid.World, gpkg_tile_matrix rows that are zooms of the
// grid) and holds only tiles inside the grid whose data is a BLOB of at most
// MaxTileSize bytes starting like a PNG or JPEG of grid.TileSize pixels
// (the image is not decoded; Put decoded its header when the part was
// written, and ReadTile does again).
//
// A tile in more than one part takes the data of the last part that holds
// it; parts that overlap because a batch was re-run hold the same data, so
// order does not matter to the tiles. A path listed twice is merged once.
// Merging the same parts in the same order with the same Options.Now gives a
// byte-identical file; in another order the same tiles (and the same
// ContentDigest), possibly in another page layout.
//
// Errors wrap ErrNoParts for an empty list (an export with no batches is
// a bug, not an empty package; a batch without tiles still writes a part),
// ErrTooManyParts beyond MaxMergeParts, ErrInvalidOptions and ErrExists as
// Create does, ctx.Err() if ctx is done before dst is complete, and for a
// bad part the error of Open (ErrNotGeoPackage, ErrNotTiles, ErrCorrupt,
// fs.ErrNotExist, …), ErrTableNotFound, ErrNotGrid, ErrTooLarge or
// ErrTileFormat, with the part's path in the message. On any error nothing
// is left at dst.
func Merge(ctx context.Context, dst string, parts []string, opt Options) (MergeResult, error) {
	res, err := merge(ctx, dst, parts, opt)
	if err != nil {
		return MergeResult{}, fmt.Errorf("merge into %s: %w", dst, err)
	}
	return res, nil
}

func merge(ctx context.Context, dst string, parts []string, opt Options) (MergeResult, error) {
	switch {
	case len(parts) == 0:
		return MergeResult{}, ErrNoParts
	case len(parts) > MaxMergeParts:
		return MergeResult{}, fmt.Errorf("%w: %d, at most %d allowed", ErrTooManyParts, len(parts), MaxMergeParts)
	}
	if err := opt.Validate(); err != nil {
		return MergeResult{}, err
	}
	// Check the header of every part before creating anything: a missing or
	// foreign file late in a long list fails the merge at once instead of
	// after copying the others.
	srcs, err := checkParts(parts)
	if err != nil {
		return MergeResult{}, err
	}
	w, err := create(ctx, dst, opt, writeHook)
	if err != nil {
		return MergeResult{}, err
	}
	defer w.Abort() //nolint:errcheck // a no-op after Close; the merge error is the one to report
	for _, p := range srcs {
		if err := ctx.Err(); err != nil {
			return MergeResult{}, err
		}
		if err := w.mergePart(ctx, p); err != nil {
			return MergeResult{}, fmt.Errorf("part %s: %w", p.name, err)
		}
	}
	res := MergeResult{ByZoom: map[grid.Zoom]int64{}, Parts: len(srcs)}
	if err := w.countMerged(ctx, &res); err != nil {
		return MergeResult{}, err
	}
	// Close runs without a context; don't start it for a caller who has
	// given up.
	if err := ctx.Err(); err != nil {
		return MergeResult{}, err
	}
	if err := w.Close(); err != nil {
		return MergeResult{}, err
	}
	return res, nil
}

// checkParts drops repeated paths and checks the header of each part, as
// Open does, returning the URIs to attach.
func checkParts(parts []string) ([]part, error) {
	seen := make(map[string]bool, len(parts))
	srcs := make([]part, 0, len(parts))
	for _, name := range parts {
		abs, err := filepath.Abs(name)
		if err != nil {
			return nil, fmt.Errorf("part %s: %w", name, err)
		}
		if seen[abs] {
			continue
		}
		seen[abs] = true
		h, err := readHeader(abs)
		if err != nil {
			return nil, fmt.Errorf("part %s: %w", name, err)
		}
		uri, err := fileURI(abs, readQuery(abs, h))
		if err != nil {
			return nil, fmt.Errorf("part %s: %w", name, err)
		}
		srcs = append(srcs, part{name: name, uri: uri})
	}
	return srcs, nil
}

// mergePart attaches p read-only, checks it and copies its tiles in one
// transaction, and detaches it again.
func (w *Writer) mergePart(ctx context.Context, p part) error {
	table := quoteIdent(w.opt.Table)
	return w.withPart(ctx, p, func(*partRecord) error {
		// An upsert rather than INSERT OR REPLACE: a tile already there with
		// the same data (a re-run batch) is left alone instead of being
		// deleted and inserted again under a new id, which would burn ids
		// and pages.
		if _, err := w.conn.ExecContext(ctx, copyPartSQL(table, upsertTile)); err != nil {
			return fmt.Errorf("copy tiles: %w", translate(ctx, err))
		}
		return nil
	})
}

// upsertTile is the conflict clause of copying a part into a package whose
// tiles it may overlap: the part's data wins.
const upsertTile = `ON CONFLICT (zoom_level, tile_column, tile_row) DO UPDATE SET tile_data = excluded.tile_data
		WHERE tile_data IS NOT excluded.tile_data`

// copyPartSQL copies every tile of the attached part's table into the
// package's, with the conflict clause onConflict ("" for none: a tile
// already there fails the statement). Rows are taken in the order of the
// part's UNIQUE index, which needs no sort: consecutive inserts then land
// in the same leaf pages of the package's index, instead of a page read
// per tile once the index has outgrown the page cache.
func copyPartSQL(table, onConflict string) string {
	return `INSERT INTO main.` + table + ` (zoom_level, tile_column, tile_row, tile_data)
		SELECT zoom_level, tile_column, tile_row, tile_data FROM ` + partSchema + `.` + table + `
		WHERE true ORDER BY zoom_level, tile_column, tile_row ` + onConflict
}

// withPart attaches p read-only, begins a transaction, checks the part and
// runs copy, commits, and detaches the part again. Nothing of copy's
// writes stays when it or the commit fails.
func (w *Writer) withPart(ctx context.Context, p part, copy func(*partRecord) error) (err error) {
	// ROLLBACK and DETACH must run even when ctx is done, or the
	// connection would keep the part open until the file is discarded.
	cleanup := context.WithoutCancel(ctx)
	if _, err := w.conn.ExecContext(ctx, "ATTACH DATABASE ? AS "+partSchema, p.uri); err != nil {
		return translate(ctx, err)
	}
	defer func() {
		if _, derr := w.conn.ExecContext(cleanup, "DETACH DATABASE "+partSchema); derr != nil && err == nil {
			err = fmt.Errorf("detach: %w", translate(ctx, derr))
		}
	}()
	if _, err := w.conn.ExecContext(ctx, "BEGIN"); err != nil {
		return translate(ctx, err)
	}
	committed := false
	defer func() {
		if !committed {
			// Fails harmlessly if an interrupt already rolled back.
			_, _ = w.conn.ExecContext(cleanup, "ROLLBACK")
		}
	}()
	rec, err := checkPart(ctx, w.conn, w.opt.Table)
	if err != nil {
		return err
	}
	if err := copy(rec); err != nil {
		return err
	}
	if _, err := w.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", translate(ctx, err))
	}
	committed = true
	return nil
}

// tilePrefixes are SQL blob literals of how tile data starts: the PNG
// signature followed by an IHDR chunk of grid.TileSize × grid.TileSize
// pixels (PNG requires IHDR first), and the JPEG SOI marker (a JPEG's size
// sits at no fixed offset).
var (
	pngTilePrefix  = fmt.Sprintf("x'%X0000000D49484452%08X%08X'", pngMagic, grid.TileSize, grid.TileSize)
	jpegTilePrefix = fmt.Sprintf("x'%X'", jpegMagic)
)

// checkPart checks the package attached as partSchema: a GeoPackage with a
// tile table named table in the grid, holding only tiles in the grid with
// plausible data, and returns its record (see partRecordTable), nil when
// it has none that matches its table. Without a record it reads every
// tile's data once, to check how it starts; with one, whose Writer checked
// each tile's header as it was put, it reads no tile data.
func checkPart(ctx context.Context, q queryer, table string) (*partRecord, error) {
	if err := checkSchema(ctx, q, partSchema); err != nil {
		return nil, err
	}
	if err := lookupTable(ctx, q, partSchema, table); err != nil {
		return nil, err
	}
	var (
		srs                    sql.NullInt64
		minX, minY, maxX, maxY sql.NullFloat64
	)
	err := q.QueryRowContext(ctx, `SELECT CAST(srs_id AS INTEGER), CAST(min_x AS REAL), CAST(min_y AS REAL), CAST(max_x AS REAL), CAST(max_y AS REAL)
		FROM `+partSchema+`.gpkg_tile_matrix_set WHERE table_name = ?`, table).Scan(&srs, &minX, &minY, &maxX, &maxY)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("%w: no gpkg_tile_matrix_set row for %q", ErrNotGrid, table)
	case err != nil:
		return nil, translate(ctx, err)
	}
	b := grid.BBox{MinX: minX.Float64, MinY: minY.Float64, MaxX: maxX.Float64, MaxY: maxY.Float64}
	if srs.Int64 != srsID || !minX.Valid || !minY.Valid || !maxX.Valid || !maxY.Valid || b != grid.World {
		return nil, fmt.Errorf("%w: tile matrix set of %q is srs_id %d over %v, want %d over %v", ErrNotGrid, table, srs.Int64, b, srsID, grid.World)
	}
	ms, err := queryTileMatrices(ctx, q, partSchema, table)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if !m.InGrid() {
			return nil, fmt.Errorf("%w: tile matrix %+v of %q", ErrNotGrid, m, table)
		}
	}
	// Addresses first: the record's check of counts per zoom relies on it.
	if err := checkPartTiles(ctx, q, table, false); err != nil {
		return nil, err
	}
	rec, err := readPartRecord(ctx, q, table)
	if err != nil || rec != nil {
		return rec, err
	}
	return nil, checkPartTiles(ctx, q, table, true)
}

// checkPartTiles finds the first tile row of the part's table that is not a
// tile of the grid or whose data cannot be a tile: with content, data that
// does not start like a tile. typeof and length do not read a BLOB's
// content; only the prefix comparison does, which loads the whole value.
func checkPartTiles(ctx context.Context, q queryer, table string, content bool) error {
	address := fmt.Sprintf(`typeof(zoom_level) = 'integer' AND typeof(tile_column) = 'integer' AND typeof(tile_row) = 'integer'
		AND zoom_level BETWEEN 0 AND %d
		AND tile_column BETWEEN 0 AND (2 << zoom_level) - 1 AND tile_row BETWEEN 0 AND (1 << zoom_level) - 1`, grid.MaxZoom)
	data := fmt.Sprintf(`typeof(tile_data) = 'blob' AND length(tile_data) <= %d`, MaxTileSize)
	if content {
		data += fmt.Sprintf(` AND (substr(tile_data, 1, %d) = %s OR substr(tile_data, 1, %d) = %s)`,
			len(pngMagic)+16, pngTilePrefix, len(jpegMagic), jpegTilePrefix)
	}
	show := func(col string) string {
		return `CASE WHEN typeof(` + col + `) = 'integer' THEN CAST(` + col + ` AS TEXT) ELSE '(' || typeof(` + col + `) || ')' END`
	}
	var z, x, y, problem, typ string
	var size sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT `+show("zoom_level")+`, `+show("tile_column")+`, `+show("tile_row")+`,
		CASE WHEN NOT (`+address+`) THEN 'address' WHEN typeof(tile_data) <> 'blob' THEN 'type'
			WHEN length(tile_data) > `+fmt.Sprint(MaxTileSize)+` THEN 'size' ELSE 'format' END,
		typeof(tile_data), length(tile_data)
		FROM `+partSchema+`.`+quoteIdent(table)+` WHERE NOT (`+address+` AND `+data+`) LIMIT 1`).Scan(&z, &x, &y, &problem, &typ, &size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return translate(ctx, err)
	}
	tile := z + "/" + x + "/" + y
	switch problem {
	case "address":
		return fmt.Errorf("%w: tile %s of %q is not in the grid", ErrNotGrid, tile, table)
	case "type":
		return fmt.Errorf("%w: tile %s of %q: tile_data is %s, not a blob", ErrCorrupt, tile, table, typ)
	case "size":
		return fmt.Errorf("%w: tile %s of %q: tile data is %d bytes, at most %d allowed", ErrTooLarge, tile, table, size.Int64, MaxTileSize)
	default:
		return fmt.Errorf("%w: tile %s of %q is neither a PNG nor a JPEG of %d×%d pixels", ErrTileFormat, tile, table, grid.TileSize, grid.TileSize)
	}
}

// countMerged fills in the tile counts of the merged table and marks its
// zoom levels for the gpkg_tile_matrix rows Close writes.
func (w *Writer) countMerged(ctx context.Context, res *MergeResult) error {
	rows, err := w.conn.QueryContext(ctx, `SELECT zoom_level, count(*) FROM main.`+quoteIdent(w.opt.Table)+` GROUP BY zoom_level`)
	if err != nil {
		return translate(ctx, err)
	}
	for rows.Next() {
		var (
			z int64
			n int64
		)
		if err := rows.Scan(&z, &n); err != nil {
			_ = rows.Close()
			return translate(ctx, err)
		}
		// checkPartTiles let only zoom levels of the grid in.
		res.ByZoom[grid.Zoom(z)] = n
		res.Tiles += n
		w.zooms |= 1 << uint(z)
	}
	return closeRows(ctx, rows)
}
