package job

import (
	"github.com/geoexport/exporter/internal/grid"
)

// Making is how an export whose layer builds its overviews
// (catalog.OverviewsDownsample) makes one tile.
type Making int

const (
	// FromSource tiles are asked of the layer's source: the finest tiles of
	// each part of the export, and the tiles the finer zoom does not
	// cover whole (Overviews.FromSource).
	FromSource Making = iota
	// Built tiles are built by the render task of their batch from their
	// children, which the same batch made.
	Built
	// Deferred tiles are built by the job's finalize from their children,
	// some of which other batches made: the zooms above the planner's
	// pivot. The finalize reads the children from the merged package,
	// finest zoom first, so it reads the pivot zoom and above only.
	Deferred
)

// Overviews says how the tiles of an export whose layer builds its
// overviews are made. Its methods are pure functions of the spec.
type Overviews struct {
	cov grid.Coverage
	// ends[z] is set when a feature of the area has z as its finest zoom.
	ends []bool
}

// Overviews is how s makes its tiles when its layer builds its overviews
// from the finest zoom; nil when the layer asks its source for every zoom
// (or the spec has no coverage, which NewAreaSpec never makes).
func (s Spec) Overviews() *Overviews {
	if !s.Layer.Downsample() {
		return nil
	}
	c, err := s.Coverage()
	if err != nil {
		return nil
	}
	o := &Overviews{cov: c, ends: make([]bool, len(c.Levels))}
	for _, f := range s.ROI {
		if int(f.MaxZoom) < len(o.ends) {
			o.ends[f.MaxZoom] = true
		}
	}
	return o
}

// Children appends to dst the children of t that the export holds.
func (o *Overviews) Children(dst []grid.Tile, t grid.Tile) []grid.Tile {
	if t.Zoom >= o.cov.MaxZoom() {
		return dst
	}
	level := o.cov.Level(t.Zoom + 1)
	for _, c := range children(t) {
		if level.Contains(c.Col, c.Row) {
			dst = append(dst, c)
		}
	}
	return dst
}

// children is the four tiles of the next zoom below t, in quadrant order
// (top-left, top-right, bottom-left, bottom-right).
func children(t grid.Tile) [4]grid.Tile {
	z, c, r := t.Zoom+1, 2*t.Col, 2*t.Row
	return [4]grid.Tile{{Zoom: z, Col: c, Row: r}, {Zoom: z, Col: c + 1, Row: r}, {Zoom: z, Col: c, Row: r + 1}, {Zoom: z, Col: c + 1, Row: r + 1}}
}

// FromSource reports whether t is asked of the source rather than built:
// when the export holds none of its children, and, at a zoom where a
// feature of the area ends, when it does not hold all four. Built from
// the children it holds, t is transparent where the missing ones lie,
// which is right when they lie outside the export (the edge of a bbox, or
// of an area whose features all go finer); a feature that ends at t's
// zoom may cover the missing children's ground, which no finer tile
// holds, so t then comes whole from the source.
func (o *Overviews) FromSource(t grid.Tile) bool {
	n := len(o.Children(make([]grid.Tile, 0, 4), t))
	return n == 0 || n < 4 && int(t.Zoom) < len(o.ends) && o.ends[t.Zoom]
}

// BatchOverviews says how one batch's tiles are made. It memoises, and is
// not safe for concurrent use.
type BatchOverviews struct {
	o    *Overviews
	last grid.Zoom // the batch's finest zoom
	// deferred holds the answers for tiles that are not FromSource.
	deferred map[grid.Tile]bool
}

// Batch is how the tiles of b, a batch of s's plan, are made.
func (o *Overviews) Batch(s Spec, b Batch) *BatchOverviews {
	last := s.Zoom
	switch {
	case b.Top:
		last = b.TopLast
	case len(s.ROI) > 0:
		last = b.Last
	}
	return &BatchOverviews{o: o, last: last, deferred: make(map[grid.Tile]bool)}
}

// Making says how tile t of the batch is made: Deferred when some of its
// children, or of theirs down to the batch's finest zoom, lie in other
// batches.
func (b *BatchOverviews) Making(t grid.Tile) Making {
	if b.o.FromSource(t) {
		return FromSource
	}
	if b.isDeferred(t) {
		return Deferred
	}
	return Built
}

func (b *BatchOverviews) isDeferred(t grid.Tile) bool {
	if t.Zoom >= b.last {
		return true
	}
	if d, ok := b.deferred[t]; ok {
		return d
	}
	d := false
	for _, c := range b.o.Children(make([]grid.Tile, 0, 4), t) {
		if !b.o.FromSource(c) && b.isDeferred(c) {
			d = true
			break
		}
	}
	b.deferred[t] = d
	return d
}

// Deferred lists the tiles of s that its finalize builds, by zoom, finest
// first; none when s asks its source for every zoom.
func (s Spec) Deferred() [][]grid.Tile {
	o := s.Overviews()
	if o == nil {
		return nil
	}
	byZoom := map[grid.Zoom][]grid.Tile{}
	for _, b := range s.Plan() {
		bo := o.Batch(s, b)
		if bo.last >= o.cov.MaxZoom() {
			continue // nothing is finer than the batch: nothing is deferred
		}
		for _, r := range s.Ranges(b) {
			for t := range r.Tiles {
				if bo.Making(t) == Deferred {
					byZoom[t.Zoom] = append(byZoom[t.Zoom], t)
				}
			}
		}
	}
	var out [][]grid.Tile
	for z := o.cov.MaxZoom(); z >= 0; z-- {
		if len(byZoom[z]) > 0 {
			out = append(out, byZoom[z])
		}
	}
	return out
}
