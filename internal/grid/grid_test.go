package grid

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestZoomForResolution(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		res     float64
		want    Zoom
		wantErr bool
	}{
		{name: "zoom 0 exactly", res: 0.703125, want: 0},
		{name: "zoom 14 truncated decimal", res: 0.0000429153442382812, want: 14},
		{name: "zoom 14 exact", res: 0.703125 / 16384, want: 14},
		{name: "zoom 22", res: 1.6763806343078613e-7, want: 22},
		{name: "zoom 22 truncated", res: 0.000000167638063430786, want: 22},
		{name: "between 13 and 14 maps to 13", res: 0.00006, want: 13},
		{name: "just coarser than 14 maps to 13", res: 0.0000429153442382812 * 1.001, want: 13},
		{name: "just finer than 14 stays 14", res: 0.0000429153442382812 * 0.999, want: 14},
		{name: "between 0 and 1", res: 0.5, want: 0},
		{name: "coarser than zoom 0", res: 0.8, wantErr: true},
		{name: "zero", res: 0, wantErr: true},
		{name: "negative", res: -0.1, wantErr: true},
		{name: "NaN", res: math.NaN(), wantErr: true},
		{name: "infinite", res: math.Inf(1), wantErr: true},
		{name: "finer than zoom 22", res: 1e-8, wantErr: true},
		{name: "negative infinity", res: math.Inf(-1), wantErr: true},
		{name: "negative zero", res: math.Copysign(0, -1), wantErr: true},
		{name: "largest float", res: math.MaxFloat64, wantErr: true},
		{name: "smallest normal", res: 0x1p-1022, wantErr: true},
		// The ratio to zoom 0 overflows to +Inf for these; they once
		// wrapped to a negative zoom.
		{name: "subnormal 1e-309", res: 1e-309, wantErr: true},
		{name: "subnormal 5e-324", res: 5e-324, wantErr: true},
		{name: "smallest subnormal", res: math.SmallestNonzeroFloat64, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ZoomForResolution(tc.res)
			if tc.wantErr {
				if !errors.Is(err, ErrResolution) || got != 0 {
					t.Fatalf("ZoomForResolution(%v) = %v, %v, want 0, ErrResolution", tc.res, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ZoomForResolution(%v) = %v, %v, want %v", tc.res, got, err, tc.want)
			}
		})
	}
}

func TestResolutionRoundTrip(t *testing.T) {
	t.Parallel()
	for z := Zoom(0); z <= MaxZoom; z++ {
		got, err := ZoomForResolution(z.Resolution())
		if err != nil || got != z {
			t.Errorf("ZoomForResolution(%v.Resolution()) = %v, %v, want %v", z, got, err, z)
		}
		if w, h := z.MatrixWidth(), z.MatrixHeight(); w != 2*h || float64(w)*z.TileDegrees() != 360 {
			t.Errorf("zoom %d matrix %dx%d, tile %v°: does not span the world", z, w, h, z.TileDegrees())
		}
	}
}

// worked is the example of ARCHITECTURE.md section 4 and of the seed request.
var worked = BBox{MinX: 34.811938017107494, MinY: 31.95475033759175, MaxX: 34.82237261707599, MaxY: 31.96426962177354}

func TestSanitize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		req, foot BBox
		zoom      Zoom
		want      BBox
		wantCount int64
		wantErr   error
	}{
		{
			name: "worked example", req: worked, foot: World, zoom: 14,
			want:      BBox{MinX: 34.8046875, MinY: 31.9482421875, MaxX: 34.82666015625, MaxY: 31.97021484375},
			wantCount: 18,
		},
		{
			name: "clipped by footprint", req: BBox{MinX: 30, MinY: 30, MaxX: 40, MaxY: 40},
			foot: BBox{MinX: 34, MinY: 29, MaxX: 36, MaxY: 33.5}, zoom: 0,
			want: BBox{MinX: 0, MinY: -90, MaxX: 180, MaxY: 90}, wantCount: 1,
		},
		{
			name: "whole world zoom 0", req: World, foot: World, zoom: 0,
			want: World, wantCount: 2,
		},
		{
			name: "whole world zoom 2", req: World, foot: World, zoom: 2,
			want: World, wantCount: 2 + 8 + 32,
		},
		{
			name: "north pole", req: BBox{MinX: 10, MinY: 89.99, MaxX: 10.001, MaxY: 90}, foot: World, zoom: 3,
			want:      BBox{MinX: 0, MinY: 67.5, MaxX: 22.5, MaxY: 90},
			wantCount: 4,
		},
		{
			name: "south pole", req: BBox{MinX: -10.001, MinY: -90, MaxX: -10, MaxY: -89.99}, foot: World, zoom: 3,
			want:      BBox{MinX: -22.5, MinY: -90, MaxX: 0, MaxY: -67.5},
			wantCount: 4,
		},
		{
			name: "antimeridian east edge", req: BBox{MinX: 179.99, MinY: 0, MaxX: 180, MaxY: 0.01}, foot: World, zoom: 1,
			want:      BBox{MinX: 90, MinY: 0, MaxX: 180, MaxY: 90},
			wantCount: 2,
		},
		{
			name: "antimeridian west edge", req: BBox{MinX: -180, MinY: -0.01, MaxX: -179.99, MaxY: 0}, foot: World, zoom: 1,
			want:      BBox{MinX: -180, MinY: -90, MaxX: -90, MaxY: 0},
			wantCount: 2,
		},
		{
			name: "edges on tile boundaries add no tile", req: BBox{MinX: 0, MinY: 0, MaxX: 45, MaxY: 45}, foot: World, zoom: 2,
			want: BBox{MinX: 0, MinY: 0, MaxX: 45, MaxY: 45}, wantCount: 1 + 1 + 1,
		},
		{
			name: "decimal rounding near a boundary adds no tile",
			req:  BBox{MinX: 34.8046875 - 1e-13, MinY: 31.9482421875, MaxX: 34.82666015625 + 1e-13, MaxY: 31.97021484375}, foot: World, zoom: 14,
			want:      BBox{MinX: 34.8046875, MinY: 31.9482421875, MaxX: 34.82666015625, MaxY: 31.97021484375},
			wantCount: 18,
		},
		{
			name: "zoom 22 single tile", req: BBox{MinX: 0.00001, MinY: 0.00001, MaxX: 0.00002, MaxY: 0.00002}, foot: World, zoom: 22,
			want: BBox{MinX: 0, MinY: 0, MaxX: MaxZoom.TileDegrees(), MaxY: MaxZoom.TileDegrees()},
			// A point just north-east of (0, 0): one tile at every zoom.
			wantCount: 23,
		},
		{
			name: "no overlap", req: BBox{MinX: 0, MinY: 0, MaxX: 1, MaxY: 1}, foot: BBox{MinX: 2, MinY: 2, MaxX: 3, MaxY: 3},
			zoom: 5, wantErr: ErrNoOverlap,
		},
		{
			name: "touching edges do not overlap", req: BBox{MinX: 0, MinY: 0, MaxX: 2, MaxY: 1}, foot: BBox{MinX: 2, MinY: 0, MaxX: 3, MaxY: 1},
			zoom: 5, wantErr: ErrNoOverlap,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Sanitize(tc.req, tc.foot, tc.zoom)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Sanitize(%v, %v, %d) error = %v, want %v", tc.req, tc.foot, tc.zoom, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Sanitize(%v, %v, %d): %v", tc.req, tc.foot, tc.zoom, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Sanitize(%v, %v, %d) mismatch (-want +got):\n%s", tc.req, tc.foot, tc.zoom, diff)
			}
			if n := CountTiles(Pyramid(got, tc.zoom)); n != tc.wantCount {
				t.Errorf("CountTiles(Pyramid(%v, %d)) = %d, want %d", got, tc.zoom, n, tc.wantCount)
			}
		})
	}
}

func TestRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		zoom Zoom
		b    BBox
		want TileRange
	}{
		{name: "world zoom 0", zoom: 0, b: World, want: TileRange{Zoom: 0, MinCol: 0, MinRow: 0, MaxCol: 2, MaxRow: 1}},
		{name: "world zoom 22", zoom: 22, b: World, want: TileRange{Zoom: 22, MinCol: 0, MinRow: 0, MaxCol: 1 << 23, MaxRow: 1 << 22}},
		{name: "east hemisphere", zoom: 0, b: BBox{MinX: 0, MinY: -90, MaxX: 180, MaxY: 90}, want: TileRange{Zoom: 0, MinCol: 1, MinRow: 0, MaxCol: 2, MaxRow: 1}},
		{name: "north-west quadrant zoom 1", zoom: 1, b: BBox{MinX: -180, MinY: 0, MaxX: -90, MaxY: 90}, want: TileRange{Zoom: 1, MinCol: 0, MinRow: 0, MaxCol: 1, MaxRow: 1}},
		{name: "south-east corner zoom 1", zoom: 1, b: BBox{MinX: 179, MinY: -90, MaxX: 180, MaxY: -89}, want: TileRange{Zoom: 1, MinCol: 3, MinRow: 1, MaxCol: 4, MaxRow: 2}},
		{name: "worked example zoom 14", zoom: 14, b: worked, want: TileRange{Zoom: 14, MinCol: 19552, MinRow: 5282, MaxCol: 19554, MaxRow: 5284}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.zoom.Range(tc.b)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Zoom(%d).Range(%v) mismatch (-want +got):\n%s", tc.zoom, tc.b, diff)
			}
			// The range's own bounds map back to the same range.
			if back := tc.zoom.Range(got.Bounds()); back != got {
				t.Errorf("Range(Bounds()) = %+v, want %+v", back, got)
			}
		})
	}
}

func TestTileRangeHalfOpen(t *testing.T) {
	t.Parallel()
	r := TileRange{Zoom: 3, MinCol: 2, MinRow: 1, MaxCol: 4, MaxRow: 2}
	var got []Tile
	r.Tiles(func(t Tile) bool { got = append(got, t); return true })
	want := []Tile{{3, 2, 1}, {3, 3, 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tiles() mismatch (-want +got):\n%s", diff)
	}
	if r.Count() != 2 || r.Contains(4, 1) || r.Contains(2, 2) || !r.Contains(3, 1) {
		t.Errorf("half-open bounds violated: count %d", r.Count())
	}
	if (TileRange{MinCol: 3, MaxCol: 3, MaxRow: 5}).Count() != 0 {
		t.Error("empty range counts tiles")
	}
}

func TestTileBoundsAndFlip(t *testing.T) {
	t.Parallel()
	got := Zoom(1).TileBounds(0, 0)
	want := BBox{MinX: -180, MinY: 0, MaxX: -90, MaxY: 90}
	if got != want {
		t.Errorf("TileBounds(0, 0) = %v, want %v", got, want)
	}
	if got := Zoom(2).FlipRow(0); got != 3 {
		t.Errorf("Zoom(2).FlipRow(0) = %d, want 3", got)
	}
	if got := Zoom(0).FlipRow(0); got != 0 {
		t.Errorf("Zoom(0).FlipRow(0) = %d, want 0", got)
	}
}

func TestBBoxValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		b    BBox
		ok   bool
	}{
		{name: "world", b: World, ok: true},
		{name: "worked", b: worked, ok: true},
		{name: "min equals max x", b: BBox{1, 0, 1, 1}},
		{name: "min above max y", b: BBox{0, 2, 1, 1}},
		{name: "longitude out of range", b: BBox{-181, 0, 1, 1}},
		{name: "latitude out of range", b: BBox{0, 0, 1, 91}},
		{name: "NaN", b: BBox{math.NaN(), 0, 1, 1}},
		{name: "crosses antimeridian", b: BBox{170, 0, -170, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.b.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBBox)) {
				t.Errorf("%v.Validate() = %v, want ok=%v", tc.b, err, tc.ok)
			}
		})
	}
}

func BenchmarkPyramid(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		CountTiles(Pyramid(worked, 18))
	}
}

func TestTileCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tile Tile
		want string // empty: a tile of the grid
	}{
		{tile: Tile{Zoom: 0, Col: 1, Row: 0}},
		{tile: Tile{Zoom: MaxZoom, Col: MaxZoom.MatrixWidth() - 1, Row: MaxZoom.MatrixHeight() - 1}},
		{tile: Tile{Zoom: -1}, want: "zoom -1 is not in [0, 22]"},
		{tile: Tile{Zoom: MaxZoom + 1}, want: "zoom 23 is not in [0, 22]"},
		{tile: Tile{Zoom: 0, Col: 2, Row: 0}, want: "column 2 is not in [0, 2) at zoom 0"},
		{tile: Tile{Zoom: 1, Col: -1, Row: 0}, want: "column -1 is not in [0, 4) at zoom 1"},
		{tile: Tile{Zoom: 1, Col: 0, Row: 2}, want: "row 2 is not in [0, 2) at zoom 1"},
		{tile: Tile{Zoom: 1, Col: 0, Row: -1}, want: "row -1 is not in [0, 2) at zoom 1"},
	}
	for _, tc := range tests {
		err := tc.tile.Check()
		if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
			t.Errorf("Tile(%s).Check() = %v, want %q", tc.tile, err, tc.want)
		}
	}
}
