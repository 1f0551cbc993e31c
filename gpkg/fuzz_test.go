package gpkg_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/gpkg/gpkgtest"
	"github.com/geoexport/exporter/internal/grid"
)

// fuzzBudget bounds one fuzz input: a hang shows up as a ctx error, which
// the targets report as a failure.
const fuzzBudget = 10 * time.Second

// sentinels are the errors every failure of Open and the Reader methods
// must wrap: the file's problems are classified, never raw driver errors.
var sentinels = []error{
	gpkg.ErrNotGeoPackage, gpkg.ErrNotTiles, gpkg.ErrCorrupt, gpkg.ErrNotGrid,
	gpkg.ErrTableNotFound, gpkg.ErrTileNotFound, gpkg.ErrTileFormat, gpkg.ErrTooLarge,
	gpkg.ErrInvalidTile, gpkg.ErrDatabase, gpkg.ErrIO, gpkg.ErrBusy,
}

// checkClassified fails t unless err is nil or wraps one of sentinels.
func checkClassified(t *testing.T, op string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: no result within %v: %v", op, fuzzBudget, err)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("%s = %v: not classified as a gpkg error", op, err)
}

// fuzzSeeds are whole files: packages gpkgtest builds (so mutations reach
// deep into valid structure) and garbage.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	for _, opts := range [][]gpkgtest.Option{
		{gpkgtest.WithMaxTiles(1), gpkgtest.WithFormat(gpkg.PNG)},
		{gpkgtest.WithMaxTiles(2), gpkgtest.WithFormat(gpkg.JPEG)},
		{gpkgtest.WithTable("t2"), gpkgtest.WithMaxZoom(2)},
	} {
		data, err := os.ReadFile(gpkgtest.Build(f, opts...))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, data, data[:len(data)/2])
	}
	return append(seeds,
		nil,
		[]byte("SQLite format 3\x00"),
		append([]byte("SQLite format 3\x00\x10\x00\x01\x01\x00\x40\x20\x20"), make([]byte, 4096-24)...),
		bytes.Repeat([]byte{0xff}, 512),
	)
}

// exercise calls every Reader method on every table and returns what
// ReadTile read successfully.
func exercise(t *testing.T, ctx context.Context, r *gpkg.Reader, extra ...grid.Tile) map[grid.Tile][]byte {
	t.Helper()
	_, err := r.Metadata(ctx)
	checkClassified(t, "Metadata", err)
	tables, err := r.Tables(ctx)
	checkClassified(t, "Tables", err)
	read := map[grid.Tile][]byte{}
	for _, table := range tables[:min(len(tables), 3)] {
		_, err := r.Count(ctx, table)
		checkClassified(t, "Count", err)
		_, err = r.CountByZoom(ctx, table)
		checkClassified(t, "CountByZoom", err)
		_, err = r.Extent(ctx, table)
		checkClassified(t, "Extent", err)
		_, err = r.TileMatrices(ctx, table)
		checkClassified(t, "TileMatrices", err)
		zooms, err := r.Zooms(ctx, table)
		checkClassified(t, "Zooms", err)
		tiles := append([]grid.Tile{}, extra...)
		for _, z := range zooms {
			tiles = append(tiles, grid.Tile{Zoom: z}, grid.Tile{Zoom: z, Col: z.MatrixWidth() - 1, Row: z.MatrixHeight() - 1})
		}
		for _, tile := range tiles {
			data, err := r.ReadTile(ctx, table, tile)
			checkClassified(t, "ReadTile", err)
			if err == nil {
				read[tile] = data
			}
		}
	}
	return read
}

// roundTrip writes tiles into a new package and checks they read back
// unchanged: whatever a Reader returns is valid input for a Writer.
func roundTrip(t *testing.T, ctx context.Context, tiles map[grid.Tile][]byte) {
	t.Helper()
	if len(tiles) == 0 {
		return
	}
	path := filepath.Join(t.TempDir(), "roundtrip.gpkg")
	w, err := gpkg.Create(ctx, path, gpkg.Options{Table: "t", Extent: grid.World})
	if err != nil {
		t.Fatalf("Create() = %v", err)
	}
	defer w.Abort() //nolint:errcheck // a no-op after Close
	for tile, data := range tiles {
		if err := w.Put(ctx, tile, data); err != nil {
			t.Fatalf("Put(%s) of data ReadTile returned = %v", tile, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	r, err := gpkg.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open(round trip) = %v", err)
	}
	defer r.Close() //nolint:errcheck // read-only
	for tile, want := range tiles {
		got, err := r.ReadTile(ctx, "t", tile)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ReadTile(%s) after round trip = %d bytes, %v, want %d bytes", tile, len(got), err, len(want))
		}
	}
}

func openFuzzInput(t *testing.T, data []byte) (context.Context, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), fuzzBudget)
	t.Cleanup(cancel)
	path := filepath.Join(t.TempDir(), "fuzz.gpkg")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return ctx, path
}

// openFuzzReader writes data to a file and opens it as a package, closed
// when the test ends; it returns the file's path. The reader is nil when
// Open refuses data, with an error checkClassified accepts.
func openFuzzReader(t *testing.T, data []byte) (context.Context, string, *gpkg.Reader) {
	t.Helper()
	ctx, path := openFuzzInput(t, data)
	r, err := gpkg.Open(ctx, path)
	checkClassified(t, "Open", err)
	if err != nil {
		return ctx, path, nil
	}
	t.Cleanup(func() { r.Close() }) //nolint:errcheck // read-only
	return ctx, path, r
}

func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, path, r := openFuzzReader(t, data)
		if r == nil {
			return
		}
		roundTrip(t, ctx, exercise(t, ctx, r))
		tables, err := r.Tables(ctx)
		checkClassified(t, "Tables", err)
		for _, table := range tables[:min(len(tables), 3)] {
			_, err := gpkg.ContentDigest(ctx, path, table)
			checkClassified(t, "ContentDigest", err)
		}
	})
}

// FuzzMerge merges a valid part and an arbitrary file as the second part:
// Merge must fail with a classified error naming the part and leave
// nothing behind, or write a package that opens and holds the tiles it
// reports.
func FuzzMerge(f *testing.F) {
	good := gpkgtest.Build(f, gpkgtest.WithMaxZoom(1), gpkgtest.WithFormat(gpkg.PNG))
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, part := openFuzzInput(t, data)
		dst := filepath.Join(t.TempDir(), "merged.gpkg")
		res, err := gpkg.Merge(ctx, dst, []string{good, part}, gpkg.Options{Table: gpkgtest.DefaultTable, Extent: grid.World})
		if err != nil {
			checkClassified(t, "Merge", err)
			if !strings.Contains(err.Error(), part) {
				t.Errorf("Merge() = %v, want the message to name the part %s", err, part)
			}
			if _, serr := os.Stat(dst); !errors.Is(serr, fs.ErrNotExist) {
				t.Errorf("Stat(dst) after a failed Merge = %v, want ErrNotExist", serr)
			}
			return
		}
		r, err := gpkg.Open(ctx, dst)
		if err != nil {
			t.Fatalf("Open(merged) = %v", err)
		}
		defer r.Close() //nolint:errcheck // read-only
		if n, err := r.Count(ctx, gpkgtest.DefaultTable); err != nil || n != res.Tiles {
			t.Errorf("Count(merged) = %d, %v, want %d", n, err, res.Tiles)
		}
		if _, err := gpkg.ContentDigest(ctx, dst, gpkgtest.DefaultTable); err != nil {
			t.Errorf("ContentDigest(merged) = %v", err)
		}
	})
}

func FuzzReadTile(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, uint8(0), int64(1), int64(0))
		f.Add(s, uint8(4), int64(18), int64(4))
		f.Add(s, uint8(23), int64(-1), int64(1<<40))
	}
	f.Fuzz(func(t *testing.T, data []byte, zoom uint8, col, row int64) {
		ctx, _, r := openFuzzReader(t, data)
		if r == nil {
			return
		}
		tables, err := r.Tables(ctx)
		checkClassified(t, "Tables", err)
		tile := grid.Tile{Zoom: grid.Zoom(zoom), Col: col, Row: row}
		read := map[grid.Tile][]byte{}
		for _, table := range tables[:min(len(tables), 3)] {
			data, err := r.ReadTile(ctx, table, tile)
			checkClassified(t, "ReadTile", err)
			if err == nil {
				if _, err := gpkg.CheckTileData(data); err != nil {
					t.Fatalf("ReadTile(%s) returned data that CheckTileData rejects: %v", tile, err)
				}
				read[tile] = data
			}
		}
		roundTrip(t, ctx, read)
	})
}
