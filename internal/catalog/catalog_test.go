package catalog_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		{"bad source", func(l *catalog.Layer) { l.Source.Kind = "wms" }, `source.kind "wms"`},
		{"tilestore without path", func(l *catalog.Layer) { l.Source.Kind = catalog.SourceTileStore }, "exactly one of path and s3Prefix"},
		{"bad row origin", func(l *catalog.Layer) { l.Source.RowOrigin = "middle" }, "rowOrigin"},
		{"bad format", func(l *catalog.Layer) { l.TileFormat = "webp" }, "tileFormat"},
		{"bad quality", func(l *catalog.Layer) { l.JPEGQuality = 101 }, "jpegQuality"},
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
