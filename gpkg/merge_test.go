package gpkg_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/gpkg/gpkgtest"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/google/go-cmp/cmp"
)

// mergeMaxZoom is the finest zoom of mergeTiles: 24 tiles over
// gpkgtest.DefaultExtent, 1 at each of zooms 0–3, 4 at zoom 4, 16 at zoom 5.
const mergeMaxZoom grid.Zoom = 5

// mergeByZoom is the tile count per zoom of mergeTiles.
var mergeByZoom = map[grid.Zoom]int64{0: 1, 1: 1, 2: 1, 3: 1, 4: 4, 5: 16}

// mergeTiles is the pyramid over gpkgtest.DefaultExtent down to
// mergeMaxZoom, in the order grid.Pyramid gives it.
func mergeTiles() []grid.Tile {
	var tiles []grid.Tile
	for _, r := range grid.Pyramid(gpkgtest.DefaultExtent, mergeMaxZoom) {
		for tile := range r.Tiles {
			tiles = append(tiles, tile)
		}
	}
	return tiles
}

// mergeOptions are the options merged packages are created with: fixed
// clock, so files can be compared byte for byte.
func mergeOptions() gpkg.Options {
	opt := testOptions()
	opt.Identifier = "Merged export"
	opt.Description = "merged from parts"
	opt.Now = func() time.Time { return time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC) }
	return opt
}

// buildPart writes a part holding tiles, all PNG, so a tile has the same
// data in every part and in a package written directly.
func buildPart(t testing.TB, tiles []grid.Tile, opts ...gpkgtest.Option) string {
	t.Helper()
	opts = append([]gpkgtest.Option{gpkgtest.WithTiles(tiles...), gpkgtest.WithFormat(gpkg.PNG), gpkgtest.WithFileName("part.gpkg")}, opts...)
	return gpkgtest.Build(t, opts...)
}

// mergeInto merges parts into a new file with mergeOptions and fails the
// test on error.
func mergeInto(t *testing.T, parts []string) (string, gpkg.MergeResult) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "merged.gpkg")
	res, err := gpkg.Merge(t.Context(), dst, parts, mergeOptions())
	if err != nil {
		t.Fatalf("Merge(%q, %d parts) = %v", dst, len(parts), err)
	}
	return dst, res
}

// digest returns the content digest of table "tiles" in path.
func digest(t *testing.T, path string) string {
	t.Helper()
	d, err := gpkg.ContentDigest(t.Context(), path, "tiles")
	if err != nil {
		t.Fatalf("ContentDigest(%q) = %v", path, err)
	}
	return d
}

func TestMerge(t *testing.T) {
	t.Parallel()
	all := mergeTiles()
	// The digest of the same tiles written directly into one package.
	want := digest(t, buildPart(t, all))
	tests := []struct {
		name  string
		parts func(t *testing.T) []string
		want  int // distinct parts
	}{
		{
			name: "one part",
			parts: func(t *testing.T) []string {
				return []string{buildPart(t, all)}
			},
			want: 1,
		},
		{
			name: "disjoint parts",
			parts: func(t *testing.T) []string {
				return []string{buildPart(t, all[:8]), buildPart(t, all[8:16]), buildPart(t, all[16:])}
			},
			want: 3,
		},
		{
			name: "overlapping parts of re-run batches",
			parts: func(t *testing.T) []string {
				return []string{buildPart(t, all[:12]), buildPart(t, all[8:20]), buildPart(t, all), buildPart(t, all[16:])}
			},
			want: 4,
		},
		{
			name: "zoom levels spread over parts in reverse",
			parts: func(t *testing.T) []string {
				fine, coarse := all[8:], all[:8]
				return []string{buildPart(t, fine), buildPart(t, coarse)}
			},
			want: 2,
		},
		{
			name: "duplicated part paths",
			parts: func(t *testing.T) []string {
				a, b := buildPart(t, all[:12]), buildPart(t, all[12:])
				rel, err := filepath.Rel(mustGetwd(t), a)
				if err != nil {
					t.Fatal(err)
				}
				return []string{a, b, a, rel, b, filepath.Join(filepath.Dir(b), ".", filepath.Base(b))}
			},
			want: 2,
		},
		{
			name: "a part in WAL mode",
			parts: func(t *testing.T) []string {
				wal := buildPart(t, all[12:])
				gpkg.Exec(t, wal, "PRAGMA journal_mode = WAL")
				return []string{buildPart(t, all[:12]), wal}
			},
			want: 2,
		},
		{
			name: "a part without tiles",
			parts: func(t *testing.T) []string {
				return []string{buildPart(t, all[:10]), buildPart(t, nil), buildPart(t, all[10:])}
			},
			want: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parts := tc.parts(t)
			before := readParts(t, parts)
			path, res := mergeInto(t, parts)
			if diff := cmp.Diff(before, readParts(t, parts)); diff != "" {
				t.Errorf("parts and their directories after Merge (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(gpkg.MergeResult{Tiles: int64(len(all)), ByZoom: mergeByZoom, Parts: tc.want}, res); diff != "" {
				t.Errorf("Merge() (-want +got):\n%s", diff)
			}
			checkMerged(t, path, all)
			if got := digest(t, path); got != want {
				t.Errorf("ContentDigest(merged) = %s, want %s (the digest of the tiles written directly)", got, want)
			}
		})
	}
}

// readParts returns the content of each part and the names of the files
// beside it, to check that Merge changes neither.
func readParts(t *testing.T, parts []string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, p := range parts {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(filepath.Dir(p))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		got[p] = fmt.Sprintf("sha256 %x, directory %v", sha256.Sum256(data), names)
	}
	return got
}

// mustGetwd returns the working directory.
func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// checkMerged checks that path is a complete package of mergeOptions
// holding exactly tiles, each with its PNG data.
func checkMerged(t *testing.T, path string, tiles []grid.Tile) {
	t.Helper()
	ctx := t.Context()
	opt := mergeOptions()
	r := open(t, path)
	if n, err := r.Count(ctx, opt.Table); err != nil || n != int64(len(tiles)) {
		t.Errorf("Count() = %d, %v, want %d", n, err, len(tiles))
	}
	byZoom, err := r.CountByZoom(ctx, opt.Table)
	if err != nil {
		t.Fatalf("CountByZoom() = %v", err)
	}
	if diff := cmp.Diff(mergeByZoom, byZoom); diff != "" {
		t.Errorf("CountByZoom() (-want +got):\n%s", diff)
	}
	for _, tile := range tiles {
		got, err := r.ReadTile(ctx, opt.Table, tile)
		if err != nil || !bytes.Equal(got, gpkgtest.Image(t, tile, gpkg.PNG)) {
			t.Errorf("ReadTile(%s) = %d bytes, %v, want the PNG of the part", tile, len(got), err)
		}
	}
	ms, err := r.TileMatrices(ctx, opt.Table)
	if err != nil {
		t.Fatalf("TileMatrices() = %v", err)
	}
	var zooms []grid.Zoom
	for _, m := range ms {
		if !m.InGrid() {
			t.Errorf("tile matrix %+v is not in the grid", m)
		}
		zooms = append(zooms, m.Zoom)
	}
	if diff := cmp.Diff([]grid.Zoom{0, 1, 2, 3, 4, 5}, zooms); diff != "" {
		t.Errorf("tile matrix zooms (-want +got):\n%s", diff)
	}
	if b, err := r.Extent(ctx, opt.Table); err != nil || b != opt.Extent {
		t.Errorf("Extent() = %v, %v, want %v", b, err, opt.Extent)
	}
	got := gpkg.QueryString(t, path, "SELECT identifier || '|' || description || '|' || last_change FROM gpkg_contents")
	if want := "Merged export|merged from parts|2025-05-06T07:08:09.000Z"; got != want {
		t.Errorf("gpkg_contents = %q, want %q", got, want)
	}
	if got := gpkg.QueryString(t, path, "PRAGMA page_size"); got != fmt.Sprint(gpkg.PageSize) {
		t.Errorf("page_size = %s, want %d", got, gpkg.PageSize)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 {
		t.Errorf("ReadDir(%s) = %v, %v, want only the merged file", filepath.Dir(path), entries, err)
	}
}

func TestMergeIsReproducible(t *testing.T) {
	t.Parallel()
	all := mergeTiles()
	parts := []string{buildPart(t, all[:15]), buildPart(t, all[10:])}
	read := func(path string) []byte {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	first, _ := mergeInto(t, parts)
	again, _ := mergeInto(t, parts)
	if a, b := read(first), read(again); !bytes.Equal(a, b) {
		t.Errorf("merging the same parts twice gave different files (%d and %d bytes)", len(a), len(b))
	}
	// The whole finalize step, metadata included, is reproducible too.
	for _, p := range []string{first, again} {
		writeMetadata(t, p, exportDocument, time.Date(2025, 5, 6, 8, 0, 0, 0, time.UTC))
	}
	if a, b := read(first), read(again); !bytes.Equal(a, b) {
		t.Errorf("the same metadata written into equal packages gave different files (%d and %d bytes)", len(a), len(b))
	}
	// In the other order the overlapping tiles land under other row ids:
	// the same tiles, so the same content digest, but not the same bytes.
	reversed, _ := mergeInto(t, []string{parts[1], parts[0]})
	if a, b := digest(t, first), digest(t, reversed); a != b {
		t.Errorf("ContentDigest = %s in order and %s reversed, want equal", a, b)
	}
	checkMerged(t, reversed, all)
}

func TestMergeRejectsBadParts(t *testing.T) {
	t.Parallel()
	all := mergeTiles()
	good := buildPart(t, all[:8])
	// damaged returns a part of all[8:] with stmts run on it.
	damaged := func(stmts ...string) func(t *testing.T) string {
		return func(t *testing.T) string {
			t.Helper()
			path := buildPart(t, all[8:])
			gpkg.Exec(t, path, stmts...)
			return path
		}
	}
	smallPNG := gpkgtest.Encode(t, image.NewNRGBA(image.Rect(0, 0, 128, 128)), gpkg.PNG)
	tests := []struct {
		name string
		part func(t *testing.T) string
		want error
	}{
		{
			name: "missing file",
			part: func(t *testing.T) string { return filepath.Join(t.TempDir(), "missing.gpkg") },
			want: fs.ErrNotExist,
		},
		{
			name: "text file",
			part: func(t *testing.T) string { return writeFile(t, []byte(strings.Repeat("not a geopackage\n", 64))) },
			want: gpkg.ErrNotGeoPackage,
		},
		{
			name: "empty file",
			part: func(t *testing.T) string { return writeFile(t, nil) },
			want: gpkg.ErrNotGeoPackage,
		},
		{
			name: "SQLite database that is not a GeoPackage",
			part: func(t *testing.T) string {
				path := filepath.Join(t.TempDir(), "plain.sqlite")
				gpkg.Exec(t, path, "CREATE TABLE tiles (zoom_level, tile_column, tile_row, tile_data)")
				return path
			},
			want: gpkg.ErrNotGeoPackage,
		},
		{
			name: "truncated part",
			part: func(t *testing.T) string {
				data, err := os.ReadFile(buildPart(t, all[8:]))
				if err != nil {
					t.Fatal(err)
				}
				return writeFile(t, data[:len(data)/gpkg.PageSize/2*gpkg.PageSize])
			},
			want: gpkg.ErrCorrupt,
		},
		{
			name: "another table name",
			part: func(t *testing.T) string { return buildPart(t, all[8:], gpkgtest.WithTable("other")) },
			want: gpkg.ErrTableNotFound,
		},
		{
			name: "the table is a view",
			part: damaged("ALTER TABLE tiles RENAME TO real_tiles", "CREATE VIEW tiles AS SELECT * FROM real_tiles"),
			want: gpkg.ErrTableNotFound,
		},
		{
			name: "no tile matrix table",
			part: damaged("DROP TABLE gpkg_tile_matrix"),
			want: gpkg.ErrNotTiles,
		},
		{
			name: "tile matrix set in another CRS",
			part: damaged("UPDATE gpkg_tile_matrix_set SET srs_id = 0"),
			want: gpkg.ErrNotGrid,
		},
		{
			name: "tile matrix set over other bounds",
			part: damaged("UPDATE gpkg_tile_matrix_set SET min_x = -20037508.342789244, max_x = 20037508.342789244"),
			want: gpkg.ErrNotGrid,
		},
		{
			name: "no tile matrix set row",
			part: damaged("DELETE FROM gpkg_tile_matrix_set"),
			want: gpkg.ErrNotGrid,
		},
		{
			name: "tile matrix of another resolution",
			part: damaged("UPDATE gpkg_tile_matrix SET pixel_x_size = pixel_x_size * 2 WHERE zoom_level = 5"),
			want: gpkg.ErrNotGrid,
		},
		{
			name: "tile column outside the matrix",
			part: damaged("UPDATE tiles SET tile_column = 64 WHERE id = 3"),
			want: gpkg.ErrNotGrid,
		},
		{
			name: "zoom level past the grid",
			part: damaged("UPDATE tiles SET zoom_level = 23 WHERE id = 1"),
			want: gpkg.ErrNotGrid,
		},
		{
			name: "text zoom level",
			part: damaged("UPDATE tiles SET zoom_level = 'four' WHERE id = 1"),
			want: gpkg.ErrNotGrid,
		},
		{
			name: "tile data is text",
			part: damaged("UPDATE tiles SET tile_data = 'PNG' WHERE id = 2"),
			want: gpkg.ErrCorrupt,
		},
		{
			name: "tile data is not an image",
			part: damaged("UPDATE tiles SET tile_data = x'00010203' WHERE id = 2"),
			want: gpkg.ErrTileFormat,
		},
		{
			name: "PNG of the wrong size",
			part: damaged(fmt.Sprintf("UPDATE tiles SET tile_data = x'%X' WHERE id = 2", smallPNG)),
			want: gpkg.ErrTileFormat,
		},
		{
			name: "tile data over MaxTileSize",
			part: damaged(fmt.Sprintf("UPDATE tiles SET tile_data = CAST(x'%X' || zeroblob(%d) AS BLOB) WHERE id = 2", gpkgtest.Image(t, grid.Tile{}, gpkg.PNG), gpkg.MaxTileSize)),
			want: gpkg.ErrTooLarge,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bad := tc.part(t)
			dst := filepath.Join(t.TempDir(), "merged.gpkg")
			_, err := gpkg.Merge(t.Context(), dst, []string{good, bad}, mergeOptions())
			if !errors.Is(err, tc.want) {
				t.Fatalf("Merge(good, %s) = %v, want %v", tc.name, err, tc.want)
			}
			if !strings.Contains(err.Error(), bad) {
				t.Errorf("Merge(good, %s) = %q, want the message to name the part %s", tc.name, err, bad)
			}
			t.Logf("Merge(good, %s) = %v", tc.name, err)
			checkNothingAt(t, dst)
		})
	}
}

// checkNothingAt fails t if path, or a journal beside it, exists.
func checkNothingAt(t *testing.T, path string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 0 {
		t.Errorf("ReadDir(%s) = %v, %v, want nothing left behind", filepath.Dir(path), entries, err)
	}
}

func TestMergeArguments(t *testing.T) {
	t.Parallel()
	part := buildPart(t, mergeTiles()[:3])
	existing := filepath.Join(t.TempDir(), "existing.gpkg")
	if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	invalid := mergeOptions()
	invalid.Table = "gpkg_tiles"
	tests := []struct {
		name  string
		dst   string
		parts []string
		opt   gpkg.Options
		want  error
	}{
		{name: "no parts", parts: nil, opt: mergeOptions(), want: gpkg.ErrNoParts},
		{name: "empty list", parts: []string{}, opt: mergeOptions(), want: gpkg.ErrNoParts},
		// The count is checked before any file is looked at.
		{name: "too many parts", parts: make([]string, gpkg.MaxMergeParts+1), opt: mergeOptions(), want: gpkg.ErrTooManyParts},
		{name: "invalid options", parts: []string{part}, opt: invalid, want: gpkg.ErrInvalidTable},
		{name: "destination exists", dst: existing, parts: []string{part}, opt: mergeOptions(), want: gpkg.ErrExists},
		{name: "destination is a part", dst: part, parts: []string{part}, opt: mergeOptions(), want: gpkg.ErrExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := tc.dst
			if dst == "" {
				dst = filepath.Join(t.TempDir(), "merged.gpkg")
				defer checkNothingAt(t, dst)
			}
			res, err := gpkg.Merge(t.Context(), dst, tc.parts, tc.opt)
			if !errors.Is(err, tc.want) {
				t.Errorf("Merge(%d parts) = %+v, %v, want %v", len(tc.parts), res, err, tc.want)
			}
		})
	}
	if got, err := os.ReadFile(existing); err != nil || string(got) != "keep me" {
		t.Errorf("existing file = %q, %v after Merge, want it untouched", got, err)
	}
	if n, err := open(t, part).Count(t.Context(), "tiles"); err != nil || n != 3 {
		t.Errorf("part Count() = %d, %v after Merge onto it, want 3", n, err)
	}
}

// cancelOnDone is a context that cancels itself on the n-th call of Done,
// so a test can stop Merge at each point where it (or database/sql, or the
// driver) looks at ctx.
type cancelOnDone struct {
	context.Context
	cancel context.CancelFunc
	left   atomic.Int64
}

func newCancelOnDone(t *testing.T, n int64) *cancelOnDone {
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	c := &cancelOnDone{Context: ctx, cancel: cancel}
	c.left.Store(n)
	return c
}

func (c *cancelOnDone) Done() <-chan struct{} {
	if c.left.Add(-1) == 0 {
		c.cancel()
	}
	return c.Context.Done()
}

func TestMergeHonoursContext(t *testing.T) {
	t.Parallel()
	all := mergeTiles()
	parts := []string{buildPart(t, all[:8]), buildPart(t, all[8:16]), buildPart(t, all[16:])}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dst := filepath.Join(t.TempDir(), "merged.gpkg")
	if _, err := gpkg.Merge(ctx, dst, parts, mergeOptions()); !errors.Is(err, context.Canceled) {
		t.Errorf("Merge(canceled ctx) = %v, want context.Canceled", err)
	}
	checkNothingAt(t, dst)

	// Cancel at the first, second, … look at ctx, until Merge gets done
	// before the cancellation: every earlier run must fail with
	// context.Canceled and leave nothing behind.
	const maxLooks = 5000
	for n := int64(1); ; n++ {
		if n > maxLooks {
			t.Fatalf("Merge still canceled after %d looks at ctx", maxLooks)
		}
		dst := filepath.Join(t.TempDir(), "merged.gpkg")
		_, err := gpkg.Merge(newCancelOnDone(t, n), dst, parts, mergeOptions())
		if err == nil {
			t.Logf("Merge finished once it could look at ctx %d times", n)
			checkMerged(t, dst, all)
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Merge(ctx canceled at look %d) = %v, want context.Canceled", n, err)
		}
		checkNothingAt(t, dst)
	}
}

// BenchmarkMerge measures merging 10,000 small tiles (one b.Loop
// iteration): "disjoint" is 10 parts of 1,000 tiles each; "rerun" lists
// each of them twice, as copies, as when every batch ran twice, so 20,000
// rows are read and 10,000 written. Building the parts is outside the
// timing; creating, syncing and removing the merged file is inside.
func BenchmarkMerge(b *testing.B) {
	const parts, perPart = 10, 1000
	data := [][]byte{gpkgtest.Image(b, grid.Tile{}, gpkg.PNG), gpkgtest.Image(b, grid.Tile{}, gpkg.JPEG)}
	dir := b.TempDir()
	var paths []string
	for i := range parts {
		path := filepath.Join(dir, fmt.Sprintf("part%02d.gpkg", i))
		w, err := gpkg.Create(b.Context(), path, testOptions())
		if err != nil {
			b.Fatal(err)
		}
		for col := range int64(perPart) {
			tile := grid.Tile{Zoom: 20, Col: col, Row: int64(i)}
			if err := w.Put(b.Context(), tile, data[col%2]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, path)
	}
	var copies []string
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		c := strings.TrimSuffix(p, ".gpkg") + "-rerun.gpkg"
		if err := os.WriteFile(c, raw, 0o644); err != nil {
			b.Fatal(err)
		}
		copies = append(copies, c)
	}
	for _, bc := range []struct {
		name  string
		parts []string
	}{
		{name: "disjoint", parts: paths},
		{name: "rerun", parts: slices.Concat(paths, copies)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dst := filepath.Join(b.TempDir(), "merged.gpkg")
			b.ReportAllocs()
			var merged int64
			for b.Loop() {
				res, err := gpkg.Merge(b.Context(), dst, bc.parts, testOptions())
				if err != nil {
					b.Fatal(err)
				}
				if res.Tiles != parts*perPart {
					b.Fatalf("Merge() = %d tiles, want %d", res.Tiles, parts*perPart)
				}
				merged += res.Tiles
				if err := os.Remove(dst); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(merged)/b.Elapsed().Seconds(), "tiles/s")
		})
	}
}
