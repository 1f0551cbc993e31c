package job

import (
	"fmt"
	"math"
	"slices"

	"github.com/geoexport/exporter/internal/grid"
)

// DefaultBatchTiles is the most tiles one render task writes when the
// configuration names no other limit.
const DefaultBatchTiles = 10_000

// Batch is one render task's share of an export: either the top zooms
// (0 up to the pivot zoom, exclusive) over the whole extent, or the
// sub-pyramids below a run of pivot tiles down to the target zoom. Batches
// are computed, never stored: the same spec always gives the same batches.
type Batch struct {
	// Index is the batch's position in the plan.
	Index int
	// Top is set for the batch of zooms 0..TopLast over the whole extent:
	// the zooms above the pivot, or every zoom of a one-batch export.
	Top     bool
	TopLast grid.Zoom
	// Pivot holds the pivot-zoom tiles whose sub-pyramids this batch
	// renders; empty for the top batch.
	Pivot []grid.Tile
	// Tiles is the number of tiles the batch covers.
	Tiles int64
}

// Plan splits spec's export into batches of at most maxTiles tiles each
// (a single pivot tile's sub-pyramid may not be split further, and the
// pivot zoom is chosen so that it always fits). Batches are spatially
// compact: pivot tiles are taken in Z-order, so a batch is a block of
// neighbouring tiles and all their descendants. An export that fits one
// batch is one batch.
func Plan(extent grid.BBox, target grid.Zoom, maxTiles int64) []Batch {
	total := grid.CountTiles(grid.Pyramid(extent, target))
	if total <= maxTiles || maxTiles < 1 {
		return []Batch{{Index: 0, Top: true, TopLast: target, Tiles: total}}
	}
	// The deepest sub-pyramid of depth d holds (4^(d+1)-1)/3 tiles.
	depth := grid.Zoom(math.Floor(math.Log(float64(3*maxTiles+1))/math.Log(4))) - 1
	depth = max(0, min(depth, target))
	pivot := target - depth
	var batches []Batch
	if pivot > 0 {
		top := grid.CountTiles(grid.Pyramid(extent, pivot-1))
		batches = append(batches, Batch{Top: true, TopLast: pivot - 1, Tiles: top})
	}
	pr := pivot.Range(extent)
	type unit struct {
		tile  grid.Tile
		key   uint64
		tiles int64
	}
	units := make([]unit, 0, pr.Count())
	for t := range pr.Tiles {
		units = append(units, unit{tile: t, key: morton(uint32(t.Col), uint32(t.Row)), tiles: subtreeTiles(extent, t, target)})
	}
	slices.SortFunc(units, func(a, b unit) int { return cmpUint(a.key, b.key) })
	var cur Batch
	for _, u := range units {
		if len(cur.Pivot) > 0 && cur.Tiles+u.tiles > maxTiles {
			batches = append(batches, cur)
			cur = Batch{}
		}
		cur.Pivot = append(cur.Pivot, u.tile)
		cur.Tiles += u.tiles
	}
	if len(cur.Pivot) > 0 {
		batches = append(batches, cur)
	}
	for i := range batches {
		batches[i].Index = i
	}
	return batches
}

// Ranges returns the tile ranges a batch renders, coarsest first.
func (b Batch) Ranges(extent grid.BBox, target grid.Zoom) []grid.TileRange {
	if b.Top {
		return grid.Pyramid(extent, b.TopLast)
	}
	var out []grid.TileRange
	for _, p := range b.Pivot {
		for z := p.Zoom; z <= target; z++ {
			out = append(out, childRange(extent, p, z))
		}
	}
	return out
}

// childRange is the part of extent's range at zoom z below pivot tile p.
func childRange(extent grid.BBox, p grid.Tile, z grid.Zoom) grid.TileRange {
	shift := uint(z - p.Zoom)
	r := z.Range(extent)
	r.MinCol, r.MaxCol = max(r.MinCol, p.Col<<shift), min(r.MaxCol, (p.Col+1)<<shift)
	r.MinRow, r.MaxRow = max(r.MinRow, p.Row<<shift), min(r.MaxRow, (p.Row+1)<<shift)
	if r.MaxCol < r.MinCol {
		r.MaxCol = r.MinCol
	}
	if r.MaxRow < r.MinRow {
		r.MaxRow = r.MinRow
	}
	return r
}

// subtreeTiles counts the tiles of extent's pyramid below p down to target.
func subtreeTiles(extent grid.BBox, p grid.Tile, target grid.Zoom) int64 {
	var n int64
	for z := p.Zoom; z <= target; z++ {
		n += childRange(extent, p, z).Count()
	}
	return n
}

// morton interleaves the bits of x and y: the Z-order curve.
func morton(x, y uint32) uint64 {
	return spread(x) | spread(y)<<1
}

func spread(v uint32) uint64 {
	x := uint64(v)
	x = (x | x<<16) & 0x0000FFFF0000FFFF
	x = (x | x<<8) & 0x00FF00FF00FF00FF
	x = (x | x<<4) & 0x0F0F0F0F0F0F0F0F
	x = (x | x<<2) & 0x3333333333333333
	x = (x | x<<1) & 0x5555555555555555
	return x
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// String describes a batch for logs.
func (b Batch) String() string {
	if b.Top {
		return fmt.Sprintf("batch %d: top zooms, %d tiles", b.Index, b.Tiles)
	}
	return fmt.Sprintf("batch %d: %d pivot tiles at zoom %d, %d tiles", b.Index, len(b.Pivot), b.Pivot[0].Zoom, b.Tiles)
}
