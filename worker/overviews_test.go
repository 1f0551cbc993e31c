package worker_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/job/jobtest"
)

// TestDownsampleBatchesMatchOneBatch exports the same tiles of a
// downsample layer twice: in batches, whose finalize builds the zooms
// above the pivot from the merged parts (and is run twice), and as one
// batch that builds every zoom itself. The packages hold the same tiles,
// byte for byte (the same content digest), and every zoom is whole; the
// finalize's tiles and bytes per zoom are the package's.
func TestDownsampleBatchesMatchOneBatch(t *testing.T) {
	t.Parallel()
	export := func(maxTiles int64) (string, map[grid.Zoom]int64, int) {
		w, b := setup(t)
		spec := jobtest.DemoSpec(t, seedBBox, 14, 1000, maxTiles)
		// PNG: the finalize builds from the tiles stored at the pivot
		// zoom, a batch from the pixels it rendered, which JPEG would
		// tell apart.
		spec.Layer.Overviews, spec.Layer.TileFormat = catalog.OverviewsDownsample, "png"
		j, _, err := b.jobs.GetOrCreate(t.Context(), jobtest.NewJob(spec), job.Request{Subject: "alice", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		plan := j.Spec.Plan()
		for i := range plan {
			if err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, i)); err != nil {
				t.Fatalf("render batch %d: %v", i, err)
			}
		}
		if len(plan) > 1 {
			for range 2 {
				if err := w.Handler().ProcessTask(t.Context(), finalizeTask(t, j)); err != nil {
					t.Fatalf("finalize: %v", err)
				}
			}
		}
		done, err := b.jobs.Get(t.Context(), j.ID)
		if err != nil || done.Status != job.StatusCompleted {
			t.Fatalf("job = %s, %v; want Completed", done.Status, err)
		}
		path := filepath.Join(t.TempDir(), "p.gpkg")
		if err := b.files.GetFile(t.Context(), done.FileKey, path); err != nil {
			t.Fatal(err)
		}
		digest, err := gpkg.ContentDigest(t.Context(), path, "demo_terrain")
		if err != nil {
			t.Fatal(err)
		}
		r := download(t, b, done.FileKey)
		byZoom, err := r.CountByZoom(t.Context(), "demo_terrain")
		if err != nil {
			t.Fatal(err)
		}
		if len(plan) > 1 {
			// What the store learned from the finalize's sizes (kept
			// while merging, the deferred overviews included) is what
			// the package holds.
			sizes, err := r.SizeByZoom(t.Context(), "demo_terrain")
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.jobs.LearnedSizes(t.Context(), spec.Layer)
			if err != nil {
				t.Fatal(err)
			}
			want := map[int]job.ZoomBytes{}
			for z, n := range sizes {
				want[int(z)] = job.ZoomBytes{Zoom: int(z), Tiles: n.Tiles, Bytes: n.Bytes}
			}
			if diff := cmp.Diff(want, got.Zooms); diff != "" {
				t.Errorf("learned sizes after a finalize (-package +learned):\n%s", diff)
			}
		}
		return digest, byZoom, len(plan)
	}
	batched, batchedZooms, n := export(10)
	whole, wholeZooms, one := export(1000)
	if n < 2 || one != 1 {
		t.Fatalf("plans of %d and %d batches, want several and one", n, one)
	}
	want := map[grid.Zoom]int64{}
	for _, r := range grid.Pyramid(jobtest.DemoSpec(t, seedBBox, 14, 1000, 10).BBox, 14) {
		want[r.Zoom] = r.Count()
	}
	if diff := cmp.Diff(want, batchedZooms); diff != "" {
		t.Errorf("batched package by zoom (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, wholeZooms); diff != "" {
		t.Errorf("one-batch package by zoom (-want +got):\n%s", diff)
	}
	if batched != whole {
		t.Errorf("content digest in batches = %s, in one batch = %s: want the same tiles", batched, whole)
	}
}
