package source_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

// storeFixture is the content of a test tile store, keyed by slash path.
type storeFixture struct {
	files map[string][]byte
	// Named tiles, to compare what a store returns.
	opaquePNG, alphaPNG, bluePNG, jpegTile, smallPNG []byte
}

func newStoreFixture(tb testing.TB) storeFixture {
	tb.Helper()
	f := storeFixture{
		opaquePNG: encodePNG(tb, gradient()),
		alphaPNG:  encodePNG(tb, halfTransparent()),
		jpegTile:  encodeJPEG(tb, gradient()),
		bluePNG:   encodePNG(tb, solid(color.NRGBA{B: 255, A: 255})),
		smallPNG:  encodePNG(tb, image.NewRGBA(image.Rect(0, 0, 16, 16))),
	}
	f.files = map[string][]byte{
		"3/2/1.png":  f.opaquePNG, // tile 3/2/1 when rows count from the top
		"3/2/6.png":  f.alphaPNG,  // tile 3/2/1 when rows count from the bottom
		"3/4/4.png":  f.opaquePNG, // png and jpg both present
		"3/4/4.jpg":  f.jpegTile,
		"3/5/5.jpeg": f.jpegTile, // only the last default extension
		"3/6/6.jpg":  f.bluePNG,  // PNG bytes behind a .jpg name
		"3/7/0.png":  []byte("<Error><Code>AccessDenied</Code></Error>"),
		"3/7/1.png":  f.smallPNG,
		"3/7/2.png":  bytes.Repeat([]byte{0}, 64),
		"3/7/3.png":  f.opaquePNG[:20], // header cut off
		"3/7/4.png":  f.opaquePNG[:40], // header intact, data cut off
		"0/0/0.png":  f.opaquePNG,
	}
	return f
}

// writeDir writes files under a new temporary directory and returns it.
func writeDir(tb testing.TB, files map[string][]byte) string {
	tb.Helper()
	dir := tb.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func newTileStore(tb testing.TB, cfg source.TileStoreConfig) *source.TileStore {
	tb.Helper()
	s, err := source.NewTileStore(cfg)
	if err != nil {
		tb.Fatalf("NewTileStore: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// storeCase is one tile read, run against every kind of store.
type storeCase struct {
	name    string
	origin  source.RowOrigin
	exts    []string
	max     int64
	tile    grid.Tile
	want    source.Tile
	wantErr error
	// wantMsg is part of the error message, such as the file's name.
	wantMsg string
}

func storeCases(f storeFixture) []storeCase {
	return []storeCase{
		{name: "top origin", tile: grid.Tile{Zoom: 3, Col: 2, Row: 1}, want: source.Tile{Data: f.opaquePNG, Format: source.PNG, Opaque: true}},
		{name: "explicit top origin", origin: source.RowOriginTop, tile: grid.Tile{Zoom: 3, Col: 2, Row: 1}, want: source.Tile{Data: f.opaquePNG, Format: source.PNG, Opaque: true}},
		{name: "bottom origin flips the row", origin: source.RowOriginBottom, tile: grid.Tile{Zoom: 3, Col: 2, Row: 1}, want: source.Tile{Data: f.alphaPNG, Format: source.PNG}},
		{name: "bottom origin zoom 0", origin: source.RowOriginBottom, tile: grid.Tile{Zoom: 0, Col: 0, Row: 0}, want: source.Tile{Data: f.opaquePNG, Format: source.PNG, Opaque: true}},
		{name: "png before jpg by default", tile: grid.Tile{Zoom: 3, Col: 4, Row: 4}, want: source.Tile{Data: f.opaquePNG, Format: source.PNG, Opaque: true}},
		{name: "configured order", exts: []string{"jpg", "png"}, tile: grid.Tile{Zoom: 3, Col: 4, Row: 4}, want: source.Tile{Data: f.jpegTile, Format: source.JPEG, Opaque: true}},
		{name: "third default extension", tile: grid.Tile{Zoom: 3, Col: 5, Row: 5}, want: source.Tile{Data: f.jpegTile, Format: source.JPEG, Opaque: true}},
		{name: "extension not configured", exts: []string{"png"}, tile: grid.Tile{Zoom: 3, Col: 5, Row: 5}, wantErr: source.ErrNoData},
		{name: "format from bytes not name", tile: grid.Tile{Zoom: 3, Col: 6, Row: 6}, want: source.Tile{Data: f.bluePNG, Format: source.PNG, Opaque: true}},
		{name: "missing tile", tile: grid.Tile{Zoom: 3, Col: 0, Row: 0}, wantErr: source.ErrNoData},
		{name: "missing zoom", tile: grid.Tile{Zoom: 12, Col: 0, Row: 0}, wantErr: source.ErrNoData},
		{name: "bottom origin reads no top row", origin: source.RowOriginBottom, tile: grid.Tile{Zoom: 3, Col: 2, Row: 6}, want: source.Tile{Data: f.opaquePNG, Format: source.PNG, Opaque: true}},
		{name: "error page", tile: grid.Tile{Zoom: 3, Col: 7, Row: 0}, wantErr: source.ErrInvalidData, wantMsg: "3/7/0.png is not a PNG or JPEG image"},
		{name: "wrong size", tile: grid.Tile{Zoom: 3, Col: 7, Row: 1}, wantErr: source.ErrInvalidData, wantMsg: "3/7/1.png is 16 × 16 pixels, want 256 × 256"},
		{name: "zeros", tile: grid.Tile{Zoom: 3, Col: 7, Row: 2}, wantErr: source.ErrInvalidData, wantMsg: "3/7/2.png"},
		{name: "truncated header", tile: grid.Tile{Zoom: 3, Col: 7, Row: 3}, wantErr: source.ErrInvalidData, wantMsg: "3/7/3.png: gpkg: unsupported tile data: bad png header"},
		// Only headers are checked: bytes pass through undecoded, and the
		// render pipeline, which decodes them, reports broken image data.
		{name: "truncated data passes", tile: grid.Tile{Zoom: 3, Col: 7, Row: 4}, want: source.Tile{Data: f.opaquePNG[:40], Format: source.PNG}},
		{name: "oversize", max: 100, tile: grid.Tile{Zoom: 3, Col: 2, Row: 1}, wantErr: source.ErrInvalidData, wantMsg: "3/2/1.png has"},
		{name: "exactly at the cap", max: int64(len(f.opaquePNG)), tile: grid.Tile{Zoom: 3, Col: 2, Row: 1}, want: source.Tile{Data: f.opaquePNG, Format: source.PNG, Opaque: true}},
		{name: "one byte over the cap", max: int64(len(f.opaquePNG)) - 1, tile: grid.Tile{Zoom: 3, Col: 2, Row: 1}, wantErr: source.ErrInvalidData, wantMsg: "-byte limit"},
		{name: "row outside the grid", tile: grid.Tile{Zoom: 3, Col: 0, Row: 8}, wantErr: source.ErrInvalidTile},
		{name: "negative column", tile: grid.Tile{Zoom: 3, Col: -1, Row: 0}, wantErr: source.ErrInvalidTile},
	}
}

// runStoreCases runs every case of storeCases(f) as a subtest against a
// store whose location at sets.
func runStoreCases(t *testing.T, f storeFixture, at func(*source.TileStoreConfig)) {
	t.Helper()
	for _, tc := range storeCases(f) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := source.TileStoreConfig{RowOrigin: tc.origin, Extensions: tc.exts, MaxTileBytes: tc.max}
			at(&cfg)
			runStoreCase(t, tc, newTileStore(t, cfg))
		})
	}
}

// runStoreCase reads tc.tile from s and checks it.
func runStoreCase(t *testing.T, tc storeCase, s *source.TileStore) {
	t.Helper()
	got, err := s.Tile(t.Context(), tc.tile)
	if tc.wantErr != nil {
		if !errors.Is(err, tc.wantErr) {
			t.Fatalf("Tile(%v) error = %v, want %v", tc.tile, err, tc.wantErr)
		}
		if !strings.Contains(err.Error(), tc.wantMsg) {
			t.Errorf("Tile(%v) error = %q, want it to contain %q", tc.tile, err, tc.wantMsg)
		}
		return
	}
	if err != nil {
		t.Fatalf("Tile(%v): %v", tc.tile, err)
	}
	if diff := cmp.Diff(tc.want, got); diff != "" {
		t.Errorf("Tile(%v) (-want +got):\n%s", tc.tile, diff)
	}
}

func TestTileStoreDir(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	dir := writeDir(t, f.files)
	runStoreCases(t, f, func(cfg *source.TileStoreConfig) { cfg.Dir = dir })
}

func TestTileStoreFS(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	fsys := fstest.MapFS{}
	for name, data := range f.files {
		fsys["tiles/v1/"+name] = &fstest.MapFile{Data: data}
	}
	runStoreCases(t, f, func(cfg *source.TileStoreConfig) { cfg.FS, cfg.Prefix = fsys, "/tiles/v1/" })
}

func TestTileStoreObjects(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	objects := memObjects{}
	for name, data := range f.files {
		objects["layers/demo/"+name] = data
	}
	runStoreCases(t, f, func(cfg *source.TileStoreConfig) { cfg.Objects, cfg.Prefix = objects, "layers/demo" })
}

// TestTileStoreDirEscape plants links and odd entries in a store directory:
// nothing outside it may be read, and a tile that is not a regular file is
// an error, not a tile.
func TestTileStoreDirEscape(t *testing.T) {
	t.Parallel()
	tile := encodePNG(t, gradient())
	outside := writeDir(t, map[string][]byte{"secret.png": tile})
	dir := writeDir(t, map[string][]byte{"1/0/0.png": tile})
	link := func(target, name string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	link(filepath.Join(outside, "secret.png"), "1/0/1.png")             // absolute, outside
	link("../../../"+filepath.Base(outside)+"/secret.png", "1/1/0.png") // relative, outside
	link(outside, "2")                                                  // a whole zoom outside
	link("../0/0.png", "1/2/0.png")                                     // relative, inside: allowed
	if err := os.MkdirAll(filepath.Join(dir, "1", "3", "0.png"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "1", "3", "1.png"), 0o644); err != nil { // opening it must not block
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		tile    grid.Tile
		wantErr error // nil: any error that is not ErrNoData
		wantMsg string
	}{
		{name: "absolute link out", tile: grid.Tile{Zoom: 1, Col: 0, Row: 1}, wantMsg: filepath.Join(dir, "1", "0", "1.png")},
		{name: "relative link out", tile: grid.Tile{Zoom: 1, Col: 1, Row: 0}, wantMsg: filepath.Join(dir, "1", "1", "0.png")},
		{name: "zoom directory linked out", tile: grid.Tile{Zoom: 2, Col: 0, Row: 0}, wantMsg: filepath.Join(dir, "2", "0", "0.png")},
		{name: "directory named like a tile", tile: grid.Tile{Zoom: 1, Col: 3, Row: 0}, wantErr: source.ErrInvalidData, wantMsg: "not a regular file"},
		{name: "FIFO named like a tile", tile: grid.Tile{Zoom: 1, Col: 3, Row: 1}, wantErr: source.ErrInvalidData, wantMsg: "not a regular file"},
	}
	s := newTileStore(t, source.TileStoreConfig{Dir: dir})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.Tile(t.Context(), tc.tile)
			switch {
			case err == nil:
				t.Fatalf("Tile(%v) = %d bytes, want an error", tc.tile, len(got.Data))
			case errors.Is(err, source.ErrNoData):
				t.Fatalf("Tile(%v) error = %v, want a failure, not no data", tc.tile, err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("Tile(%v) error = %v, want %v", tc.tile, err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Tile(%v) error = %q, want it to contain %q", tc.tile, err, tc.wantMsg)
			}
		})
	}

	t.Run("link inside the root", func(t *testing.T) {
		t.Parallel()
		got, err := s.Tile(t.Context(), grid.Tile{Zoom: 1, Col: 2, Row: 0})
		if err != nil || !bytes.Equal(got.Data, tile) {
			t.Errorf("Tile(1/2/0) = %d bytes, %v, want the linked tile", len(got.Data), err)
		}
	})
}

func TestTileStoreConfigValidate(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{}
	objects := memObjects{}
	tests := []struct {
		name    string
		cfg     source.TileStoreConfig
		wantErr []string // each must appear; none means valid
	}{
		{name: "dir", cfg: source.TileStoreConfig{Dir: "/data/tiles"}},
		{name: "fs with everything", cfg: source.TileStoreConfig{FS: fsys, Prefix: "a/b", Extensions: []string{"PNG", "webp2"}, RowOrigin: source.RowOriginBottom, MaxTileBytes: 1}},
		{name: "objects with slashes around prefix", cfg: source.TileStoreConfig{Objects: objects, Prefix: "/layers/x/"}},
		{name: "nothing", cfg: source.TileStoreConfig{}, wantErr: []string{"exactly one of dir, fs and objects, got 0"}},
		{name: "two", cfg: source.TileStoreConfig{Dir: "/x", Objects: objects}, wantErr: []string{"got 2"}},
		{name: "prefix climbs out", cfg: source.TileStoreConfig{FS: fsys, Prefix: "../other"}, wantErr: []string{`prefix "../other"`}},
		{name: "prefix climbs inside", cfg: source.TileStoreConfig{FS: fsys, Prefix: "a/../../b"}, wantErr: []string{`prefix "a/../../b"`}},
		{name: "prefix dot", cfg: source.TileStoreConfig{FS: fsys, Prefix: "."}, wantErr: []string{`prefix "."`}},
		{name: "prefix empty element", cfg: source.TileStoreConfig{Objects: objects, Prefix: "a//b"}, wantErr: []string{`prefix "a//b"`}},
		{
			name: "extensions that are paths",
			cfg:  source.TileStoreConfig{FS: fsys, Extensions: []string{"png/../../../etc/passwd", ".png", "", "p ng"}},
			wantErr: []string{
				`extension "png/../../../etc/passwd"`, `extension ".png"`, `extension ""`, `extension "p ng"`,
			},
		},
		{name: "row origin", cfg: source.TileStoreConfig{FS: fsys, RowOrigin: "tms"}, wantErr: []string{`row origin "tms": want top or bottom`}},
		{name: "negative cap", cfg: source.TileStoreConfig{FS: fsys, MaxTileBytes: -1}, wantErr: []string{"max tile bytes -1"}},
		{
			name:    "every problem at once",
			cfg:     source.TileStoreConfig{Prefix: "..", RowOrigin: "up", MaxTileBytes: -5},
			wantErr: []string{"got 0", `prefix ".."`, `"up"`, "-5"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			checkValidate(t, err, tc.wantErr)
			if len(tc.wantErr) == 0 {
				return
			}
			if _, err := source.NewTileStore(tc.cfg); err == nil {
				t.Errorf("NewTileStore accepted a config that Validate rejects")
			}
		})
	}
}

func TestNewTileStoreMissingDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "absent")
	_, err := source.NewTileStore(source.TileStoreConfig{Dir: dir})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), dir) {
		t.Errorf("NewTileStore(%q) error = %v, want a not-exist error naming the directory", dir, err)
	}
}

func TestTileStoreObjectErrors(t *testing.T) {
	t.Parallel()
	broken := errors.New("connection reset by peer")
	tests := []struct {
		name    string
		reader  source.ObjectReader
		ctx     func(context.Context) context.Context
		wantErr error
		wantMsg string
	}{
		{name: "missing as fs.ErrNotExist", reader: memObjects{}, wantErr: source.ErrNoData},
		{name: "missing as ErrNoData", reader: failingObjects{err: fmt.Errorf("storage: not found: %w", source.ErrNoData)}, wantErr: source.ErrNoData},
		{name: "read failure", reader: failingObjects{err: broken}, wantErr: broken, wantMsg: "read object t/4/3/2.png: connection reset"},
		{
			name:   "cancelled",
			reader: failingObjects{err: broken},
			ctx: func(ctx context.Context) context.Context {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				return ctx
			},
			wantErr: context.Canceled,
		},
		{name: "reader ignores the limit", reader: memObjects{"t/4/3/2.png": make([]byte, 2000)}, wantErr: source.ErrInvalidData, wantMsg: "t/4/3/2.png has 2000 bytes or more, over the 1000-byte limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTileStore(t, source.TileStoreConfig{Objects: greedy{tc.reader}, Prefix: "t", MaxTileBytes: 1000})
			ctx := t.Context()
			if tc.ctx != nil {
				ctx = tc.ctx(ctx)
			}
			tile := grid.Tile{Zoom: 4, Col: 3, Row: 2}
			_, err := s.Tile(ctx, tile)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Tile(%v) error = %v, want %v", tile, err, tc.wantErr)
			}
			if !errors.Is(tc.wantErr, source.ErrNoData) && errors.Is(err, source.ErrNoData) {
				t.Errorf("Tile(%v) error = %v, want it not to be ErrNoData", tile, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Tile(%v) error = %q, want it to contain %q", tile, err, tc.wantMsg)
			}
		})
	}
}

// TestTileStoreConcurrent reads every tile from many goroutines at once.
func TestTileStoreConcurrent(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	s := newTileStore(t, source.TileStoreConfig{Dir: writeDir(t, f.files)})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				got, err := s.Tile(t.Context(), grid.Tile{Zoom: 3, Col: 2, Row: 1})
				if err != nil || !bytes.Equal(got.Data, f.opaquePNG) {
					t.Errorf("Tile(3/2/1) = %d bytes, %v, want the stored tile", len(got.Data), err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestTileStoreManyDirs reads tiles of more column directories than a
// store keeps open, from several goroutines, so directories are closed
// while others read beneath them (run with -race).
func TestTileStoreManyDirs(t *testing.T) {
	t.Parallel()
	const cols, rows = 80, 2
	files := map[string][]byte{}
	for c := range cols {
		for r := range rows {
			files[fmt.Sprintf("9/%d/%d.png", c, r)] = encodePNG(t, solid(color.NRGBA{R: uint8(c), G: uint8(r), A: 255}))
		}
	}
	s := newTileStore(t, source.TileStoreConfig{Dir: writeDir(t, files)})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range cols * rows {
				c, r := (i/rows+g*37)%cols, i%rows
				tile := grid.Tile{Zoom: 9, Col: int64(c), Row: int64(r)}
				got, err := s.Tile(t.Context(), tile)
				if err != nil || !bytes.Equal(got.Data, files[fmt.Sprintf("9/%d/%d.png", c, r)]) {
					t.Errorf("Tile(%v) = %d bytes, %v, want the stored tile", tile, len(got.Data), err)
					return
				}
				if _, err := s.Tile(t.Context(), grid.Tile{Zoom: 9, Col: int64(c), Row: int64(r + rows)}); !errors.Is(err, source.ErrNoData) {
					t.Errorf("Tile(9/%d/%d) error = %v, want ErrNoData", c, r+rows, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestTileStoreDirReplaced replaces a column directory of a store that is
// being read, as a sync tool that swaps directories does, and waits on the
// wall clock: within two seconds the store reads the new directory.
func TestTileStoreDirReplaced(t *testing.T) {
	t.Parallel()
	red, blue := encodePNG(t, solid(color.NRGBA{R: 255, A: 255})), encodePNG(t, solid(color.NRGBA{B: 255, A: 255}))
	dir := writeDir(t, map[string][]byte{"4/3/2.png": red, "4/3/5.png": red})
	s := newTileStore(t, source.TileStoreConfig{Dir: dir})
	tile := grid.Tile{Zoom: 4, Col: 3, Row: 2}
	if got, err := s.Tile(t.Context(), tile); err != nil || !bytes.Equal(got.Data, red) {
		t.Fatalf("Tile(%v) = %d bytes, %v, want the red tile", tile, len(got.Data), err)
	}

	next := filepath.Join(dir, "4", ".3.new")
	if err := os.Mkdir(next, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(next, "2.png"), blue, 0o644); err != nil {
		t.Fatal(err)
	}
	col := filepath.Join(dir, "4", "3")
	if err := os.Rename(col, filepath.Join(dir, "4", ".3.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, col); err != nil {
		t.Fatal(err)
	}
	replaced := time.Now()
	for {
		got, err := s.Tile(t.Context(), tile)
		if err != nil {
			t.Fatalf("Tile(%v) after the swap: %v", tile, err)
		}
		if bytes.Equal(got.Data, blue) {
			break
		}
		if time.Since(replaced) > 2*time.Second {
			t.Fatalf("Tile(%v) is still the old directory's %s after the swap", tile, time.Since(replaced))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.Tile(t.Context(), grid.Tile{Zoom: 4, Col: 3, Row: 5}); !errors.Is(err, source.ErrNoData) {
		t.Errorf("Tile(4/3/5), gone with the old directory: error = %v, want ErrNoData", err)
	}
}

// BenchmarkTileStoreDir reads stored tiles of about 3 KB column by column,
// as a render task does.
func BenchmarkTileStoreDir(b *testing.B) {
	const cols, rows = 32, 64
	data := encodeJPEG(b, gradient())
	files := map[string][]byte{}
	for c := range cols {
		for r := range rows {
			files[fmt.Sprintf("12/%d/%d.jpg", c, r)] = data
		}
	}
	s := newTileStore(b, source.TileStoreConfig{Dir: writeDir(b, files), Extensions: []string{"jpg"}})
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tile := grid.Tile{Zoom: 12, Col: int64(i / rows % cols), Row: int64(i % rows)}
		if _, err := s.Tile(ctx, tile); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

var (
	_ source.Source       = (*source.TileStore)(nil)
	_ source.Source       = (*source.Demo)(nil)
	_ source.ObjectReader = memObjects(nil)
)

// memObjects is an in-memory ObjectReader: a stand-in for the project's
// S3 adapter that keeps its contract (missing keys are fs.ErrNotExist, at
// most limit+1 bytes come back).
type memObjects map[string][]byte

func (m memObjects) ReadObject(ctx context.Context, key string, limit int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, ok := m[key]
	if !ok {
		return nil, fmt.Errorf("object %s: %w", key, fs.ErrNotExist)
	}
	if int64(len(data)) > limit+1 {
		data = data[:limit+1]
	}
	return bytes.Clone(data), nil
}

// failingObjects fails every read with err.
type failingObjects struct{ err error }

func (f failingObjects) ReadObject(context.Context, string, int64) ([]byte, error) {
	return nil, f.err
}

// greedy breaks the limit part of the contract: it asks its reader for
// everything, so the store's own check must catch oversize objects.
type greedy struct{ source.ObjectReader }

func (g greedy) ReadObject(ctx context.Context, key string, _ int64) ([]byte, error) {
	return g.ObjectReader.ReadObject(ctx, key, 1<<40)
}
