package job_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// TestPlanCoverage checks the invariants of irregular plans: every tile of
// the coverage is in exactly one batch, batches count their tiles right,
// keep below the cap, and the same coverage gives the same plan.
func TestPlanCoverage(t *testing.T) {
	t.Parallel()
	for name, c := range areaCases(t) {
		for _, b := range []job.Batching{
			{MaxTiles: 10_000},
			{MaxTiles: 10_000, Spread: 16, MinTiles: 1000},
			{MaxTiles: 2000, Spread: 16, MinTiles: 100},
			{MaxTiles: 1},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				plan := job.PlanCoverage(c, b)
				seen := make(map[grid.Tile]int, c.Count())
				for i, batch := range plan {
					if batch.Index != i {
						t.Errorf("batch %d has index %d", i, batch.Index)
					}
					var n int64
					prev := grid.Zoom(0)
					for _, r := range batch.CoverageRanges(c) {
						if r.Zoom < prev {
							t.Errorf("%s: range at zoom %d after zoom %d", batch, r.Zoom, prev)
						}
						prev = r.Zoom
						for tile := range r.Tiles {
							if !c.Level(tile.Zoom).Contains(tile.Col, tile.Row) {
								t.Fatalf("%s renders %s, outside the coverage", batch, tile)
							}
							seen[tile]++
							n++
						}
					}
					if n != batch.Tiles {
						t.Errorf("%s renders %d tiles, says %d", batch, n, batch.Tiles)
					}
					if len(plan) > 1 && batch.Tiles > b.MaxTiles && len(batch.Pivot) > 1 {
						t.Errorf("%s exceeds the limit %d with more than one pivot tile", batch, b.MaxTiles)
					}
				}
				if int64(len(seen)) != c.Count() {
					t.Errorf("plan covers %d distinct tiles, want %d", len(seen), c.Count())
				}
				for tile, k := range seen {
					if k != 1 {
						t.Errorf("tile %s is in %d batches", tile, k)
					}
				}
				again := job.PlanCoverage(c, b)
				if !slices.EqualFunc(again, plan, func(x, y job.Batch) bool { return x.String() == y.String() && x.Last == y.Last }) {
					t.Error("PlanCoverage is not deterministic")
				}
			})
		}
	}
}

// TestPlanCoverageOfRectangle checks that a rectangle planned as a
// coverage is cut like Plan cuts its bbox.
func TestPlanCoverageOfRectangle(t *testing.T) {
	t.Parallel()
	demo := grid.BBox{MinX: 34.2, MinY: 29.4, MaxX: 35.9, MaxY: 33.4}
	for _, b := range []job.Batching{{MaxTiles: 10_000}, {MaxTiles: 10_000, Spread: 16, MinTiles: 1000}} {
		want := job.Plan(demo, 14, b)
		got := job.PlanCoverage(grid.PyramidCoverage(demo, 14), b)
		if len(got) != len(want) {
			t.Fatalf("PlanCoverage() = %d batches, Plan() %d", len(got), len(want))
		}
		var gotTiles, wantTiles []int64
		for i := range got {
			gotTiles, wantTiles = append(gotTiles, got[i].Tiles), append(wantTiles, want[i].Tiles)
		}
		if !slices.Equal(gotTiles, wantTiles) {
			t.Errorf("PlanCoverage() batches %v, Plan() %v", gotTiles, wantTiles)
		}
	}
}

// TestPlanCoverageKeepsPartsApart checks that no batch spans two parts of
// an area when each part is at least half a batch.
func TestPlanCoverageKeepsPartsApart(t *testing.T) {
	t.Parallel()
	c := areaCases(t)["far apart"]
	// The parts lie in the south-west and the north-east of the layer: the
	// pivot tiles of one batch are all on one side of its middle.
	mid := testLayer.Footprint.MinX + (testLayer.Footprint.MaxX-testLayer.Footprint.MinX)/2
	for _, b := range []job.Batching{{MaxTiles: 10_000}, {MaxTiles: 10_000, Spread: 16, MinTiles: 1000}, {MaxTiles: 3000}} {
		for _, batch := range job.PlanCoverage(c, b) {
			if batch.Top {
				continue
			}
			west, east := 0, 0
			for _, p := range batch.Pivot {
				if p.Zoom.TileBounds(p.Col, p.Row).MinX < mid {
					west++
				} else {
					east++
				}
			}
			if west > 0 && east > 0 {
				t.Errorf("%+v: %s spans both parts (%d pivot tiles west, %d east)", b, batch, west, east)
			}
		}
	}
}

// TestPlanCoverageBatchesAreEven is TestPlanBatchesAreEven for areas: one
// part is cut as evenly as a rectangle; parts are planned apart, so their
// batches may differ a little more.
func TestPlanCoverageBatchesAreEven(t *testing.T) {
	t.Parallel()
	cases := areaCases(t)
	tests := []struct {
		name     string
		batching job.Batching
		ratio    float64
	}{
		{name: "L-shape", batching: job.Batching{MaxTiles: 10_000, Spread: 16, MinTiles: 1000}, ratio: 1.5},
		{name: "hole", batching: job.Batching{MaxTiles: 10_000, Spread: 16, MinTiles: 1000}, ratio: 1.5},
		{name: "hole", batching: job.Batching{MaxTiles: 3000}, ratio: 1.5},
		{name: "zoom ranges", batching: job.Batching{MaxTiles: 10_000, Spread: 16, MinTiles: 1000}, ratio: 1.5},
		{name: "far apart", batching: job.Batching{MaxTiles: 10_000, Spread: 16, MinTiles: 1000}, ratio: 1.5},
		{name: "islands", batching: job.Batching{MaxTiles: 10_000, Spread: 16, MinTiles: 1000}, ratio: 1.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plan := job.PlanCoverage(cases[tc.name], tc.batching)
			var lo, hi int64 = 1 << 62, 0
			n := 0
			for _, b := range plan {
				if b.Top {
					continue
				}
				n++
				lo, hi = min(lo, b.Tiles), max(hi, b.Tiles)
				if b.Tiles > tc.batching.MaxTiles {
					t.Errorf("%s is above the cap %d", b, tc.batching.MaxTiles)
				}
			}
			if n < 2 {
				t.Fatalf("%d batches below the pivot, want several", n)
			}
			if float64(hi) > tc.ratio*float64(lo) {
				t.Errorf("batches range from %d to %d tiles: uneven", lo, hi)
			}
			t.Logf("%d batches of %d to %d tiles", len(plan), lo, hi)
		})
	}
}

// TestPlanCoverageBatchesAreCompact is TestPlanBatchesAreCompact for
// areas: a batch's pivot tiles lie in a block not much larger than their
// count.
func TestPlanCoverageBatchesAreCompact(t *testing.T) {
	t.Parallel()
	for name, c := range areaCases(t) {
		if name == "islands" {
			continue // its islands, too small for a batch, join one of the large part
		}
		for _, b := range job.PlanCoverage(c, job.Batching{MaxTiles: 5000}) {
			if b.Top || len(b.Pivot) < 2 {
				continue
			}
			minC, maxC, minR, maxR := b.Pivot[0].Col, b.Pivot[0].Col, b.Pivot[0].Row, b.Pivot[0].Row
			for _, p := range b.Pivot {
				minC, maxC, minR, maxR = min(minC, p.Col), max(maxC, p.Col), min(minR, p.Row), max(maxR, p.Row)
			}
			if area := (maxC - minC + 1) * (maxR - minR + 1); area > int64(4*len(b.Pivot)+8) {
				t.Errorf("%s: %s spans %d pivot cells for %d tiles: not compact", name, b, area, len(b.Pivot))
			}
		}
	}
}

func BenchmarkPlanCoverage(b *testing.B) {
	for name, c := range areaCases(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				job.PlanCoverage(c, job.Batching{MaxTiles: job.DefaultBatchTiles, Spread: 16, MinTiles: 1000})
			}
		})
	}
}

// TestPlanCoverageWideTop checks that zooms above the pivot that hold more
// than a batch (a coarse feature over the whole layer beside a fine one)
// are cut into batches too.
func TestPlanCoverageWideTop(t *testing.T) {
	t.Parallel()
	c := areaCases(t)["wide top zooms"]
	b := job.Batching{MaxTiles: 500}
	upper := 0
	for _, batch := range job.PlanCoverage(c, b) {
		if batch.Tiles > b.MaxTiles && len(batch.Pivot) > 1 || batch.Top && batch.Tiles > b.MaxTiles {
			t.Errorf("%s is above the cap %d", batch, b.MaxTiles)
		}
		if !batch.Top && batch.Last < c.MaxZoom() {
			upper++
		}
	}
	if upper < 2 {
		t.Errorf("%d batches above the pivot zoom, want the top zooms cut into several", upper)
	}
}

func BenchmarkPlanCoverageMillionTiles(b *testing.B) {
	// About 1,000,000 tiles: a 1,000-vertex area with a hole, at zoom 17,
	// crossing the demo layer's footprint.
	c := coverOf(b, polygonFeature(`"maxResolutionDeg": 0.000005364418029785156`, ring(1000, 34.9, 31.4, 0.75), ring(300, 34.9, 31.4, 0.3)))
	if n := c.Count(); n < 800_000 || n > 1_300_000 {
		b.Fatalf("export of %d tiles, want about a million", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		job.PlanCoverage(c, job.Batching{MaxTiles: job.DefaultBatchTiles, Spread: 16, MinTiles: 1000})
	}
}
