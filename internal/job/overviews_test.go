package job_test

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
)

func downsampleLayer() catalog.Layer {
	l := testLayer
	l.Overviews = catalog.OverviewsDownsample
	return l
}

// TestOverviewsBBox: a bbox export asks its source for its finest zoom
// only; the batches below the pivot build the rest of their blocks, and
// the finalize builds every tile of the top batch.
func TestOverviewsBBox(t *testing.T) {
	t.Parallel()
	extent, err := grid.Sanitize(grid.BBox{MinX: 34.3, MinY: 31.1, MaxX: 34.9, MaxY: 31.6}, testLayer.Footprint, 13)
	if err != nil {
		t.Fatal(err)
	}
	s := job.NewSpec(downsampleLayer(), 13, extent, 0)
	s.BatchTiles = 400
	plan := s.Plan()
	if len(plan) < 3 {
		t.Fatalf("plan has %d batches, want several", len(plan))
	}
	o := s.Overviews()
	var deferred []grid.Tile
	seen := map[grid.Tile]bool{}
	for _, b := range plan {
		bo := o.Batch(s, b)
		for _, r := range s.Ranges(b) {
			for tile := range r.Tiles {
				seen[tile] = true
				want := job.Built
				switch {
				case tile.Zoom == s.Zoom:
					want = job.FromSource
				case b.Top:
					want = job.Deferred
					deferred = append(deferred, tile)
				}
				if got := bo.Making(tile); got != want {
					t.Fatalf("batch %d: Making(%s) = %d, want %d", b.Index, tile, got, want)
				}
			}
		}
	}
	if int64(len(seen)) != s.TilesTotal {
		t.Fatalf("the batches hold %d tiles, want %d", len(seen), s.TilesTotal)
	}
	var got []grid.Tile
	for i, level := range s.Deferred() {
		if i > 0 && level[0].Zoom >= got[len(got)-1].Zoom {
			t.Fatalf("Deferred() zoom %d after zoom %d: want finest first", level[0].Zoom, got[len(got)-1].Zoom)
		}
		got = append(got, level...)
	}
	less := func(a, b grid.Tile) bool {
		return a.Zoom < b.Zoom || a.Zoom == b.Zoom && (a.Row < b.Row || a.Row == b.Row && a.Col < b.Col)
	}
	if diff := cmp.Diff(deferred, got, cmpopts.SortSlices(less)); diff != "" {
		t.Errorf("Deferred() (-want +got):\n%s", diff)
	}

	// The same export from the source: no overviews, and its own key.
	src := job.NewSpec(testLayer, 13, extent, 0)
	if src.Overviews() != nil || src.Deferred() != nil {
		t.Error("a source layer's spec has overviews")
	}
	if src.CacheKey() == s.CacheKey() {
		t.Error("downsample and source exports share a cache key")
	}
}

// TestOverviewsArea: where a feature ends at a zoom, a tile the finer
// zoom covers only in part comes whole from the source, since the
// missing children may hold that feature's ground; a tile of a feature
// that goes finer is built.
func TestOverviewsArea(t *testing.T) {
	t.Parallel()
	coarse := polygonFeature(`"maxResolutionDeg": 0.00274658203125`, boxRing(grid.BBox{MinX: 34.2, MinY: 29.4, MaxX: 34.5, MaxY: 33.4})) // zoom 8
	fine := polygonFeature(`"maxResolutionDeg": 0.0006866455078125`, boxRing(grid.BBox{MinX: 34.5, MinY: 29.4, MaxX: 35.9, MaxY: 33.4})) // zoom 10
	s, err := job.NewAreaSpec(downsampleLayer(), roi(t, coarse, fine), 0, "", false, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	o := s.Overviews()
	c, _ := s.Coverage()
	var partial, built int
	for tile := range c.Level(8).Tiles {
		n := len(o.Children(nil, tile))
		switch got := o.FromSource(tile); {
		case n == 0 && !got:
			t.Errorf("FromSource(%s) = false for a tile without children", tile)
		case n > 0 && n < 4:
			partial++
			if !got {
				t.Errorf("FromSource(%s) = false with %d of 4 children where a feature ends", tile, n)
			}
		case n == 4:
			built++
			if got {
				t.Errorf("FromSource(%s) = true with all children", tile)
			}
		}
	}
	if partial == 0 || built == 0 {
		t.Fatalf("zoom 8 has %d partly and %d wholly covered tiles, want some of each", partial, built)
	}
	// Zoom 9 ends no feature: its edge tiles are built from what exists.
	for tile := range c.Level(9).Tiles {
		if n := len(o.Children(nil, tile)); n > 0 && o.FromSource(tile) {
			t.Errorf("FromSource(%s) = true with %d children where no feature ends", tile, n)
		}
	}
}
