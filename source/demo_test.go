package source_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

func newDemo(tb testing.TB, footprint grid.BBox) *source.Demo {
	tb.Helper()
	d, err := source.NewDemo(source.DemoConfig{Footprint: footprint})
	if err != nil {
		tb.Fatalf("NewDemo(%v): %v", footprint, err)
	}
	return d
}

func TestNewDemoValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		footprint grid.BBox
		wantErr   bool
	}{
		{name: "zero means world", footprint: grid.BBox{}},
		{name: "region", footprint: grid.BBox{MinX: 34, MinY: 29, MaxX: 36, MaxY: 33}},
		{name: "inverted", footprint: grid.BBox{MinX: 36, MinY: 29, MaxX: 34, MaxY: 33}, wantErr: true},
		{name: "beyond the world", footprint: grid.BBox{MinX: -190, MinY: 0, MaxX: 0, MaxY: 10}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := source.NewDemo(source.DemoConfig{Footprint: tc.footprint})
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Errorf("NewDemo(%v) error = %v, want error %v", tc.footprint, err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, grid.ErrBBox) {
				t.Errorf("NewDemo(%v) error = %v, want it to wrap grid.ErrBBox", tc.footprint, err)
			}
		})
	}
}

// coverage classifies a demo tile by its pixels.
type coverage string

const (
	covFull    coverage = "full"
	covPartial coverage = "partial"
)

func TestDemoTile(t *testing.T) {
	t.Parallel()
	// A footprint in the northern hemisphere, off every tile boundary.
	north := grid.BBox{MinX: 10.3, MinY: 40.2, MaxX: 30.7, MaxY: 60.9}
	tests := []struct {
		name      string
		footprint grid.BBox
		tile      grid.Tile
		wantErr   error
		want      coverage
	}{
		{name: "world zoom 0 west", tile: grid.Tile{Zoom: 0, Col: 0, Row: 0}, want: covFull},
		{name: "world zoom 0 east", tile: grid.Tile{Zoom: 0, Col: 1, Row: 0}, want: covFull},
		{name: "world deepest zoom", tile: grid.Tile{Zoom: grid.MaxZoom, Col: 1 << 22, Row: 1<<21 + 7}, want: covFull},
		// Zoom 6 tiles are 2.8125° wide: column 68 is 11.25°..14.0625°, row 11 is
		// 59.0625°..56.25°.
		{name: "inside footprint", footprint: north, tile: grid.Tile{Zoom: 6, Col: 68, Row: 11}, want: covFull},
		{name: "straddles west edge", footprint: north, tile: grid.Tile{Zoom: 6, Col: 67, Row: 11}, want: covPartial},
		{name: "straddles north edge", footprint: north, tile: grid.Tile{Zoom: 6, Col: 68, Row: 10}, want: covPartial},
		{name: "contains whole footprint", footprint: north, tile: grid.Tile{Zoom: 1, Col: 2, Row: 0}, want: covPartial},
		{name: "outside footprint", footprint: north, tile: grid.Tile{Zoom: 6, Col: 10, Row: 11}, wantErr: source.ErrNoData},
		{name: "mirror row in the south", footprint: north, tile: grid.Tile{Zoom: 6, Col: 68, Row: grid.Zoom(6).FlipRow(11)}, wantErr: source.ErrNoData},
		{name: "touches footprint edge only", footprint: grid.BBox{MinX: 0, MinY: 0, MaxX: 2.8125, MaxY: 2.8125}, tile: grid.Tile{Zoom: 6, Col: 65, Row: 31}, wantErr: source.ErrNoData},
		{
			// Zoom 0 pixel centres lie at odd multiples of 0.3515625°; this
			// footprint overlaps the tile but holds none of them.
			name: "thinner than a pixel", footprint: grid.BBox{MinX: 0.4, MinY: 0.4, MaxX: 0.9, MaxY: 0.9},
			tile: grid.Tile{Zoom: 0, Col: 1, Row: 0}, wantErr: source.ErrNoData,
		},
		{name: "zoom beyond grid", tile: grid.Tile{Zoom: grid.MaxZoom + 1}, wantErr: source.ErrInvalidTile},
		{name: "negative zoom", tile: grid.Tile{Zoom: -1}, wantErr: source.ErrInvalidTile},
		{name: "column beyond matrix", tile: grid.Tile{Zoom: 0, Col: 2, Row: 0}, wantErr: source.ErrInvalidTile},
		{name: "row beyond matrix", tile: grid.Tile{Zoom: 3, Col: 0, Row: 8}, wantErr: source.ErrInvalidTile},
		{name: "negative column", tile: grid.Tile{Zoom: 3, Col: -1, Row: 0}, wantErr: source.ErrInvalidTile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newDemo(t, tc.footprint)
			got, err := d.Tile(t.Context(), tc.tile)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Tile(%v) error = %v, want %v", tc.tile, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Tile(%v): %v", tc.tile, err)
			}
			if got.Data != nil || got.Format != "" {
				t.Errorf("Tile(%v) = %d bytes of %q, want an image only", tc.tile, len(got.Data), got.Format)
			}
			img, ok := got.Image.(*image.RGBA)
			if !ok {
				t.Fatalf("Tile(%v).Image is %T, want *image.RGBA", tc.tile, got.Image)
			}
			if b := img.Bounds(); b != image.Rect(0, 0, 256, 256) {
				t.Errorf("Tile(%v).Image bounds = %v, want 256 × 256 from the origin", tc.tile, b)
			}
			wantOpaque := tc.want == covFull
			if got.Opaque != wantOpaque || source.IsOpaque(img) != wantOpaque {
				t.Errorf("Tile(%v): Opaque = %v, IsOpaque = %v, want %v", tc.tile, got.Opaque, source.IsOpaque(img), wantOpaque)
			}
			if source.IsEmpty(img) {
				t.Errorf("Tile(%v): image is empty, want pixels", tc.tile)
			}
		})
	}
}

// TestDemoFootprintEdge checks pixel by pixel that a pixel is drawn exactly
// when its centre lies in the footprint.
func TestDemoFootprintEdge(t *testing.T) {
	t.Parallel()
	// Zoom 6, tile 67/11 spans 8.4375°..11.25° east; pixels are 0.010986328125°
	// wide, so the edge at 10.3° falls between the centres of pixels 169
	// (10.29968…°) and 170 (10.31066…°). Its rows span 59.0625°..56.25°,
	// inside.
	d := newDemo(t, grid.BBox{MinX: 10.3, MinY: 40, MaxX: 30, MaxY: 60})
	tile, err := d.Tile(t.Context(), grid.Tile{Zoom: 6, Col: 67, Row: 11})
	if err != nil {
		t.Fatalf("Tile: %v", err)
	}
	img := tile.Image.(*image.RGBA)
	for _, y := range []int{0, 128, 255} {
		var got []uint8
		for x := 166; x <= 171; x++ {
			got = append(got, img.RGBAAt(x, y).A)
		}
		want := []uint8{0, 0, 0, 0, 255, 255}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("alpha of pixels 166..171 in row %d (-want +got):\n%s", y, diff)
		}
	}
	if c := img.RGBAAt(0, 0); c != (color.RGBA{}) {
		t.Errorf("pixel 0,0 = %v, want fully transparent zero", c)
	}
}

func TestDemoDeterministic(t *testing.T) {
	t.Parallel()
	tiles := []grid.Tile{
		{Zoom: 0, Col: 0, Row: 0},
		{Zoom: 4, Col: 17, Row: 5},
		{Zoom: 9, Col: 555, Row: 123},
		{Zoom: 17, Col: 150000, Row: 30000},
	}
	first := newDemo(t, grid.BBox{})
	want := make([][]byte, len(tiles))
	for i, tl := range tiles {
		want[i] = render(t, first, tl).Pix
	}
	// A second source, rendering concurrently and in another order, reuses
	// pooled scratch tables between tiles and must draw the same pixels.
	second := newDemo(t, grid.BBox{})
	var wg sync.WaitGroup
	got := make([][][]byte, 4)
	for g := range got {
		got[g] = make([][]byte, len(tiles))
		wg.Go(func() {
			for i := len(tiles) - 1; i >= 0; i-- {
				tile, err := second.Tile(t.Context(), tiles[i])
				if err != nil {
					t.Errorf("Tile(%v): %v", tiles[i], err)
					return
				}
				got[g][i] = tile.Image.(*image.RGBA).Pix
			}
		})
	}
	wg.Wait()
	for g := range got {
		for i, tl := range tiles {
			if !bytes.Equal(want[i], got[g][i]) {
				t.Errorf("goroutine %d: Tile(%v) differs from the first rendering", g, tl)
			}
		}
	}
}

// TestDemoZoomAgreement checks that the terrain at a point is the same at
// neighbouring zooms. The graticule, the checker and the zoom marker are
// drawn per zoom on purpose, so the plain (terrain only) demo is compared.
func TestDemoZoomAgreement(t *testing.T) {
	t.Parallel()
	d, err := source.NewPlainDemo(source.DemoConfig{})
	if err != nil {
		t.Fatalf("NewPlainDemo: %v", err)
	}
	points := []struct{ lon, lat float64 }{
		{34.8175, 31.9583}, {-73.9857, 40.7484}, {151.2153, -33.8568}, {12.3, -75.4},
	}
	// Pixel centres of neighbouring zooms sit up to three quarters of a
	// coarse pixel apart; from zoom 5 on the terrain barely changes over
	// that distance.
	const tolerance = 3
	tests := []struct {
		name string
		zoom grid.Zoom // compared with zoom+1
	}{
		{name: "zoom 5 and 6", zoom: 5},
		{name: "zoom 9 and 10", zoom: 9},
		{name: "zoom 14 and 15", zoom: 14},
		{name: "zoom 21 and 22", zoom: 21},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, p := range points {
				a := pixelAt(t, d, tc.zoom, p.lon, p.lat)
				b := pixelAt(t, d, tc.zoom+1, p.lon, p.lat)
				if absDiff(a.R, b.R) > tolerance || absDiff(a.G, b.G) > tolerance || absDiff(a.B, b.B) > tolerance || a.A != b.A {
					t.Errorf("pixel at %v,%v: zoom %d = %v, zoom %d = %v, want within %d", p.lon, p.lat, tc.zoom, a, tc.zoom+1, b, tolerance)
				}
			}
		})
	}
}

// TestDemoSeamless checks that tiles join: the last column of a tile and
// the first of its eastern neighbour, and the last row of a tile and the
// first of the one south of it, differ only as neighbouring pixels do.
func TestDemoSeamless(t *testing.T) {
	t.Parallel()
	d, err := source.NewPlainDemo(source.DemoConfig{})
	if err != nil {
		t.Fatalf("NewPlainDemo: %v", err)
	}
	const z, col, row, tolerance = 7, 200, 40, 4
	here := render(t, d, grid.Tile{Zoom: z, Col: col, Row: row})
	east := render(t, d, grid.Tile{Zoom: z, Col: col + 1, Row: row})
	south := render(t, d, grid.Tile{Zoom: z, Col: col, Row: row + 1})
	near := func(a, b color.RGBA) bool {
		return absDiff(a.R, b.R) <= tolerance && absDiff(a.G, b.G) <= tolerance && absDiff(a.B, b.B) <= tolerance
	}
	for i := range 256 {
		if a, b := here.RGBAAt(255, i), east.RGBAAt(0, i); !near(a, b) {
			t.Fatalf("east seam, row %d: %v then %v, want within %d", i, a, b, tolerance)
		}
		if a, b := here.RGBAAt(i, 255), south.RGBAAt(i, 0); !near(a, b) {
			t.Fatalf("south seam, column %d: %v then %v, want within %d", i, a, b, tolerance)
		}
	}
}

func BenchmarkDemoTile(b *testing.B) {
	d := newDemo(b, grid.BBox{})
	tile := grid.Tile{Zoom: 8, Col: 300, Row: 70}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Tile(b.Context(), tile); err != nil {
			b.Fatal(err)
		}
	}
}

func render(tb testing.TB, s source.Source, t grid.Tile) *image.RGBA {
	tb.Helper()
	tile, err := s.Tile(tb.Context(), t)
	if err != nil {
		tb.Fatalf("Tile(%v): %v", t, err)
	}
	return tile.Image.(*image.RGBA)
}

// pixelAt renders the tile holding lon, lat at z and returns that pixel.
func pixelAt(tb testing.TB, s source.Source, z grid.Zoom, lon, lat float64) color.RGBA {
	tb.Helper()
	res := z.Resolution()
	x := int64((lon + 180) / res)
	y := int64((90 - lat) / res)
	img := render(tb, s, grid.Tile{Zoom: z, Col: x / 256, Row: y / 256})
	return img.RGBAAt(int(x%256), int(y%256))
}

func absDiff(a, b uint8) uint8 {
	if a > b {
		return a - b
	}
	return b - a
}
