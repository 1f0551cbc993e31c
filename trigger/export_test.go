package trigger_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/trigger"
)

// areaROI is a two-feature area within the demo layer's footprint: a
// triangle at zooms 10–12 and a square at zooms 0–9.
var areaROI = fmt.Sprintf(`{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"maxResolutionDeg":%v,"minResolutionDeg":%v},
  "geometry":{"type":"Polygon","coordinates":[[[35.0,31.5],[35.1,31.5],[35.0,31.6],[35.0,31.5]]]}},
 {"type":"Feature","properties":{"maxResolutionDeg":%v},
  "geometry":{"type":"Polygon","coordinates":[[[34.5,30.0],[34.6,30.0],[34.6,30.1],[34.5,30.1],[34.5,30.0]]]}}]}`,
	grid.Zoom(12).Resolution(), grid.Zoom(10).Resolution(), grid.Zoom(9).Resolution())

// areaROIRedigitised is areaROI with a collinear vertex added to the
// triangle and the square's ring starting at another corner: the same
// tiles.
var areaROIRedigitised = strings.NewReplacer(
	"[[35.0,31.5],[35.1,31.5],[35.0,31.6],[35.0,31.5]]", "[[35.0,31.5],[35.05,31.5],[35.1,31.5],[35.0,31.6],[35.0,31.5]]",
	"[[34.5,30.0],[34.6,30.0],[34.6,30.1],[34.5,30.1],[34.5,30.0]]", "[[34.6,30.1],[34.5,30.1],[34.5,30.0],[34.6,30.0],[34.6,30.1]]",
).Replace(areaROI)

func exportBody(roi, extra string) string {
	return `{"dbId":"ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8","roi":` + roi + `,"description":"two sites","callbackURLs":["http://example.getmap.com/cb"]` + extra + `}`
}

type progress struct {
	Status       string `json:"status"`
	JobID        string `json:"jobId"`
	IsDuplicated bool   `json:"isDuplicated"`
	Percentage   int    `json:"percentage"`
}

func TestExportJoinAndCacheHit(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	resp, body := do(t, srv, "POST", "/export", exportBody(areaROI, ""))
	first := decode[progress](t, body)
	if resp.StatusCode != 200 || first.Status != "In-Progress" || first.IsDuplicated || first.JobID == "" ||
		len(decode[map[string]any](t, body)) != 4 {
		t.Fatalf("POST /export = %d %s, want a new In-Progress job", resp.StatusCode, body)
	}
	j, err := b.jobs.Get(t.Context(), first.JobID)
	if err != nil || len(j.Spec.ROI) != 2 || j.Spec.Description != "two sites" || j.Spec.Zoom != 12 {
		t.Fatalf("stored job = %+v, %v", j.Spec, err)
	}
	// The re-digitised area is the same tile set: it joins.
	resp, body = do(t, srv, "POST", "/export", exportBody(areaROIRedigitised, ""))
	if again := decode[progress](t, body); resp.StatusCode != 200 || again.JobID != first.JobID || !again.IsDuplicated {
		t.Fatalf("equivalent POST /export = %d %s, want the same job, duplicated", resp.StatusCode, body)
	}
	if cbs, _ := b.jobs.Callbacks(t.Context(), j.ID); len(cbs) != 2 || len(cbs[0].ROI) == 0 {
		t.Errorf("callbacks = %+v, want one per caller's roi", cbs)
	}
	key := job.PackageKey(j.ID, j.Spec.PackageName)
	if _, _, err := b.jobs.Complete(t.Context(), j.ID, job.Result{FileKey: key, FileSize: 4096, MetadataSize: 321}, time.Hour); err != nil {
		t.Fatal(err)
	}
	resp, body = do(t, srv, "POST", "/export", exportBody(areaROIRedigitised, ""))
	done, _ := b.jobs.Get(t.Context(), j.ID)
	link := "http://exporter.test/downloads/" + j.ID + "/" + j.Spec.PackageName
	var roi any
	if err := json.Unmarshal([]byte(areaROIRedigitised), &roi); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"status": "Completed", "jobId": j.ID, "recordCatalogId": "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8", "description": "two sites",
		"roi":            roi,
		"links":          map[string]any{"dataURI": link + ".gpkg", "metadataURI": link + ".json"},
		"expirationTime": done.ExpiresAt.UTC().Format(time.RFC3339), "fileSize": 4096.0,
		"artifacts": []any{
			map[string]any{"name": j.Spec.PackageName + ".gpkg", "url": link + ".gpkg", "size": 4096.0, "type": "GPKG"},
			map[string]any{"name": j.Spec.PackageName + ".json", "url": link + ".json", "size": 321.0, "type": "METADATA"},
		},
	}
	if diff := cmp.Diff(want, decode[map[string]any](t, body)); resp.StatusCode != 200 || diff != "" {
		t.Errorf("cached POST /export = %d (-want +got):\n%s", resp.StatusCode, diff)
	}
	if done.ExpiresAt.Before(time.Now().Add(23 * time.Hour)) {
		t.Errorf("the cache hit did not push the expiry out: %v", done.ExpiresAt)
	}
	// The metadata JSON downloads beside the package.
	src := filepath.Join(t.TempDir(), "m.json")
	if err := os.WriteFile(src, []byte(`{"jobId":"x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.files.PutFile(t.Context(), job.MetadataFileKey(key), src, "application/json"); err != nil {
		t.Fatal(err)
	}
	resp, body = do(t, srv, "GET", strings.TrimPrefix(link, "http://exporter.test")+".json", "")
	if resp.StatusCode != 200 || string(body) != `{"jobId":"x"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET metadataURI = %d %s %v", resp.StatusCode, body, resp.Header)
	}
}

// TestExportCutlineIsAnotherExport: the same area with a cutline is
// another package (its edge tiles differ).
func TestExportCutlineIsAnotherExport(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	_, body := do(t, srv, "POST", "/export", exportBody(areaROI, ""))
	whole := decode[progress](t, body)
	resp, body := do(t, srv, "POST", "/export", exportBody(areaROI, `,"cutline":true`))
	cut := decode[progress](t, body)
	if resp.StatusCode != 200 || cut.JobID == whole.JobID || cut.IsDuplicated {
		t.Fatalf("POST /export with a cutline = %d %s, want a job of its own", resp.StatusCode, body)
	}
	if j, err := b.jobs.Get(t.Context(), cut.JobID); err != nil || !j.Spec.Cutline {
		t.Errorf("job spec cutline = %v, %v", j.Spec.Cutline, err)
	}
	_, body = do(t, srv, "POST", "/export", exportBody(areaROIRedigitised, `,"cutline":true`))
	if again := decode[progress](t, body); again.JobID != cut.JobID {
		t.Errorf("re-digitised cutline export = %s, want job %s", body, cut.JobID)
	}
}

// TestExportOfRectangleSharesCreate: an /export of the rectangle of a
// /create's tiles at zooms 0..14 is the same export.
func TestExportOfRectangleSharesCreate(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	_, body := do(t, srv, "POST", "/create", seedBody)
	c := decode[created](t, body)
	roi := fmt.Sprintf(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"maxResolutionDeg":%v},
	 "geometry":{"type":"Polygon","coordinates":[[[34.81,31.955],[34.822,31.955],[34.822,31.964],[34.81,31.964],[34.81,31.955]]]}}]}`,
		grid.Zoom(14).Resolution())
	resp, body := do(t, srv, "POST", "/export", exportBody(roi, ""))
	if p := decode[progress](t, body); resp.StatusCode != 200 || p.JobID != c.ID || !p.IsDuplicated {
		t.Errorf("POST /export of the same tiles = %d %s, want /create's job %s", resp.StatusCode, body, c.ID)
	}
}

func TestExportErrors(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t, func(c *trigger.Config, _ *trigger.Deps) { c.MaxROIVertices = 12 })
	bowtie := `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"maxResolutionDeg":0.01},"geometry":{"type":"Polygon","coordinates":[[[35,31],[35,31.05],[35.05,31.05],[35,31]]]}},
	 {"type":"Feature","properties":{"maxResolutionDeg":0.01},"geometry":{"type":"Polygon","coordinates":[[[35,31],[35.1,31.1],[35.1,31],[35,31.1],[35,31]]]}}]}`
	far := `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"maxResolutionDeg":0.01},"geometry":{"type":"Polygon","coordinates":[[[10,10],[11,10],[11,11],[10,10]]]}}]}`
	// A thin corridor at zoom 13 from the south-west corner of the demo
	// footprint to its north-east: some 500 tiles at all zooms, in an
	// extent of about 12,000 at zoom 13 alone (the cap here is 1,000).
	corridor := fmt.Sprintf(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"maxResolutionDeg":%v},"geometry":{"type":"Polygon","coordinates":[[[34.3,29.5],[34.3006,29.5],[35.8006,33.3],[35.8,33.3],[34.3,29.5]]]}}]}`, grid.Zoom(13).Resolution())
	huge := fmt.Sprintf(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"maxResolutionDeg":%v},"geometry":{"type":"Polygon","coordinates":[[[34.3,29.5],[35.8,29.5],[35.8,33.3],[34.3,29.5]]]}}]}`, grid.Zoom(18).Resolution())
	tests := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"unknown layer", strings.Replace(exportBody(areaROI, ""), "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8", "00000000-0000-4000-8000-000000000000", 1), 404, "dbId: no layer with id"},
		{"self-intersecting ring", exportBody(bowtie, ""), 400, "roi.features[1].geometry: "},
		{"not a collection", exportBody(`{"type":"Feature"}`, ""), 400, "roi.type: not a GeoJSON FeatureCollection"},
		{"roi not an object", exportBody(`[1]`, ""), 400, "roi: must be a GeoJSON FeatureCollection object, got an array"},
		{"empty collection", exportBody(`{"type":"FeatureCollection","features":[]}`, ""), 400, "roi.features: the collection has no features"},
		{"too many vertices", exportBody(areaROIRedigitised+"", `,"priority":5`), 200, ""},
		{"outside the footprint", exportBody(far, ""), 400, "roi.features[0].geometry: does not meet the layer's footprint"},
		{"over the tile cap", exportBody(huge, ""), 400, "roi: the area holds more than 1000 tiles, the limit; choose a smaller area"},
		{"whole layer over the cap", `{"dbId":"ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8"}`, 400, "roi: the whole layer (roi omitted) holds more than"},
		{"thin corridor in a large extent", exportBody(corridor, ""), 200, ""},
		{"crs", exportBody(areaROI, `,"crs":"EPSG:3857"`), 400, `crs: "EPSG:3857" is not supported`},
		{"priority", exportBody(areaROI, `,"priority":1000000000`), 400, "priority: 1e+09 is outside 0..999999999"},
		{"description too long", strings.Replace(exportBody(areaROI, ""), "two sites", strings.Repeat("x", 1001), 1), 400, "description: 1001 characters, at most 1000 allowed"},
		{"unknown field", exportBody(areaROI, `,"bbox":[1,2,3,4]`), 400, "bbox: unknown field"},
		{"cutline not a boolean", exportBody(areaROI, `,"cutline":"yes"`), 400, "cutline: must be true or false, got a string"},
		{"cutline null", exportBody(areaROI, `,"cutline":null`), 400, "cutline: must be true or false, got null"},
		{"bad callback", strings.Replace(exportBody(areaROI, ""), "http://example.getmap.com/cb", "ftp://x", 1), 400, "callbackURLs[0]: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, srv, "POST", "/export", tc.body)
			if tc.status == 200 {
				// 12 positions allowed: the re-digitised area has 5+5; the
				// corridor counts its tiles, not its extent's.
				if resp.StatusCode != 200 {
					t.Errorf("POST /export = %d %s, want 200", resp.StatusCode, body)
				}
				return
			}
			msg := decode[map[string]string](t, body)
			if resp.StatusCode != tc.status || !strings.Contains(msg["message"], tc.want) {
				t.Errorf("POST /export = %d %s, want %d with message containing %q", resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}
	many := strings.Replace(areaROI, "[35.0,31.5],[35.1,31.5]", "[35.0,31.5],[35.02,31.5],[35.04,31.5],[35.06,31.5],[35.08,31.5],[35.1,31.5]", 1)
	resp, body := do(t, srv, "POST", "/export", exportBody(many, ""))
	if msg := decode[map[string]string](t, body); resp.StatusCode != 400 || !strings.Contains(msg["message"], "roi.features[1]") || !strings.Contains(msg["message"], "12") {
		t.Errorf("POST /export over the vertex limit = %d %s, want 400 naming the feature and the limit", resp.StatusCode, body)
	}
}

func TestExportStatus(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	_, body := do(t, srv, "POST", "/export", exportBody(areaROI, ""))
	p := decode[progress](t, body)
	resp, body := do(t, srv, "GET", "/export/"+p.JobID+"/status", "")
	if got := decode[map[string]any](t, body); resp.StatusCode != 200 || !cmp.Equal(got, map[string]any{"percentage": 0.0, "status": "In-Progress"}) {
		t.Errorf("status = %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, srv, "DELETE", "/jobs/"+p.JobID, ""); resp.StatusCode != 200 {
		t.Fatalf("cancel = %d %s", resp.StatusCode, body)
	}
	_, body = do(t, srv, "GET", "/export/"+p.JobID+"/status", "")
	if got := decode[map[string]any](t, body); got["status"] != "Aborted" {
		t.Errorf("status of a cancelled job = %s, want Aborted", body)
	}
	if resp, _ := as(t, srv, "eve", "client", "GET", "/export/"+p.JobID+"/status", ""); resp.StatusCode != 404 {
		t.Errorf("a stranger's status = %d, want 404", resp.StatusCode)
	}
}

func TestEstimateArea(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	resp, body := do(t, srv, "POST", "/estimate", exportBody(areaROI, ""))
	var got struct {
		TilesTotal     int64
		EstimatedBytes int64
		MaxZoom        int
		TilesByZoom    []struct{ Zoom, Tiles int64 }
		Features       []struct {
			Index, MinZoom, MaxZoom int
			Tiles, EstimatedBytes   int64
		}
	}
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /estimate = %d %s", resp.StatusCode, body)
	}
	var sum, perZoom int64
	for _, f := range got.Features {
		sum += f.Tiles
		if f.EstimatedBytes != f.Tiles*26_000 {
			t.Errorf("feature %d estimate %d for %d tiles", f.Index, f.EstimatedBytes, f.Tiles)
		}
	}
	for _, z := range got.TilesByZoom {
		perZoom += z.Tiles
	}
	if len(got.Features) != 2 || got.Features[0].MinZoom != 10 || got.Features[1].MaxZoom != 9 || got.MaxZoom != 12 ||
		sum != got.TilesTotal || perZoom != got.TilesTotal || got.EstimatedBytes != got.TilesTotal*26_000 {
		t.Errorf("estimate = %s", body)
	}
	if n, _ := b.rdb.Keys(t.Context(), "test:job:*").Result(); len(n) != 0 {
		t.Errorf("an estimate created %d job keys", len(n))
	}
}

func TestStorage(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	resp, body := do(t, srv, "GET", "/storage", "")
	got := decode[map[string]float64](t, body)
	if resp.StatusCode != 200 || got["size"] <= 0 || got["free"] <= 0 || got["free"] > got["size"] {
		t.Errorf("GET /storage of a directory = %d %s", resp.StatusCode, body)
	}
	srv, _ = setup(t, func(c *trigger.Config, _ *trigger.Deps) { c.QuotaBytes = 10_000_000 })
	do(t, srv, "POST", "/create", seedBody) // reserves 18 × 26,000
	_, body = do(t, srv, "GET", "/storage", "")
	if got := decode[map[string]float64](t, body); !cmp.Equal(got, map[string]float64{"size": 10_000_000, "free": 10_000_000 - 468_000}) {
		t.Errorf("GET /storage with a quota = %s", body)
	}
}

// triangleLayer is a demo layer whose footprint is a triangle: its
// south-west half of the box [34.5, 30, 35.5, 31].
func triangleLayer(t *testing.T) *catalog.Catalog {
	t.Helper()
	var l catalog.Layer
	err := json.Unmarshal([]byte(`{"id":"7c0f3a52-1d4e-4b8a-9a61-0e2d5f7b9c13","productId":"tri","productType":"Orthophoto","version":"1",
	 "footprint":{"type":"Polygon","coordinates":[[[34.5,30.0],[35.5,30.0],[34.5,31.0],[34.5,30.0]]]},
	 "maxResolution":0.0000214576721191406,"source":{"kind":"demo"}}`), &l)
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.New([]catalog.Layer{l})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPolygonFootprintClips: on a layer whose footprint is a polygon,
// /create's bbox and /export's area are clipped to it by the coverage
// rule; a bbox within the footprint's bbox but outside the polygon is
// refused.
func TestPolygonFootprintClips(t *testing.T) {
	t.Parallel()
	cat := triangleLayer(t)
	srv, b := setup(t, func(c *trigger.Config, d *trigger.Deps) { d.Catalog = cat; c.MaxTiles = 100_000 })
	layer := cat.Layers()[0]
	fp, err := layer.AreaFootprint()
	if err != nil {
		t.Fatal(err)
	}
	box := grid.BBox{MinX: 34.5, MinY: 30, MaxX: 35.5, MaxY: 31}
	want, err := area.Cover([]area.Feature{area.BBoxFeature(box, grid.Zoom(8).Resolution(), 8)}, fp)
	if err != nil {
		t.Fatal(err)
	}
	pyramid := grid.CountTiles(grid.Pyramid(box, 8))
	if want.Count() >= pyramid {
		t.Fatalf("the triangle covers %d tiles of the box's %d at zoom 0-8: the test needs fewer", want.Count(), pyramid)
	}
	body := fmt.Sprintf(`{"dbId":%q,"bbox":[34.5,30,35.5,31],"targetResolution":%v,"callbackURLs":[]}`, layer.ID, grid.Zoom(8).Resolution())
	resp, out := do(t, srv, "POST", "/create", body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST /create = %d %s", resp.StatusCode, out)
	}
	j, err := b.jobs.Get(t.Context(), decode[created](t, out).ID)
	if err != nil || j.Spec.TilesTotal != want.Count() {
		t.Errorf("/create on a triangle: %d tiles (%v), want the triangle's %d of the bbox's %d", j.Spec.TilesTotal, err, want.Count(), pyramid)
	}
	// The same tiles asked for as an area are the same export.
	roi := fmt.Sprintf(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"maxResolutionDeg":%v},
	 "geometry":{"type":"Polygon","coordinates":[[[34.4,29.9],[35.6,29.9],[35.6,31.1],[34.4,31.1],[34.4,29.9]]]}}]}`, grid.Zoom(8).Resolution())
	_, out = do(t, srv, "POST", "/export", strings.Replace(exportBody(roi, ""), "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8", layer.ID, 1))
	if p := decode[progress](t, out); p.JobID != j.ID {
		t.Errorf("/export of the box = %s, want /create's job %s", out, j.ID)
	}
	// North-east of the diagonal: inside the bbox, outside the triangle.
	body = fmt.Sprintf(`{"dbId":%q,"bbox":[35.3,30.8,35.4,30.9],"targetResolution":%v,"callbackURLs":[]}`, layer.ID, grid.Zoom(8).Resolution())
	resp, out = do(t, srv, "POST", "/create", body)
	if resp.StatusCode != 400 || !strings.Contains(string(out), "bbox: [35.3, 30.8, 35.4, 30.9] does not intersect the layer footprint") {
		t.Errorf("POST /create outside the triangle = %d %s, want 400 naming bbox", resp.StatusCode, out)
	}
}
