package job_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/job/jobtest"
)

func TestSizesEstimate(t *testing.T) {
	t.Parallel()
	avg := job.TileSizes{PNG: 40_000, JPEG: 12_000}
	tiles := []job.ZoomTiles{{Zoom: 3, Tiles: 4}, {Zoom: 10, Tiles: 100}, {Zoom: 11, Tiles: 400}}
	jpeg := catalog.Layer{TileFormat: "jpeg"}
	for _, tc := range []struct {
		name    string
		layer   catalog.Layer
		learned job.LearnedSizes
		want    int64
	}{
		{"nothing learned: the format's average", jpeg, job.LearnedSizes{}, 504 * 12_000},
		{"nothing learned, png", catalog.Layer{TileFormat: "png"}, job.LearnedSizes{}, 504 * 40_000},
		{"nothing learned, mixed: the mean of both", catalog.Layer{TileFormat: "mixed"}, job.LearnedSizes{}, 504 * 26_000},
		{
			"each zoom its own mean where enough tiles were learned, else the mean of all",
			jpeg, job.LearnedSizes{Zooms: map[int]job.ZoomBytes{
				3:  {Zoom: 3, Tiles: 2, Bytes: 2 * 90_000}, // too few: the mean of all
				10: {Zoom: 10, Tiles: 20, Bytes: 20 * 5_000},
				11: {Zoom: 11, Tiles: 60, Bytes: 60 * 3_000},
			}},
			// Zoom 3 at the mean of all, (180,000 + 100,000 + 180,000) / 82
			// tiles: 4 × 5,609.76 + 100 × 5,000 + 400 × 3,000, rounded.
			1_722_439,
		},
		{
			"too few tiles in all: the configured average",
			jpeg, job.LearnedSizes{Zooms: map[int]job.ZoomBytes{10: {Zoom: 10, Tiles: 15, Bytes: 15 * 1_000}}},
			504 * 12_000,
		},
		{
			"the packages' overhead over their tiles",
			jpeg, job.LearnedSizes{
				Zooms:     map[int]job.ZoomBytes{3: {Tiles: 16, Bytes: 16 * 1_000}, 10: {Tiles: 16, Bytes: 16 * 1_000}, 11: {Tiles: 16, Bytes: 16 * 1_000}},
				FileBytes: 110, TileBytes: 100,
			},
			504 * 1_100,
		},
		{
			"an overhead beyond twice is taken as twice",
			jpeg, job.LearnedSizes{
				Zooms:     map[int]job.ZoomBytes{3: {Tiles: 16, Bytes: 16 * 1_000}, 10: {Tiles: 16, Bytes: 16 * 1_000}, 11: {Tiles: 16, Bytes: 16 * 1_000}},
				FileBytes: 1_000, TileBytes: 100,
			},
			504 * 2_000,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := (job.Sizes{Avg: avg, Learned: tc.learned}).Estimate(tc.layer, tiles); got != tc.want {
				t.Errorf("Estimate = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestLearnedSizes: a completed package adds its tiles and bytes per zoom
// to its layer's learned sizes once, however often it is completed, and
// another version of the layer learns apart.
func TestLearnedSizes(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := t.Context()
	layer := b.spec.Layer
	if l, err := s.LearnedSizes(ctx, layer); err != nil || len(l.Zooms) != 0 || l.FileBytes != 0 {
		t.Fatalf("LearnedSizes before any package = %+v, %v; want nothing", l, err)
	}
	zooms := []job.ZoomBytes{{Zoom: 13, Tiles: 4, Bytes: 40_000}, {Zoom: 14, Tiles: 18, Bytes: 90_000}}
	complete := func(spec job.Spec) {
		t.Helper()
		j, _, err := s.GetOrCreate(ctx, jobtest.NewJob(spec), job.Request{Subject: "alice", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // a re-delivered finalize completes again
			if _, _, err := s.Complete(ctx, j.ID, job.Result{FileKey: "k", FileSize: 150_000, TilesStored: 22, Zooms: zooms}, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	complete(b.spec)
	other := jobtest.DemoSpec(t, grid.BBox{MinX: 34.9, MinY: 31.95, MaxX: 34.91, MaxY: 31.96}, 14, 1000, 0)
	complete(other)

	want := job.LearnedSizes{
		Zooms:     map[int]job.ZoomBytes{13: {Zoom: 13, Tiles: 8, Bytes: 80_000}, 14: {Zoom: 14, Tiles: 36, Bytes: 180_000}},
		FileBytes: 300_000, TileBytes: 260_000,
	}
	if got, err := s.LearnedSizes(ctx, layer); err != nil || !cmp.Equal(want, got) {
		t.Errorf("LearnedSizes after two packages, each completed twice = %+v, %v; want %+v", got, err, want)
	}
	next := layer
	next.Version = layer.Version + ".1"
	if l, err := s.LearnedSizes(ctx, next); err != nil || len(l.Zooms) != 0 {
		t.Errorf("LearnedSizes of another version = %+v, %v; want nothing", l, err)
	}
}
