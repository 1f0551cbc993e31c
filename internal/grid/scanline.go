package grid

import (
	"cmp"
	"math"
	"slices"
)

// Point is a position in degrees: longitude, latitude.
type Point = [2]float64

// Ring is a closed line of points; the edge from the last point back to
// the first is implied (a repeated first point adds nothing).
type Ring = []Point

// CoverRings returns the tiles at z whose square meets the area of rings
// inside clip with a non-zero area: a tile that only touches the area along
// an edge or at a corner is not one of them. The area is the points inside
// an odd number of rings, which is the interior of a valid Polygon or
// MultiPolygon given as all its rings. As with Range, an edge within a
// tiny fraction of a tile (1e-9) of a tile boundary counts as on it, so a
// rectangle covers exactly the tiles Range gives for it.
//
// It is a scanline over the rows of the grid, never a test per tile: within
// a row, the area between two consecutive vertex latitudes is a set of
// trapezoids between pairs of edges (edges of a valid area do not cross),
// and the row's tiles are the columns their projections span.
// The cost grows with the vertices and rows, not with the tiles.
func (z Zoom) CoverRings(rings []Ring, clip BBox) Level {
	l, _ := z.CoverRingsAtMost(rings, clip, math.MaxInt64)
	return l
}

// CoverRingsAtMost is CoverRings that stops as soon as the tiles found
// exceed limit, with ok false: its memory and time stay bounded by the
// rows and the limit, whatever the area's extent.
func (z Zoom) CoverRingsAtMost(rings []Ring, clip BBox, limit int64) (_ Level, ok bool) {
	d := z.TileDegrees()
	// u, v: position in tile units, columns from the west and rows from
	// the north, computed as Range computes them.
	toU := func(x float64) float64 { return (x + 180) / d }
	toV := func(y float64) float64 { return (90 - y) / d }
	cu0, cu1 := toU(clip.MinX), toU(clip.MaxX)
	cv0, cv1 := toV(clip.MaxY), toV(clip.MinY)

	var edges []edge
	var events []float64
	vmin, vmax := math.Inf(1), math.Inf(-1)
	for _, ring := range rings {
		for i, p := range ring {
			q := ring[(i+1)%len(ring)]
			pu, pv, qu, qv := toU(p[0]), toV(p[1]), toU(q[0]), toV(q[1])
			events = append(events, pv)
			vmin, vmax = min(vmin, pv), max(vmax, pv)
			switch {
			case pv < qv:
				edges = append(edges, edge{v0: pv, u0: pu, v1: qv, u1: qu})
			case pv > qv:
				edges = append(edges, edge{v0: qv, u0: qu, v1: pv, u1: pu})
			}
		}
	}
	out := Level{Zoom: z}
	var found int64
	// The strip of rows is clipped as Range clips a bbox.
	top, bottom := max(vmin, cv0), min(vmax, cv1)
	if !(top < bottom) || !(cu0 < cu1) {
		return out, true
	}
	slices.SortFunc(edges, func(a, b edge) int { return cmp.Compare(a.v0, b.v0) })
	slices.Sort(events)
	events = slices.Compact(events)

	h := z.MatrixHeight()
	firstRow := clamp(int64(math.Floor(top+edgeTolerance)), 0, h)
	lastRow := clamp(int64(math.Ceil(bottom-edgeTolerance)), 0, h)
	var active []edge
	next, ev := 0, 0
	var spans []Span
	for row := firstRow; row < lastRow; row++ {
		sa := max(float64(row)+edgeTolerance, top)
		sb := min(float64(row+1)-edgeTolerance, bottom)
		if !(sa < sb) {
			continue
		}
		spans = spans[:0]
		for ev < len(events) && events[ev] <= sa {
			ev++
		}
		ya := sa
		for k := ev; ya < sb; k++ {
			yb := sb
			if k < len(events) && events[k] < sb {
				yb = events[k]
			}
			// Edges that span the slab [ya, yb]: every vertex latitude is
			// a slab boundary, so an edge spans a slab or misses it.
			for next < len(edges) && edges[next].v0 <= ya {
				active = append(active, edges[next])
				next++
			}
			active = slices.DeleteFunc(active, func(e edge) bool { return e.v1 <= ya })
			if yb > ya {
				spans = slabSpans(spans, active, ya, yb, max(cu0, 0), min(cu1, float64(z.MatrixWidth())))
			}
			ya = yb
		}
		if merged := mergeSpans(spans); len(merged) > 0 {
			out.Rows = append(out.Rows, Row{Row: row, Spans: slices.Clone(merged)})
			for _, sp := range merged {
				found += sp.Max - sp.Min
			}
			if found > limit {
				return out, false
			}
		}
	}
	return out, true
}

// edge is a non-horizontal edge from (u0, v0) to (u1, v1), v0 < v1.
type edge struct{ v0, u0, v1, u1 float64 }

func (e edge) at(v float64) float64 {
	switch v {
	case e.v0:
		return e.u0
	case e.v1:
		return e.u1
	}
	return e.u0 + (v-e.v0)*(e.u1-e.u0)/(e.v1-e.v0)
}

// slabSpans appends the columns the area covers between the latitudes ya
// and yb, where no vertex lies, to spans. The active edges are sorted by
// their position in the slab; pairs of them bound the area's trapezoids.
func slabSpans(spans []Span, active []edge, ya, yb, cu0, cu1 float64) []Span {
	mid := (ya + yb) / 2
	slices.SortFunc(active, func(a, b edge) int { return cmp.Compare(a.at(mid), b.at(mid)) })
	for i := 0; i+1 < len(active); i += 2 {
		l, r := active[i], active[i+1]
		a := max(min(l.at(ya), l.at(yb)), cu0)
		b := min(max(r.at(ya), r.at(yb)), cu1)
		if !(a < b) {
			continue
		}
		lo, hi := int64(math.Floor(a+edgeTolerance)), int64(math.Ceil(b-edgeTolerance))
		if lo < hi {
			spans = append(spans, Span{Min: lo, Max: hi})
		}
	}
	return spans
}
