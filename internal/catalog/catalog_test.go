package catalog_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
)

func TestDemo(t *testing.T) {
	t.Parallel()
	c := catalog.Demo()
	l, err := c.Lookup(strings.ToUpper(catalog.DemoLayerID))
	if err != nil {
		t.Fatalf("Lookup(demo, any case) = %v", err)
	}
	if l.MaxZoom() != 18 || l.TileFormat != "mixed" || l.JPEGQuality != 85 || l.Source.Kind != catalog.SourceDemo {
		t.Errorf("demo layer = %+v", l)
	}
	seed := grid.BBox{MinX: 34.811938017107494, MinY: 31.95475033759175, MaxX: 34.82237261707599, MaxY: 31.96426962177354}
	if !l.Footprint.Contains(seed) {
		t.Errorf("demo footprint %v does not cover the specification's example %v", l.Footprint, seed)
	}
	if _, err := c.Lookup("00000000-0000-4000-8000-000000000000"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Lookup(unknown) = %v, want ErrNotFound", err)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "catalog.json")
	body := `{"layers":[{"id":"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a11","productId":"p","productType":"Orthophoto","version":"1",
	  "footprint":[0,0,10,10],"maxResolution":0.0006866455078125,"source":{"kind":"tilestore","path":"/srv/tiles"}}]}`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := c.Lookup("5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a11")
	want := catalog.Source{Kind: "tilestore", Path: "/srv/tiles", RowOrigin: "top", Extensions: []string{"png", "jpg", "jpeg"}}
	if diff := cmp.Diff(want, l.Source); diff != "" || l.MaxZoom() != 10 || l.Footprint != (grid.BBox{MaxX: 10, MaxY: 10}) {
		t.Errorf("loaded layer %+v, source mismatch (-want +got):\n%s", l, diff)
	}
}

// TestInvalidCatalogs checks the records; the settings of their sources
// are checked by source.CheckLayer (source/check_test.go).
func TestInvalidCatalogs(t *testing.T) {
	t.Parallel()
	good := catalog.Layer{
		ID: "5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a11", ProductID: "p", ProductType: "t", Version: "1",
		Footprint: grid.BBox{MaxX: 1, MaxY: 1}, MaxResolution: 0.001, Source: catalog.Source{Kind: catalog.SourceDemo},
	}
	tests := []struct {
		name   string
		mutate func(*catalog.Layer)
		want   string
	}{
		{"bad id", func(l *catalog.Layer) { l.ID = "x" }, "id is not a uuid"},
		{"no product", func(l *catalog.Layer) { l.ProductID = "" }, "productId, productType and version are required"},
		{"bad footprint", func(l *catalog.Layer) { l.Footprint = grid.BBox{MinX: 2, MaxX: 1, MaxY: 1} }, "footprint"},
		{"bad resolution", func(l *catalog.Layer) { l.MaxResolution = 0 }, "maxResolution"},
		{"bad format", func(l *catalog.Layer) { l.TileFormat = "webp" }, "tileFormat"},
		{"bad quality", func(l *catalog.Layer) { l.JPEGQuality = 101 }, "jpegQuality"},
		{"bad overviews", func(l *catalog.Layer) { l.Overviews = "gdal" }, `overviews "gdal" is not source or downsample`},
		{"bad resampling", func(l *catalog.Layer) {
			l.Overviews, l.OverviewResampling = catalog.OverviewsDownsample, "cubic"
		}, `overviewResampling "cubic" is not average or nearest`},
		{"resampling without downsample", func(l *catalog.Layer) { l.OverviewResampling = catalog.ResampleNearest }, "overviewResampling applies to overviews downsample"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := good
			tc.mutate(&l)
			if _, err := catalog.New([]catalog.Layer{l}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := catalog.New([]catalog.Layer{good, good}); err == nil || !strings.Contains(err.Error(), "duplicate id") {
		t.Errorf("New(duplicates) = %v", err)
	}
	path := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(path, []byte(`{"layers":[{"footprint":[1,2]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.Load(path); err == nil || !strings.Contains(err.Error(), "want [minx, miny, maxx, maxy], got 2 numbers") {
		t.Errorf("Load(short footprint) = %v", err)
	}
	if _, err := catalog.Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("Load(missing file) succeeded")
	}
}

func TestLoadSources(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "catalog.json")
	body := `{"layers":[
	  {"id":"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a11","productId":"wms","productType":"Orthophoto","version":"1","footprint":[0,0,10,10],"maxResolution":0.0006866455078125,
	   "source":{"kind":"wms","url":"https://maps.example/wms?map=x","version":"1.1.1","layers":["ortho","roads"],"styles":["","bold"],"format":"image/png",
	     "params":{"TIME":"2025"},"metatile":[8,2],"timeout":"45s","connectTimeout":"3s","headerTimeout":"30s","maxAttempts":2,"concurrency":4,
	     "notFound":"nodata","resample":true,"noData":"#ffffff","noDataTolerance":8}},
	  {"id":"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a12","productId":"wmts","productType":"Orthophoto","version":"1","footprint":[0,0,10,10],"maxResolution":0.0006866455078125,
	   "source":{"kind":"wmts","url":"https://maps.example/wmts/{TileMatrix}/{TileRow}/{TileCol}.jpg","tileMatrixFormat":"%02d","zoomOffset":1,"noData":[0,0,0]}},
	  {"id":"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a13","productId":"xyz","productType":"Orthophoto","version":"1","footprint":[0,0,10,10],"maxResolution":0.0006866455078125,
	   "source":{"kind":"xyz","url":"https://tiles.example/{z}/{x}/{-y}.png","zoomOffset":-1}},
	  {"id":"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a14","productId":"gpkg","productType":"Orthophoto","version":"1","footprint":[0,0,10,10],"maxResolution":0.0006866455078125,
	   "source":{"kind":"gpkg","s3Key":"sources/ortho.gpkg","table":"ortho","noData":"#0f0"}},
	  {"id":"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a15","productId":"jpeg","productType":"Orthophoto","version":"1","footprint":[0,0,10,10],"maxResolution":0.0006866455078125,
	   "source":{"kind":"wms","url":"http://maps.example/wms","layers":["ortho"],"format":"image/jpeg"}}
	]}`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	want := map[string]catalog.Source{
		"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a11": {
			Kind: "wms", URL: "https://maps.example/wms?map=x", Version: "1.1.1", Layers: []string{"ortho", "roads"}, Styles: []string{"", "bold"},
			Format: "image/png", Transparent: &yes, Params: map[string]string{"TIME": "2025"}, Metatile: []int{8, 2},
			Timeout: catalog.Duration(45 * time.Second), ConnectTimeout: catalog.Duration(3 * time.Second), HeaderTimeout: catalog.Duration(30 * time.Second),
			MaxAttempts: 2, Concurrency: 4, NotFound: "nodata", Resample: true, NoData: &catalog.Color{R: 255, G: 255, B: 255}, NoDataTolerance: 8,
			RowOrigin: "top",
		},
		"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a12": {
			Kind: "wmts", URL: "https://maps.example/wmts/{TileMatrix}/{TileRow}/{TileCol}.jpg", TileMatrixFormat: "%02d", ZoomOffset: 1,
			NoData: &catalog.Color{}, RowOrigin: "top",
		},
		"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a13": {Kind: "xyz", URL: "https://tiles.example/{z}/{x}/{-y}.png", ZoomOffset: -1, RowOrigin: "top"},
		"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a14": {Kind: "gpkg", S3Key: "sources/ortho.gpkg", Table: "ortho", NoData: &catalog.Color{G: 255}, RowOrigin: "top"},
		"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a15": {Kind: "wms", URL: "http://maps.example/wms", Layers: []string{"ortho"}, Format: "image/jpeg", Transparent: &no, RowOrigin: "top"},
	}
	for id, w := range want {
		l, err := c.Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(w, l.Source); diff != "" {
			t.Errorf("layer %s source (-want +got):\n%s", l.ProductID, diff)
		}
		// Layers travel inside jobs as JSON: the source must round-trip.
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		var back catalog.Layer
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if diff := cmp.Diff(l, back); diff != "" {
			t.Errorf("layer %s JSON round trip (-want +got):\n%s", l.ProductID, diff)
		}
	}
}

func TestColorAndDurationJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    catalog.Color
		wantErr string
	}{
		{in: `"#ffffff"`, want: catalog.Color{R: 255, G: 255, B: 255}},
		{in: `"#0A141e"`, want: catalog.Color{R: 10, G: 20, B: 30}},
		{in: `"#f00"`, want: catalog.Color{R: 255}},
		{in: `[1, 2, 3]`, want: catalog.Color{R: 1, G: 2, B: 3}},
		{in: `"ffffff"`, wantErr: `colour "ffffff"`},
		{in: `"#fffffff"`, wantErr: "#rrggbb"},
		{in: `"#gggggg"`, wantErr: "#rrggbb"},
		{in: `[1, 2]`, wantErr: "got 2 numbers"},
		{in: `[1, 2, 256]`, wantErr: "0..255"},
		{in: `true`, wantErr: "#rrggbb"},
	}
	for _, tc := range tests {
		var got catalog.Color
		err := json.Unmarshal([]byte(tc.in), &got)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Unmarshal(%s) = %v, want an error with %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Unmarshal(%s) = %v, %v, want %v", tc.in, got, err, tc.want)
		}
	}
	if b, _ := json.Marshal(catalog.Color{R: 1, G: 171, B: 255}); string(b) != `"#01abff"` {
		t.Errorf("Marshal(colour) = %s, want \"#01abff\"", b)
	}
	var d catalog.Duration
	if err := json.Unmarshal([]byte(`"1m30s"`), &d); err != nil || time.Duration(d) != 90*time.Second {
		t.Errorf("Unmarshal(1m30s) = %v, %v", time.Duration(d), err)
	}
	for _, bad := range []string{`30`, `"30"`, `"soon"`} {
		if err := json.Unmarshal([]byte(bad), &d); err == nil || !strings.Contains(err.Error(), "duration") {
			t.Errorf("Unmarshal(%s) = %v, want a duration error", bad, err)
		}
	}
	if b, _ := json.Marshal(catalog.Duration(90 * time.Second)); string(b) != `"1m30s"` {
		t.Errorf("Marshal(90s) = %s", b)
	}
}
