package source_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/gpkg/gpkgtest"
	"github.com/geoexport/exporter/internal/filelock"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/tempdir"
	"github.com/geoexport/exporter/source"
)

// openGPKG opens a package as a GeoPackage source does by default.
var openGPKG = source.OpenGPKG

func newGeoPackage(tb testing.TB, cfg source.GeoPackageConfig) *source.GeoPackage {
	tb.Helper()
	g, err := source.NewGeoPackage(cfg)
	if err != nil {
		tb.Fatalf("NewGeoPackage: %v", err)
	}
	tb.Cleanup(func() { g.Close() })
	return g
}

// memOpener serves objects from memory, counting opens.
type memOpener struct {
	objects map[string][]byte
	opens   atomic.Int64
}

func (m *memOpener) OpenObject(ctx context.Context, key string) (io.ReadCloser, error) {
	m.opens.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, ok := m.objects[key]
	if !ok {
		return nil, fmt.Errorf("object %s: %w", key, fs.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func TestGeoPackage(t *testing.T) {
	t.Parallel()
	p := gpkgtest.BuildPackage(t)
	data, err := os.ReadFile(p.Path)
	if err != nil {
		t.Fatal(err)
	}
	objects := &memOpener{objects: map[string][]byte{"layers/ortho.gpkg": data}}
	sources := map[string]func(t *testing.T) *source.GeoPackage{
		"path": func(t *testing.T) *source.GeoPackage {
			return newGeoPackage(t, source.GeoPackageConfig{Path: p.Path})
		},
		"object": func(t *testing.T) *source.GeoPackage {
			return newGeoPackage(t, source.GeoPackageConfig{Key: "layers/ortho.gpkg", Objects: objects, TempDir: t.TempDir(), Table: gpkgtest.DefaultTable})
		},
	}
	for name, open := range sources {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := open(t)
			for _, tile := range p.Order {
				got := mustTile(t, g, tile)
				f, _ := gpkg.DetectFormat(p.Tiles[tile])
				// gpkgtest's PNG tiles have a transparent half.
				want := source.Tile{Data: p.Tiles[tile], Format: f, Opaque: f == source.JPEG}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Tile(%v) (-want +got):\n%s", tile, diff)
				}
			}
			missing := grid.Tile{Zoom: 2, Col: 0, Row: 0}
			if _, err := g.Tile(t.Context(), missing); !errors.Is(err, source.ErrNoData) {
				t.Errorf("Tile(%v) = %v, want ErrNoData", missing, err)
			}
			if _, err := g.Tile(t.Context(), grid.Tile{Zoom: 1, Col: 4, Row: 0}); !errors.Is(err, source.ErrInvalidTile) {
				t.Errorf("Tile(outside the grid) = %v, want ErrInvalidTile", err)
			}
		})
	}
}

func TestGeoPackageNoData(t *testing.T) {
	t.Parallel()
	// gpkgtest's JPEG tile at 0/0/0 is black: colour (10·z, col, row).
	black := grid.Tile{}
	other := grid.Tile{Zoom: 1, Col: 2, Row: 1}
	path := gpkgtest.Build(t, gpkgtest.WithTiles(black, other), gpkgtest.WithFormat(gpkg.JPEG))
	g := newGeoPackage(t, source.GeoPackageConfig{Path: path, NoData: &source.NoData{Tolerance: 4}})
	if _, err := g.Tile(t.Context(), black); !errors.Is(err, source.ErrNoData) || !strings.Contains(err.Error(), "all #000000±4") {
		t.Errorf("Tile(%v) = %v, want ErrNoData for the no-data colour", black, err)
	}
	if _, err := g.Tile(t.Context(), other); err != nil {
		t.Errorf("Tile(%v) = %v, want its tile", other, err)
	}
}

func TestGeoPackageOpenErrors(t *testing.T) {
	t.Parallel()
	notGPKG := filepath.Join(t.TempDir(), "not.gpkg")
	if err := os.WriteFile(notGPKG, bytes.Repeat([]byte("not a database "), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	good := gpkgtest.Build(t)
	tests := []struct {
		name    string
		cfg     source.GeoPackageConfig
		wantErr error
		wantMsg []string
	}{
		{name: "missing file", cfg: source.GeoPackageConfig{Path: filepath.Join(t.TempDir(), "absent.gpkg")}, wantErr: source.ErrInvalidData, wantMsg: []string{"absent.gpkg"}},
		{name: "not a geopackage", cfg: source.GeoPackageConfig{Path: notGPKG, Name: "layer-x"}, wantErr: source.ErrInvalidData, wantMsg: []string{`geopackage "layer-x": tile 3/2/1`, "not.gpkg"}},
		{name: "missing object", cfg: source.GeoPackageConfig{Key: "nope.gpkg", Objects: &memOpener{}}, wantErr: source.ErrInvalidData, wantMsg: []string{"object nope.gpkg does not exist"}},
		{name: "wrong table", cfg: source.GeoPackageConfig{Path: good, Table: "roads"}, wantErr: source.ErrInvalidData, wantMsg: []string{`no tile table "roads" (tables: tiles)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newGeoPackage(t, tc.cfg)
			for range 2 { // the second time from the remembered failure
				_, err := g.Tile(t.Context(), testTile)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Tile(%v) = %v, want %v", testTile, err, tc.wantErr)
				}
				for _, m := range tc.wantMsg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("Tile(%v) = %q, want it to contain %q", testTile, err, m)
					}
				}
			}
		})
	}
}

// TestGeoPackageOpensOnce: many first callers at once open the file once;
// a transient failure to open is retried by the next caller.
func TestGeoPackageOpensOnce(t *testing.T) {
	t.Parallel()
	p := gpkgtest.BuildPackage(t)
	var opens atomic.Int64
	g := newGeoPackage(t, source.GeoPackageConfig{
		Path: p.Path,
		Open: func(ctx context.Context, path string) (source.TileReader, error) {
			if opens.Add(1) == 1 {
				return nil, errors.New("disk hiccup")
			}
			return openGPKG(ctx, path)
		},
	})
	if _, err := g.Tile(t.Context(), p.Order[0]); err == nil || errors.Is(err, source.ErrInvalidData) || !strings.Contains(err.Error(), "disk hiccup") {
		t.Fatalf("first Tile = %v, want the transient failure", err)
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for _, tile := range p.Order {
				if _, err := g.Tile(t.Context(), tile); err != nil {
					t.Errorf("Tile(%v): %v", tile, err)
				}
			}
		})
	}
	wg.Wait()
	if got := opens.Load(); got != 2 {
		t.Errorf("opened %d times, want 2", got)
	}
}

// TestGeoPackageDownload: the object is downloaded once into TempDir and
// removed by Close; a cancelled download leaves nothing behind.
func TestGeoPackageDownload(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(gpkgtest.Build(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("removed on close", func(t *testing.T) {
		t.Parallel()
		tmp := t.TempDir()
		objects := &memOpener{objects: map[string][]byte{"a.gpkg": data}}
		g, err := source.NewGeoPackage(source.GeoPackageConfig{Key: "a.gpkg", Objects: objects, TempDir: tmp})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := g.Tile(t.Context(), grid.Tile{Zoom: 4, Col: 18, Row: 4}); err != nil {
				t.Fatal(err)
			}
		}
		if n := objects.opens.Load(); n != 1 {
			t.Errorf("object opened %d times, want 1", n)
		}
		// One directory of its own, which this process holds locked, so that a
		// worker's sweep leaves it alone while the process lives.
		if entries, _ := os.ReadDir(tmp); len(entries) != 1 || !entries[0].IsDir() || !strings.HasPrefix(entries[0].Name(), "source-") {
			t.Errorf("temp dir holds %v while open, want one source-* directory", entries)
		} else if _, err := filelock.TryLockExisting(filepath.Join(tmp, entries[0].Name(), tempdir.LockName)); !errors.Is(err, filelock.ErrLocked) {
			t.Errorf("locking the download's directory: %v, want ErrLocked (its owner is alive)", err)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
			t.Errorf("temp dir holds %v after Close, want nothing", entries)
		}
		if _, err := g.Tile(t.Context(), testTile); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("Tile after Close = %v, want an error", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		tmp := t.TempDir()
		ctx, cancel := context.WithCancel(t.Context())
		objects := source.ObjectOpenerFunc(func(context.Context, string) (io.ReadCloser, error) {
			return io.NopCloser(&cancellingReader{data: data, cancel: cancel}), nil
		})
		g := newGeoPackage(t, source.GeoPackageConfig{Key: "a.gpkg", Objects: objects, TempDir: tmp})
		if _, err := g.Tile(ctx, testTile); !errors.Is(err, context.Canceled) {
			t.Errorf("Tile = %v, want context.Canceled", err)
		}
		if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
			t.Errorf("temp dir holds %v after a cancelled download, want nothing", entries)
		}
	})
}

// cancellingReader returns one small chunk, then cancels its context.
type cancellingReader struct {
	data   []byte
	cancel context.CancelFunc
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	r.cancel()
	n := copy(p[:min(len(p), 100)], r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestGeoPackageConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     source.GeoPackageConfig
		wantErr []string
	}{
		{name: "path", cfg: source.GeoPackageConfig{Path: "/x.gpkg", Open: openGPKG}},
		{name: "key", cfg: source.GeoPackageConfig{Key: "x.gpkg", Objects: &memOpener{}, Open: openGPKG}},
		{name: "neither", cfg: source.GeoPackageConfig{Open: openGPKG}, wantErr: []string{"exactly one of path and key"}},
		{name: "both", cfg: source.GeoPackageConfig{Path: "/x", Key: "x", Objects: &memOpener{}, Open: openGPKG}, wantErr: []string{"exactly one of path and key"}},
		{name: "key without store", cfg: source.GeoPackageConfig{Key: "x.gpkg"}, wantErr: []string{`key "x.gpkg" needs an object store`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkValidate(t, tc.cfg.Validate(), tc.wantErr)
		})
	}
}
