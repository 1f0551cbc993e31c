package grid

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// Span is a half-open run of columns in one row: Min ≤ col < Max.
type Span struct{ Min, Max int64 }

// Row is the tiles of one row of a Level: its spans are sorted, disjoint
// and never adjacent (two spans that touch are one span), so equal sets of
// tiles have equal rows.
type Row struct {
	Row   int64
	Spans []Span
}

// Level is the tiles of a Coverage at one zoom, as row runs: rows from the
// north in ascending order, no row without spans. This normal form makes
// two levels holding the same tiles equal field by field.
type Level struct {
	Zoom Zoom
	Rows []Row
}

// Coverage is a set of tiles at several zooms: Levels[z] holds the tiles at
// zoom z, and the last level is the finest non-empty one. The zero
// Coverage holds no tiles. Coverages are values: functions return new
// ones and never change their arguments.
type Coverage struct {
	Levels []Level
}

// Count is the number of tiles in l.
func (l Level) Count() int64 {
	var n int64
	for _, r := range l.Rows {
		for _, s := range r.Spans {
			n += s.Max - s.Min
		}
	}
	return n
}

// Empty reports whether l holds no tile.
func (l Level) Empty() bool { return len(l.Rows) == 0 }

// Contains reports whether l holds the tile (col, row).
func (l Level) Contains(col, row int64) bool {
	i, ok := slices.BinarySearchFunc(l.Rows, row, func(r Row, row int64) int { return cmp.Compare(r.Row, row) })
	if !ok {
		return false
	}
	spans := l.Rows[i].Spans
	j, _ := slices.BinarySearchFunc(spans, col, func(s Span, col int64) int { return cmp.Compare(s.Max, col+1) })
	return j < len(spans) && spans[j].Min <= col && col < spans[j].Max
}

// Bounds is the smallest tile range holding every tile of l; an empty
// level has an empty range.
func (l Level) Bounds() TileRange {
	r := TileRange{Zoom: l.Zoom}
	if l.Empty() {
		return r
	}
	r.MinRow, r.MaxRow = l.Rows[0].Row, l.Rows[len(l.Rows)-1].Row+1
	r.MinCol, r.MaxCol = l.Rows[0].Spans[0].Min, l.Rows[0].Spans[0].Max
	for _, row := range l.Rows {
		r.MinCol = min(r.MinCol, row.Spans[0].Min)
		r.MaxCol = max(r.MaxCol, row.Spans[len(row.Spans)-1].Max)
	}
	return r
}

// Ranges cuts l into disjoint tile ranges, north to south: each span
// becomes a range, and a span repeated in the rows below it grows that
// range downwards, so a rectangle is one range.
func (l Level) Ranges() []TileRange {
	var out []TileRange
	// open holds the index in out of the range each span of the previous
	// row extends, keyed by the span.
	open := map[Span]int{}
	prev := int64(-2)
	for _, row := range l.Rows {
		next := make(map[Span]int, len(row.Spans))
		for _, s := range row.Spans {
			if i, ok := open[s]; ok && row.Row == prev+1 {
				out[i].MaxRow = row.Row + 1
				next[s] = i
				continue
			}
			next[s] = len(out)
			out = append(out, TileRange{Zoom: l.Zoom, MinCol: s.Min, MaxCol: s.Max, MinRow: row.Row, MaxRow: row.Row + 1})
		}
		open, prev = next, row.Row
	}
	return out
}

// Tiles calls yield for every tile of l, row by row from the north-west,
// until yield returns false.
func (l Level) Tiles(yield func(Tile) bool) {
	for _, r := range l.Rows {
		for _, s := range r.Spans {
			for col := s.Min; col < s.Max; col++ {
				if !yield(Tile{Zoom: l.Zoom, Col: col, Row: r.Row}) {
					return
				}
			}
		}
	}
}

// Clip returns the tiles of l inside r (which must be at l's zoom).
func (l Level) Clip(r TileRange) Level {
	out := Level{Zoom: l.Zoom}
	lo, _ := slices.BinarySearchFunc(l.Rows, r.MinRow, func(row Row, v int64) int { return cmp.Compare(row.Row, v) })
	for _, row := range l.Rows[lo:] {
		if row.Row >= r.MaxRow {
			break
		}
		var spans []Span
		for _, s := range row.Spans {
			if s.Max <= r.MinCol {
				continue
			}
			if s.Min >= r.MaxCol {
				break
			}
			spans = append(spans, Span{Min: max(s.Min, r.MinCol), Max: min(s.Max, r.MaxCol)})
		}
		if len(spans) > 0 {
			out.Rows = append(out.Rows, Row{Row: row.Row, Spans: spans})
		}
	}
	return out
}

// Union returns the tiles in l or o (both at the same zoom).
func (l Level) Union(o Level) Level {
	out := Level{Zoom: l.Zoom, Rows: make([]Row, 0, max(len(l.Rows), len(o.Rows)))}
	i, j := 0, 0
	for i < len(l.Rows) || j < len(o.Rows) {
		switch {
		case j == len(o.Rows) || i < len(l.Rows) && l.Rows[i].Row < o.Rows[j].Row:
			out.Rows = append(out.Rows, l.Rows[i])
			i++
		case i == len(l.Rows) || o.Rows[j].Row < l.Rows[i].Row:
			out.Rows = append(out.Rows, o.Rows[j])
			j++
		default:
			out.Rows = append(out.Rows, Row{Row: l.Rows[i].Row, Spans: mergeSpans(append(slices.Clone(l.Rows[i].Spans), o.Rows[j].Spans...))})
			i++
			j++
		}
	}
	return out
}

// Parent returns the level one zoom coarser: the tiles that have a child
// in l. A parent's square is the union of its children's, so an area meets
// a parent with a non-zero area exactly when it meets one of its children
// so: the coverage of an area at a coarser zoom is derived, never
// recomputed.
func (l Level) Parent() Level {
	out := Level{Zoom: l.Zoom - 1}
	for _, r := range l.Rows {
		spans := make([]Span, len(r.Spans))
		for i, s := range r.Spans {
			spans[i] = Span{Min: s.Min >> 1, Max: (s.Max + 1) >> 1}
		}
		pr := r.Row >> 1
		if n := len(out.Rows); n > 0 && out.Rows[n-1].Row == pr {
			out.Rows[n-1].Spans = mergeSpans(append(out.Rows[n-1].Spans, spans...))
			continue
		}
		out.Rows = append(out.Rows, Row{Row: pr, Spans: mergeSpans(spans)})
	}
	return out
}

// mergeSpans sorts spans and joins those that overlap or touch, in place.
func mergeSpans(spans []Span) []Span {
	slices.SortFunc(spans, func(a, b Span) int { return cmp.Compare(a.Min, b.Min) })
	out := spans[:0]
	for _, s := range spans {
		if s.Max <= s.Min {
			continue
		}
		if n := len(out); n > 0 && s.Min <= out[n-1].Max {
			out[n-1].Max = max(out[n-1].Max, s.Max)
			continue
		}
		out = append(out, s)
	}
	return out
}

// RangeLevel is the level holding exactly the tiles of r.
func RangeLevel(r TileRange) Level {
	l := Level{Zoom: r.Zoom}
	if r.Count() == 0 {
		return l
	}
	for row := r.MinRow; row < r.MaxRow; row++ {
		l.Rows = append(l.Rows, Row{Row: row, Spans: []Span{{Min: r.MinCol, Max: r.MaxCol}}})
	}
	return l
}

// PyramidCoverage is the coverage of a /create export: the tiles of
// Pyramid(b, maxZoom).
func PyramidCoverage(b BBox, maxZoom Zoom) Coverage {
	var c Coverage
	for _, r := range Pyramid(b, maxZoom) {
		c.Levels = append(c.Levels, RangeLevel(r))
	}
	return c
}

// Add returns the union of c and the tiles of l, keeping c normal.
func (c Coverage) Add(l Level) Coverage {
	if l.Empty() {
		return c
	}
	levels := slices.Clone(c.Levels)
	for z := Zoom(len(levels)); z <= l.Zoom; z++ {
		levels = append(levels, Level{Zoom: z})
	}
	levels[l.Zoom] = levels[l.Zoom].Union(l)
	return Coverage{Levels: levels}
}

// Level returns the tiles of c at z (an empty level beyond its zooms).
func (c Coverage) Level(z Zoom) Level {
	if z < 0 || int(z) >= len(c.Levels) {
		return Level{Zoom: z}
	}
	return c.Levels[z]
}

// MaxZoom is the finest zoom at which c holds tiles; -1 when it holds none.
func (c Coverage) MaxZoom() Zoom { return Zoom(len(c.Levels) - 1) }

// Count is the number of tiles in c.
func (c Coverage) Count() int64 {
	var n int64
	for _, l := range c.Levels {
		n += l.Count()
	}
	return n
}

// Upto returns the levels of c at zooms 0..last.
func (c Coverage) Upto(last Zoom) Coverage {
	if int(last)+1 >= len(c.Levels) {
		return c
	}
	levels := c.Levels[:max(0, last+1)]
	for len(levels) > 0 && levels[len(levels)-1].Empty() {
		levels = levels[:len(levels)-1]
	}
	return Coverage{Levels: levels}
}

// Pyramid reports whether c holds exactly the tiles of a /create export,
// Pyramid(extent, zoom), and returns that extent (snapped to whole tiles
// at zoom, as Sanitize gives it) and zoom.
func (c Coverage) Pyramid() (extent BBox, zoom Zoom, ok bool) {
	if len(c.Levels) == 0 {
		return BBox{}, 0, false
	}
	zoom = c.MaxZoom()
	finest := c.Levels[zoom]
	r := finest.Bounds()
	if finest.Count() != r.Count() {
		return BBox{}, 0, false
	}
	extent = r.Bounds()
	for z, l := range c.Levels {
		want := Zoom(z).Range(extent)
		if lb := l.Bounds(); lb != want || l.Count() != want.Count() {
			return BBox{}, 0, false
		}
	}
	return extent, zoom, true
}

// AppendBinary appends c's normal form to b: per zoom, its rows and their
// spans as varints. Equal sets of tiles give equal bytes, so a digest of
// them identifies the tiles whatever geometry they came from.
func (c Coverage) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(c.Levels)))
	for _, l := range c.Levels {
		b = binary.AppendUvarint(b, uint64(len(l.Rows)))
		for _, r := range l.Rows {
			b = binary.AppendVarint(b, r.Row)
			b = binary.AppendUvarint(b, uint64(len(r.Spans)))
			for _, s := range r.Spans {
				b = binary.AppendVarint(b, s.Min)
				b = binary.AppendVarint(b, s.Max)
			}
		}
	}
	return b, nil
}
