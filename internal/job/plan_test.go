package job_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
)

func TestPlan(t *testing.T) {
	t.Parallel()
	seed := grid.BBox{MinX: 34.8046875, MinY: 31.9482421875, MaxX: 34.82666015625, MaxY: 31.97021484375}
	demo := grid.BBox{MinX: 34.2, MinY: 29.4, MaxX: 35.9, MaxY: 33.4}
	tests := []struct {
		name        string
		extent      grid.BBox
		zoom        grid.Zoom
		max         int64
		spread, min int64
		wantBatches int // 0: just check the invariants
	}{
		{name: "fits one batch", extent: seed, zoom: 14, max: 100, wantBatches: 1},
		{name: "exactly the limit", extent: seed, zoom: 14, max: 18, wantBatches: 1},
		{name: "seed split", extent: seed, zoom: 14, max: 10},
		{name: "demo layer zoom 12", extent: demo, zoom: 12, max: 1000},
		{name: "demo layer zoom 14 small batches", extent: demo, zoom: 14, max: 300},
		{name: "world zoom 6", extent: grid.World, zoom: 6, max: 500},
		{name: "antimeridian strip", extent: grid.BBox{MinX: 179, MinY: -10, MaxX: 180, MaxY: 10}, zoom: 13, max: 2000},
		{name: "limit of one", extent: seed, zoom: 3, max: 1},
		{name: "spread over workers", extent: demo, zoom: 13, max: 10_000, spread: 16, min: 500},
		{name: "spread stops at the minimum", extent: seed, zoom: 14, max: 10_000, spread: 16, min: 100, wantBatches: 1},
	}
	for _, tc := range tests {
		for _, zorder := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/zorder=%v", tc.name, zorder), func(t *testing.T) {
				t.Parallel()
				batching := job.Batching{MaxTiles: tc.max, Spread: tc.spread, MinTiles: tc.min, ZOrder: zorder}
				plan := job.Plan(tc.extent, tc.zoom, batching)
				if tc.wantBatches > 0 && len(plan) != tc.wantBatches {
					t.Errorf("Plan() = %d batches, want %d", len(plan), tc.wantBatches)
				}
				checkPartition(t, plan, func(b job.Batch) []grid.TileRange { return b.Ranges(tc.extent, tc.zoom) },
					grid.CountTiles(grid.Pyramid(tc.extent, tc.zoom)), tc.max)
				// The same input gives the same plan.
				if again := job.Plan(tc.extent, tc.zoom, batching); len(again) != len(plan) || again[len(again)-1].Tiles != plan[len(plan)-1].Tiles {
					t.Error("Plan is not deterministic")
				}
			})
		}
	}
}

// checkPartition fails t unless every one of the want tiles of an export
// is in exactly one batch of plan, each batch counts its tiles right,
// renders them coarsest first (zoom by zoom, so that pivot tiles sharing a
// metatile are asked for one after another) and respects maxTiles.
func checkPartition(t *testing.T, plan []job.Batch, ranges func(job.Batch) []grid.TileRange, want, maxTiles int64) {
	t.Helper()
	seen := map[grid.Tile]int{}
	for i, b := range plan {
		if b.Index != i {
			t.Errorf("batch %d has index %d", i, b.Index)
		}
		var n int64
		prev := grid.Zoom(0)
		for _, r := range ranges(b) {
			if r.Zoom < prev {
				t.Errorf("%s: range at zoom %d after zoom %d", b, r.Zoom, prev)
			}
			prev = r.Zoom
			for tile := range r.Tiles {
				seen[tile]++
				n++
			}
		}
		if n != b.Tiles {
			t.Errorf("%s renders %d tiles, says %d", b, n, b.Tiles)
		}
		if len(plan) > 1 && b.Tiles > maxTiles && len(b.Pivot) > 1 {
			t.Errorf("%s exceeds the limit %d with more than one pivot tile", b, maxTiles)
		}
	}
	if int64(len(seen)) != want {
		t.Errorf("plan covers %d distinct tiles, want %d", len(seen), want)
	}
	for tile, c := range seen {
		if c != 1 {
			t.Errorf("tile %s is in %d batches", tile, c)
		}
	}
}

func TestPlanBatchesAreCompact(t *testing.T) {
	t.Parallel()
	demo := grid.BBox{MinX: 34.2, MinY: 29.4, MaxX: 35.9, MaxY: 33.4}
	checkCompact(t, job.Plan(demo, 14, job.Batching{MaxTiles: 5000}))
}

// checkCompact fails t when a batch's pivot tiles spread over a block
// much larger than their count: Hilbert-curve runs stay within a few
// blocks.
func checkCompact(t *testing.T, plan []job.Batch) {
	t.Helper()
	for _, b := range plan {
		if b.Top || len(b.Pivot) < 2 {
			continue
		}
		minC, maxC, minR, maxR := b.Pivot[0].Col, b.Pivot[0].Col, b.Pivot[0].Row, b.Pivot[0].Row
		for _, p := range b.Pivot {
			minC, maxC, minR, maxR = min(minC, p.Col), max(maxC, p.Col), min(minR, p.Row), max(maxR, p.Row)
		}
		if area := (maxC - minC + 1) * (maxR - minR + 1); area > int64(4*len(b.Pivot)+8) {
			t.Errorf("%s spans %d pivot cells for %d tiles: not compact", b, area, len(b.Pivot))
		}
	}
}

// TestPlanBatchesAreEven checks that an export is cut into batches of
// nearly equal size, with no small remainder batch that would leave a
// worker idle while another renders a full one.
func TestPlanBatchesAreEven(t *testing.T) {
	t.Parallel()
	demo, small := demoExtent, smallExtent
	tests := []struct {
		name     string
		extent   grid.BBox
		zoom     grid.Zoom
		batching job.Batching
		atLeast  int
	}{
		// 11,369 tiles: the greedy cut used to give batches of 8,140 and 3,219.
		{name: "just above the cap", extent: small, zoom: 15, batching: job.Batching{MaxTiles: 10_000}, atLeast: 2},
		{name: "spread for scaling", extent: small, zoom: 15, batching: job.Batching{MaxTiles: 10_000, Spread: 16, MinTiles: 500}, atLeast: 16},
		{name: "capped", extent: demo, zoom: 15, batching: job.Batching{MaxTiles: 10_000, Spread: 16, MinTiles: 1000}, atLeast: 26},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkEven(t, job.Plan(tc.extent, tc.zoom, tc.batching), tc.batching.MaxTiles, tc.atLeast)
		})
	}
}

// checkEven fails t when plan has fewer than atLeast batches below the
// pivot, one above maxTiles, or batches whose sizes differ by more than
// half: pivot sub-pyramids hold at most a quarter of a batch, so the cut
// can miss the ideal size by at most about half of that on each side.
func checkEven(t *testing.T, plan []job.Batch, maxTiles int64, atLeast int) {
	t.Helper()
	var lo, hi int64 = 1 << 62, 0
	n := 0
	for _, b := range plan {
		if b.Top {
			continue
		}
		n++
		lo, hi = min(lo, b.Tiles), max(hi, b.Tiles)
		if b.Tiles > maxTiles {
			t.Errorf("%s is above the cap %d", b, maxTiles)
		}
	}
	if n < atLeast {
		t.Errorf("%d batches below the pivot, want at least %d", n, atLeast)
	}
	if float64(hi) > 1.5*float64(lo) {
		t.Errorf("batches range from %d to %d tiles: uneven", lo, hi)
	}
	t.Logf("%d batches of %d to %d tiles", len(plan), lo, hi)
}

func BenchmarkPlanMillionTiles(b *testing.B) {
	// About 1,000,000 tiles: the demo layer at zoom 16.
	demo := grid.BBox{MinX: 34.2, MinY: 29.4, MaxX: 35.9, MaxY: 33.4}
	if n := grid.CountTiles(grid.Pyramid(demo, 16)); n < 900_000 {
		b.Fatalf("export of %d tiles, want about a million", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		job.Plan(demo, 16, job.Batching{MaxTiles: job.DefaultBatchTiles, Spread: 16, MinTiles: 1000})
	}
}

// TestPlanOfEarlierJobs checks that a job stored before balanced batches
// existed (its spec has no plan_scheme) keeps the Z-order plan its tasks
// were queued with, one stored with balanced batches keeps those, and new
// specs use the aligned planner.
func TestPlanOfEarlierJobs(t *testing.T) {
	t.Parallel()
	var old job.Spec
	stored := `{"zoom": 15, "bbox": [34.4970703125, 31.497802734375, 35.00244140625, 32.003173828125], "batch_tiles": 10000}`
	if err := json.Unmarshal([]byte(stored), &old); err != nil {
		t.Fatal(err)
	}
	sizes := func(s job.Spec) []int64 {
		var out []int64
		for _, b := range s.Plan() {
			out = append(out, b.Tiles)
		}
		return out
	}
	// The batches the Z-order planner always made for this export.
	if got, want := sizes(old), []int64{10, 8140, 3219}; !slices.Equal(got, want) {
		t.Errorf("plan of a stored job = %v tiles per batch, want %v", got, want)
	}
	balanced := old
	balanced.PlanScheme = job.PlanBalanced
	if got, want := sizes(balanced), []int64{16, 5538, 5815}; !slices.Equal(got, want) {
		t.Errorf("plan of a stored balanced job = %v tiles per batch, want %v", got, want)
	}
	fresh := job.NewSpec(catalog.Layer{ID: "l"}, old.Zoom, old.BBox, 0)
	fresh.BatchTiles = 10_000
	if fresh.PlanScheme != job.PlanAligned || !fresh.Batching().Aligned {
		t.Errorf("a new spec plans with scheme %q, want %q", fresh.PlanScheme, job.PlanAligned)
	}
}
