// Package gpkgtest builds small, valid tiles GeoPackages for tests: a
// package with a handful of tiny generated PNG and JPEG tiles in
// t.TempDir(), written through gpkg.Writer so it is exactly what
// production writes. It is imported by _test.go files only.
package gpkgtest

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"path/filepath"
	"sync"
	"testing"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/grid"
)

// DefaultTable is the tile table name Build uses unless WithTable is given.
const DefaultTable = "tiles"

// DefaultExtent is the extent Build uses unless WithExtent is given: one
// tile at zooms 0–3 and 2 × 2 tiles at zoom 4, 8 tiles in all.
var DefaultExtent = grid.BBox{MinX: 22.5, MinY: 22.5, MaxX: 45, MaxY: 45}

// DefaultMaxZoom is the finest zoom Build fills unless WithMaxZoom is given.
const DefaultMaxZoom grid.Zoom = 4

// Package describes a package Build wrote.
type Package struct {
	// Path is the file, inside a t.TempDir().
	Path string
	// Options are the options the package was created with.
	Options gpkg.Options
	// Tiles maps each tile written to its data.
	Tiles map[grid.Tile][]byte
	// Order lists the tiles in the order they were written.
	Order []grid.Tile
}

// Option changes what Build writes.
type Option func(*config)

type config struct {
	opt     gpkg.Options
	maxZoom grid.Zoom
	tiles   []grid.Tile // nil: the pyramid over the extent
	limit   int         // 0: no limit
	format  gpkg.Format // "": PNG and JPEG alternating
	name    string
}

// WithTable sets the tile table name (default DefaultTable).
func WithTable(name string) Option { return func(c *config) { c.opt.Table = name } }

// WithExtent sets the package extent (default DefaultExtent). Unless
// WithTiles is given, the tiles are the pyramid covering it.
func WithExtent(b grid.BBox) Option { return func(c *config) { c.opt.Extent = b } }

// WithMaxZoom sets the finest zoom of the pyramid (default DefaultMaxZoom).
func WithMaxZoom(z grid.Zoom) Option { return func(c *config) { c.maxZoom = z } }

// WithTiles writes exactly these tiles, in this order, instead of the
// pyramid over the extent.
func WithTiles(tiles ...grid.Tile) Option {
	return func(c *config) { c.tiles = append([]grid.Tile{}, tiles...) }
}

// WithMaxTiles writes at most n tiles: the first n of the list.
func WithMaxTiles(n int) Option { return func(c *config) { c.limit = n } }

// WithFormat writes every tile in format f instead of alternating PNG (with
// a transparent half) and JPEG.
func WithFormat(f gpkg.Format) Option { return func(c *config) { c.format = f } }

// WithBatchSize sets gpkg.Options.BatchSize.
func WithBatchSize(n int) Option { return func(c *config) { c.opt.BatchSize = n } }

// WithRecord sets gpkg.Options.Record: the package is written as a part
// that carries its record.
func WithRecord() Option { return func(c *config) { c.opt.Record = true } }

// WithFileName names the file inside the temp dir (default "test.gpkg").
func WithFileName(name string) Option { return func(c *config) { c.name = name } }

// Build writes a tiles GeoPackage in a new t.TempDir() and returns its path.
// It fails the test on any error.
func Build(tb testing.TB, opts ...Option) string {
	tb.Helper()
	return BuildPackage(tb, opts...).Path
}

// BuildPackage is Build, returning what was written as well.
func BuildPackage(tb testing.TB, opts ...Option) *Package {
	tb.Helper()
	c := config{
		opt:     gpkg.Options{Table: DefaultTable, Extent: DefaultExtent},
		maxZoom: DefaultMaxZoom,
		name:    "test.gpkg",
	}
	for _, o := range opts {
		o(&c)
	}
	tiles := c.tiles
	if tiles == nil {
		for _, r := range grid.Pyramid(c.opt.Extent, c.maxZoom) {
			for t := range r.Tiles {
				tiles = append(tiles, t)
			}
		}
	}
	if c.limit > 0 && len(tiles) > c.limit {
		tiles = tiles[:c.limit]
	}
	p := &Package{
		Path:    filepath.Join(tb.TempDir(), c.name),
		Options: c.opt,
		Tiles:   make(map[grid.Tile][]byte, len(tiles)),
	}
	w, err := gpkg.Create(tb.Context(), p.Path, c.opt)
	if err != nil {
		tb.Fatalf("gpkg.Create(%q) = %v", p.Path, err)
	}
	defer w.Abort() //nolint:errcheck // a no-op after Close
	for i, t := range tiles {
		f := c.format
		if f == "" {
			f = []gpkg.Format{gpkg.PNG, gpkg.JPEG}[i%2]
		}
		data := Image(tb, t, f)
		if err := w.Put(tb.Context(), t, data); err != nil {
			tb.Fatalf("Put(%s) = %v", t, err)
		}
		if _, ok := p.Tiles[t]; !ok {
			p.Order = append(p.Order, t)
		}
		p.Tiles[t] = data
	}
	if err := w.Close(); err != nil {
		tb.Fatalf("Close() = %v", err)
	}
	return p
}

// images caches what Image returns, by tile and format: the encoding is
// deterministic, and under the race detector building one image takes
// tens of milliseconds.
var images sync.Map // imageKey → []byte

type imageKey struct {
	tile   grid.Tile
	format gpkg.Format
}

// Image returns a deterministic 256 × 256 image for tile t, encoded as f:
// its colour depends on the tile address. PNG images have a transparent
// right half, so they use the alpha channel; JPEG images are opaque. The
// caller owns the returned slice.
func Image(tb testing.TB, t grid.Tile, f gpkg.Format) []byte {
	tb.Helper()
	if f != gpkg.PNG && f != gpkg.JPEG {
		tb.Fatalf("gpkgtest.Image: unknown format %q", f)
	}
	key := imageKey{tile: t, format: f}
	if data, ok := images.Load(key); ok {
		return bytes.Clone(data.([]byte))
	}
	img := image.NewNRGBA(image.Rect(0, 0, grid.TileSize, grid.TileSize))
	c := color.NRGBA{R: uint8(t.Zoom * 10), G: uint8(t.Col), B: uint8(t.Row), A: 255}
	for y := range grid.TileSize {
		for x := range grid.TileSize {
			px := c
			if f == gpkg.PNG && x >= grid.TileSize/2 {
				px.A = 0
			}
			img.SetNRGBA(x, y, px)
		}
	}
	data := Encode(tb, img, f)
	images.Store(key, bytes.Clone(data))
	return data
}

// Encode encodes img as f: PNG, JPEG at quality 75, or GIF for any other
// format, so that tests can hand a writer bytes of a format it refuses.
func Encode(tb testing.TB, img image.Image, f gpkg.Format) []byte {
	tb.Helper()
	var buf bytes.Buffer
	var err error
	switch f {
	case gpkg.PNG:
		err = png.Encode(&buf, img)
	case gpkg.JPEG:
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 75})
	default:
		err = gif.Encode(&buf, img, nil)
	}
	if err != nil {
		tb.Fatalf("encode %s: %v", f, err)
	}
	return buf.Bytes()
}
