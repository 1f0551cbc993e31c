package gpkg_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/gpkg/gpkgtest"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/google/go-cmp/cmp"
)

// copyFile copies src into a new temp dir, so a test can damage the copy.
func copyFile(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy.gpkg")
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// writeFile writes data into a new temp dir and returns the path.
func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.gpkg")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// randomBytes returns n reproducible random bytes.
func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	valid := gpkgtest.Build(t)
	validData, err := os.ReadFile(valid)
	if err != nil {
		t.Fatal(err)
	}
	// sqlite builds an SQLite file with these statements.
	sqlite := func(stmts ...string) func(*testing.T) string {
		return func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "db.gpkg")
			gpkg.Exec(t, path, stmts...)
			return path
		}
	}
	// damaged copies the valid package and runs statements on the copy.
	damaged := func(stmts ...string) func(*testing.T) string {
		return func(t *testing.T) string {
			path := copyFile(t, valid)
			gpkg.Exec(t, path, stmts...)
			return path
		}
	}
	// patched copies the valid package's bytes and changes them.
	patched := func(edit func([]byte) []byte) func(*testing.T) string {
		return func(t *testing.T) string {
			return writeFile(t, edit(bytes.Clone(validData)))
		}
	}
	gpkgID := fmt.Sprintf("PRAGMA application_id = %d", gpkg.ApplicationID)
	tests := []struct {
		name string
		file func(*testing.T) string
		want error
	}{
		{name: "missing file", file: func(t *testing.T) string { return filepath.Join(t.TempDir(), "none.gpkg") }, want: fs.ErrNotExist},
		{name: "directory", file: func(t *testing.T) string { return t.TempDir() }, want: gpkg.ErrNotGeoPackage},
		{name: "empty file", file: func(t *testing.T) string { return writeFile(t, nil) }, want: gpkg.ErrNotGeoPackage},
		{name: "random bytes", file: func(t *testing.T) string { return writeFile(t, randomBytes(8192, 1)) }, want: gpkg.ErrNotGeoPackage},
		{name: "text file", file: func(t *testing.T) string { return writeFile(t, bytes.Repeat([]byte("hello\n"), 100)) }, want: gpkg.ErrNotGeoPackage},
		{
			name: "SQLite header then random bytes",
			file: func(t *testing.T) string {
				return writeFile(t, append([]byte("SQLite format 3\x00"), randomBytes(4096-16, 2)...))
			},
			want: gpkg.ErrCorrupt,
		},
		{name: "empty SQLite database", file: sqlite("CREATE TABLE t (a)"), want: gpkg.ErrNotGeoPackage},
		{name: "GeoPackage application_id, no tables", file: sqlite(gpkgID, "CREATE TABLE t (a)"), want: gpkg.ErrNotGeoPackage},
		{name: "gpkg_contents is a view", file: sqlite(gpkgID,
			"CREATE TABLE gpkg_spatial_ref_sys (srs_id INTEGER)",
			"CREATE VIEW gpkg_contents AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x AS table_name FROM c"),
			want: gpkg.ErrNotGeoPackage},
		{name: "features only", file: damaged(
			"DROP TABLE gpkg_tile_matrix", "DROP TABLE gpkg_tile_matrix_set", "DROP TABLE tiles", "DELETE FROM gpkg_contents"),
			want: gpkg.ErrNotTiles},
		{name: "no tiles row in gpkg_contents", file: damaged("DELETE FROM gpkg_contents"), want: gpkg.ErrNotTiles},
		{name: "tile table dropped", file: damaged("DROP TABLE tiles"), want: gpkg.ErrNotTiles},
		{name: "tile table is a view", file: damaged("DROP TABLE tiles", "CREATE VIEW tiles AS SELECT 1 AS zoom_level"), want: gpkg.ErrNotTiles},
		{name: "truncated to half", file: patched(func(b []byte) []byte { return b[:len(b)/2] }), want: gpkg.ErrCorrupt},
		{name: "truncated at a page boundary", file: patched(func(b []byte) []byte { return b[:3*gpkg.PageSize] }), want: gpkg.ErrCorrupt},
		{name: "truncated mid-page", file: patched(func(b []byte) []byte { return b[:len(b)-100] }), want: gpkg.ErrCorrupt},
		{name: "header shorter than 100 bytes", file: patched(func(b []byte) []byte { return b[:99] }), want: gpkg.ErrNotGeoPackage},
		{name: "page size not a power of two", file: patched(func(b []byte) []byte { b[16], b[17] = 0x30, 0x00; return b }), want: gpkg.ErrCorrupt},
		{name: "page count beyond the file", file: patched(func(b []byte) []byte { b[28], b[29] = 0x7f, 0xff; return b }), want: gpkg.ErrCorrupt},
		{name: "unknown file format version", file: patched(func(b []byte) []byte { b[18], b[19] = 3, 3; return b }), want: gpkg.ErrCorrupt},
		{name: "application_id zeroed", file: patched(func(b []byte) []byte { copy(b[68:72], []byte{0, 0, 0, 0}); return b }), want: gpkg.ErrNotGeoPackage},
		{
			name: "schema page overwritten",
			file: patched(func(b []byte) []byte { copy(b[100:gpkg.PageSize], randomBytes(gpkg.PageSize-100, 3)); return b }),
			want: gpkg.ErrCorrupt,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := tc.file(t)
			r, err := gpkg.Open(t.Context(), path)
			if err == nil {
				_ = r.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open(%s) = %v, want %v", tc.name, err, tc.want)
			}
			t.Logf("Open(%s) = %v", tc.name, err)
		})
	}
}

func TestOpenAcceptsOlderGeoPackages(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"GP10", "GP11"} {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			path := copyFile(t, gpkgtest.Build(t))
			appID := uint32(id[0])<<24 | uint32(id[1])<<16 | uint32(id[2])<<8 | uint32(id[3])
			gpkg.Exec(t, path, fmt.Sprintf("PRAGMA application_id = %d", appID))
			r := open(t, path)
			if n, err := r.Count(t.Context(), gpkgtest.DefaultTable); err != nil || n != 8 {
				t.Errorf("Count() = %d, %v, want 8", n, err)
			}
		})
	}
}

func TestOpenWALModeFile(t *testing.T) {
	t.Parallel()
	path := copyFile(t, gpkgtest.Build(t))
	gpkg.Exec(t, path, "PRAGMA journal_mode = WAL")
	r := open(t, path)
	if n, err := r.Count(t.Context(), gpkgtest.DefaultTable); err != nil || n != 8 {
		t.Errorf("Count() = %d, %v, want 8", n, err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	checkOnlyFile(t, path, "reading a WAL-mode package")
}

func TestReadTileErrors(t *testing.T) {
	t.Parallel()
	p := gpkgtest.BuildPackage(t)
	r := open(t, p.Path)
	tests := []struct {
		name  string
		table string
		tile  grid.Tile
		want  error
	}{
		{name: "tile not written", table: gpkgtest.DefaultTable, tile: grid.Tile{Zoom: 5, Col: 0, Row: 0}, want: gpkg.ErrTileNotFound},
		{name: "zoom not written", table: gpkgtest.DefaultTable, tile: grid.Tile{Zoom: 22}, want: gpkg.ErrTileNotFound},
		{name: "address outside the grid", table: gpkgtest.DefaultTable, tile: grid.Tile{Zoom: 1, Col: 4}, want: gpkg.ErrInvalidTile},
		{name: "negative zoom", table: gpkgtest.DefaultTable, tile: grid.Tile{Zoom: -1}, want: gpkg.ErrInvalidTile},
		{name: "unknown table", table: "other", tile: grid.Tile{}, want: gpkg.ErrTableNotFound},
		{name: "metadata table", table: "gpkg_contents", tile: grid.Tile{}, want: gpkg.ErrTableNotFound},
		{name: "table name injection", table: `tiles" WHERE 1; --`, tile: grid.Tile{}, want: gpkg.ErrTableNotFound},
		{name: "empty table name", table: "", tile: grid.Tile{}, want: gpkg.ErrTableNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, err := r.ReadTile(t.Context(), tc.table, tc.tile)
			if !errors.Is(err, tc.want) || data != nil {
				t.Errorf("ReadTile(%q, %s) = %d bytes, %v, want %v", tc.table, tc.tile, len(data), err, tc.want)
			}
		})
	}
	for _, call := range []struct {
		name string
		err  func() error
	}{
		{"Count", func() error { _, err := r.Count(t.Context(), "other"); return err }},
		{"CountByZoom", func() error { _, err := r.CountByZoom(t.Context(), "other"); return err }},
		{"SizeByZoom", func() error { _, err := r.SizeByZoom(t.Context(), "other"); return err }},
		{"Zooms", func() error { _, err := r.Zooms(t.Context(), "other"); return err }},
		{"Extent", func() error { _, err := r.Extent(t.Context(), "other"); return err }},
		{"TileMatrices", func() error { _, err := r.TileMatrices(t.Context(), "other"); return err }},
	} {
		if err := call.err(); !errors.Is(err, gpkg.ErrTableNotFound) {
			t.Errorf("%s(%q) = %v, want ErrTableNotFound", call.name, "other", err)
		}
	}
}

func TestReadTileRejectsHostileData(t *testing.T) {
	t.Parallel()
	tile := grid.Tile{Zoom: 0, Col: 1, Row: 0} // the first tile gpkgtest writes
	where := fmt.Sprintf("WHERE zoom_level = %d AND tile_column = %d AND tile_row = %d", tile.Zoom, tile.Col, tile.Row)
	big := gpkgtest.Encode(t, image.NewNRGBA(image.Rect(0, 0, 512, 512)), gpkg.PNG)
	tests := []struct {
		name string
		set  string
		want error
	}{
		{name: "text instead of a blob", set: "'not a blob'", want: gpkg.ErrCorrupt},
		{name: "integer instead of a blob", set: "42", want: gpkg.ErrCorrupt},
		{name: "blob larger than MaxTileSize", set: fmt.Sprintf("zeroblob(%d)", gpkg.MaxTileSize+1), want: gpkg.ErrTooLarge},
		{name: "blob far larger than MaxTileSize", set: fmt.Sprintf("zeroblob(%d)", 4*gpkg.MaxTileSize), want: gpkg.ErrTooLarge},
		{name: "not an image", set: "x'00112233445566778899'", want: gpkg.ErrTileFormat},
		{name: "PNG of 512x512 pixels", set: fmt.Sprintf("x'%x'", big), want: gpkg.ErrTileFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := copyFile(t, gpkgtest.Build(t))
			gpkg.Exec(t, path, "UPDATE tiles SET tile_data = "+tc.set+" "+where)
			r := open(t, path)
			data, err := r.ReadTile(t.Context(), gpkgtest.DefaultTable, tile)
			if !errors.Is(err, tc.want) {
				t.Errorf("ReadTile(%s) with tile_data = %s: %d bytes, %v, want %v", tile, tc.set, len(data), err, tc.want)
			}
		})
	}
}

func TestReaderRejectsForeignGrids(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		stmts []string
		call  func(context.Context, *gpkg.Reader) error
		want  error
	}{
		{
			name:  "zoom level beyond the grid",
			stmts: []string{"INSERT INTO tiles (zoom_level, tile_column, tile_row, tile_data) VALUES (30, 0, 0, x'00')"},
			call:  func(ctx context.Context, r *gpkg.Reader) error { _, err := r.Zooms(ctx, "tiles"); return err },
			want:  gpkg.ErrNotGrid,
		},
		{
			name:  "negative zoom level",
			stmts: []string{"INSERT INTO tiles (zoom_level, tile_column, tile_row, tile_data) VALUES (-3, 0, 0, x'00')"},
			call:  func(ctx context.Context, r *gpkg.Reader) error { _, err := r.CountByZoom(ctx, "tiles"); return err },
			want:  gpkg.ErrNotGrid,
		},
		{
			name:  "negative zoom level, sizes",
			stmts: []string{"INSERT INTO tiles (zoom_level, tile_column, tile_row, tile_data) VALUES (-3, 0, 0, x'00')"},
			call:  func(ctx context.Context, r *gpkg.Reader) error { _, err := r.SizeByZoom(ctx, "tiles"); return err },
			want:  gpkg.ErrNotGrid,
		},
		{
			name: "web mercator",
			stmts: []string{
				"INSERT INTO gpkg_spatial_ref_sys VALUES ('WGS 84 / Pseudo-Mercator', 3857, 'EPSG', 3857, 'undefined', NULL)",
				"UPDATE gpkg_contents SET srs_id = 3857",
			},
			call: func(ctx context.Context, r *gpkg.Reader) error { _, err := r.Extent(ctx, "tiles"); return err },
			want: gpkg.ErrNotGrid,
		},
		{
			name:  "extent outside the world",
			stmts: []string{"UPDATE gpkg_contents SET max_x = 500"},
			call:  func(ctx context.Context, r *gpkg.Reader) error { _, err := r.Extent(ctx, "tiles"); return err },
			want:  gpkg.ErrNotGrid,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := copyFile(t, gpkgtest.Build(t))
			gpkg.Exec(t, path, tc.stmts...)
			if err := tc.call(t.Context(), open(t, path)); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		})
	}
}

func TestExtentFallsBackToTileMatrixSet(t *testing.T) {
	t.Parallel()
	path := copyFile(t, gpkgtest.Build(t))
	gpkg.Exec(t, path, "UPDATE gpkg_contents SET min_x = NULL, min_y = NULL, max_x = NULL, max_y = NULL, srs_id = NULL")
	got, err := open(t, path).Extent(t.Context(), gpkgtest.DefaultTable)
	if err != nil || got != grid.World {
		t.Errorf("Extent() = %v, %v, want %v", got, err, grid.World)
	}
}

func TestTileMatricesReportsForeignRows(t *testing.T) {
	t.Parallel()
	path := copyFile(t, gpkgtest.Build(t))
	gpkg.Exec(t, path,
		"UPDATE gpkg_tile_matrix SET tile_width = 512 WHERE zoom_level = 1",
		"UPDATE gpkg_tile_matrix SET pixel_x_size = 'wide' WHERE zoom_level = 2")
	ms, err := open(t, path).TileMatrices(t.Context(), gpkgtest.DefaultTable)
	if err != nil {
		t.Fatalf("TileMatrices() = %v", err)
	}
	var got []bool
	for _, m := range ms {
		got = append(got, m.InGrid())
	}
	if diff := cmp.Diff([]bool{true, false, false, true, true}, got); diff != "" {
		t.Errorf("InGrid() of each row (-want +got):\n%s", diff)
	}
}

func TestReaderAfterClose(t *testing.T) {
	t.Parallel()
	r, err := gpkg.Open(t.Context(), gpkgtest.Build(t))
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	if _, err := r.Count(t.Context(), gpkgtest.DefaultTable); err != nil {
		t.Fatalf("Count() = %v", err)
	}
	for i := range 2 {
		if err := r.Close(); err != nil {
			t.Fatalf("Close() #%d = %v", i+1, err)
		}
	}
	if _, err := r.Tables(t.Context()); !errors.Is(err, gpkg.ErrClosed) {
		t.Errorf("Tables() after Close = %v, want ErrClosed", err)
	}
	if _, err := r.ReadTile(t.Context(), gpkgtest.DefaultTable, grid.Tile{Zoom: 0, Col: 1}); !errors.Is(err, gpkg.ErrClosed) {
		t.Errorf("ReadTile() after Close = %v, want ErrClosed", err)
	}
	if _, err := r.Count(t.Context(), gpkgtest.DefaultTable); !errors.Is(err, gpkg.ErrClosed) {
		t.Errorf("Count() after Close = %v, want ErrClosed", err)
	}
}

func TestReaderHonoursContext(t *testing.T) {
	t.Parallel()
	path := gpkgtest.Build(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := gpkg.Open(ctx, path); !errors.Is(err, context.Canceled) {
		t.Errorf("Open(canceled ctx) = %v, want context.Canceled", err)
	}
	r := open(t, path)
	if _, err := r.ReadTile(ctx, gpkgtest.DefaultTable, grid.Tile{Zoom: 0, Col: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadTile(canceled ctx) = %v, want context.Canceled", err)
	}
}

func TestConcurrentReads(t *testing.T) {
	t.Parallel()
	p := gpkgtest.BuildPackage(t)
	r := open(t, p.Path)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, tile := range p.Order {
				got, err := r.ReadTile(t.Context(), gpkgtest.DefaultTable, tile)
				if err != nil || !bytes.Equal(got, p.Tiles[tile]) {
					t.Errorf("ReadTile(%s) = %d bytes, %v, want %d bytes", tile, len(got), err, len(p.Tiles[tile]))
				}
			}
		})
	}
	wg.Wait()
}

func TestTableNamesAreCaseExact(t *testing.T) {
	t.Parallel()
	p := gpkgtest.BuildPackage(t, gpkgtest.WithTable("Ortho_2024"), gpkgtest.WithMaxTiles(3))
	r := open(t, p.Path)
	tables, err := r.Tables(t.Context())
	if err != nil {
		t.Fatalf("Tables() = %v", err)
	}
	if diff := cmp.Diff([]string{"Ortho_2024"}, tables); diff != "" {
		t.Errorf("Tables() (-want +got):\n%s", diff)
	}
	if n, err := r.Count(t.Context(), "Ortho_2024"); err != nil || n != 3 {
		t.Errorf("Count(%q) = %d, %v, want 3", "Ortho_2024", n, err)
	}
}
