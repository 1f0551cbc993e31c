package worker_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/peterstace/simplefeatures/geom"

	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/job/jobtest"
)

// twoFeatures is an area of two features with different zoom ranges
// within the demo layer's footprint: a triangle at zooms 10–14 and a
// square at zooms 0–12.
var twoFeatures = fmt.Sprintf(`{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"maxResolutionDeg":%v,"minResolutionDeg":%v},
  "geometry":{"type":"Polygon","coordinates":[[[35.0,31.5],[35.2,31.5],[35.0,31.7],[35.0,31.5]]]}},
 {"type":"Feature","properties":{"maxResolutionDeg":%v},
  "geometry":{"type":"Polygon","coordinates":[[[34.5,30.0],[34.6,30.0],[34.6,30.1],[34.5,30.1],[34.5,30.0]]]}}]}`,
	grid.Zoom(14).Resolution(), grid.Zoom(10).Resolution(), grid.Zoom(12).Resolution())

// bruteForce counts, zoom by zoom, the tiles whose square meets the union
// of the features asking for that zoom with a non-zero area, testing
// every tile of the features' extent with the geometry library.
func bruteForce(t *testing.T, features []area.Feature) map[grid.Zoom]int64 {
	t.Helper()
	tiles := map[grid.Tile]bool{}
	for _, f := range features {
		lo, hi, _ := f.Geometry.Envelope().MinMaxXYs()
		for z := f.MinZoom; z <= f.MaxZoom; z++ {
			for tile := range z.Range(grid.BBox{MinX: lo.X, MinY: lo.Y, MaxX: hi.X, MaxY: hi.Y}).Tiles {
				b := z.TileBounds(tile.Col, tile.Row)
				square := geom.NewEnvelope(geom.XY{X: b.MinX, Y: b.MinY}, geom.XY{X: b.MaxX, Y: b.MaxY}).AsGeometry()
				g, err := geom.Intersection(square, f.Geometry)
				if err != nil {
					t.Fatal(err)
				}
				if g.Area() > 0 {
					tiles[tile] = true
				}
			}
		}
	}
	out := map[grid.Zoom]int64{}
	for tile := range tiles {
		out[tile.Zoom]++
	}
	return out
}

// TestRenderArea renders an area's job in several batches and merges
// them: the package holds exactly the tiles of the area at every zoom.
func TestRenderArea(t *testing.T) {
	t.Parallel()
	w, b := setup(t)
	layer := catalog.Demo().Layers()[0]
	features, err := area.Decode([]byte(twoFeatures), area.Limits{MaxZoom: layer.MaxZoom()})
	if err != nil {
		t.Fatal(err)
	}
	want := bruteForce(t, features)
	spec, err := job.NewAreaSpec(layer, features, 1000, "two sites", false, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	spec.BatchTiles = 60
	j, _, err := b.jobs.GetOrCreate(t.Context(), jobtest.NewJob(spec),
		job.Request{Subject: "alice", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, n := range want {
		total += n
	}
	if spec.TilesTotal != total || len(j.TaskIDs) < 2 {
		t.Fatalf("spec of %d tiles in %d batches, want %d tiles in several", spec.TilesTotal, len(j.TaskIDs), total)
	}
	for i := range j.TaskIDs {
		if err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, i)); err != nil {
			t.Fatalf("render batch %d: %v", i, err)
		}
	}
	if err := w.Handler().ProcessTask(t.Context(), finalizeTask(t, j)); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	done, _ := b.jobs.Get(t.Context(), j.ID)
	if done.Status != job.StatusCompleted || done.TilesStored != total {
		t.Fatalf("job = %s with %d tiles stored, want Completed with %d", done.Status, done.TilesStored, total)
	}
	byZoom, err := download(t, b, done.FileKey).CountByZoom(t.Context(), "demo_terrain")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, byZoom); diff != "" {
		t.Errorf("tiles per zoom (-brute force +package):\n%s", diff)
	}

	// The metadata JSON beside the package describes it.
	mdPath := filepath.Join(t.TempDir(), "md.json")
	if err := b.files.GetFile(t.Context(), job.MetadataFileKey(done.FileKey), mdPath); err != nil {
		t.Fatalf("metadata file: %v", err)
	}
	raw, err := os.ReadFile(mdPath)
	if err != nil || int64(len(raw)) != done.MetadataSize {
		t.Fatalf("metadata file of %d bytes (%v), job records %d", len(raw), err, done.MetadataSize)
	}
	var md struct {
		JobID   string `json:"jobId"`
		Layer   struct{ ID string }
		Request struct {
			ROI         json.RawMessage `json:"roi"`
			Description string          `json:"description"`
		} `json:"request"`
		MinZoom, MaxZoom int
		TilesByZoom      []struct {
			Zoom  grid.Zoom
			Tiles int64
		}
		Tiles  int64
		SHA256 string
		Size   int64
	}
	if err := json.Unmarshal(raw, &md); err != nil {
		t.Fatal(err)
	}
	mdByZoom := map[grid.Zoom]int64{}
	for _, zt := range md.TilesByZoom {
		mdByZoom[zt.Zoom] = zt.Tiles
	}
	if md.JobID != j.ID || md.Layer.ID != layer.ID || md.Request.Description != "two sites" || md.MinZoom != 0 || md.MaxZoom != 14 ||
		md.Tiles != total || md.SHA256 != done.SHA256 || md.Size != done.FileSize || !cmp.Equal(mdByZoom, want) {
		t.Errorf("metadata file = %s", raw)
	}
	if back, err := area.Decode(md.Request.ROI, area.Limits{MaxZoom: layer.MaxZoom()}); err != nil || len(back) != 2 || back[0].MinZoom != 10 {
		t.Errorf("metadata roi %s reads back as %v, %v", md.Request.ROI, back, err)
	}

	// A callback of an /export request is told in the /export shape.
	url, got := callbackServer(t, http.StatusNoContent)
	roi := json.RawMessage(`{"type":"FeatureCollection","features":[]}`)
	if err := w.Handler().ProcessTask(t.Context(), task(t, job.TypeCallback, job.CallbackPayload{JobID: j.ID, Callback: job.Callback{URL: url, ROI: roi}})); err != nil {
		t.Fatalf("callback: %v", err)
	}
	link := "http://exporter.test/downloads/" + j.ID + "/" + spec.PackageName
	wantBody := map[string]any{
		"status": "Completed", "jobId": j.ID, "recordCatalogId": layer.ID, "description": "two sites",
		"roi":            map[string]any{"type": "FeatureCollection", "features": []any{}},
		"links":          map[string]any{"dataURI": link + ".gpkg", "metadataURI": link + ".json"},
		"expirationTime": done.ExpiresAt.UTC().Format(time.RFC3339), "fileSize": float64(done.FileSize),
		"artifacts": []any{
			map[string]any{"name": spec.PackageName + ".gpkg", "url": link + ".gpkg", "size": float64(done.FileSize), "type": "GPKG"},
			map[string]any{"name": spec.PackageName + ".json", "url": link + ".json", "size": float64(done.MetadataSize), "type": "METADATA"},
		},
	}
	if diff := cmp.Diff(wantBody, (<-got).body); diff != "" {
		t.Errorf("/export callback body (-want +got):\n%s", diff)
	}
}

// TestRenderAreaCutline: with a cutline, the pixels of edge tiles outside
// the area are transparent and those tiles are PNG; tiles wholly inside
// keep the layer's format (the demo's opaque tiles are JPEG). Pixels are
// checked against the geometry library a pixel away from the boundary.
func TestRenderAreaCutline(t *testing.T) {
	t.Parallel()
	w, b := setup(t)
	layer := catalog.Demo().Layers()[0]
	z := grid.Zoom(13)
	roi := fmt.Sprintf(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"maxResolutionDeg":%v,"minResolutionDeg":%v},
	 "geometry":{"type":"Polygon","coordinates":[[[35.0,31.5],[35.2,31.5],[35.0,31.7],[35.0,31.5]]]}}]}`, z.Resolution(), z.Resolution())
	features, err := area.Decode([]byte(roi), area.Limits{MaxZoom: layer.MaxZoom()})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := job.NewAreaSpec(layer, features, 1000, "", true, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	j, _, err := b.jobs.GetOrCreate(t.Context(), jobtest.NewJob(spec), job.Request{Subject: "alice", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range j.TaskIDs {
		if err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, i)); err != nil {
			t.Fatalf("render batch %d: %v", i, err)
		}
	}
	if len(j.TaskIDs) > 1 {
		if err := w.Handler().ProcessTask(t.Context(), finalizeTask(t, j)); err != nil {
			t.Fatal(err)
		}
	}
	done, _ := b.jobs.Get(t.Context(), j.ID)
	r := download(t, b, done.FileKey)
	triangle := features[0].Geometry
	pixel := z.Resolution()
	var edges, inner int
	for tile := range z.Range(grid.BBox{MinX: 35.0, MinY: 31.5, MaxX: 35.2, MaxY: 31.7}).Tiles {
		data, err := r.ReadTile(t.Context(), "demo_terrain", tile)
		if err != nil {
			continue // not in the area
		}
		if !bytes.HasPrefix(data, []byte("\x89PNG")) {
			inner++
			continue
		}
		edges++
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		tb := z.TileBounds(tile.Col, tile.Row)
		for py := 0; py < grid.TileSize; py += 5 {
			for px := 0; px < grid.TileSize; px += 5 {
				x, y := tb.MinX+(float64(px)+0.5)*pixel, tb.MaxY-(float64(py)+0.5)*pixel
				pt := geom.XY{X: x, Y: y}.AsPoint().AsGeometry()
				if d, _ := geom.Distance(pt, triangle.Boundary()); d < 2*pixel {
					continue
				}
				_, _, _, a := img.At(px, py).RGBA()
				if inside := geom.Intersects(pt, triangle); inside != (a > 0) {
					t.Fatalf("tile %s pixel (%d, %d) at (%v, %v): inside %v, alpha %d", tile, px, py, x, y, inside, a)
				}
			}
		}
	}
	if edges == 0 || inner == 0 {
		t.Errorf("%d edge tiles (PNG) and %d inner tiles (JPEG); want both", edges, inner)
	}
}
