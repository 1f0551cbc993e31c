package job

import (
	"cmp"
	"fmt"
	"iter"
	"math"
	"slices"

	"github.com/geoexport/exporter/internal/grid"
)

// DefaultBatchTiles is the most tiles one render task writes when the
// configuration names no other limit.
const DefaultBatchTiles = 10_000

// Batching says how an export is cut into render tasks. The zero values of
// MinTiles and Spread keep every batch as large as MaxTiles allows.
type Batching struct {
	// MaxTiles is the most tiles one batch holds (a single pivot tile's
	// sub-pyramid is never split, and the pivot zoom is chosen so that it
	// always fits).
	MaxTiles int64
	// Spread is how many batches an export is spread over at least, so
	// that several workers share it; batches below MinTiles are not made
	// for the sake of it.
	Spread int64
	// MinTiles is the smallest batch size Spread may ask for.
	MinTiles int64
	// ZOrder plans as jobs made before balanced batches were planned:
	// pivot tiles in Z-order, cut greedily into runs as large as MaxTiles
	// allows (Spread and MinTiles are not used). A queued job's plan must
	// never change, so such jobs keep it.
	ZOrder bool
	// Aligned plans as PlanAligned jobs are planned: batches are made of
	// whole blocks of MetaCols × MetaRows pivot tiles, aligned to
	// multiples of that size in the grid, so that no metatile of a source
	// that fetches blocks of that size (source.WMS) is needed by two
	// batches; and the last batches are the small ones (see Plan).
	Aligned bool
	// MetaCols and MetaRows are the source's metatile size in tiles, for
	// Aligned; zero means 1.
	MetaCols, MetaRows int64
}

// block is the size, in pivot tiles, of the blocks an aligned plan keeps
// whole: the source's metatile. A block is allowed to exceed a unit's
// share of a batch (unitCap tiles; batches are then less even, which
// costs less than fetching metatiles twice) up to half of MaxTiles;
// beyond that, batches are not aligned.
// A block at the pivot zoom is enough at every zoom below it: a metatile
// there spans tiles below one block of pivot tiles only, since a block
// boundary (a multiple of the metatile size) stays a multiple of it when
// doubled.
func (b Batching) block(unitCap int64) (cols, rows int64) {
	cols, rows = max(b.MetaCols, 1), max(b.MetaRows, 1)
	if !b.Aligned || cols*rows > max(unitCap, b.MaxTiles/2) {
		return 1, 1
	}
	return cols, rows
}

// size is the tile count batches of an export of total tiles aim at.
func (b Batching) size(total int64) int64 {
	size := b.MaxTiles
	if b.Spread > 1 {
		size = min(size, max(b.MinTiles, (total+b.Spread-1)/b.Spread))
	}
	return max(size, 1)
}

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
	// Last is the finest zoom of a PlanCoverage batch (a batch of Plan
	// renders down to the export's zoom and leaves it zero).
	Last grid.Zoom
}

// Plan splits an export into batches of about the same size, none above
// b.MaxTiles. The pivot zoom is chosen so that one pivot tile's
// sub-pyramid holds at most a quarter of a batch, and the pivot tiles,
// taken along a generalised Hilbert curve over the pivot zoom's range,
// are cut into runs of nearly equal tile count: a batch
// is a block of neighbouring tiles and all their descendants, and no
// batch is left with a small remainder. An export that fits one batch is
// one batch. With b.ZOrder it plans as jobs made before balanced batches
// were (see Batching).
//
// With b.Aligned, the units cut into batches are aligned blocks of
// b.MetaCols × b.MetaRows pivot tiles (the pivot zoom is chosen so that a
// block's sub-pyramids hold at most a quarter of a batch), so each
// metatile of the source at every zoom a batch renders belongs to one
// batch only; the last few batches are a half, a quarter and an eighth of
// the others (tailCut), and the batches come largest first, the order in
// which they are queued, so that an export ends with small batches that
// keep every worker busy.
func Plan(extent grid.BBox, target grid.Zoom, b Batching) []Batch {
	total := grid.CountTiles(grid.Pyramid(extent, target))
	// size is what a batch aims at, unitCap the most tiles one pivot
	// tile's sub-pyramid may hold.
	size, unitCap := b.MaxTiles, b.MaxTiles
	if !b.ZOrder {
		size = b.size(total)
		unitCap = max(size/4, 1)
	}
	if total <= size || b.MaxTiles < 1 {
		return []Batch{{Index: 0, Top: true, TopLast: target, Tiles: total}}
	}
	cols, rows := b.block(unitCap)
	pivot := pivotZoom(max(unitCap/(cols*rows), 1), target)
	var batches []Batch
	below := total
	if pivot > 0 {
		top := grid.CountTiles(grid.Pyramid(extent, pivot-1))
		batches = append(batches, Batch{Top: true, TopLast: pivot - 1, Tiles: top})
		below -= top
	}
	units := pivotUnits(extent, pivot, target, b.ZOrder, cols, rows)
	switch {
	case b.Aligned:
		batches = append(batches, b.tailCut(units, below, b.spacing(size, units))...)
		sortLargestFirst(batches)
	case b.ZOrder:
		// Greedy: a batch closes when the next pivot tile would break
		// the limit.
		batches = append(batches, cut(units, func(cur Batch, u unit, _ int64, _ int) bool {
			return cur.Tiles+u.tiles > b.MaxTiles
		})...)
	default:
		// Cut the curve into n parts: a batch closes at the unit
		// boundary nearest to where the running total passes the next
		// n-th of the tiles below the pivot. Rounding to a unit boundary
		// at both ends can grow a batch by one unit, so the spacing
		// leaves that much room under the cap.
		spacing := b.spacing(size, units)
		n := (below + spacing - 1) / spacing
		batches = append(batches, evenCut(units, below, n, b.MaxTiles)...)
	}
	for i := range batches {
		batches[i].Index = i
	}
	return batches
}

// pivotZoom is the coarsest zoom whose tiles' sub-pyramids down to target
// hold at most unitCap tiles each.
func pivotZoom(unitCap int64, target grid.Zoom) grid.Zoom {
	// The deepest sub-pyramid of depth d holds (4^(d+1)-1)/3 tiles.
	depth := grid.Zoom(math.Floor(math.Log(float64(3*unitCap+1))/math.Log(4))) - 1
	depth = max(0, min(depth, target))
	return target - depth
}

// spacing is the batch size an even cut of units aims at: size, less the
// room rounding to a unit boundary at both ends may add under the cap.
func (b Batching) spacing(size int64, units []unit) int64 {
	return max(1, min(size, b.MaxTiles-largest(units)))
}

// largest is the tile count of the largest of units.
func largest(units []unit) int64 {
	var n int64
	for _, u := range units {
		n = max(n, u.tiles)
	}
	return n
}

// evenCut cuts units, in order, into n batches of nearly equal tile
// count (below is their total): a batch closes at the unit boundary
// nearest to where the running total passes the next n-th, or before it
// would break maxTiles.
func evenCut(units []unit, below, n, maxTiles int64) []Batch {
	return cutAt(units, func(closed int) int64 { return (int64(closed) + 1) * below / n }, maxTiles)
}

// cutAt cuts units, in order, into batches: a batch closes at the unit
// boundary nearest to where the running total passes boundary(closed)
// (closed being the number of batches before it), or before it would
// break maxTiles.
func cutAt(units []unit, boundary func(closed int) int64, maxTiles int64) []Batch {
	return cut(units, func(cur Batch, u unit, done int64, closed int) bool {
		return done+u.tiles/2 >= boundary(closed) || cur.Tiles+u.tiles > maxTiles
	})
}

// tailWeights are the sizes of an aligned plan's last batches, in
// eighths of its other batches: two halves, two quarters, two eighths.
var tailWeights = []int64{4, 4, 2, 2, 1, 1}

// tailCut cuts units, in order, into batches of nearly equal tile count
// (below is their total), none above about spacing, except the last ones,
// which shrink as tailWeights says: while they run, the workers that
// finish early take the next small batch instead of waiting for one that
// renders a full one. Tail levels whose batches would hold fewer tiles
// than the largest unit or a quarter of MinTiles are left out, finest
// first. The cut closes a batch at the unit boundary nearest to where the
// running total passes its share, or before it would break MaxTiles.
func (b Batching) tailCut(units []unit, below, spacing int64) []Batch {
	floor := max(1, largest(units), b.MinTiles/4)
	tail := tailWeights
	var body, sum int64
	for ; ; tail = tail[:len(tail)-2] {
		sum = 0
		for _, w := range tail {
			sum += w
		}
		// Full batches of 8 eighths, so that an eighth is at most
		// spacing/8 tiles.
		body = max(0, (8*below-sum*spacing+8*spacing-1)/(8*spacing))
		if len(tail) == 0 || below*tail[len(tail)-1] >= floor*(8*body+sum) {
			break
		}
	}
	weights := make([]int64, 0, body+int64(len(tail)))
	for range body {
		weights = append(weights, 8)
	}
	weights = append(weights, tail...)
	total := 8*body + sum
	bounds := make([]int64, len(weights))
	var cum int64
	for i, w := range weights {
		cum += w
		bounds[i] = cum * below / total
	}
	return cutAt(units, func(closed int) int64 {
		if closed < len(bounds) {
			return bounds[closed]
		}
		return below
	}, b.MaxTiles)
}

// sortLargestFirst orders batches by tile count, largest first, the
// order in which they are queued: the small ones end an export. Batches
// of the same size keep their order.
func sortLargestFirst(batches []Batch) {
	slices.SortStableFunc(batches, func(x, y Batch) int { return cmp.Compare(y.Tiles, x.Tiles) })
}

// unit is a block of pivot tiles, cut whole into one batch, and the
// number of tiles of their sub-pyramids.
type unit struct {
	pivots []grid.Tile
	tiles  int64
}

// pivotUnits lists the pivot tiles of extent at zoom pivot, in Z-order or
// along the generalised Hilbert curve over their range; with a block of
// cols × rows, the blocks of pivot tiles along the curve over theirs.
func pivotUnits(extent grid.BBox, pivot, target grid.Zoom, zorder bool, cols, rows int64) []unit {
	pr := pivot.Range(extent)
	units := make([]unit, 0, pr.Count()/(cols*rows)+1)
	add := func(t grid.Tile) {
		units = append(units, unit{pivots: []grid.Tile{t}, tiles: subtreeTiles(extent, t, target)})
	}
	if !zorder {
		c0, r0 := pr.MinCol/cols, pr.MinRow/rows
		gilbert((pr.MaxCol-1)/cols-c0+1, (pr.MaxRow-1)/rows-r0+1, func(x, y int64) {
			var u unit
			for row := max(pr.MinRow, (r0+y)*rows); row < min(pr.MaxRow, (r0+y+1)*rows); row++ {
				for col := max(pr.MinCol, (c0+x)*cols); col < min(pr.MaxCol, (c0+x+1)*cols); col++ {
					t := grid.Tile{Zoom: pivot, Col: col, Row: row}
					u.pivots = append(u.pivots, t)
					u.tiles += subtreeTiles(extent, t, target)
				}
			}
			units = append(units, u)
		})
		return units
	}
	tiles := slices.Collect(iter.Seq[grid.Tile](pr.Tiles))
	slices.SortFunc(tiles, func(a, b grid.Tile) int {
		return cmp.Compare(morton(uint32(a.Col), uint32(a.Row)), morton(uint32(b.Col), uint32(b.Row)))
	})
	for _, t := range tiles {
		add(t)
	}
	return units
}

// cut groups units, in order, into batches of pivot tiles; closes says
// whether the batch so far ends before u, given the tiles of all units
// before u and how many batches were closed.
func cut(units []unit, closes func(cur Batch, u unit, done int64, closed int) bool) []Batch {
	var out []Batch
	var cur Batch
	var done int64
	for _, u := range units {
		if len(cur.Pivot) > 0 && closes(cur, u, done, len(out)) {
			out = append(out, cur)
			cur = Batch{}
		}
		cur.Pivot = append(cur.Pivot, u.pivots...)
		cur.Tiles += u.tiles
		done += u.tiles
	}
	if len(cur.Pivot) > 0 {
		out = append(out, cur)
	}
	return out
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

// Ranges returns the tile ranges a batch renders, coarsest first: zoom by
// zoom, and within a zoom the pivot tiles' ranges in the batch's order.
// Zoom-major order keeps neighbouring pivot tiles' first zooms, which share
// a source's metatiles, next to each other; pivot by pivot, a metatile at
// the pivot zoom was fetched again for each of its pivot tiles once the
// deeper zooms in between had pushed it out of the source's cache.
func (b Batch) Ranges(extent grid.BBox, target grid.Zoom) []grid.TileRange {
	if b.Top {
		return grid.Pyramid(extent, b.TopLast)
	}
	out := make([]grid.TileRange, 0, len(b.Pivot)*int(target-b.Pivot[0].Zoom+1))
	for z := b.Pivot[0].Zoom; z <= target; z++ {
		for _, p := range b.Pivot {
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

// gilbert visits every cell of a w×h rectangle once along a generalised
// Hilbert curve (Červený's "gilbert" construction): consecutive cells are
// neighbours, so any run of the walk is a connected block of cells, and
// the walk never leaves the rectangle, which the square Hilbert and
// Z-order curves do when the rectangle is not a power-of-two square.
func gilbert(w, h int64, visit func(x, y int64)) {
	if w >= h {
		gilbertWalk(0, 0, w, 0, 0, h, visit)
	} else {
		gilbertWalk(0, 0, 0, h, w, 0, visit)
	}
}

// gilbertWalk fills the rectangle at (x, y) spanned by the major axis
// (ax, ay) and the minor axis (bx, by).
func gilbertWalk(x, y, ax, ay, bx, by int64, visit func(x, y int64)) {
	w, h := abs(ax+ay), abs(bx+by)
	dax, day := sign(ax), sign(ay)
	dbx, dby := sign(bx), sign(by)
	switch {
	case h == 1:
		for range w {
			visit(x, y)
			x, y = x+dax, y+day
		}
		return
	case w == 1:
		for range h {
			visit(x, y)
			x, y = x+dbx, y+dby
		}
		return
	}
	// Halves rounded towards minus infinity: arithmetic shifts.
	ax2, ay2 := ax>>1, ay>>1
	bx2, by2 := bx>>1, by>>1
	if 2*w > 3*h {
		// Long rectangle: two halves along the major axis, the first
		// one even so the walk ends next to where the second starts.
		if abs(ax2+ay2)%2 == 1 && w > 2 {
			ax2, ay2 = ax2+dax, ay2+day
		}
		gilbertWalk(x, y, ax2, ay2, bx, by, visit)
		gilbertWalk(x+ax2, y+ay2, ax-ax2, ay-ay2, bx, by, visit)
		return
	}
	// Up the minor axis, along the major one, and back down.
	if abs(bx2+by2)%2 == 1 && h > 2 {
		bx2, by2 = bx2+dbx, by2+dby
	}
	gilbertWalk(x, y, bx2, by2, ax2, ay2, visit)
	gilbertWalk(x+bx2, y+by2, ax, ay, bx-bx2, by-by2, visit)
	gilbertWalk(x+(ax-dax)+(bx2-dbx), y+(ay-day)+(by2-dby), -bx2, -by2, -(ax - ax2), -(ay - ay2), visit)
}

func abs(v int64) int64 { return max(v, -v) }

func sign(v int64) int64 {
	switch {
	case v < 0:
		return -1
	case v > 0:
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
