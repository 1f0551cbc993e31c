package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/gpkg/gpkgtest"
	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/testenv"
)

// twoSites is an /export area of two features with different zoom ranges
// in the demo layer: a triangle at zooms 10–14 and a square at 0–12. With
// rewrite applied to its rings it is the same area re-digitised.
const twoSites = `{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"maxResolutionDeg":%v,"minResolutionDeg":%v},
  "geometry":{"type":"Polygon","coordinates":[[[35.0,31.5],[35.2,31.5],[35.0,31.7],[35.0,31.5]]]}},
 {"type":"Feature","properties":{"maxResolutionDeg":%v},
  "geometry":{"type":"Polygon","coordinates":[[[34.5,30.0],[34.6,30.0],[34.6,30.1],[34.5,30.1],[34.5,30.0]]]}}]}`

// redigitise adds a collinear vertex to the triangle and starts the
// square's ring at another corner.
var redigitise = strings.NewReplacer(
	"[[35.0,31.5],[35.2,31.5],", "[[35.0,31.5],[35.1,31.5],[35.2,31.5],",
	"[[34.5,30.0],[34.6,30.0],[34.6,30.1],[34.5,30.1],[34.5,30.0]]", "[[34.6,30.1],[34.5,30.1],[34.5,30.0],[34.6,30.0],[34.6,30.1]]",
)

// TestEndToEndExportArea: POST /export of a two-feature area through the
// real binary, split into batches: the package holds exactly the area's
// tiles per zoom and passes GDAL's validator, its metadata JSON
// downloads and describes it, the callback has the /export shape, a
// re-digitised request is answered from the cache, and the estimate of the
// same area, learned from the package, comes close to its size.
func TestEndToEndExportArea(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	addr := testenv.FreeAddr(t)
	p := start(t, dir, map[string]string{
		"EXPORTER_HTTP_ADDR": addr, "EXPORTER_HTTP_CALLBACK_ALLOW": "127.0.0.1/32", "EXPORTER_HTTP_RATE_LIMIT": "0",
		"EXPORTER_JOBS_BATCH_TILES": "100", "EXPORTER_JOBS_BATCH_MIN_TILES": "50",
		"EXPORTER_JOBS_ESTIMATE_REFRESH": "0",
	})
	base, token := waitURL(t, p)
	waitReady(t, base, p)
	a := api{base: base, token: token}

	roi := fmt.Sprintf(twoSites, grid.Zoom(14).Resolution(), grid.Zoom(10).Resolution(), grid.Zoom(12).Resolution())
	layer := catalog.Demo().Layers()[0]
	_, want := demoCoverage(t, []byte(roi))

	cb := newCallbacks(t)
	body := func(roi string) string {
		return fmt.Sprintf(`{"dbId":%q,"roi":%s,"description":"two sites","callbackURLs":[%q],"crs":"EPSG:4326","priority":10}`, layer.ID, roi, cb.url)
	}
	before := a.postJSON(t, "/estimate", body(roi))["estimatedBytes"].(float64)
	created := a.postJSON(t, "/export", body(roi))
	if created["status"] != "In-Progress" || created["isDuplicated"] != false {
		t.Fatalf("POST /export = %v, want a new In-Progress job", created)
	}
	id := created["jobId"].(string)
	waitExportCompleted(t, a, id)

	again := a.postJSON(t, "/export", body(redigitise.Replace(roi)))
	if again["status"] != "Completed" || again["jobId"] != id {
		t.Fatalf("re-digitised POST /export = %v, want job %s's package from the cache", again, id)
	}
	links := again["links"].(map[string]any)
	path := downloadPackage(t, a, links["dataURI"].(string))
	if _, byZoom := tileCount(t, path); !cmp.Equal(byZoom, want) {
		t.Errorf("package tiles per zoom = %v, want %v", byZoom, want)
	}
	gpkgtest.RequireGDAL(t).Validate(t, path)

	// The package taught the layer's tile sizes: the same estimate now
	// comes within 10 % of the package (the zooms of few tiles take the
	// mean of all).
	size := float64(again["fileSize"].(float64))
	after := a.postJSON(t, "/estimate", body(roi))["estimatedBytes"].(float64)
	t.Logf("estimate of a %.0f-byte package: %.0f bytes before it was made (%+.0f %%), %.0f after (%+.0f %%)",
		size, before, 100*(before-size)/size, after, 100*(after-size)/size)
	if math.Abs(after-size) > 0.1*size {
		t.Errorf("estimate after the package = %.0f bytes, want within 10 %% of its %.0f", after, size)
	}

	// The metadata JSON: the request, the tiles per zoom, the file's digest.
	var md struct {
		JobID   string `json:"jobId"`
		Request struct {
			Description string          `json:"description"`
			ROI         json.RawMessage `json:"roi"`
		} `json:"request"`
		TilesByZoom []struct {
			Zoom  grid.Zoom `json:"zoom"`
			Tiles int64     `json:"tiles"`
		} `json:"tilesByZoom"`
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	}
	getJSONFile(t, a, links["metadataURI"].(string), &md)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	mdByZoom := map[grid.Zoom]int64{}
	for _, z := range md.TilesByZoom {
		mdByZoom[z.Zoom] = z.Tiles
	}
	if md.JobID != id || md.Request.Description != "two sites" || len(md.Request.ROI) == 0 || md.SHA256 != hex.EncodeToString(sum[:]) ||
		md.Size != int64(len(data)) || !cmp.Equal(mdByZoom, want) {
		t.Errorf("metadata JSON = %+v", md)
	}

	select {
	case got := <-cb.got:
		if got["status"] != "Completed" || got["jobId"] != id || got["description"] != "two sites" || got["roi"] == nil ||
			!cmp.Equal(got["links"], again["links"]) {
			t.Errorf("callback body = %v, want the /export shape", got)
		}
	case <-time.After(30 * time.Second):
		t.Error("no callback within 30s")
	}
}

// demoCoverage decodes an /export's roi for the demo layer and counts the
// tiles per zoom it covers within the layer's footprint, independently of
// the trigger's planning.
func demoCoverage(t *testing.T, roi []byte) ([]area.Feature, map[grid.Zoom]int64) {
	t.Helper()
	layer := catalog.Demo().Layers()[0]
	features, err := area.Decode(roi, area.Limits{MaxZoom: layer.MaxZoom()})
	if err != nil {
		t.Fatalf("decode roi %s: %v", roi, err)
	}
	cov, err := area.Cover(features, area.BBoxFootprint(layer.Footprint))
	if err != nil {
		t.Fatal(err)
	}
	want := map[grid.Zoom]int64{}
	for z := range cov.Levels {
		if n := cov.Level(grid.Zoom(z)).Count(); n > 0 {
			want[grid.Zoom(z)] = n
		}
	}
	return features, want
}

// waitExportCompleted polls GET /export/{id}/status until Completed, for
// at most 90 seconds.
func waitExportCompleted(t *testing.T, a api, id string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		st := a.getJSON(t, "/export/"+id+"/status")
		switch st["status"] {
		case "Completed":
			if st["percentage"] != 100.0 {
				t.Errorf("Completed at %v%%", st["percentage"])
			}
			return
		case "In-Progress":
		default:
			t.Fatalf("job %s ended %v", id, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("job %s not Completed within 90s", id)
}

// getJSONFile downloads a JSON file with the token in the query, as a
// browser's link carries it, and decodes it into v.
func getJSONFile(t *testing.T, a api, uri string, v any) {
	t.Helper()
	resp, err := http.Get(uri + "?token=" + a.token)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s = %d %s %s", uri, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", uri, err)
	}
}
