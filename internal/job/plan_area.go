package job

import (
	"cmp"
	"slices"

	"github.com/geoexport/exporter/internal/grid"
)

// PlanCoverage splits the export of an irregular coverage (an area's
// tiles per zoom: holes, far-apart parts, zoom ranges per feature) into
// batches as Plan splits a rectangle: the zooms above a pivot zoom form
// the top batch (planned the same way in turn if they hold more than
// b.MaxTiles, which an area whose coarse zooms reach far beyond its fine
// ones can), and below it each batch is a run of pivot tiles with their
// sub-pyramids, none above b.MaxTiles.
//
// Pivot tiles are grouped into parts (tiles that touch, corners
// included), and each part is walked along a generalised Hilbert curve
// over its own extent, so a run is a compact block of one part. A part of
// at least half a batch is planned on its own; smaller parts are grouped
// with the parts found next to them (small parts left alone go with the
// next large part, or the last group), since a batch of their own would be a small remainder. The
// batches are shared among these groups so that the largest is as small
// as it can be, and each group is cut into its share of batches of nearly
// equal tile count. So a batch spans two parts only when one of them is
// smaller than half a batch. With b.Aligned, units are aligned blocks of
// the source's metatile as in Plan, the largest group ends with smaller
// batches, and batches come largest first. The plan is a pure function of
// c and b.
// Batches carry Last, their finest zoom; render them with
// Batch.CoverageRanges.
func PlanCoverage(c grid.Coverage, b Batching) []Batch {
	batches := planCoverage(c, b)
	if b.Aligned {
		sortLargestFirst(batches)
	}
	for i := range batches {
		batches[i].Index = i
	}
	return batches
}

func planCoverage(c grid.Coverage, b Batching) []Batch {
	target := c.MaxZoom()
	if target < 0 {
		return nil
	}
	total := c.Count()
	size := b.size(total)
	if total <= size || b.MaxTiles < 1 {
		return []Batch{{Top: true, TopLast: target, Last: target, Tiles: total}}
	}
	unitCap := max(size/4, 1)
	cols, rows := b.block(unitCap)
	pivot := pivotZoom(max(unitCap/(cols*rows), 1), target)
	var batches []Batch
	below := total
	if pivot > 0 {
		top := c.Upto(pivot - 1)
		n := top.Count()
		switch {
		case n > b.MaxTiles:
			batches = append(batches, planCoverage(top, b)...)
		case n > 0:
			batches = append(batches, Batch{Top: true, TopLast: pivot - 1, Last: pivot - 1, Tiles: n})
		}
		below -= n
	}
	parts := coverageParts(c, pivot, target, cols, rows)
	var all []unit
	for _, p := range parts {
		all = append(all, p.units...)
	}
	spacing := b.spacing(size, all)
	groups := groupParts(parts, spacing)
	shares := shareBatches(groups, (below+spacing-1)/spacing, spacing)
	// An aligned plan ends with small batches: the largest group's,
	// whose share is the most batches, are cut with a tail (tailCut).
	tailed := -1
	if b.Aligned {
		tailed = 0
		for i, g := range groups {
			if g.tiles > groups[tailed].tiles {
				tailed = i
			}
		}
	}
	for i, g := range groups {
		var cuts []Batch
		if i == tailed {
			cuts = b.tailCut(g.units, g.tiles, min(spacing, (g.tiles+shares[i]-1)/shares[i]))
		} else {
			cuts = evenCut(g.units, g.tiles, shares[i], b.MaxTiles)
		}
		for _, batch := range cuts {
			batch.Last = target
			batches = append(batches, batch)
		}
	}
	return batches
}

// part is a set of pivot tiles that touch one another, in the order of a
// generalised Hilbert curve over their extent, and their tile count.
type part struct {
	units []unit
	tiles int64
}

// coverageParts lists the pivot tiles of c with the tiles of their
// sub-pyramids down to target, in units of aligned blocks of cols × rows
// pivot tiles (Batching.block), grouped into parts of blocks that touch;
// parts come in the order of their north-westernmost block, row by row.
func coverageParts(c grid.Coverage, pivot, target grid.Zoom, cols, rows int64) []part {
	type cell struct{ col, row int64 }
	counts := map[cell]int64{}
	for z := pivot; z <= target; z++ {
		shift := uint(z - pivot)
		for _, r := range c.Level(z).Rows {
			pr := r.Row >> shift
			for _, s := range r.Spans {
				for pc := s.Min >> shift; pc <= (s.Max-1)>>shift; pc++ {
					counts[cell{pc, pr}] += min(s.Max, (pc+1)<<shift) - max(s.Min, pc<<shift)
				}
			}
		}
	}
	rowMajor := func(a, b cell) int { return cmp.Or(cmp.Compare(a.row, b.row), cmp.Compare(a.col, b.col)) }
	pivots := make([]cell, 0, len(counts))
	for k := range counts {
		pivots = append(pivots, k)
	}
	slices.SortFunc(pivots, rowMajor)
	blocks := map[cell]*unit{}
	var cells []cell
	for _, p := range pivots {
		k := cell{p.col / cols, p.row / rows}
		u, ok := blocks[k]
		if !ok {
			u = &unit{}
			blocks[k] = u
			cells = append(cells, k)
		}
		u.pivots = append(u.pivots, grid.Tile{Zoom: pivot, Col: p.col, Row: p.row})
		u.tiles += counts[p]
	}
	slices.SortFunc(cells, rowMajor)
	seen := make(map[cell]bool, len(cells))
	var parts []part
	for _, start := range cells {
		if seen[start] {
			continue
		}
		// Flood the part from its first cell, noting its extent.
		members := map[cell]bool{start: true}
		seen[start] = true
		minC, maxC, minR, maxR := start.col, start.col, start.row, start.row
		for queue := []cell{start}; len(queue) > 0; queue = queue[1:] {
			cur := queue[0]
			for dr := int64(-1); dr <= 1; dr++ {
				for dc := int64(-1); dc <= 1; dc++ {
					n := cell{cur.col + dc, cur.row + dr}
					if _, ok := blocks[n]; !ok || seen[n] {
						continue
					}
					seen[n], members[n] = true, true
					minC, maxC, minR, maxR = min(minC, n.col), max(maxC, n.col), min(minR, n.row), max(maxR, n.row)
					queue = append(queue, n)
				}
			}
		}
		var p part
		gilbert(maxC-minC+1, maxR-minR+1, func(x, y int64) {
			k := cell{minC + x, minR + y}
			if members[k] {
				p.units = append(p.units, *blocks[k])
				p.tiles += blocks[k].tiles
			}
		})
		parts = append(parts, p)
	}
	return parts
}

// groupParts joins parts smaller than half a batch with the parts found
// next to them (the next large part, or the last group for those found
// last), so that no group is a small remainder unless the whole area is.
func groupParts(parts []part, spacing int64) []part {
	var groups []part
	var open part
	for _, p := range parts {
		if 2*p.tiles >= spacing {
			// Small parts waiting for company go with this one.
			p.units = append(open.units, p.units...)
			p.tiles += open.tiles
			open = part{}
			groups = append(groups, p)
			continue
		}
		open.units = append(open.units, p.units...)
		open.tiles += p.tiles
		if 2*open.tiles >= spacing {
			groups = append(groups, open)
			open = part{}
		}
	}
	if len(open.units) > 0 {
		if n := len(groups); n > 0 {
			groups[n-1].units = append(groups[n-1].units, open.units...)
			groups[n-1].tiles += open.tiles
		} else {
			groups = append(groups, open)
		}
	}
	return groups
}

// shareBatches gives each group its number of batches: at least one each
// and n in all, and more while a group's batches would average above
// spacing, each extra batch going to the group whose batches are the
// largest (the first such group on a tie).
func shareBatches(groups []part, n, spacing int64) []int64 {
	// Start from each group's proportional share, rounded down, so that
	// the loop below hands out only the last few.
	var total int64
	for _, g := range groups {
		total += g.tiles
	}
	shares := make([]int64, len(groups))
	var sum int64
	for i, g := range groups {
		shares[i] = max(1, g.tiles*n/max(total, 1))
		sum += shares[i]
	}
	for {
		worst := 0
		for i, g := range groups {
			// g.tiles/shares[i] > groups[worst].tiles/shares[worst]
			if g.tiles*shares[worst] > groups[worst].tiles*shares[i] {
				worst = i
			}
		}
		if sum >= n && groups[worst].tiles <= spacing*shares[worst] {
			return shares
		}
		shares[worst]++
		sum++
	}
}

// CoverageRanges returns the tile ranges of c a batch of PlanCoverage
// renders, coarsest first: zoom by zoom, and within a zoom the pivot
// tiles' parts of c in the batch's order (see Ranges).
func (b Batch) CoverageRanges(c grid.Coverage) []grid.TileRange {
	var out []grid.TileRange
	if b.Top {
		for z := grid.Zoom(0); z <= b.TopLast; z++ {
			out = append(out, c.Level(z).Ranges()...)
		}
		return out
	}
	for z := b.Pivot[0].Zoom; z <= b.Last; z++ {
		shift := uint(z - b.Pivot[0].Zoom)
		level := c.Level(z)
		for _, p := range b.Pivot {
			out = append(out, level.Clip(grid.TileRange{
				Zoom: z, MinCol: p.Col << shift, MaxCol: (p.Col + 1) << shift,
				MinRow: p.Row << shift, MaxRow: (p.Row + 1) << shift,
			}).Ranges()...)
		}
	}
	return out
}
