package area_test

import (
	"crypto/sha256"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/peterstace/simplefeatures/geom"

	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/grid"
)

// at converts tile units at zoom z (columns from the west, rows from the
// north, fractions inside a tile) to longitude/latitude.
func at(z grid.Zoom, u, v float64) geom.XY {
	d := z.TileDegrees()
	return geom.XY{X: u*d - 180, Y: 90 - v*d}
}

// poly builds a polygon from rings of tile-unit points at zoom z.
func poly(z grid.Zoom, rings ...[][2]float64) geom.Polygon {
	ls := make([]geom.LineString, len(rings))
	for i, r := range rings {
		flat := make([]float64, 0, 2*len(r)+2)
		for _, p := range append(r, r[0]) {
			xy := at(z, p[0], p[1])
			flat = append(flat, xy.X, xy.Y)
		}
		ls[i] = geom.NewLineString(geom.NewSequence(flat, geom.DimXY))
	}
	return geom.NewPolygon(ls)
}

func box(u0, v0, u1, v1 float64) [][2]float64 {
	return [][2]float64{{u0, v0}, {u1, v0}, {u1, v1}, {u0, v1}}
}

// star is a star-shaped ring of n points around (cu, cv) with radii in
// [rmin, rmax]: always simple.
func star(rng *rand.Rand, n int, cu, cv, rmin, rmax float64) [][2]float64 {
	out := make([][2]float64, n)
	for k := range out {
		a := 2 * math.Pi * (float64(k) + 0.4*rng.Float64()) / float64(n)
		r := rmin + (rmax-rmin)*rng.Float64()
		out[k] = [2]float64{cu + r*math.Cos(a), cv + r*math.Sin(a)}
	}
	return out
}

// bruteForce lists the tiles at z whose square meets g (within fp) with
// a non-zero area, by the library's intersection, tile by tile.
func bruteForce(t testing.TB, g geom.Geometry, fp area.Footprint, fpGeom geom.Geometry, z grid.Zoom) map[grid.Tile]bool {
	t.Helper()
	if !fpGeom.IsEmpty() {
		var err error
		if g, err = geom.Intersection(g, fpGeom); err != nil {
			t.Fatal(err)
		}
	} else {
		b := fp.BBox()
		var err error
		if g, err = geom.Intersection(g, bboxGeom(b)); err != nil {
			t.Fatal(err)
		}
	}
	out := map[grid.Tile]bool{}
	if g.IsEmpty() {
		return out
	}
	lo, hi, _ := g.Envelope().MinMaxXYs()
	r := z.Range(grid.BBox{MinX: lo.X, MinY: lo.Y, MaxX: hi.X, MaxY: hi.Y})
	for tile := range r.Tiles {
		inter, err := geom.Intersection(g, bboxGeom(z.TileBounds(tile.Col, tile.Row)))
		if err != nil {
			t.Fatal(err)
		}
		if inter.Area() > 0 {
			out[tile] = true
		}
	}
	return out
}

func bboxGeom(b grid.BBox) geom.Geometry {
	return geom.NewPolygon([]geom.LineString{geom.NewLineString(geom.NewSequence(
		[]float64{b.MinX, b.MinY, b.MaxX, b.MinY, b.MaxX, b.MaxY, b.MinX, b.MaxY, b.MinX, b.MinY}, geom.DimXY))}).AsGeometry()
}

func tileSet(l grid.Level) map[grid.Tile]bool {
	m := map[grid.Tile]bool{}
	for t := range l.Tiles {
		m[t] = true
	}
	return m
}

// TestCoverMatchesBruteForce compares the coverage of random valid
// polygons and multipolygons with holes, at their finest zoom and the
// coarser zooms derived from it, with a tile-by-tile intersection test.
func TestCoverMatchesBruteForce(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(12, 34))
	world := area.BBoxFootprint(grid.World)
	for i := range 24 {
		z := grid.Zoom(6 + rng.IntN(12))
		cu, cv := 100+rng.Float64()*50, 20+rng.Float64()*10
		R := 3 + rng.Float64()*6
		rings := [][][2]float64{star(rng, 8+rng.IntN(30), cu, cv, 0.5*R, R)}
		if i%2 == 0 {
			rings = append(rings, star(rng, 8+rng.IntN(10), cu, cv, 0.1*R, 0.4*R))
		}
		g := poly(z, rings...).AsGeometry()
		if i%3 == 0 {
			// A second part far to the east, with a hole.
			far := poly(z, star(rng, 12, cu+40, cv+3, 0.5*R, R), star(rng, 9, cu+40, cv+3, 0.1*R, 0.4*R))
			g = geom.NewMultiPolygon([]geom.Polygon{g.MustAsPolygon(), far}).AsGeometry()
		}
		if err := g.Validate(); err != nil {
			t.Fatalf("case %d: test polygon is invalid: %v", i, err)
		}
		f := area.Feature{Geometry: g, MinZoom: max(0, z-2), MaxZoom: z}
		c, err := area.Cover([]area.Feature{f}, world)
		if err != nil {
			t.Fatalf("case %d: Cover() error = %v", i, err)
		}
		for zz := f.MinZoom; zz <= z; zz++ {
			want := bruteForce(t, g, world, geom.Geometry{}, zz)
			if got := tileSet(c.Level(zz)); !cmp.Equal(got, want) {
				t.Errorf("case %d zoom %d: Cover() differs from the tile-by-tile test (-want +got):\n%s", i, zz, cmp.Diff(want, got))
			}
		}
		for zz := grid.Zoom(0); zz < f.MinZoom; zz++ {
			if n := c.Level(zz).Count(); n != 0 {
				t.Errorf("case %d: %d tiles at zoom %d, below the feature's zooms", i, n, zz)
			}
		}
	}
}

// TestCoverPinned pins the tile counts of typical areas. Shapes are given
// in tile units of zoom 12 (offset into the Middle East), so the counts
// can be checked by hand at that zoom; the coarser zooms come from the
// tile-by-tile test.
func TestCoverPinned(t *testing.T) {
	t.Parallel()
	const z = 12
	o := [2]float64{4400, 1000} // the tile near 34.7°E, 46°N
	sh := func(ring [][2]float64) [][2]float64 {
		out := make([][2]float64, len(ring))
		for i, p := range ring {
			out[i] = [2]float64{p[0] + o[0], p[1] + o[1]}
		}
		return out
	}
	lShape := sh([][2]float64{{0.5, 0.5}, {10.5, 0.5}, {10.5, 3.5}, {3.5, 3.5}, {3.5, 10.5}, {0.5, 10.5}})
	world := area.BBoxFootprint(grid.World)
	// The footprint's east edge cuts column 20 of the offset grid.
	fpBox := grid.BBox{MinX: at(z, o[0]-5, 0).X, MaxX: at(z, o[0]+20.3, 0).X, MaxY: at(z, 0, o[1]-5).Y, MinY: at(z, 0, o[1]+40).Y}
	fpPoly, err := area.GeometryFootprint(bboxGeom(fpBox))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		g       geom.Geometry
		fp      area.Footprint
		fpGeom  geom.Geometry
		finest  int64 // by hand
		pyramid int64 // zooms 0..12
	}{
		// 11 columns × rows 0..3, and columns 0..3 × rows 4..10.
		{name: "L-shape", g: poly(z, lShape).AsGeometry(), fp: world, finest: 11*4 + 4*7, pyramid: 110},
		// 11 × 11 tiles less the 2 × 2 that lie wholly in the hole.
		{name: "polygon with a hole", g: poly(z, sh(box(0.5, 0.5, 10.5, 10.5)), sh(box(3.2, 3.2, 6.8, 6.8))).AsGeometry(), fp: world, finest: 121 - 4, pyramid: 175},
		// 4 × 4 tiles whose edges lie on tile boundaries (their neighbours
		// are only touched), and 3 × 3 tiles 90 tiles away.
		{name: "multipolygon far apart", g: geom.NewMultiPolygon([]geom.Polygon{
			poly(z, sh(box(10, 10, 14, 14))),
			poly(z, sh(box(100.25, 50.25, 102.75, 52.75))),
		}).AsGeometry(), fp: world, finest: 16 + 9, pyramid: 57},
		// Columns 15..20 (the footprint ends inside column 20) × rows 0..5.
		{name: "crossing the footprint's edge", g: poly(z, sh(box(15.5, 0.5, 30.5, 5.5))).AsGeometry(), fp: area.BBoxFootprint(fpBox), finest: 6 * 6, pyramid: 68},
		{name: "crossing a polygon footprint's edge", g: poly(z, sh(box(15.5, 0.5, 30.5, 5.5))).AsGeometry(), fp: fpPoly, fpGeom: bboxGeom(fpBox), finest: 6 * 6, pyramid: 68},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := area.Cover([]area.Feature{{Geometry: tc.g, MaxZoom: z}}, tc.fp)
			if err != nil {
				t.Fatalf("Cover() error = %v", err)
			}
			if got := c.Level(z).Count(); got != tc.finest {
				t.Errorf("Cover() = %d tiles at zoom %d, want %d", got, z, tc.finest)
			}
			if got := c.Count(); got != tc.pyramid {
				t.Errorf("Cover() = %d tiles at zooms 0..%d, want %d", got, z, tc.pyramid)
			}
			for zz := grid.Zoom(0); zz <= z; zz++ {
				want := bruteForce(t, tc.g, tc.fp, tc.fpGeom, zz)
				if got := tileSet(c.Level(zz)); !cmp.Equal(got, want) {
					t.Errorf("zoom %d differs from the tile-by-tile test (-want +got):\n%s", zz, cmp.Diff(want, got))
				}
			}
		})
	}
}

// TestCoverUnion checks that features are united per zoom, each over its
// own zoom range, and that a feature outside the footprint is refused by
// index.
func TestCoverUnion(t *testing.T) {
	t.Parallel()
	const z = 10
	a := area.Feature{Geometry: poly(z, box(1000.5, 300.5, 1004.5, 302.5)).AsGeometry(), MinZoom: 0, MaxZoom: z}
	b := area.Feature{Geometry: poly(z+2, box(4002.5, 1202.5, 4030.5, 1210.5)).AsGeometry(), MinZoom: z - 1, MaxZoom: z + 2}
	c, err := area.Cover([]area.Feature{a, b}, area.BBoxFootprint(grid.World))
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := area.Cover([]area.Feature{a}, area.BBoxFootprint(grid.World))
	cb, _ := area.Cover([]area.Feature{b}, area.BBoxFootprint(grid.World))
	for zz := grid.Zoom(0); zz <= z+2; zz++ {
		want := ca.Level(zz).Union(cb.Level(zz))
		if want.Zoom != zz {
			want.Zoom = zz
		}
		if !cmp.Equal(c.Level(zz), want) {
			t.Errorf("zoom %d: Cover() of both is not the union of each (-want +got):\n%s", zz, cmp.Diff(want, c.Level(zz)))
		}
	}
	if got := c.Level(z - 2); !got.Empty() && got.Count() != ca.Level(z-2).Count() {
		t.Errorf("zoom %d holds tiles of a feature that starts at zoom %d", z-2, z-1)
	}
	fp := area.BBoxFootprint(grid.BBox{MinX: 0, MinY: 40, MaxX: 10, MaxY: 50})
	_, err = area.Cover([]area.Feature{{Geometry: poly(z, box(1024.5, 256.5, 1030, 260)).AsGeometry(), MaxZoom: z}, a}, fp)
	var ae *area.Error
	if !errors.As(err, &ae) || ae.Feature != 1 {
		t.Errorf("Cover() with feature 1 outside the footprint = %v, want an *area.Error for feature 1", err)
	}
}

// TestCoverAtMost: a corridor one tile wide running diagonally across a
// bbox of 9 × 10^8 tiles is covered and counted exactly within a limit its
// bbox would break a million times over; an area over the limit is refused
// with the feature that took it over, and within the limit CoverAtMost is
// Cover.
func TestCoverAtMost(t *testing.T) {
	t.Parallel()
	const z = 16
	world := area.BBoxFootprint(grid.World)
	// From tile (25000, 5000) to (55000, 35000): 30,000 rows, two or three
	// tiles a row.
	corridor := poly(z, [][2]float64{{25000, 5000}, {25001, 5000}, {55001, 35000}, {55000, 35000}})
	f := area.Feature{Geometry: corridor.AsGeometry(), MinZoom: z, MaxZoom: z}
	c, err := area.CoverAtMost([]area.Feature{f}, world, 1_000_000)
	if err != nil {
		t.Fatalf("CoverAtMost(corridor) = %v", err)
	}
	if n := c.Count(); n < 60_000 || n > 90_000 {
		t.Errorf("corridor covers %d tiles, want 30,000 rows of two or three", n)
	}
	all, err := area.Cover([]area.Feature{f}, world)
	if err != nil || !reflect.DeepEqual(all, c) {
		t.Errorf("Cover(corridor) differs from CoverAtMost within its limit (%v)", err)
	}

	small := area.Feature{Geometry: poly(10, box(1000.5, 300.5, 1004.5, 302.5)).AsGeometry(), MaxZoom: 10}
	for _, tc := range []struct {
		name     string
		features []area.Feature
		limit    int64
		feature  int
	}{
		{"the finest zoom alone is over", []area.Feature{small, f}, 50_000, 1},
		{"the coarser zooms take it over", []area.Feature{{Geometry: f.Geometry, MinZoom: 0, MaxZoom: z}}, c.Count(), 0},
		{"a zoom-0 area", []area.Feature{small}, 0, 0},
	} {
		_, err := area.CoverAtMost(tc.features, world, tc.limit)
		var tooMany *area.TooManyTilesError
		if !errors.As(err, &tooMany) || tooMany.Limit != tc.limit || tooMany.Feature != tc.feature {
			t.Errorf("%s: CoverAtMost() = %v, want a *TooManyTilesError for feature %d", tc.name, err, tc.feature)
		}
	}
}

// BenchmarkCover computes the coverage and its digest for a 10,000-vertex
// polygon covering about a million tiles at its finest zoom.
func BenchmarkCover(b *testing.B) {
	const z = 16
	rng := rand.New(rand.NewPCG(5, 6))
	ring := star(rng, 10_000, 40000, 20000, 540, 600)
	f := area.Feature{Geometry: poly(z, ring).AsGeometry(), MaxZoom: z}
	world := area.BBoxFootprint(grid.World)
	c, err := area.Cover([]area.Feature{f}, world)
	if err != nil {
		b.Fatal(err)
	}
	if n := c.Level(z).Count(); n < 900_000 || n > 1_200_000 {
		b.Fatalf("%d tiles at zoom %d, want about a million", n, z)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, _ := area.Cover([]area.Feature{f}, world)
		buf, _ := c.AppendBinary(nil)
		sha256.Sum256(buf)
	}
}
