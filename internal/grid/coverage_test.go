package grid

import (
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func rect(b BBox) []Ring {
	return []Ring{{{b.MinX, b.MinY}, {b.MaxX, b.MinY}, {b.MaxX, b.MaxY}, {b.MinX, b.MaxY}, {b.MinX, b.MinY}}}
}

// levelSet lists the tiles of l, for comparisons.
func levelSet(l Level) map[Tile]bool {
	m := map[Tile]bool{}
	for t := range l.Tiles {
		m[t] = true
	}
	return m
}

// TestCoverRingsRectangleIsRange checks that a rectangle covers exactly the
// tiles Range gives for it, edges on tile boundaries and rounded decimal
// edges included, and that clipping to a footprint is Range of the
// intersection.
func TestCoverRingsRectangleIsRange(t *testing.T) {
	t.Parallel()
	seed := BBox{MinX: 34.811938017107494, MinY: 31.95475033759175, MaxX: 34.82237261707599, MaxY: 31.96426962177354}
	snapped := BBox{MinX: 34.8046875, MinY: 31.9482421875, MaxX: 34.82666015625, MaxY: 31.97021484375}
	rng := rand.New(rand.NewPCG(1, 2))
	boxes := []BBox{seed, snapped, World, {MinX: 179, MinY: -10, MaxX: 180, MaxY: 10}, {MinX: -180, MinY: -90, MaxX: -179.9, MaxY: -89.9}}
	for range 50 {
		x, y := rng.Float64()*350-175, rng.Float64()*170-85
		boxes = append(boxes, BBox{MinX: x, MinY: y, MaxX: x + rng.Float64()*5, MaxY: y + rng.Float64()*5})
	}
	footprint := BBox{MinX: 34.2, MinY: 29.4, MaxX: 35.9, MaxY: 33.4}
	for _, b := range boxes {
		for _, z := range []Zoom{0, 3, 9, 14} {
			if got, want := z.CoverRings(rect(b), World), RangeLevel(z.Range(b)); !cmp.Equal(got, want) {
				t.Errorf("CoverRings(%v) at zoom %d (-want +got):\n%s", b, z, cmp.Diff(want, got))
			}
			clipped, err := b.Intersect(footprint)
			want := Level{Zoom: z}
			if err == nil {
				want = RangeLevel(z.Range(clipped))
			}
			if got := z.CoverRings(rect(b), footprint); !cmp.Equal(got, want) {
				t.Errorf("CoverRings(%v) clipped to %v at zoom %d (-want +got):\n%s", b, footprint, z, cmp.Diff(want, got))
			}
		}
	}
}

// TestCoverRingsTouching checks that tiles an area touches only along an
// edge or at a corner are not covered.
func TestCoverRingsTouching(t *testing.T) {
	t.Parallel()
	z := Zoom(2) // 45° tiles
	// A diamond whose corners touch the tile boundaries at 0° and 45°.
	diamond := []Ring{{{22.5, 0}, {45, 22.5}, {22.5, 45}, {0, 22.5}, {22.5, 0}}}
	got := levelSet(z.CoverRings(diamond, World))
	want := map[Tile]bool{{Zoom: 2, Col: 4, Row: 1}: true}
	if !cmp.Equal(got, want) {
		t.Errorf("diamond in one tile: (-want +got):\n%s", cmp.Diff(want, got))
	}
	// A triangle with a vertex on the corner of four tiles meets only the
	// tile it lies in.
	tri := []Ring{{{0, 0}, {-40, 10}, {-10, 40}, {0, 0}}}
	got = levelSet(z.CoverRings(tri, World))
	want = map[Tile]bool{{Zoom: 2, Col: 3, Row: 1}: true}
	if !cmp.Equal(got, want) {
		t.Errorf("triangle at a corner: (-want +got):\n%s", cmp.Diff(want, got))
	}
}

func TestLevelOperations(t *testing.T) {
	t.Parallel()
	z := Zoom(5)
	a := RangeLevel(TileRange{Zoom: z, MinCol: 2, MaxCol: 6, MinRow: 1, MaxRow: 4})
	b := RangeLevel(TileRange{Zoom: z, MinCol: 6, MaxCol: 8, MinRow: 3, MaxRow: 5})
	u := a.Union(b)
	if got := u.Count(); got != 12+4 {
		t.Errorf("Union().Count() = %d, want 16", got)
	}
	// Row 3 holds columns 2..8 as one span: adjacent spans join.
	if got, want := u.Rows[2], (Row{Row: 3, Spans: []Span{{Min: 2, Max: 8}}}); !cmp.Equal(got, want) {
		t.Errorf("row 3 = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		col, row int64
		want     bool
	}{{2, 1, true}, {5, 3, true}, {7, 4, true}, {1, 1, false}, {6, 1, false}, {7, 5, false}, {3, 0, false}} {
		if got := u.Contains(tc.col, tc.row); got != tc.want {
			t.Errorf("Contains(%d, %d) = %v, want %v", tc.col, tc.row, got, tc.want)
		}
	}
	if got, want := u.Bounds(), (TileRange{Zoom: z, MinCol: 2, MaxCol: 8, MinRow: 1, MaxRow: 5}); got != want {
		t.Errorf("Bounds() = %v, want %v", got, want)
	}
	// Ranges cover the level once each.
	seen := map[Tile]int{}
	for _, r := range u.Ranges() {
		for tile := range r.Tiles {
			seen[tile]++
		}
	}
	if len(seen) != 16 {
		t.Errorf("Ranges() cover %d tiles, want 16", len(seen))
	}
	for tile, n := range seen {
		if n != 1 || !u.Contains(tile.Col, tile.Row) {
			t.Errorf("tile %s is in %d ranges", tile, n)
		}
	}
	if got := len(a.Ranges()); got != 1 {
		t.Errorf("a rectangle is %d ranges, want 1", got)
	}
	clip := u.Clip(TileRange{Zoom: z, MinCol: 5, MaxCol: 7, MinRow: 0, MaxRow: 4})
	if got := clip.Count(); got != 1+1+2 {
		t.Errorf("Clip().Count() = %d, want 4", got)
	}
	// Parent: the tiles with a child in the level.
	p := u.Parent()
	want := map[Tile]bool{}
	for tile := range u.Tiles {
		want[Tile{Zoom: z - 1, Col: tile.Col / 2, Row: tile.Row / 2}] = true
	}
	if got := levelSet(p); !cmp.Equal(got, want) {
		t.Errorf("Parent() (-want +got):\n%s", cmp.Diff(want, got))
	}
}

func TestCoveragePyramid(t *testing.T) {
	t.Parallel()
	snapped := BBox{MinX: 34.8046875, MinY: 31.9482421875, MaxX: 34.82666015625, MaxY: 31.97021484375}
	c := PyramidCoverage(snapped, 14)
	if got := c.Count(); got != 18 {
		t.Errorf("Count() = %d, want 18", got)
	}
	ext, z, ok := c.Pyramid()
	if !ok || ext != snapped || z != 14 {
		t.Errorf("Pyramid() = %v, %d, %v, want %v, 14, true", ext, z, ok, snapped)
	}
	// The same tiles derived from the finest level are the same coverage.
	var derived Coverage
	l := RangeLevel(Zoom(14).Range(snapped))
	for {
		derived = derived.Add(l)
		if l.Zoom == 0 {
			break
		}
		l = l.Parent()
	}
	if !cmp.Equal(derived, c) {
		t.Errorf("derived coverage differs (-want +got):\n%s", cmp.Diff(c, derived))
	}
	// Without zoom 0 it is no /create export.
	holed := Coverage{Levels: append([]Level{{Zoom: 0}}, c.Levels[1:]...)}
	if _, _, ok := holed.Pyramid(); ok {
		t.Error("Pyramid() of a coverage without zoom 0 = true")
	}
	if got := c.Upto(3).MaxZoom(); got != 3 {
		t.Errorf("Upto(3).MaxZoom() = %d, want 3", got)
	}
}
