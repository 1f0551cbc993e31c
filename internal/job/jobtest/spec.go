package jobtest

// Jobs of the tests: the spec of a layer over a bbox, and a job of it
// with a new id and its batches' task ids.

import (
	"testing"

	"github.com/google/uuid"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
)

// Spec describes the export of layer over bbox, trimmed to the layer's
// footprint, at zoom z with priority, in one batch. It fails t if bbox
// misses the footprint.
func Spec(t testing.TB, layer catalog.Layer, bbox grid.BBox, z grid.Zoom, priority int) job.Spec {
	t.Helper()
	extent, err := grid.Sanitize(bbox, layer.Footprint, z)
	if err != nil {
		t.Fatal(err)
	}
	return job.NewSpec(layer, z, extent, priority)
}

// DemoSpec is Spec of the demo catalog's first layer, cut into batches of
// at most batchTiles tiles (0: one batch).
func DemoSpec(t testing.TB, bbox grid.BBox, z grid.Zoom, priority int, batchTiles int64) job.Spec {
	t.Helper()
	spec := Spec(t, catalog.Demo().Layers()[0], bbox, z, priority)
	spec.BatchTiles = batchTiles
	return spec
}

// NewJob is a job of spec with a new id and the task ids of its batches;
// its status and times are left to the caller (or the store).
func NewJob(spec job.Spec) job.Job {
	id := uuid.NewString()
	return job.Job{ID: id, Spec: spec, TaskIDs: job.TaskIDs(id, len(spec.Plan()))}
}
