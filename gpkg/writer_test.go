package gpkg_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/gpkg/gpkgtest"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/google/go-cmp/cmp"
)

// testOptions are valid options for a package over gpkgtest.DefaultExtent.
func testOptions() gpkg.Options {
	return gpkg.Options{Table: "tiles", Extent: gpkgtest.DefaultExtent}
}

// createBatched is create with testOptions and batches of size tiles.
func createBatched(t *testing.T, size int) (*gpkg.Writer, string) {
	t.Helper()
	opt := testOptions()
	opt.BatchSize = size
	return create(t, opt)
}

// create creates a package in a temp dir and aborts it at cleanup unless
// the test closed it.
func create(t *testing.T, opt gpkg.Options) (*gpkg.Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.gpkg")
	w, err := gpkg.Create(t.Context(), path, opt)
	if err != nil {
		t.Fatalf("Create(%q) = %v", path, err)
	}
	t.Cleanup(func() { _ = w.Abort() })
	return w, path
}

// open opens path and closes the Reader at cleanup.
func open(t *testing.T, path string) *gpkg.Reader {
	t.Helper()
	r, err := gpkg.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return r
}

// checkOnlyFile fails t unless path is the only file in its directory: no
// journal, WAL or temporary file is left beside it after what was done.
func checkOnlyFile(t *testing.T, path, after string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{filepath.Base(path)}, names); diff != "" {
		t.Errorf("files after %s (-want +got):\n%s", after, diff)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	p := gpkgtest.BuildPackage(t)
	r := open(t, p.Path)
	ctx := t.Context()

	tables, err := r.Tables(ctx)
	if err != nil {
		t.Fatalf("Tables() = %v", err)
	}
	if diff := cmp.Diff([]string{gpkgtest.DefaultTable}, tables); diff != "" {
		t.Errorf("Tables() (-want +got):\n%s", diff)
	}
	for _, tile := range p.Order {
		got, err := r.ReadTile(ctx, gpkgtest.DefaultTable, tile)
		if err != nil {
			t.Fatalf("ReadTile(%s) = %v", tile, err)
		}
		if !bytes.Equal(got, p.Tiles[tile]) {
			t.Errorf("ReadTile(%s) = %d bytes, want the %d bytes written", tile, len(got), len(p.Tiles[tile]))
		}
	}
	n, err := r.Count(ctx, gpkgtest.DefaultTable)
	if err != nil || n != 8 {
		t.Errorf("Count() = %d, %v, want 8", n, err)
	}
	byZoom, err := r.CountByZoom(ctx, gpkgtest.DefaultTable)
	if err != nil {
		t.Fatalf("CountByZoom() = %v", err)
	}
	if diff := cmp.Diff(map[grid.Zoom]int64{0: 1, 1: 1, 2: 1, 3: 1, 4: 4}, byZoom); diff != "" {
		t.Errorf("CountByZoom() (-want +got):\n%s", diff)
	}
	wantSizes := map[grid.Zoom]gpkg.ZoomSize{}
	for tile, data := range p.Tiles {
		s := wantSizes[tile.Zoom]
		s.Tiles++
		s.Bytes += int64(len(data))
		wantSizes[tile.Zoom] = s
	}
	if sizes, err := r.SizeByZoom(ctx, gpkgtest.DefaultTable); err != nil || !cmp.Equal(wantSizes, sizes) {
		t.Errorf("SizeByZoom() = %v, %v; want the tiles and bytes written, %v", sizes, err, wantSizes)
	}
	zooms, err := r.Zooms(ctx, gpkgtest.DefaultTable)
	if err != nil {
		t.Fatalf("Zooms() = %v", err)
	}
	if diff := cmp.Diff([]grid.Zoom{0, 1, 2, 3, 4}, zooms); diff != "" {
		t.Errorf("Zooms() (-want +got):\n%s", diff)
	}
	extent, err := r.Extent(ctx, gpkgtest.DefaultTable)
	if err != nil || extent != gpkgtest.DefaultExtent {
		t.Errorf("Extent() = %v, %v, want %v", extent, err, gpkgtest.DefaultExtent)
	}
	ms, err := r.TileMatrices(ctx, gpkgtest.DefaultTable)
	if err != nil {
		t.Fatalf("TileMatrices() = %v", err)
	}
	var want []gpkg.TileMatrix
	for z := grid.Zoom(0); z <= 4; z++ {
		want = append(want, gpkg.TileMatrix{
			Zoom: z, MatrixWidth: 2 << z, MatrixHeight: 1 << z, TileWidth: 256, TileHeight: 256,
			PixelXSize: 0.703125 / float64(int(1)<<z), PixelYSize: 0.703125 / float64(int(1)<<z),
		})
	}
	if diff := cmp.Diff(want, ms); diff != "" {
		t.Errorf("TileMatrices() (-want +got):\n%s", diff)
	}
	for _, m := range ms {
		if !m.InGrid() {
			t.Errorf("%+v.InGrid() = false, want true", m)
		}
	}
}

func TestPutIsIdempotent(t *testing.T) {
	t.Parallel()
	opt := testOptions()
	opt.BatchSize = 2 // re-puts land in the same and in later transactions
	w, path := create(t, opt)
	ctx := t.Context()
	a := grid.Tile{Zoom: 4, Col: 18, Row: 4}
	b := grid.Tile{Zoom: 4, Col: 19, Row: 4}
	first := gpkgtest.Image(t, a, gpkg.PNG)
	second := gpkgtest.Image(t, b, gpkg.JPEG)
	for i, put := range []struct {
		tile grid.Tile
		data []byte
	}{
		{a, first}, {a, first}, {b, first}, {a, first}, {a, second}, {a, second},
	} {
		if err := w.Put(ctx, put.tile, put.data); err != nil {
			t.Fatalf("Put #%d (%s) = %v", i, put.tile, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	r := open(t, path)
	if n, err := r.Count(ctx, opt.Table); err != nil || n != 2 {
		t.Errorf("Count() = %d, %v, want 2", n, err)
	}
	for tile, want := range map[grid.Tile][]byte{a: second, b: first} {
		got, err := r.ReadTile(ctx, opt.Table, tile)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ReadTile(%s) = %d bytes, %v, want the last %d bytes put", tile, len(got), err, len(want))
		}
	}
}

func TestCreateIsReproducible(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	build := func() []byte {
		opt := testOptions()
		opt.Now = func() time.Time { return now }
		w, path := create(t, opt)
		for _, r := range grid.Pyramid(opt.Extent, 4) {
			for tile := range r.Tiles {
				if err := w.Put(t.Context(), tile, gpkgtest.Image(t, tile, gpkg.PNG)); err != nil {
					t.Fatalf("Put(%s) = %v", tile, err)
				}
			}
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if a, b := build(), build(); !bytes.Equal(a, b) {
		t.Errorf("two packages from the same tiles and clock differ (%d and %d bytes)", len(a), len(b))
	}
}

func TestPutRejectsAddressOutsideGrid(t *testing.T) {
	t.Parallel()
	w, _ := create(t, testOptions())
	data := gpkgtest.Image(t, grid.Tile{}, gpkg.PNG)
	tests := []struct {
		name string
		tile grid.Tile
	}{
		{name: "negative zoom", tile: grid.Tile{Zoom: -1}},
		{name: "zoom past MaxZoom", tile: grid.Tile{Zoom: grid.MaxZoom + 1}},
		{name: "negative column", tile: grid.Tile{Zoom: 3, Col: -1}},
		{name: "column = matrix width", tile: grid.Tile{Zoom: 3, Col: 16}},
		{name: "negative row", tile: grid.Tile{Zoom: 3, Row: -1}},
		{name: "row = matrix height", tile: grid.Tile{Zoom: 3, Row: 8}},
		{name: "zoom 0 second row", tile: grid.Tile{Zoom: 0, Col: 1, Row: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := w.Put(t.Context(), tc.tile, data)
			if !errors.Is(err, gpkg.ErrInvalidTile) {
				t.Errorf("Put(%s) = %v, want ErrInvalidTile", tc.tile, err)
			}
		})
	}
	// The last valid tile of a zoom is accepted, and the writer stays usable.
	for _, tile := range []grid.Tile{{Zoom: 3, Col: 15, Row: 7}, {Zoom: grid.MaxZoom, Col: grid.MaxZoom.MatrixWidth() - 1, Row: grid.MaxZoom.MatrixHeight() - 1}} {
		if err := w.Put(t.Context(), tile, data); err != nil {
			t.Errorf("Put(%s) = %v, want nil", tile, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
}

func TestPutRejectsBadData(t *testing.T) {
	t.Parallel()
	w, _ := create(t, testOptions())
	tile := grid.Tile{Zoom: 1, Col: 2, Row: 1}
	tileImg := image.NewNRGBA(image.Rect(0, 0, 256, 256))
	validPNG := gpkgtest.Encode(t, tileImg, gpkg.PNG)
	padded := func(n int) []byte {
		// A valid PNG followed by junk: only the header is decoded, so only
		// the size limit can reject it.
		return append(append([]byte{}, validPNG...), make([]byte, n-len(validPNG))...)
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{name: "nil", data: nil, want: gpkg.ErrTileFormat},
		{name: "garbage", data: []byte("not an image at all"), want: gpkg.ErrTileFormat},
		{name: "GIF", data: gpkgtest.Encode(t, tileImg, "gif"), want: gpkg.ErrTileFormat},
		{name: "WebP magic", data: []byte("RIFF\x00\x00\x00\x00WEBPVP8 "), want: gpkg.ErrTileFormat},
		{name: "PNG magic only", data: []byte("\x89PNG\r\n\x1a\n"), want: gpkg.ErrTileFormat},
		{name: "JPEG magic only", data: []byte{0xff, 0xd8, 0xff, 0xe0}, want: gpkg.ErrTileFormat},
		{name: "PNG 128x128", data: gpkgtest.Encode(t, image.NewNRGBA(image.Rect(0, 0, 128, 128)), gpkg.PNG), want: gpkg.ErrTileFormat},
		{name: "JPEG 512x256", data: gpkgtest.Encode(t, image.NewRGBA(image.Rect(0, 0, 512, 256)), gpkg.JPEG), want: gpkg.ErrTileFormat},
		{name: "one byte over MaxTileSize", data: padded(gpkg.MaxTileSize + 1), want: gpkg.ErrTooLarge},
		{name: "exactly MaxTileSize", data: padded(gpkg.MaxTileSize), want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := w.Put(t.Context(), tile, tc.data)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Put(%s, %s) = %v, want %v", tile, tc.name, err, tc.want)
			}
		})
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
}

func TestCreateErrors(t *testing.T) {
	t.Parallel()
	existing := filepath.Join(t.TempDir(), "existing.gpkg")
	if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	withJournal := filepath.Join(t.TempDir(), "journal.gpkg")
	if err := os.WriteFile(withJournal+"-journal", []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		opt  gpkg.Options
		want error
	}{
		{name: "file exists", path: existing, opt: testOptions(), want: gpkg.ErrExists},
		{name: "stale journal beside it", path: withJournal, opt: testOptions(), want: gpkg.ErrExists},
		{name: "missing directory", path: filepath.Join(t.TempDir(), "no", "such.gpkg"), opt: testOptions(), want: fs.ErrNotExist},
		{name: "invalid options", path: filepath.Join(t.TempDir(), "x.gpkg"), opt: gpkg.Options{Table: "1x"}, want: gpkg.ErrInvalidOptions},
	}
	// Sequential subtests: the checks after the loop must see their effects.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := gpkg.Create(t.Context(), tc.path, tc.opt)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Create(%q) = %v, %v, want %v", tc.path, w, err, tc.want)
			}
		})
	}
	if got, err := os.ReadFile(existing); err != nil || string(got) != "keep me" {
		t.Errorf("existing file = %q, %v after Create, want it untouched", got, err)
	}
	if _, err := os.Stat(withJournal); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(%q) = %v, want ErrNotExist: a refused Create must leave nothing", withJournal, err)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		table string
		edit  func(*gpkg.Options)
		want  []error // nil: valid
	}{
		{name: "valid", table: "tiles"},
		{name: "underscore first", table: "_t1"},
		{name: "mixed case and digits", table: "Layer_2024_v3"},
		{name: "max length", table: string(bytes.Repeat([]byte("a"), gpkg.MaxTableNameLength))},
		{name: "gpkg inside the name", table: "my_gpkg_tiles"},
		{name: "empty", table: "", want: []error{gpkg.ErrInvalidTable}},
		{name: "too long", table: string(bytes.Repeat([]byte("a"), gpkg.MaxTableNameLength+1)), want: []error{gpkg.ErrInvalidTable}},
		{name: "starts with a digit", table: "2tiles", want: []error{gpkg.ErrInvalidTable}},
		{name: "gpkg_ prefix", table: "gpkg_tiles", want: []error{gpkg.ErrInvalidTable}},
		{name: "GPKG_ prefix", table: "GPKG_Tiles", want: []error{gpkg.ErrInvalidTable}},
		{name: "sqlite_ prefix", table: "sqlite_tiles", want: []error{gpkg.ErrInvalidTable}},
		{name: "space", table: "my tiles", want: []error{gpkg.ErrInvalidTable}},
		{name: "hyphen", table: "my-tiles", want: []error{gpkg.ErrInvalidTable}},
		{name: "quote injection", table: `t"; DROP TABLE gpkg_contents; --`, want: []error{gpkg.ErrInvalidTable}},
		{name: "non-ASCII letter", table: "tuiles_é", want: []error{gpkg.ErrInvalidTable}},
		{name: "NUL byte", table: "t\x00", want: []error{gpkg.ErrInvalidTable}},
		{name: "zero extent", table: "t", edit: func(o *gpkg.Options) { o.Extent = grid.BBox{} }, want: []error{grid.ErrBBox}},
		{name: "extent outside the world", table: "t", edit: func(o *gpkg.Options) { o.Extent.MaxX = 181 }, want: []error{grid.ErrBBox}},
		{name: "negative batch size", table: "t", edit: func(o *gpkg.Options) { o.BatchSize = -1 }, want: []error{gpkg.ErrInvalidOptions}},
		{
			name: "every problem at once", table: "gpkg_x",
			edit: func(o *gpkg.Options) { o.Extent = grid.BBox{}; o.BatchSize = -5 },
			want: []error{gpkg.ErrInvalidTable, grid.ErrBBox},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opt := testOptions()
			opt.Table = tc.table
			if tc.edit != nil {
				tc.edit(&opt)
			}
			err := opt.Validate()
			if tc.want == nil {
				if err != nil {
					t.Errorf("Options{Table: %q}.Validate() = %v, want nil", tc.table, err)
				}
				if err := gpkg.ValidateTable(tc.table); err != nil {
					t.Errorf("ValidateTable(%q) = %v, want nil", tc.table, err)
				}
				return
			}
			if !errors.Is(err, gpkg.ErrInvalidOptions) {
				t.Errorf("Options{Table: %q}.Validate() = %v, want ErrInvalidOptions", tc.table, err)
			}
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Errorf("Options{Table: %q}.Validate() = %v, want it to wrap %v", tc.table, err, want)
				}
			}
		})
	}
}

func TestAbortRemovesFile(t *testing.T) {
	t.Parallel()
	w, path := create(t, testOptions())
	tile := grid.Tile{Zoom: 2, Col: 4, Row: 1}
	if err := w.Put(t.Context(), tile, gpkgtest.Image(t, tile, gpkg.JPEG)); err != nil {
		t.Fatalf("Put(%s) = %v", tile, err)
	}
	for i := range 2 {
		if err := w.Abort(); err != nil {
			t.Fatalf("Abort() #%d = %v", i+1, err)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 0 {
		t.Errorf("ReadDir after Abort = %v, %v, want an empty directory", entries, err)
	}
	if err := w.Put(t.Context(), tile, gpkgtest.Image(t, tile, gpkg.JPEG)); !errors.Is(err, gpkg.ErrClosed) {
		t.Errorf("Put after Abort = %v, want ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Abort = %v, want nil", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(%q) after Abort and Close = %v, want ErrNotExist", path, err)
	}
}

func TestCloseLeavesOneSelfContainedFile(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	opt := testOptions()
	opt.Now = func() time.Time { return now }
	w, path := create(t, opt)
	tile := grid.Tile{Zoom: 4, Col: 18, Row: 5}
	if err := w.Put(t.Context(), tile, gpkgtest.Image(t, tile, gpkg.PNG)); err != nil {
		t.Fatalf("Put(%s) = %v", tile, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	for i := range 2 {
		if err := w.Close(); err != nil {
			t.Errorf("Close() again = %v, want nil", err)
		}
		if err := w.Abort(); err != nil {
			t.Errorf("Abort() #%d after Close = %v, want nil", i+1, err)
		}
	}
	if err := w.Put(t.Context(), tile, gpkgtest.Image(t, tile, gpkg.PNG)); !errors.Is(err, gpkg.ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}

	checkOnlyFile(t, path, "Close")

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type header struct {
		Magic                     string
		PageSize                  int
		WriteVersion, ReadVersion byte // 1: rollback journal, 2: WAL
		UserVersion, AppID        uint32
	}
	be := binary.BigEndian
	got := header{
		Magic: string(data[:16]), PageSize: int(be.Uint16(data[16:])),
		WriteVersion: data[18], ReadVersion: data[19],
		UserVersion: be.Uint32(data[60:]), AppID: be.Uint32(data[68:]),
	}
	want := header{
		Magic: "SQLite format 3\x00", PageSize: gpkg.PageSize,
		WriteVersion: 1, ReadVersion: 1,
		UserVersion: gpkg.UserVersion, AppID: 0x47504B47,
	}
	if got.PageSize == 1 {
		got.PageSize = 65536 // how the header stores it
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SQLite header (-want +got):\n%s", diff)
	}
	if got := gpkg.QueryString(t, path, "SELECT typeof(last_change) || ' ' || last_change FROM gpkg_contents"); got != "text 2025-01-02T03:04:05.678Z" {
		t.Errorf("last_change = %q, want %q", got, "text 2025-01-02T03:04:05.678Z")
	}
}

func TestCloseUpdatesLastChange(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		now = time.Date(2025, 6, 1, 0, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	)
	opt := testOptions()
	opt.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(90 * time.Minute)
		return now
	}
	w, path := create(t, opt)
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	// Created at 01:30 local (23:30 UTC the day before), closed at 03:00.
	if got, want := gpkg.QueryString(t, path, "SELECT typeof(last_change) || ' ' || last_change FROM gpkg_contents"), "text 2025-06-01T01:00:00.000Z"; got != want {
		t.Errorf("last_change = %q, want %q", got, want)
	}
}

func TestWriteFailureIsStickyAndCloseRemovesFile(t *testing.T) {
	t.Parallel()
	w, path := createBatched(t, 1)
	gpkg.LimitPages(t, w, 20) // a few pages more than the empty package
	data := noiseTile(t, gpkg.PNG)
	var putErr error
	for col := int64(0); col < 64 && putErr == nil; col++ {
		putErr = w.Put(t.Context(), grid.Tile{Zoom: 6, Col: col}, data)
	}
	if !errors.Is(putErr, gpkg.ErrFull) {
		t.Fatalf("Put into a full database = %v, want ErrFull", putErr)
	}
	t.Logf("Put into a full database = %v", putErr)
	if err := w.Put(t.Context(), grid.Tile{Zoom: 0}, gpkgtest.Image(t, grid.Tile{}, gpkg.PNG)); !errors.Is(err, gpkg.ErrFull) {
		t.Errorf("Put after a failed write = %v, want the sticky ErrFull", err)
	}
	if err := w.Close(); !errors.Is(err, gpkg.ErrFull) {
		t.Errorf("Close after a failed write = %v, want ErrFull", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(%q) after a failed Close = %v, want ErrNotExist", path, err)
	}
}

func TestPutHonoursContext(t *testing.T) {
	t.Parallel()
	w, path := create(t, testOptions())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	tile := grid.Tile{Zoom: 0}
	if err := w.Put(ctx, tile, gpkgtest.Image(t, tile, gpkg.PNG)); !errors.Is(err, context.Canceled) {
		t.Errorf("Put(canceled ctx) = %v, want context.Canceled", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if n, err := open(t, path).Count(t.Context(), "tiles"); err != nil || n != 0 {
		t.Errorf("Count() = %d, %v, want 0", n, err)
	}
}

func TestEmptyPackage(t *testing.T) {
	t.Parallel()
	w, path := create(t, testOptions())
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	r := open(t, path)
	zooms, err := r.Zooms(t.Context(), "tiles")
	if err != nil || len(zooms) != 0 {
		t.Errorf("Zooms() = %v, %v, want none", zooms, err)
	}
	ms, err := r.TileMatrices(t.Context(), "tiles")
	if err != nil || len(ms) != 0 {
		t.Errorf("TileMatrices() = %v, %v, want none", ms, err)
	}
}

func TestConcurrentPut(t *testing.T) {
	t.Parallel()
	w, path := createBatched(t, 7)
	const workers, perWorker = 4, 25
	data := gpkgtest.Image(t, grid.Tile{}, gpkg.JPEG)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for j := range perWorker {
				tile := grid.Tile{Zoom: 10, Col: int64(i), Row: int64(j)}
				if err := w.Put(t.Context(), tile, data); err != nil {
					t.Errorf("Put(%s) = %v", tile, err)
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if n, err := open(t, path).Count(t.Context(), testOptions().Table); err != nil || n != workers*perWorker {
		t.Errorf("Count() = %d, %v, want %d", n, err, workers*perWorker)
	}
}

// BenchmarkPut measures writing 1,000 tiles (one b.Loop iteration) into an
// open package, commits included; Create and Close are outside the timing.
// "small" tiles are flat-colour images of about 1 KiB; "noise" tiles are
// incompressible, the size of busy imagery.
func BenchmarkPut(b *testing.B) {
	for _, bc := range []struct {
		name  string
		tiles [][]byte
	}{
		{name: "small", tiles: [][]byte{gpkgtest.Image(b, grid.Tile{}, gpkg.PNG), gpkgtest.Image(b, grid.Tile{}, gpkg.JPEG)}},
		{name: "noise", tiles: [][]byte{noiseTile(b, gpkg.PNG), noiseTile(b, gpkg.JPEG)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "bench.gpkg")
			w, err := gpkg.Create(b.Context(), path, testOptions())
			if err != nil {
				b.Fatal(err)
			}
			defer w.Abort() //nolint:errcheck // the benchmark keeps nothing
			b.SetBytes(int64(500 * (len(bc.tiles[0]) + len(bc.tiles[1]))))
			b.ReportAllocs()
			var row int64
			for b.Loop() {
				for col := range int64(1000) {
					// Zoom 20 has 2^21 columns and 2^20 rows: every tile is new.
					tile := grid.Tile{Zoom: 20, Col: col, Row: row}
					if err := w.Put(b.Context(), tile, bc.tiles[col%2]); err != nil {
						b.Fatal(err)
					}
				}
				row++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(row*1000), "ns/tile")
		})
	}
}

// noiseTile is a 256 × 256 tile of random pixels encoded as f: the worst
// case for compression.
func noiseTile(tb testing.TB, f gpkg.Format) []byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	img := image.NewNRGBA(image.Rect(0, 0, 256, 256))
	for y := range 256 {
		for x := range 256 {
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(rng.Uint32()), G: uint8(rng.Uint32()), B: uint8(rng.Uint32()), A: 255})
		}
	}
	data := gpkgtest.Encode(tb, img, f)
	if _, err := gpkg.CheckTileData(data); err != nil {
		tb.Fatalf("noise tile: %v", err)
	}
	return data
}

func ExampleCreate() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "export.gpkg")

	w, err := gpkg.Create(ctx, path, gpkg.Options{
		Table:  "orthophoto",
		Extent: grid.BBox{MinX: 34.8046875, MinY: 31.9482421875, MaxX: 34.82666015625, MaxY: 31.97021484375},
	})
	if err != nil {
		panic(err)
	}
	defer func() { _ = w.Abort() }() // removes the file unless Close succeeded

	img := image.NewNRGBA(image.Rect(0, 0, 256, 256))
	var tile bytes.Buffer
	if err := png.Encode(&tile, img); err != nil {
		panic(err)
	}
	for _, t := range []grid.Tile{{Zoom: 0, Col: 1, Row: 0}, {Zoom: 14, Col: 19552, Row: 5282}} {
		if err := w.Put(ctx, t, tile.Bytes()); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}

	r, err := gpkg.Open(ctx, path)
	if err != nil {
		panic(err)
	}
	defer r.Close() //nolint:errcheck // read-only
	zooms, err := r.Zooms(ctx, "orthophoto")
	if err != nil {
		panic(err)
	}
	fmt.Println(zooms)
	// Output: [0 14]
}
