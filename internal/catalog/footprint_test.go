package catalog_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
)

// polygonLayer is a demo-source layer whose footprint is a triangle.
const polygonLayer = `{"id":"7c0f3a52-1d4e-4b8a-9a61-0e2d5f7b9c13","productId":"tri","productType":"Orthophoto","version":"1",
 "footprint":{"type":"Polygon","coordinates":[[[34.5,30.0],[35.5,30.0],[34.5,31.0],[34.5,30.0]]]},
 "maxResolution":0.0000214576721191406,"source":{"kind":"demo"}}`

func TestPolygonFootprint(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(path, []byte(`{"layers":[`+polygonLayer+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	l := c.Layers()[0]
	if want := (grid.BBox{MinX: 34.5, MinY: 30, MaxX: 35.5, MaxY: 31}); l.Footprint != want || len(l.FootprintGeometry) == 0 {
		t.Fatalf("footprint = %v (geometry %s), want the triangle's bbox %v", l.Footprint, l.FootprintGeometry, want)
	}
	fp, err := l.AreaFootprint()
	if err != nil || fp.BBox() != l.Footprint {
		t.Errorf("AreaFootprint = %v, %v", fp.BBox(), err)
	}
	// A job carries the layer as JSON: the geometry survives the trip.
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	var back catalog.Layer
	if err := json.Unmarshal(b, &back); err != nil || back.Footprint != l.Footprint || string(back.FootprintGeometry) != string(l.FootprintGeometry) {
		t.Errorf("round trip of %s = %+v, %v", b, back, err)
	}
	// A bbox footprint stays an array.
	b, err = json.Marshal(catalog.Demo().Layers()[0])
	if err != nil || !strings.Contains(string(b), `"footprint":[-180,-90,180,90]`) {
		t.Errorf("demo layer JSON = %s, %v", b, err)
	}

	for name, fp := range map[string]string{
		"self-intersecting": `{"type":"Polygon","coordinates":[[[34,30],[35,31],[35,30],[34,31],[34,30]]]}`,
		"a point":           `{"type":"Point","coordinates":[34,30]}`,
		"unclosed":          `{"type":"Polygon","coordinates":[[[34,30],[35,30],[34,31]]]}`,
	} {
		body := strings.Replace(polygonLayer, `{"type":"Polygon","coordinates":[[[34.5,30.0],[35.5,30.0],[34.5,31.0],[34.5,30.0]]]}`, fp, 1)
		var l catalog.Layer
		err := json.Unmarshal([]byte(body), &l)
		if err == nil {
			_, err = catalog.New([]catalog.Layer{l})
		}
		if err == nil || !strings.Contains(err.Error(), "footprint") {
			t.Errorf("%s footprint: %v, want an error naming the footprint", name, err)
		}
	}
}
