package source_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"sync"
	"syscall"
	"testing"
	"time"

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

// TestDemoZoomAgreement checks that the map at a point is the same at
// neighbouring zooms. Lines are drawn the same width in pixels at every
// zoom on purpose, so the plain (land, water and shading) demo is
// compared.
func TestDemoZoomAgreement(t *testing.T) {
	t.Parallel()
	d, err := source.NewPlainDemo(source.DemoConfig{})
	if err != nil {
		t.Fatalf("NewPlainDemo: %v", err)
	}
	points := []struct{ lon, lat float64 }{
		// Points a few pixels of zoom 5 from any coast: next to one, the
		// anti-aliased coastline differs between zooms.
		{34.8175, 31.9583}, {-104.9903, 39.7392}, {151.2153, -33.8568}, {12.3, -75.4},
	}
	// Pixel centres of neighbouring zooms sit up to three quarters of a
	// coarse pixel apart; from zoom 5 on the shading barely changes over
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

// TestDemoLandAndWater checks the map at places whose land or water is
// known, at zooms drawn from both scales, across the antimeridian and at
// the poles.
func TestDemoLandAndWater(t *testing.T) {
	t.Parallel()
	d, err := source.NewPlainDemo(source.DemoConfig{})
	if err != nil {
		t.Fatalf("NewPlainDemo: %v", err)
	}
	water := source.DemoWaterColour()
	tests := []struct {
		name     string
		lon, lat float64
		zooms    []grid.Zoom
		land     bool
	}{
		{name: "mid-Atlantic", lon: -35, lat: 30, zooms: []grid.Zoom{0, 2, 3, 8}},
		{name: "Sahara", lon: 15, lat: 23, zooms: []grid.Zoom{0, 2, 3, 8, 14}, land: true},
		{name: "Caspian Sea, a hole in Eurasia", lon: 51, lat: 42, zooms: []grid.Zoom{1, 4, 9}},
		{name: "Mediterranean off Tel Aviv", lon: 34.55, lat: 32.1, zooms: []grid.Zoom{3, 6, 9, 14}},
		{name: "the specification's example", lon: 34.817, lat: 31.96, zooms: []grid.Zoom{3, 6, 9, 14, 18}, land: true},
		{name: "Chukotka east of 180°", lon: -175, lat: 66.5, zooms: []grid.Zoom{1, 3, 6}, land: true},
		{name: "Chukotka west of 180°", lon: 175, lat: 67, zooms: []grid.Zoom{1, 3, 6}, land: true},
		{name: "Bering Sea", lon: -178, lat: 60, zooms: []grid.Zoom{1, 3, 6}},
		{name: "South Pole", lon: 0, lat: -89.9, zooms: []grid.Zoom{0, 2, 3, 7}, land: true},
		{name: "Antarctica at the antimeridian", lon: 179.9, lat: -86, zooms: []grid.Zoom{0, 3, 8}, land: true},
		{name: "Arctic Ocean", lon: 0, lat: 88, zooms: []grid.Zoom{0, 3, 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, z := range tc.zooms {
				got := pixelAt(t, d, z, tc.lon, tc.lat)
				if isLand := got != water; isLand != tc.land {
					t.Errorf("pixel at %v,%v zoom %d = %v, land %v; want land %v (water is %v)", tc.lon, tc.lat, z, got, isLand, tc.land, water)
				}
			}
		})
	}
}

// TestDemoLines checks that coastlines and borders are drawn where the
// map has them, and nowhere else, by comparing tiles drawn with one kind
// of line against the same tiles drawn without lines.
func TestDemoLines(t *testing.T) {
	t.Parallel()
	plain := newDemoLines(t, false, false, false)
	coast := newDemoLines(t, false, true, false)
	borders := newDemoLines(t, false, false, true)
	tests := []struct {
		name               string
		tile               grid.Tile
		wantCoast, wantBdr bool
	}{
		{name: "world, zoom 0", tile: grid.Tile{Zoom: 0, Col: 1, Row: 0}, wantCoast: true, wantBdr: true},
		{name: "Levant, zoom 6", tile: grid.Tile{Zoom: 6, Col: 76, Row: 20}, wantCoast: true, wantBdr: true},
		{name: "Israel's coast, zoom 9", tile: grid.Tile{Zoom: 9, Col: 610, Row: 165}, wantCoast: true},
		{name: "open Atlantic, zoom 6", tile: grid.Tile{Zoom: 6, Col: 50, Row: 20}},
		{name: "inland, zoom 14", tile: grid.Tile{Zoom: 14, Col: 19552, Row: 5283}},
		{name: "Siberia, zoom 8", tile: grid.Tile{Zoom: 8, Col: 398, Row: 39}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := render(t, plain, tc.tile)
			for _, l := range []struct {
				kind string
				src  *source.Demo
				want bool
			}{{"coastline", coast, tc.wantCoast}, {"border", borders, tc.wantBdr}} {
				changed := 0
				img := render(t, l.src, tc.tile)
				for i := 0; i < len(img.Pix); i += 4 {
					if !bytes.Equal(img.Pix[i:i+4], base.Pix[i:i+4]) {
						changed++
					}
				}
				// A line crossing a tile covers a few hundred pixels.
				if got := changed >= 100; got != l.want {
					t.Errorf("Tile(%v): %d pixels of %s, want some: %v", tc.tile, changed, l.kind, l.want)
				}
			}
		})
	}
}

func newDemoLines(tb testing.TB, graticule, coast, borders bool) *source.Demo {
	tb.Helper()
	d, err := source.NewDemoLines(source.DemoConfig{}, graticule, coast, borders)
	if err != nil {
		tb.Fatalf("NewDemoLines: %v", err)
	}
	return d
}

// BenchmarkDemoTile renders the tiles the brief of the world map looked
// at: a zoom-2 tile of Europe and Africa (1:110m data, many outlines), a
// zoom-6 tile of the Levant (1:50m, coasts and borders) and the zoom-14
// tile of the specification's example (all land: shading and graticule
// only). tiles/s is per core in wall time; tiles/cpu-s divides by the
// process's CPU time instead, which other load on the machine does not
// inflate.
func BenchmarkDemoTile(b *testing.B) {
	d := newDemo(b, grid.BBox{})
	for _, tc := range []struct {
		name string
		tile grid.Tile
	}{
		{"z2-europe-africa", grid.Tile{Zoom: 2, Col: 4, Row: 1}},
		{"z6-levant", grid.Tile{Zoom: 6, Col: 76, Row: 20}},
		{"z14-tel-aviv", grid.Tile{Zoom: 14, Col: 19552, Row: 5283}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			render(b, d, tc.tile) // the map loads at the first tile
			b.ReportAllocs()
			cpu := cpuTime(b)
			for b.Loop() {
				if _, err := d.Tile(b.Context(), tc.tile); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tiles/s")
			b.ReportMetric(float64(b.N)/(cpuTime(b)-cpu).Seconds(), "tiles/cpu-s")
		})
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
