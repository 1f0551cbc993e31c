package job_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
)

// randomBatching is an aligned Batching with a random cap, spread and
// metatile (1 to 8 tiles a side, or the largest a WMS allows).
func randomBatching(rng *rand.Rand) job.Batching {
	b := job.Batching{
		Aligned:  true,
		MaxTiles: 100 + rng.Int64N(6000),
		Spread:   []int64{0, 4, 16}[rng.IntN(3)],
		MinTiles: []int64{0, 100, 1000}[rng.IntN(3)],
		MetaCols: 1 + rng.Int64N(8), MetaRows: 1 + rng.Int64N(8),
	}
	if rng.IntN(8) == 0 {
		b.MetaCols, b.MetaRows = 16, 16
	}
	// Blocks are kept whole up to half the cap (a smaller cap plans
	// unaligned batches).
	b.MaxTiles = max(b.MaxTiles, 2*b.MetaCols*b.MetaRows)
	return b
}

// TestPlanAlignedMetatiles checks, over random extents, zooms, caps and
// metatile sizes, that every tile is in exactly one batch of an aligned
// plan (checkPartition) and every metatile of the source, at every zoom,
// in exactly one batch: no GetMap is made by two batches. It also checks
// the order: largest batches first, the last ones small.
func TestPlanAlignedMetatiles(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(13, 3))
	for i := range 60 {
		b := randomBatching(rng)
		zoom := grid.Zoom(4 + rng.IntN(9))
		span := 0.02 + rng.Float64()*2
		x, y := 34.2+rng.Float64()*1.5, 29.4+rng.Float64()*3.5
		extent, err := grid.Sanitize(grid.BBox{MinX: x, MinY: y, MaxX: x + span, MaxY: y + span/2}, testLayer.Footprint, zoom)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprintf("%d/zoom %d %dx%d max %d", i, zoom, b.MetaCols, b.MetaRows, b.MaxTiles), func(t *testing.T) {
			t.Parallel()
			checkAligned(t, job.Plan(extent, zoom, b), func(batch job.Batch) []grid.TileRange { return batch.Ranges(extent, zoom) },
				grid.CountTiles(grid.Pyramid(extent, zoom)), b)
		})
	}
}

// TestPlanCoverageAlignedMetatiles is TestPlanAlignedMetatiles for
// polygon coverages: random wobbly rings, some with a hole, some beside a
// second feature over a coarser zoom range.
func TestPlanCoverageAlignedMetatiles(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(13, 4))
	for i := range 30 {
		b := randomBatching(rng)
		zoom := grid.Zoom(8 + rng.IntN(6))
		res := fmt.Sprintf(`"maxResolutionDeg": %v`, zoom.Resolution())
		r := 0.02 + rng.Float64()*0.4
		cx, cy := 34.4+rng.Float64()*1.3, 29.6+rng.Float64()*3.6
		rings := [][][2]float64{ring(20+rng.IntN(80), cx, cy, r)}
		if rng.IntN(2) == 0 {
			rings = append(rings, ring(20, cx, cy, r/3))
		}
		features := []string{polygonFeature(res, rings...)}
		if rng.IntN(2) == 0 {
			coarse := fmt.Sprintf(`"maxResolutionDeg": %v`, (zoom - 3).Resolution())
			features = append(features, polygonFeature(coarse, ring(30, 34.4+rng.Float64()*1.3, 29.6+rng.Float64()*3.6, 0.3)))
		}
		c := coverOf(t, features...)
		t.Run(fmt.Sprintf("%d/zoom %d %dx%d max %d", i, zoom, b.MetaCols, b.MetaRows, b.MaxTiles), func(t *testing.T) {
			t.Parallel()
			checkAligned(t, job.PlanCoverage(c, b), func(batch job.Batch) []grid.TileRange { return batch.CoverageRanges(c) }, c.Count(), b)
		})
	}
}

// checkAligned fails t unless plan, an aligned plan by b of want tiles
// whose batches render ranges, is a partition (checkPartition) in which
// every metatile belongs to one batch (checkMetatiles), largest batches
// first (checkLargestFirst).
func checkAligned(t *testing.T, plan []job.Batch, ranges func(job.Batch) []grid.TileRange, want int64, b job.Batching) {
	t.Helper()
	checkPartition(t, plan, ranges, want, b.MaxTiles)
	checkMetatiles(t, plan, ranges, b)
	checkLargestFirst(t, plan)
}

// checkMetatiles fails t when a metatile of b's size (the aligned block
// of MetaCols × MetaRows tiles a WMS source fetches with one GetMap)
// holds tiles of two batches of plan.
func checkMetatiles(t *testing.T, plan []job.Batch, ranges func(job.Batch) []grid.TileRange, b job.Batching) {
	t.Helper()
	owner := map[grid.Tile]int{} // a metatile, named by its block's position
	for _, batch := range plan {
		for _, r := range ranges(batch) {
			for tile := range r.Tiles {
				meta := grid.Tile{Zoom: tile.Zoom, Col: tile.Col / b.MetaCols, Row: tile.Row / b.MetaRows}
				if o, ok := owner[meta]; ok && o != batch.Index {
					t.Fatalf("metatile %d×%d at %s holds tiles of batches %d and %d", b.MetaCols, b.MetaRows, meta, o, batch.Index)
				}
				owner[meta] = batch.Index
			}
		}
	}
}

// checkLargestFirst fails t unless plan's batches come largest first
// and, when there are a few, the last is at most about half the first.
func checkLargestFirst(t *testing.T, plan []job.Batch) {
	t.Helper()
	for i := 1; i < len(plan); i++ {
		if plan[i].Tiles > plan[i-1].Tiles {
			t.Errorf("%s is queued after the smaller %s", plan[i], plan[i-1])
		}
	}
	if n := len(plan); n >= 4 && 2*plan[n-1].Tiles > plan[0].Tiles+plan[0].Tiles/4 {
		t.Errorf("the last batch holds %d tiles, the first %d: want the last about half or less", plan[n-1].Tiles, plan[0].Tiles)
	}
}
