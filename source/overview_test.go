package source_test

import (
	"image"
	"image/color"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

// block2 is a 256 × 256 tile whose first 2 × 2 block is px (top-left,
// top-right, bottom-left, bottom-right) and whose other pixels are fill.
func block2(fill color.NRGBA, px [4]color.NRGBA) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, grid.TileSize, grid.TileSize))
	for y := range grid.TileSize {
		for x := range grid.TileSize {
			m.SetNRGBA(x, y, fill)
		}
	}
	m.SetNRGBA(0, 0, px[0])
	m.SetNRGBA(1, 0, px[1])
	m.SetNRGBA(0, 1, px[2])
	m.SetNRGBA(1, 1, px[3])
	return m
}

func TestReduce(t *testing.T) {
	t.Parallel()
	white := color.NRGBA{255, 255, 255, 255}
	clear := color.NRGBA{}
	nd := &source.NoData{R: 255, G: 255, B: 255, Tolerance: 2}
	tests := []struct {
		name string
		px   [4]color.NRGBA
		r    source.Resampling
		nd   *source.NoData
		want color.NRGBA
	}{
		{"opaque average", [4]color.NRGBA{{10, 20, 30, 255}, {20, 30, 40, 255}, {30, 40, 50, 255}, {41, 51, 61, 255}}, source.ResampleAverage, nil, color.NRGBA{25, 35, 45, 255}},
		{"opaque rounds half up", [4]color.NRGBA{{0, 0, 0, 255}, {1, 0, 0, 255}, {1, 0, 0, 255}, {0, 1, 3, 255}}, source.ResampleAverage, nil, color.NRGBA{1, 0, 1, 255}},
		{"transparent samples give no colour", [4]color.NRGBA{{200, 100, 50, 255}, clear, {100, 50, 25, 255}, clear}, source.ResampleAverage, nil, color.NRGBA{150, 75, 38, 128}},
		{"translucent weighted by alpha", [4]color.NRGBA{{200, 0, 0, 255}, {0, 0, 200, 85}, clear, clear}, source.ResampleAverage, nil, color.NRGBA{150, 0, 50, 85}},
		{"all transparent", [4]color.NRGBA{clear, clear, clear, clear}, source.ResampleAverage, nil, clear},
		{"no-data samples give no colour", [4]color.NRGBA{{100, 100, 100, 255}, white, {254, 255, 253, 255}, {50, 60, 70, 255}}, source.ResampleAverage, nd, color.NRGBA{75, 80, 85, 255}},
		{"without noData white is data", [4]color.NRGBA{{100, 100, 100, 255}, white, white, {50, 60, 70, 255}}, source.ResampleAverage, nil, color.NRGBA{165, 168, 170, 255}},
		{"only no-data keeps its colour", [4]color.NRGBA{white, {254, 254, 254, 255}, clear, white}, source.ResampleAverage, nd, color.NRGBA{255, 255, 255, 192}},
		{"alpha rounds up", [4]color.NRGBA{{9, 9, 9, 1}, clear, clear, clear}, source.ResampleAverage, nil, color.NRGBA{9, 9, 9, 1}},
		{"nearest", [4]color.NRGBA{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}, {13, 14, 15, 16}}, source.ResampleNearest, nil, color.NRGBA{1, 2, 3, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fill := color.NRGBA{7, 8, 9, 255}
			for q := range 4 {
				dst := source.NewOverview()
				if err := source.Reduce(dst, q, block2(fill, tc.px), tc.r, tc.nd); err != nil {
					t.Fatal(err)
				}
				x0, y0 := (q%2)*128, (q/2)*128
				if got := dst.NRGBAAt(x0, y0); got != tc.want {
					t.Errorf("Reduce(quadrant %d) pixel (%d,%d) = %v, want %v", q, x0, y0, got, tc.want)
				}
				if got := dst.NRGBAAt(x0+1, y0+127); got != fill {
					t.Errorf("Reduce(quadrant %d) pixel (%d,%d) = %v, want the fill %v", q, x0+1, y0+127, got, fill)
				}
				// The other quadrants stay transparent.
				if got := dst.NRGBAAt((x0+128)%256, (y0+128)%256); got != clear {
					t.Errorf("Reduce(quadrant %d) left another quadrant %v, want transparent", q, got)
				}
			}
		})
	}
}

// TestReduceRGBA reads premultiplied RGBA tiles (as sources decode them)
// by their colour, not their premultiplied bytes.
func TestReduceRGBA(t *testing.T) {
	t.Parallel()
	m := image.NewRGBA(image.Rect(0, 0, grid.TileSize, grid.TileSize))
	m.SetRGBA(0, 0, color.RGBA{100, 50, 0, 128}) // NRGBA {199, 100, 0, 128}
	dst := source.NewOverview()
	if err := source.Reduce(dst, 0, m, source.ResampleAverage, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := dst.NRGBAAt(0, 0), (color.NRGBA{199, 100, 0, 32}); got != want {
		t.Errorf("Reduce(RGBA) pixel = %v, want %v", got, want)
	}
	opaque := image.NewRGBA(image.Rect(0, 0, grid.TileSize, grid.TileSize))
	for i := range opaque.Pix {
		opaque.Pix[i] = byte(60 + i%4*65)
	}
	if err := source.Reduce(dst, 1, opaque, source.ResampleAverage, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := dst.NRGBAAt(255, 0), (color.NRGBA{60, 125, 190, 255}); got != want {
		t.Errorf("Reduce(opaque RGBA) pixel = %v, want %v", got, want)
	}
	if err := source.Reduce(dst, 0, image.NewRGBA(image.Rect(0, 0, 512, 512)), source.ResampleAverage, nil); err == nil {
		t.Error("Reduce(512x512) succeeded, want an error")
	}
}

// TestReduceSubImage reads a tile cut from a metatile (a sub-image) at
// its own origin.
func TestReduceSubImage(t *testing.T) {
	t.Parallel()
	meta := image.NewNRGBA(image.Rect(0, 0, 2*grid.TileSize, grid.TileSize))
	meta.SetNRGBA(grid.TileSize, 0, color.NRGBA{40, 80, 120, 255})
	meta.SetNRGBA(grid.TileSize+1, 0, color.NRGBA{40, 80, 120, 255})
	sub := meta.SubImage(image.Rect(grid.TileSize, 0, 2*grid.TileSize, grid.TileSize))
	dst := source.NewOverview()
	if err := source.Reduce(dst, 3, sub, source.ResampleAverage, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := dst.NRGBAAt(128, 128), (color.NRGBA{40, 80, 120, 128}); got != want {
		t.Errorf("Reduce(sub-image) pixel = %v, want %v", got, want)
	}
}

func TestParseResampling(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]source.Resampling{"": source.ResampleAverage, "average": source.ResampleAverage, "nearest": source.ResampleNearest} {
		if got, err := source.ParseResampling(in); got != want || err != nil {
			t.Errorf("ParseResampling(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	if _, err := source.ParseResampling("cubic"); err == nil {
		t.Error("ParseResampling(cubic) succeeded")
	}
}

func TestQuadrant(t *testing.T) {
	t.Parallel()
	var got []int
	for _, c := range []grid.Tile{{Zoom: 3, Col: 4, Row: 6}, {Zoom: 3, Col: 5, Row: 6}, {Zoom: 3, Col: 4, Row: 7}, {Zoom: 3, Col: 5, Row: 7}} {
		got = append(got, source.Quadrant(c))
	}
	if diff := cmp.Diff([]int{0, 1, 2, 3}, got); diff != "" {
		t.Errorf("Quadrant (-want +got):\n%s", diff)
	}
}

// BenchmarkReduce reduces one opaque tile with transparent and no-data
// pixels into a quadrant, by area average.
func BenchmarkReduce(b *testing.B) {
	m := block2(color.NRGBA{90, 120, 150, 255}, [4]color.NRGBA{{}, {255, 255, 255, 255}, {1, 2, 3, 128}, {}})
	nd := &source.NoData{R: 255, G: 255, B: 255}
	dst := source.NewOverview()
	b.ReportAllocs()
	for b.Loop() {
		if err := source.Reduce(dst, 1, m, source.ResampleAverage, nd); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReduceOpaque reduces an opaque tile, the common case.
func BenchmarkReduceOpaque(b *testing.B) {
	m := block2(color.NRGBA{90, 120, 150, 255}, [4]color.NRGBA{{1, 2, 3, 255}, {4, 5, 6, 255}, {7, 8, 9, 255}, {10, 11, 12, 255}})
	dst := source.NewOverview()
	b.ReportAllocs()
	for b.Loop() {
		if err := source.Reduce(dst, 2, m, source.ResampleAverage, nil); err != nil {
			b.Fatal(err)
		}
	}
}
