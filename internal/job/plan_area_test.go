package job_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// TestPlanCoverage checks the invariants of irregular plans
// (checkPartition, and no tile outside the coverage), and that the same
// coverage gives the same plan.
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
				checkPartition(t, plan, func(batch job.Batch) []grid.TileRange {
					ranges := batch.CoverageRanges(c)
					for _, r := range ranges {
						for tile := range r.Tiles {
							if !c.Level(tile.Zoom).Contains(tile.Col, tile.Row) {
								t.Fatalf("%s renders %s, outside the coverage", batch, tile)
							}
						}
					}
					return ranges
				}, c.Count(), b.MaxTiles)
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

// TestPlanCoverageBatchesAreEven is TestPlanBatchesAreEven for areas:
// holes, far-apart parts, islands and zoom ranges are cut as evenly as a
// rectangle.
func TestPlanCoverageBatchesAreEven(t *testing.T) {
	t.Parallel()
	cases := areaCases(t)
	tests := []struct {
		name     string
		batching job.Batching
	}{
		{name: "L-shape", batching: job.Batching{MaxTiles: 10_000, Spread: 16, MinTiles: 1000}},
		{name: "hole", batching: job.Batching{MaxTiles: 10_000, Spread: 16, MinTiles: 1000}},
		{name: "hole", batching: job.Batching{MaxTiles: 3000}},
		{name: "zoom ranges", batching: job.Batching{MaxTiles: 10_000, Spread: 16, MinTiles: 1000}},
		{name: "far apart", batching: job.Batching{MaxTiles: 10_000, Spread: 16, MinTiles: 1000}},
		{name: "islands", batching: job.Batching{MaxTiles: 10_000, Spread: 16, MinTiles: 1000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkEven(t, job.PlanCoverage(cases[tc.name], tc.batching), tc.batching.MaxTiles, 2)
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
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkCompact(t, job.PlanCoverage(c, job.Batching{MaxTiles: 5000}))
		})
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
