package source

import (
	"fmt"
	"image"
	"image/draw"
	"math"
	"sync"

	"github.com/peterstace/simplefeatures/geom"
	"github.com/peterstace/simplefeatures/rtree"
	"golang.org/x/image/vector"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source/world"
)

// The demo's world map: Natural Earth land and borders (package world),
// cut into short runs of segments that an R-tree finds by their bounding
// boxes, so that a tile touches only the line work near it, and
// rasterised with anti-aliasing by golang.org/x/image/vector into coverage
// masks that Demo.Tile colours.

// chunkSegments is the most segments of one ring or line in one chunk:
// short enough that a tile skips most of a continent's outline, long
// enough that the tree stays small (about 3,000 chunks at 1:50m).
const chunkSegments = 24

// mediumFromZoom is the first zoom drawn from the 1:50m data: up to zoom
// 2 (0.18° a pixel) the 1:110m outlines are as fine as the pixels.
const mediumFromZoom = 3

// worldScale is one scale of the map, indexed.
type worldScale struct {
	land    lineIndex // the outlines of the land polygons
	borders lineIndex
}

// lineIndex holds rings or lines as chunks of consecutive segments.
type lineIndex struct {
	xy     []float64 // x, y of every point, ring after ring
	chunks []chunk
	tree   *rtree.RTree
}

// chunk is the segments from point first to point last (inclusive) of one
// ring or line.
type chunk struct {
	first, last int
	box         rtree.Box
}

// worldScales loads and indexes every scale once, at the first tile.
var worldScales = sync.OnceValues(func() ([]*worldScale, error) {
	out := make([]*worldScale, len(world.Scales))
	for i, s := range world.Scales {
		m, err := world.Load(s)
		if err != nil {
			return nil, err
		}
		ws := new(worldScale)
		for _, p := range m.Land.Dump() {
			for _, r := range p.Coordinates() {
				ws.land.add(r)
			}
		}
		for _, l := range m.Borders.Dump() {
			ws.borders.add(l.Coordinates())
		}
		ws.land.index()
		ws.borders.index()
		out[i] = ws
	}
	return out, nil
})

// scaleFor returns the map to draw zoom z from.
func scaleFor(z grid.Zoom) (*worldScale, error) {
	scales, err := worldScales()
	if err != nil {
		return nil, fmt.Errorf("demo world map: %w", err)
	}
	if z < mediumFromZoom {
		return scales[0], nil
	}
	return scales[1], nil
}

func (l *lineIndex) add(seq geom.Sequence) {
	start := len(l.xy) / 2
	for i := range seq.Length() {
		xy := seq.GetXY(i)
		l.xy = append(l.xy, xy.X, xy.Y)
	}
	end := len(l.xy)/2 - 1 // the last point
	for first := start; first < end; first += chunkSegments {
		c := chunk{first: first, last: min(first+chunkSegments, end)}
		c.box = rtree.Box{MinX: math.Inf(1), MinY: math.Inf(1), MaxX: math.Inf(-1), MaxY: math.Inf(-1)}
		for i := c.first; i <= c.last; i++ {
			x, y := l.xy[2*i], l.xy[2*i+1]
			c.box.MinX, c.box.MaxX = min(c.box.MinX, x), max(c.box.MaxX, x)
			c.box.MinY, c.box.MaxY = min(c.box.MinY, y), max(c.box.MaxY, y)
		}
		l.chunks = append(l.chunks, c)
	}
}

func (l *lineIndex) index() {
	items := make([]rtree.BulkItem, len(l.chunks))
	for i, c := range l.chunks {
		items[i] = rtree.BulkItem{Box: c.box, RecordID: i}
	}
	l.tree = rtree.BulkLoad(items)
}

// search calls fn with every chunk whose box meets b.
func (l *lineIndex) search(b rtree.Box, fn func(c *chunk)) {
	_ = l.tree.RangeSearch(b, func(id int) error { // fn returns no error
		fn(&l.chunks[id])
		return nil
	})
}

// pixels maps longitude and latitude to a tile's pixel space (x east, y
// south, one unit a pixel) and back out of it.
type pixels struct {
	b   grid.BBox
	res float64
}

func (p pixels) at(xy []float64, i int) (x, y float64) {
	return (xy[2*i] - p.b.MinX) / p.res, (p.b.MaxY - xy[2*i+1]) / p.res
}

// fillLand draws the land's coverage of the tile into mask. Only the
// chunks crossing the tile's band of latitudes count; a chunk wholly west
// or east of the tile adds what its segments would once clamped to the
// tile's edge, a vertical step from its first to its last point, so that
// its segments need not be visited. When no outline crosses the tile
// itself, the tile is all land or all water and no rasteriser runs: the
// return value says which, and mask is untouched; otherwise uniform is
// false.
func (sc *demoScratch) fillLand(l *lineIndex, p pixels, mask *image.Alpha) (uniform, land bool) {
	const w, h = grid.TileSize, grid.TileSize
	sc.west, sc.east, sc.cross = sc.west[:0], sc.east[:0], sc.cross[:0]
	l.search(rtree.Box{MinX: -180, MinY: p.b.MinY, MaxX: 180, MaxY: p.b.MaxY}, func(c *chunk) {
		switch {
		case c.box.MaxX <= p.b.MinX:
			sc.west = append(sc.west, c)
		case c.box.MinX >= p.b.MaxX:
			sc.east = append(sc.east, c)
		default:
			sc.cross = append(sc.cross, c)
		}
	})
	if len(sc.cross) == 0 {
		// The winding number of the tile's middle row, counted west.
		winding := 0
		const mid = h / 2
		for _, c := range sc.west {
			_, y0 := p.at(l.xy, c.first)
			_, y1 := p.at(l.xy, c.last)
			switch {
			case y0 <= mid && mid < y1:
				winding++
			case y1 <= mid && mid < y0:
				winding--
			}
		}
		return true, winding != 0
	}
	r := &sc.raster
	r.Reset(w, h)
	for _, c := range sc.west {
		_, y0 := p.at(l.xy, c.first)
		_, y1 := p.at(l.xy, c.last)
		edge(r, 0, y0, 0, y1)
	}
	for _, c := range sc.east {
		_, y0 := p.at(l.xy, c.first)
		_, y1 := p.at(l.xy, c.last)
		edge(r, w, y0, w, y1)
	}
	for _, c := range sc.cross {
		ax, ay := p.at(l.xy, c.first)
		for i := c.first + 1; i <= c.last; i++ {
			bx, by := p.at(l.xy, i)
			edge(r, ax, ay, bx, by)
			ax, ay = bx, by
		}
	}
	r.DrawOp = draw.Src
	r.Draw(mask, mask.Rect, image.Opaque, image.Point{})
	return false, false
}

// edge adds the segment a→b to r's accumulation as x/image/vector would
// with x clamped to [0, w], but computed in float64 and cut to the tile's
// rows first: at deep zooms an outline's points lie millions of pixels
// away, beyond what float32 resolves.
func edge(r *vector.Rasterizer, ax, ay, bx, by float64) {
	const w, h = grid.TileSize, grid.TileSize
	if ay == by || (ay <= 0 && by <= 0) || (ay >= h && by >= h) {
		return // horizontal, or above or below the tile: no coverage
	}
	// Cut to 0 <= y <= h.
	t0, t1 := 0.0, 1.0
	for _, lim := range [2]float64{0, h} {
		t := (lim - ay) / (by - ay)
		if t <= 0 || t >= 1 {
			continue
		}
		if (ay < lim) == (lim == 0) { // a is outside
			t0 = max(t0, t)
		} else {
			t1 = min(t1, t)
		}
	}
	x0, y0 := ax+(bx-ax)*t0, ay+(by-ay)*t0
	x1, y1 := ax+(bx-ax)*t1, ay+(by-ay)*t1
	// Split where x crosses 0 and w; each piece lies on one side, so
	// clamping its ends clamps it.
	ts := [4]float64{0, 1, 1, 1}
	n := 1
	for _, lim := range [2]float64{0, w} {
		if t := (lim - x0) / (x1 - x0); t > 0 && t < 1 {
			ts[n] = t
			n++
		}
	}
	ts[n] = 1
	if n == 3 && ts[1] > ts[2] {
		ts[1], ts[2] = ts[2], ts[1]
	}
	for i := range n {
		sx, sy := x0+(x1-x0)*ts[i], y0+(y1-y0)*ts[i]
		ex, ey := x0+(x1-x0)*ts[i+1], y0+(y1-y0)*ts[i+1]
		r.MoveTo(float32(max(0, min(sx, w))), float32(sy))
		r.LineTo(float32(max(0, min(ex, w))), float32(ey))
	}
}

// strokeMargin is how far, in pixels, a stroked segment may reach past
// the tile and still be drawn whole.
const strokeMargin = 2

// stroke draws the segments of l near the tile as lines width pixels wide
// into mask (cleared first), and reports whether any was drawn. With
// coast set, segments along longitude ±180 or latitude ±90 are skipped:
// they are cuts of the land polygons, not coastline.
func (sc *demoScratch) stroke(l *lineIndex, p pixels, width float64, coast bool, mask *image.Alpha) bool {
	const w, h = grid.TileSize, grid.TileSize
	m := strokeMargin * p.res
	r := &sc.raster
	drawn := false
	l.search(rtree.Box{MinX: p.b.MinX - m, MinY: p.b.MinY - m, MaxX: p.b.MaxX + m, MaxY: p.b.MaxY + m}, func(c *chunk) {
		for i := c.first; i < c.last; i++ {
			if coast && isCut(l.xy[2*i:2*i+4]) {
				continue
			}
			ax, ay := p.at(l.xy, i)
			bx, by := p.at(l.xy, i+1)
			ax, ay, bx, by, ok := clipSegment(ax, ay, bx, by, -strokeMargin, w+strokeMargin, -strokeMargin, h+strokeMargin)
			if !ok {
				continue
			}
			if !drawn {
				r.Reset(w, h)
				drawn = true
			}
			quad(r, ax, ay, bx, by, width/2)
		}
	})
	if !drawn {
		return false
	}
	r.DrawOp = draw.Src
	r.Draw(mask, mask.Rect, image.Opaque, image.Point{})
	return true
}

// isCut reports whether the segment x0, y0, x1, y1 runs along the edge of
// the map.
func isCut(s []float64) bool {
	return (math.Abs(s[0]) == 180 && s[0] == s[2]) || (math.Abs(s[1]) == 90 && s[1] == s[3])
}

// quad adds the rectangle around a→b, half wide on each side and
// extended by half at both ends, so that consecutive segments join
// without notches. Every rectangle winds the same way, so overlaps add up
// (and saturate) rather than cancel.
func quad(r *vector.Rasterizer, ax, ay, bx, by, half float64) {
	dx, dy := bx-ax, by-ay
	l := math.Hypot(dx, dy)
	if l == 0 {
		return
	}
	dx, dy = dx/l*half, dy/l*half
	ax, ay, bx, by = ax-dx, ay-dy, bx+dx, by+dy
	r.MoveTo(float32(ax-dy), float32(ay+dx))
	r.LineTo(float32(bx-dy), float32(by+dx))
	r.LineTo(float32(bx+dy), float32(by-dx))
	r.LineTo(float32(ax+dy), float32(ay-dx))
	r.ClosePath()
}

// clipSegment cuts a→b to the rectangle [x0, x1] × [y0, y1]
// (Liang–Barsky); ok is false when nothing of it is inside.
func clipSegment(ax, ay, bx, by, x0, x1, y0, y1 float64) (cax, cay, cbx, cby float64, ok bool) {
	t0, t1 := 0.0, 1.0
	dx, dy := bx-ax, by-ay
	for _, e := range [4][2]float64{{-dx, ax - x0}, {dx, x1 - ax}, {-dy, ay - y0}, {dy, y1 - ay}} {
		p, q := e[0], e[1]
		if p == 0 {
			if q < 0 {
				return 0, 0, 0, 0, false
			}
			continue
		}
		t := q / p
		if p < 0 {
			t0 = max(t0, t)
		} else {
			t1 = min(t1, t)
		}
	}
	if t0 > t1 {
		return 0, 0, 0, 0, false
	}
	return ax + dx*t0, ay + dy*t0, ax + dx*t1, ay + dy*t1, true
}
