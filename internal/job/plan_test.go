package job_test

import (
	"testing"

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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plan := job.Plan(tc.extent, tc.zoom, tc.max)
			if tc.wantBatches > 0 && len(plan) != tc.wantBatches {
				t.Errorf("Plan() = %d batches, want %d", len(plan), tc.wantBatches)
			}
			// Every tile of the pyramid is in exactly one batch, and each
			// batch counts its tiles right and respects the limit.
			seen := map[grid.Tile]int{}
			for i, b := range plan {
				if b.Index != i {
					t.Errorf("batch %d has index %d", i, b.Index)
				}
				var n int64
				for _, r := range b.Ranges(tc.extent, tc.zoom) {
					for tile := range r.Tiles {
						seen[tile]++
						n++
					}
				}
				if n != b.Tiles {
					t.Errorf("%s renders %d tiles, says %d", b, n, b.Tiles)
				}
				if len(plan) > 1 && b.Tiles > tc.max && len(b.Pivot) > 1 {
					t.Errorf("%s exceeds the limit %d with more than one pivot tile", b, tc.max)
				}
			}
			want := grid.CountTiles(grid.Pyramid(tc.extent, tc.zoom))
			if int64(len(seen)) != want {
				t.Errorf("plan covers %d distinct tiles, want %d", len(seen), want)
			}
			for tile, c := range seen {
				if c != 1 {
					t.Errorf("tile %s is in %d batches", tile, c)
				}
			}
			// The same input gives the same plan.
			if again := job.Plan(tc.extent, tc.zoom, tc.max); len(again) != len(plan) || again[len(again)-1].Tiles != plan[len(plan)-1].Tiles {
				t.Error("Plan is not deterministic")
			}
		})
	}
}

func TestPlanBatchesAreCompact(t *testing.T) {
	t.Parallel()
	demo := grid.BBox{MinX: 34.2, MinY: 29.4, MaxX: 35.9, MaxY: 33.4}
	for _, b := range job.Plan(demo, 14, 5000) {
		if b.Top || len(b.Pivot) < 2 {
			continue
		}
		minC, maxC, minR, maxR := b.Pivot[0].Col, b.Pivot[0].Col, b.Pivot[0].Row, b.Pivot[0].Row
		for _, p := range b.Pivot {
			minC, maxC, minR, maxR = min(minC, p.Col), max(maxC, p.Col), min(minR, p.Row), max(maxR, p.Row)
		}
		// Z-order runs stay within a few blocks: the bounding box of a
		// batch's pivot tiles is not much more than its tile count.
		if area := (maxC - minC + 1) * (maxR - minR + 1); area > int64(4*len(b.Pivot)+8) {
			t.Errorf("%s spans %d pivot cells for %d tiles: not compact", b, area, len(b.Pivot))
		}
	}
}

func BenchmarkPlanMillionTiles(b *testing.B) {
	// About 1,000,000 tiles: the demo layer at zoom 16.
	demo := grid.BBox{MinX: 34.2, MinY: 29.4, MaxX: 35.9, MaxY: 33.4}
	if n := grid.CountTiles(grid.Pyramid(demo, 16)); n < 900_000 {
		b.Fatalf("export of %d tiles, want about a million", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		job.Plan(demo, 16, job.DefaultBatchTiles)
	}
}
