package job_test

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
)

var testLayer = catalog.Layer{
	ID: "0c3f2a57-8a1e-4bcb-9a5e-6f1b2c3d4e5f", ProductID: "p", ProductType: "orthophoto", Version: "1.0",
	Footprint: grid.BBox{MinX: 34.2, MinY: 29.4, MaxX: 35.9, MaxY: 33.4}, MaxResolution: grid.Zoom(18).Resolution(),
}

// roi decodes a FeatureCollection of polygons (rings of [lon, lat]) with
// resolution properties props.
func roi(t testing.TB, features ...string) []area.Feature {
	t.Helper()
	fs, err := area.Decode([]byte(`{"type": "FeatureCollection", "features": [`+strings.Join(features, ",")+`]}`), area.Limits{MaxZoom: grid.MaxZoom})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func polygonFeature(props string, rings ...[][2]float64) string {
	var parts []string
	for _, r := range rings {
		var pts []string
		for _, p := range append(r, r[0]) {
			pts = append(pts, fmt.Sprintf("[%v, %v]", p[0], p[1]))
		}
		parts = append(parts, "["+strings.Join(pts, ",")+"]")
	}
	return fmt.Sprintf(`{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [%s]}, "properties": {%s}}`, strings.Join(parts, ","), props)
}

func boxRing(b grid.BBox) [][2]float64 {
	return [][2]float64{{b.MinX, b.MinY}, {b.MaxX, b.MinY}, {b.MaxX, b.MaxY}, {b.MinX, b.MaxY}}
}

const zoom14 = `"maxResolutionDeg": 0.0000429153442382812`

// TestSpecBeforeAreas checks that a spec stored before areas existed
// decodes unchanged, is written back without the new fields, and keeps
// its naive-cache key.
func TestSpecBeforeAreas(t *testing.T) {
	t.Parallel()
	stored := `{"layer": {"id": "0c3f2a57-8a1e-4bcb-9a5e-6f1b2c3d4e5f", "productId": "p", "productType": "orthophoto", "version": "1.0",
		"footprint": [34.2, 29.4, 35.9, 33.4], "maxResolution": 0.00000268220901489258, "source": {"kind": "demo"}},
		"zoom": 14, "crs": "EPSG:4326", "bbox": [34.8046875, 31.9482421875, 34.82666015625, 31.97021484375], "priority": 0,
		"package_name": "orthophoto_p_1.0_z14", "tiles_total": 18, "estimated_bytes": 0, "batch_tiles": 10000, "plan_scheme": "balanced"}`
	var s job.Spec
	if err := json.Unmarshal([]byte(stored), &s); err != nil {
		t.Fatal(err)
	}
	if s.ROI != nil || s.Description != "" || s.Cutline {
		t.Errorf("old spec decodes with area fields %v %q %v", s.ROI, s.Description, s.Cutline)
	}
	// The key every /create of these tiles always had.
	if got, want := s.CacheKey(), "09b26463972a875608a7eda6ddba0abca25c86227bb9a5827ce45177d4a0ae7b"; got != want {
		t.Errorf("CacheKey() = %s, want %s", got, want)
	}
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"roi"`, `"description"`, `"cutline"`} {
		if strings.Contains(string(out), field) {
			t.Errorf("old spec is written back with %s: %s", field, out)
		}
	}
	if c, _ := s.Coverage(); c.Count() != 18 || len(s.Plan()) != 1 {
		t.Errorf("old spec covers %d tiles in %d batches, want 18 in 1", c.Count(), len(s.Plan()))
	}
}

// TestAreaCacheKey checks that equal tile sets give equal keys whatever
// the vertices, that a rectangle shares the key of the /create of the
// same tiles, and that other tiles, layers or the cutline do not.
func TestAreaCacheKey(t *testing.T) {
	t.Parallel()
	seedReq := grid.BBox{MinX: 34.811938017107494, MinY: 31.95475033759175, MaxX: 34.82237261707599, MaxY: 31.96426962177354}
	extent, err := grid.Sanitize(seedReq, testLayer.Footprint, 14)
	if err != nil {
		t.Fatal(err)
	}
	create := job.NewSpec(testLayer, 14, extent, 0)
	spec := func(t *testing.T, cutline bool, features ...string) job.Spec {
		t.Helper()
		s, err := job.NewAreaSpec(testLayer, roi(t, features...), 0, "", cutline, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rect := spec(t, false, polygonFeature(zoom14, boxRing(seedReq)))
	if rect.CacheKey() != create.CacheKey() {
		t.Errorf("an /export rectangle has key %s, the /create of its tiles %s", rect.CacheKey(), create.CacheKey())
	}
	if rect.TilesTotal != create.TilesTotal || rect.BBox != create.BBox || rect.PackageName != create.PackageName {
		t.Errorf("rectangle spec = %d tiles over %v named %s, want %d over %v named %s", rect.TilesTotal, rect.BBox, rect.PackageName, create.TilesTotal, create.BBox, create.PackageName)
	}
	// A triangle and the same triangle re-digitised: more vertices on its
	// edges, another start, the other orientation, coordinates moved by
	// less than a tile boundary allows.
	tri := [][2]float64{{34.80, 31.90}, {34.95, 31.93}, {34.86, 32.05}}
	redigitised := [][2]float64{{34.95, 31.93}, {34.905, 31.99}, {34.86, 32.05}, {34.83, 31.975}, {34.8000000001, 31.9}, {34.875, 31.915}}
	a, b := spec(t, false, polygonFeature(zoom14, tri)), spec(t, false, polygonFeature(zoom14, redigitised))
	if a.CacheKey() != b.CacheKey() {
		t.Error("a re-digitised triangle has another key")
	}
	if a.CacheKey() == create.CacheKey() || a.CacheKey() == rect.CacheKey() {
		t.Error("a triangle has the key of a rectangle")
	}
	// Two features whose union is the triangle's tiles are the same export.
	half1 := [][2]float64{{34.80, 31.90}, {34.95, 31.93}, {34.88, 31.95}}
	split := spec(t, false, polygonFeature(zoom14, tri), polygonFeature(zoom14, half1))
	if split.CacheKey() != a.CacheKey() {
		t.Error("a feature inside another changes the key")
	}
	if cut := spec(t, true, polygonFeature(zoom14, tri)); cut.CacheKey() == a.CacheKey() {
		t.Error("the cutline does not change the key")
	}
	if cut := spec(t, true, polygonFeature(zoom14, boxRing(seedReq))); cut.CacheKey() == create.CacheKey() {
		t.Error("a rectangle with a cutline has the key of the /create without one")
	}
	other := testLayer
	other.Version = "2.0"
	s2, err := job.NewAreaSpec(other, a.ROI, 0, "", false, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	if s2.CacheKey() == a.CacheKey() {
		t.Error("another layer version has the same key")
	}
	coarser := spec(t, false, polygonFeature(zoom14+`, "minResolutionDeg": 0.0003`, tri))
	if coarser.CacheKey() == a.CacheKey() {
		t.Error("fewer zooms have the same key")
	}
	// A spec read back from its JSON is the same export.
	raw, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back job.Spec
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.CacheKey() != a.CacheKey() || !cmp.Equal(back.Plan(), a.Plan()) {
		t.Error("a spec read back from JSON has another key or plan")
	}
}

func TestNewAreaSpecOutsideFootprint(t *testing.T) {
	t.Parallel()
	fs := roi(t, polygonFeature(zoom14, boxRing(grid.BBox{MinX: 34.5, MinY: 31, MaxX: 34.6, MaxY: 31.1})),
		polygonFeature(zoom14, boxRing(grid.BBox{MinX: 10, MinY: 10, MaxX: 11, MaxY: 11})))
	_, err := job.NewAreaSpec(testLayer, fs, 0, "", false, math.MaxInt64)
	var ae *area.Error
	if !errorsAs(err, &ae) || ae.Feature != 1 {
		t.Errorf("NewAreaSpec() error = %v, want an *area.Error for feature 1", err)
	}
}

// ring returns a circle-like ring of n vertices around (cx, cy), radius r
// degrees, wobbling by a fifth.
func ring(n int, cx, cy, r float64) [][2]float64 {
	out := make([][2]float64, n)
	for k := range out {
		a := 2 * math.Pi * float64(k) / float64(n)
		rr := r * (1 + 0.2*math.Sin(7*a))
		out[k] = [2]float64{cx + rr*math.Cos(a), cy + rr*math.Sin(a)}
	}
	return out
}

// areaCases are irregular exports for the planner's tests and benchmarks.
func areaCases(t testing.TB) map[string]grid.Coverage {
	t.Helper()
	cover := func(features ...string) grid.Coverage { return coverOf(t, features...) }
	z15 := `"maxResolutionDeg": 0.000021457672119140625`
	lShape := [][2]float64{{34.5, 31.5}, {35.0, 31.5}, {35.0, 31.62}, {34.62, 31.62}, {34.62, 32.0}, {34.5, 32.0}}
	return map[string]grid.Coverage{
		"L-shape":        cover(polygonFeature(z15, lShape)),
		"hole":           cover(polygonFeature(z15, ring(200, 34.75, 31.75, 0.25), ring(50, 34.75, 31.75, 0.12))),
		"far apart":      cover(polygonFeature(z15, ring(100, 34.4, 29.7, 0.18)), polygonFeature(z15, ring(100, 35.6, 33.1, 0.18))),
		"islands":        cover(polygonFeature(z15, ring(100, 34.4, 29.7, 0.2)), polygonFeature(z15, ring(20, 35.6, 33.1, 0.01)), polygonFeature(z15, ring(20, 35.0, 33.2, 0.01))),
		"zoom ranges":    cover(polygonFeature(`"maxResolutionDeg": 0.0006866455078125`, boxRing(testLayer.Footprint)), polygonFeature(z15+`, "minResolutionDeg": 0.00034332275390625`, ring(80, 34.75, 31.75, 0.15))),
		"wide top zooms": cover(polygonFeature(`"maxResolutionDeg": 0.00034332275390625`, boxRing(testLayer.Footprint)), polygonFeature(`"maxResolutionDeg": 0.000005364418029785156, "minResolutionDeg": 0.000010728836059570312`, ring(30, 34.75, 31.75, 0.02))),
	}
}

// coverOf is the coverage of features within the test layer's footprint.
func coverOf(t testing.TB, features ...string) grid.Coverage {
	t.Helper()
	c, err := area.Cover(roi(t, features...), area.BBoxFootprint(testLayer.Footprint))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
