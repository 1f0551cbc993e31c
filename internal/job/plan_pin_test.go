package job_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Extents of the planner's tests: the specification's worked example
// snapped at zoom 14, the demo layer, and a half-degree square in it.
var (
	seedExtent  = grid.BBox{MinX: 34.8046875, MinY: 31.9482421875, MaxX: 34.82666015625, MaxY: 31.97021484375}
	demoExtent  = grid.BBox{MinX: 34.2, MinY: 29.4, MaxX: 35.9, MaxY: 33.4}
	smallExtent = grid.BBox{MinX: 34.5, MinY: 31.5, MaxX: 35.0, MaxY: 32.0}
)

// TestPlanPinned pins the plans of a few bbox exports, batch by batch, as
// both planners made them before areas could be planned: jobs queued
// before a change keep their batches, so these must never change.
func TestPlanPinned(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		extent grid.BBox
		zoom   grid.Zoom
		b      job.Batching
	}{
		{"seed split", seedExtent, 14, job.Batching{MaxTiles: 10}},
		{"small zoom 15", smallExtent, 15, job.Batching{MaxTiles: 10_000}},
		{"small zoom 15 spread", smallExtent, 15, job.Batching{MaxTiles: 10_000, Spread: 16, MinTiles: 500}},
		{"demo zoom 14", demoExtent, 14, job.Batching{MaxTiles: 5000}},
		{"antimeridian strip", grid.BBox{MinX: 179, MinY: -10, MaxX: 180, MaxY: 10}, 13, job.Batching{MaxTiles: 2000, Spread: 16, MinTiles: 100}},
	}
	var out strings.Builder
	for _, tc := range cases {
		for _, zorder := range []bool{true, false} {
			b := tc.b
			b.ZOrder = zorder
			fmt.Fprintf(&out, "# %s zorder=%v\n", tc.name, zorder)
			for _, batch := range job.Plan(tc.extent, tc.zoom, b) {
				fmt.Fprintf(&out, "%s", batch)
				if len(batch.Pivot) > 0 {
					fmt.Fprintf(&out, " first %s last %s", batch.Pivot[0], batch.Pivot[len(batch.Pivot)-1])
				}
				out.WriteByte('\n')
			}
		}
	}
	golden := filepath.Join("testdata", "bbox_plans.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), out.String()); diff != "" {
		t.Errorf("bbox plans changed (-want +got):\n%s", diff)
	}
}
