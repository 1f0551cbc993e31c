package gpkg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/mattn/go-sqlite3"

	"github.com/geoexport/exporter/internal/grid"
)

// assemblyTable records, inside the package an Assembly builds, the parts
// merged into it: each part's id, tiles per zoom and TileSet, written in
// the same transaction as the part's tiles, so the record and the rows
// commit together. Finish drops it.
const assemblyTable = "exporter_assembly"

// tileSetFunc is the SQL aggregate an Assembly's connection has:
// exporter_tile_set(zoom_level, tile_column, tile_row, tile_data) is the
// binary form of the TileSet of the rows.
const tileSetFunc = "exporter_tile_set"

// assemblyPragmas are writerPragmas with a rollback journal on disk: a
// merger killed mid-part leaves a hot journal, which SQLite rolls back
// when the next attempt opens the file. synchronous stays OFF: without
// fsync the journal protects against a process that dies, not against
// the machine losing power; OpenAssembly throws away a file from before a
// reboot (see bootID) and the parts are merged again.
var assemblyPragmas = func() []string {
	p := slices.Clone(writerPragmas)
	for i, s := range p {
		if strings.HasPrefix(s, "PRAGMA journal_mode") {
			p[i] = "PRAGMA journal_mode = TRUNCATE"
		}
	}
	return p
}()

// assemblyHook is writeHook plus the tileSetFunc aggregate.
func assemblyHook(c *sqlite3.SQLiteConn) error {
	if err := writeHook(c); err != nil {
		return err
	}
	return c.RegisterAggregator(tileSetFunc, func() *tileSetAgg { return &tileSetAgg{} }, true)
}

// tileSetAgg is the state of one tileSetFunc aggregate.
type tileSetAgg struct{ set TileSet }

func (a *tileSetAgg) Step(z, x, y int64, data []byte) { a.set.AddTile(z, x, y, data) }

func (a *tileSetAgg) Done() ([]byte, error) { return a.set.MarshalBinary() }

// Assembly is a tiles GeoPackage built from parts merged one at a time as
// they become available, by one writer (the caller makes sure: Assembly
// holds the file's write lock only while it is open). It keeps the content
// digest as parts are merged (TileSet), and which parts it holds inside
// the package, in each part's own transaction, so a part merged twice
// counts once and an Assembly closed or killed mid-part is reopened with
// every part before that one and nothing of it.
type Assembly struct {
	w      *Writer
	parts  map[int64]bool
	set    TileSet
	byZoom map[grid.Zoom]ZoomSize
}

// AssemblyResult describes the package Finish completed.
type AssemblyResult struct {
	MergeResult
	// ContentDigest is the package's ContentDigest, kept as parts were
	// merged.
	ContentDigest string
	// Sizes is the tiles and tile bytes at each zoom level that holds a
	// tile, what Reader.SizeByZoom reads from the package, kept as parts
	// were merged.
	Sizes map[grid.Zoom]ZoomSize
}

// OpenAssembly reopens the assembly at path that an earlier writer left
// (closed, or killed), or creates a new one exactly as Create does with
// opt. A file at path that is not an assembly of opt.Table (a crash while
// it was created or finished, or any other file) is replaced by a new one:
// its parts are merged again. Errors: ErrInvalidOptions, ctx.Err(), and
// classified SQLite or file system errors. The caller must Close, Finish
// or Abort it.
func OpenAssembly(ctx context.Context, path string, opt Options) (*Assembly, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	a, err := reopenAssembly(ctx, path, opt.withDefaults())
	if err == nil {
		return a, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, ctxErr
	}
	if err := removeDB(path); err != nil {
		return nil, fmt.Errorf("open assembly %s: %w", path, err)
	}
	// Built under another name and renamed when whole: a crash before then
	// leaves nothing at path.
	tmp := path + ".new"
	if err := removeDB(tmp); err != nil {
		return nil, fmt.Errorf("open assembly %s: %w", path, err)
	}
	w, err := create(ctx, tmp, opt, assemblyHook)
	if err != nil {
		return nil, fmt.Errorf("open assembly %s: %w", path, err)
	}
	_, err = w.conn.ExecContext(ctx, `CREATE TABLE `+assemblyTable+` (part INTEGER PRIMARY KEY,
		tiles INTEGER NOT NULL, by_zoom TEXT NOT NULL, tile_set BLOB NOT NULL)`)
	err = errors.Join(translate(ctx, err), w.closeDB())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = removeDB(tmp)
		return nil, fmt.Errorf("open assembly %s: %w", path, err)
	}
	a, err = reopenAssembly(ctx, path, opt.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("open assembly %s: %w", path, err)
	}
	return a, nil
}

// reopenAssembly opens the assembly at path and reads which parts it
// holds.
func reopenAssembly(ctx context.Context, path string, opt Options) (*Assembly, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	a := &Assembly{w: &Writer{path: path, opt: opt}, parts: map[int64]bool{}, byZoom: map[grid.Zoom]ZoomSize{}}
	if err := a.load(ctx); err != nil {
		_ = a.w.closeDB()
		return nil, err
	}
	return a, nil
}

func (a *Assembly) load(ctx context.Context) error {
	if err := a.w.open(ctx, assemblyHook, assemblyPragmas); err != nil {
		return translate(ctx, err)
	}
	if err := checkSchema(ctx, a.w.conn, "main"); err != nil {
		return err
	}
	if err := lookupTable(ctx, a.w.conn, "main", a.w.opt.Table); err != nil {
		return err
	}
	rows, err := a.w.conn.QueryContext(ctx, `SELECT part, by_zoom, tile_set FROM `+assemblyTable)
	if err != nil {
		return translate(ctx, err)
	}
	for rows.Next() {
		var (
			id      int64
			byZoom  string
			setData []byte
			set     TileSet
		)
		if err := rows.Scan(&id, &byZoom, &setData); err != nil {
			_ = rows.Close()
			return translate(ctx, err)
		}
		zooms, err := unmarshalSizes(byZoom)
		if err := errors.Join(err, set.UnmarshalBinary(setData)); err != nil {
			_ = rows.Close()
			return fmt.Errorf("%w: part %d: %w", ErrCorrupt, id, err)
		}
		a.add(id, &set, zooms)
	}
	return closeRows(ctx, rows)
}

// add counts the merged part id with its tiles.
func (a *Assembly) add(id int64, set *TileSet, byZoom map[grid.Zoom]ZoomSize) {
	a.parts[id] = true
	a.set.Add(set)
	for z, n := range byZoom {
		sum := a.byZoom[z]
		sum.Tiles += n.Tiles
		sum.Bytes += n.Bytes
		a.byZoom[z] = sum
		a.w.zooms |= 1 << uint(z)
	}
}

// removeDB removes an SQLite file and its journal; missing files are fine.
func removeDB(path string) error {
	var errs []error
	for _, p := range []string{path, path + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ReadTile returns the data of tile t in the package, on the assembly's
// own connection (it holds the file's lock, so no other connection can
// read it while it is open); ErrTileNotFound when it has none. The data
// is checked like Reader.ReadTile checks it. Errors are also ErrClosed,
// ctx.Err() and classified SQLite errors.
func (a *Assembly) ReadTile(ctx context.Context, t grid.Tile) ([]byte, error) {
	if err := checkTile(t); err != nil {
		return nil, err
	}
	w := a.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	var data []byte
	err := w.conn.QueryRowContext(ctx, `SELECT tile_data FROM `+quoteIdent(w.opt.Table)+
		` WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?`, int64(t.Zoom), t.Col, t.Row).Scan(&data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, ErrTileNotFound
	case err != nil:
		return nil, fmt.Errorf("read tile %s: %w", t, translate(ctx, err))
	}
	if _, err := CheckTileData(data); err != nil {
		return nil, fmt.Errorf("read tile %s: %w", t, err)
	}
	return data, nil
}

// Merged reports whether part id is in the package.
func (a *Assembly) Merged(id int64) bool { return a.parts[id] }

// Parts is the number of parts in the package.
func (a *Assembly) Parts() int { return len(a.parts) }

// MergePart copies the tiles of the part at path into the package as
// part id, in one transaction with the record of id, and reports whether
// it did: a part id merged already is not merged again. The part is
// checked as Merge checks its parts. A part's tile that the package holds
// already takes the part's data (as in Merge), and the digest follows.
// Errors are those of Merge for a bad part, ctx.Err(), and classified
// SQLite errors; after an error the package is as before the call.
func (a *Assembly) MergePart(ctx context.Context, id int64, path string) (bool, error) {
	if a.w.conn == nil {
		return false, ErrClosed
	}
	if a.parts[id] {
		return false, nil
	}
	srcs, err := checkParts([]string{path})
	if err != nil {
		return false, err
	}
	var (
		set    TileSet
		byZoom = map[grid.Zoom]ZoomSize{}
	)
	err = a.w.withPart(ctx, srcs[0], func(rec *partRecord) error {
		if err := a.copyPart(ctx, rec, &set, byZoom); err != nil {
			return err
		}
		doc, err := marshalSizes(byZoom)
		if err != nil {
			return err
		}
		var tiles int64
		for _, n := range byZoom {
			tiles += n.Tiles
		}
		b, _ := set.MarshalBinary()
		_, err = a.w.conn.ExecContext(ctx, `INSERT INTO `+assemblyTable+` (part, tiles, by_zoom, tile_set) VALUES (?, ?, ?, ?)`,
			id, tiles, string(doc), b)
		return translate(ctx, err)
	})
	if err != nil {
		return false, fmt.Errorf("merge part %d %s: %w", id, path, err)
	}
	a.add(id, &set, byZoom)
	return true, nil
}

// copyPart copies the attached part's tiles into the package and sets set
// and byZoom to what the package gained: the part's tiles and bytes, less
// the package's data of tiles the part replaced, counting new tiles only.
// The part's tiles are rec's, or read from the part when rec is nil.
func (a *Assembly) copyPart(ctx context.Context, rec *partRecord, set *TileSet, byZoom map[grid.Zoom]ZoomSize) error {
	table := quoteIdent(a.w.opt.Table)
	if rec != nil {
		set.Add(&rec.set)
		maps.Copy(byZoom, rec.byZoom)
		return a.copyTiles(ctx, set, byZoom)
	}
	rows, err := a.w.conn.QueryContext(ctx, `SELECT zoom_level, count(*), sum(length(tile_data)),
		`+tileSetFunc+`(zoom_level, tile_column, tile_row, tile_data)
		FROM `+partSchema+`.`+table+` GROUP BY zoom_level`)
	if err != nil {
		return translate(ctx, err)
	}
	for rows.Next() {
		var (
			z       int64
			n       ZoomSize
			setData []byte
			zs      TileSet
		)
		if err := rows.Scan(&z, &n.Tiles, &n.Bytes, &setData); err != nil {
			_ = rows.Close()
			return translate(ctx, err)
		}
		if err := zs.UnmarshalBinary(setData); err != nil {
			_ = rows.Close()
			return err
		}
		set.Add(&zs)
		byZoom[grid.Zoom(z)] = n // checkPart let only zooms of the grid in
	}
	if err := closeRows(ctx, rows); err != nil {
		return err
	}
	return a.copyTiles(ctx, set, byZoom)
}

// copyTiles copies the attached part's tiles, whose TileSet and sizes
// per zoom are set and byZoom, into the package, and takes the tiles they
// replace out of both.
func (a *Assembly) copyTiles(ctx context.Context, set *TileSet, byZoom map[grid.Zoom]ZoomSize) error {
	table := quoteIdent(a.w.opt.Table)
	// Parts of different batches hold different tiles: the plain INSERT is
	// the rule, and a conflict fails it as a whole.
	_, err := a.w.conn.ExecContext(ctx, copyPartSQL(table, ""))
	var se sqlite3.Error
	if err == nil || !errors.As(err, &se) || se.ExtendedCode != sqlite3.ErrConstraintUnique {
		return translate(ctx, err)
	}
	if err := a.replaced(ctx, set, byZoom); err != nil {
		return err
	}
	if _, err := a.w.conn.ExecContext(ctx, copyPartSQL(table, upsertTile)); err != nil {
		return fmt.Errorf("copy tiles: %w", translate(ctx, err))
	}
	return nil
}

// replaced takes the tiles the package holds at the part's addresses out
// of set and byZoom: the part's data replaces them.
func (a *Assembly) replaced(ctx context.Context, set *TileSet, byZoom map[grid.Zoom]ZoomSize) error {
	table := quoteIdent(a.w.opt.Table)
	rows, err := a.w.conn.QueryContext(ctx, `SELECT m.zoom_level, m.tile_column, m.tile_row, m.tile_data
		FROM `+partSchema+`.`+table+` p JOIN main.`+table+` m USING (zoom_level, tile_column, tile_row)`)
	if err != nil {
		return translate(ctx, err)
	}
	for rows.Next() {
		var (
			z, x, y int64
			data    sql.RawBytes
		)
		if err := rows.Scan(&z, &x, &y, &data); err != nil {
			_ = rows.Close()
			return translate(ctx, err)
		}
		set.SubTile(z, x, y, data)
		n := byZoom[grid.Zoom(z)]
		n.Tiles--
		n.Bytes -= int64(len(data))
		byZoom[grid.Zoom(z)] = n
	}
	return closeRows(ctx, rows)
}

// Finish completes the package as Merge does (tile matrix rows,
// last_change; synced unless Options.NoSync), without the record of
// parts, and closes it. describe, if not nil, returns the metadata
// document (as WriteMetadata writes it) for what the package holds; it is
// written on the same connection, without a sync of its own. An Assembly
// without parts is ErrNoParts; an invalid document is ErrInvalidMetadata.
func (a *Assembly) Finish(ctx context.Context, describe func(AssemblyResult) (Metadata, error)) (AssemblyResult, error) {
	if a.w.conn == nil {
		return AssemblyResult{}, ErrClosed
	}
	if len(a.parts) == 0 {
		return AssemblyResult{}, ErrNoParts
	}
	res := AssemblyResult{
		MergeResult:   MergeResult{ByZoom: map[grid.Zoom]int64{}, Parts: len(a.parts)},
		ContentDigest: a.set.Digest(),
		Sizes:         map[grid.Zoom]ZoomSize{},
	}
	for z, n := range a.byZoom {
		if n.Tiles > 0 {
			res.ByZoom[z] = n.Tiles
			res.Sizes[z] = n
			res.Tiles += n.Tiles
		}
	}
	if describe != nil {
		md, err := describe(res)
		if err == nil {
			err = md.validate()
		}
		if err != nil {
			return AssemblyResult{}, fmt.Errorf("finish %s: %w", a.w.path, err)
		}
		now := md.Now
		if now == nil {
			now = a.w.opt.Now
		}
		if err := putMetadata(ctx, a.w.conn, md, now); err != nil {
			return AssemblyResult{}, fmt.Errorf("finish %s: %w", a.w.path, err)
		}
	}
	// DELETE removes the journal file TRUNCATE kept: the package is one file.
	for _, q := range []string{`DROP TABLE ` + assemblyTable, "PRAGMA journal_mode = DELETE"} {
		if _, err := a.w.conn.ExecContext(ctx, q); err != nil {
			return AssemblyResult{}, fmt.Errorf("finish %s: %w", a.w.path, translate(ctx, err))
		}
	}
	if err := ctx.Err(); err != nil {
		return AssemblyResult{}, err
	}
	if err := a.w.Close(); err != nil {
		return AssemblyResult{}, err
	}
	return res, nil
}

// Close closes the package without finishing it; OpenAssembly opens it
// again with the parts merged so far.
func (a *Assembly) Close() error {
	if a.w.conn == nil {
		return nil
	}
	a.w.closed = true
	return a.w.closeDB()
}

// Abort closes the package and removes it.
func (a *Assembly) Abort() error {
	_ = a.Close()
	return removeDB(a.w.path)
}
