package area_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/grid"
)

// fc wraps features (JSON texts) in a FeatureCollection.
func fc(features ...string) string {
	return `{"type": "FeatureCollection", "features": [` + strings.Join(features, ",") + `]}`
}

// feature is a Feature of geometry type typ with coordinates and props.
func feature(typ, coords, props string) string {
	return fmt.Sprintf(`{"type": "Feature", "geometry": {"type": %q, "coordinates": %s}, "properties": {%s}}`, typ, coords, props)
}

const (
	square  = `[[[34, 31], [35, 31], [35, 32], [34, 32], [34, 31]]]`
	zoom14  = `"maxResolutionDeg": 0.0000429153442382812`
	zooms10 = `"maxResolutionDeg": 0.0000429153442382812, "minResolutionDeg": 0.0006866455078125`
)

func TestDecode(t *testing.T) {
	t.Parallel()
	all := area.Limits{MaxZoom: grid.MaxZoom}
	got, err := area.Decode([]byte(fc(
		feature("Polygon", square, zoom14),
		feature("MultiPolygon", `[`+square+`, [[[40, 10, 5], [41, 10, 5], [41, 11, 5], [40, 10, 5]]]]`, zooms10),
	)), all)
	if err != nil {
		t.Fatalf("Decode() error = %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("Decode() = %d features, want 2", len(got))
	}
	type zr struct{ Min, Max grid.Zoom }
	if diff := cmp.Diff([]zr{{0, 14}, {10, 14}}, []zr{{got[0].MinZoom, got[0].MaxZoom}, {got[1].MinZoom, got[1].MaxZoom}}); diff != "" {
		t.Errorf("zoom ranges (-want +got):\n%s", diff)
	}
	if got[0].MinResolution != grid.Resolution0 {
		t.Errorf("default minResolutionDeg = %v, want %v", got[0].MinResolution, grid.Resolution0)
	}
	if !got[1].Geometry.IsMultiPolygon() || got[1].Geometry.CoordinatesType() != 0 {
		t.Errorf("feature 1 = %s %v, want a 2D MultiPolygon", got[1].Geometry.Type(), got[1].Geometry.CoordinatesType())
	}
	checkRoundTrip(t, got, all)
}

// checkRoundTrip checks that Encode and Decode give features back.
func checkRoundTrip(t *testing.T, features []area.Feature, lim area.Limits) {
	t.Helper()
	enc, err := area.Encode(features)
	if err != nil {
		t.Fatal(err)
	}
	again, err := area.Decode(enc, lim)
	if err != nil {
		t.Fatalf("Decode(Encode()) error = %v", err)
	}
	for i := range features {
		if again[i].Geometry.AsText() != features[i].Geometry.AsText() || again[i].MinZoom != features[i].MinZoom || again[i].MaxZoom != features[i].MaxZoom {
			t.Errorf("feature %d changed in a round trip: %v, want %v", i, again[i], features[i])
		}
	}
}

func TestDecodeRefusals(t *testing.T) {
	t.Parallel()
	bowtie := `[[[34, 31], [35, 32], [35, 31], [34, 32], [34, 31]]]`
	holeOutside := `[[[34, 31], [35, 31], [35, 32], [34, 32], [34, 31]], [[36, 31], [37, 31], [37, 32], [36, 31]]]`
	ok := feature("Polygon", square, zoom14)
	tests := []struct {
		name      string
		in        string
		lim       area.Limits
		wantPath  string
		wantInErr string
	}{
		{name: "not JSON", in: `{`, wantPath: "", wantInErr: "not a GeoJSON FeatureCollection"},
		{name: "an array", in: `[]`, wantPath: "", wantInErr: "not a GeoJSON FeatureCollection"},
		{name: "a Feature", in: ok, wantPath: "type", wantInErr: `type is "Feature"`},
		{name: "a bare geometry", in: `{"type": "Polygon", "coordinates": ` + square + `}`, wantPath: "type", wantInErr: "not a GeoJSON FeatureCollection"},
		{name: "no features", in: fc(), wantPath: "features", wantInErr: "no features"},
		{name: "features null", in: `{"type": "FeatureCollection", "features": null}`, wantPath: "features", wantInErr: "no features"},
		{name: "feature not an object", in: fc(ok, `3`), wantPath: "features[1]", wantInErr: "not a GeoJSON Feature"},
		{name: "feature of the wrong type", in: fc(`{"type": "Polygon", "coordinates": ` + square + `}`), wantPath: "features[0].type", wantInErr: "not a GeoJSON Feature"},
		{name: "point", in: fc(ok, feature("Point", `[34, 31]`, zoom14)), wantPath: "features[1].geometry", wantInErr: "Point is not allowed"},
		{name: "line string", in: fc(feature("LineString", `[[34, 31], [35, 32]]`, zoom14)), wantPath: "features[0].geometry", wantInErr: "LineString is not allowed"},
		{name: "collection", in: fc(`{"type": "Feature", "geometry": {"type": "GeometryCollection", "geometries": []}, "properties": {` + zoom14 + `}}`), wantPath: "features[0].geometry", wantInErr: "GeometryCollection is not allowed"},
		{name: "no geometry", in: fc(`{"type": "Feature", "geometry": null, "properties": {` + zoom14 + `}}`), wantPath: "features[0].geometry", wantInErr: "missing"},
		{name: "empty polygon", in: fc(feature("Polygon", `[]`, zoom14)), wantPath: "features[0].geometry", wantInErr: "no coordinates"},
		{name: "unclosed ring", in: fc(feature("Polygon", `[[[34, 31], [35, 31], [35, 32], [34, 32]]]`, zoom14)), wantPath: "features[0].geometry", wantInErr: "exterior ring is not closed"},
		{name: "three positions", in: fc(feature("Polygon", `[[[34, 31], [35, 31], [34, 31]]]`, zoom14)), wantPath: "features[0].geometry", wantInErr: "has 3 positions"},
		{name: "self-intersecting ring", in: fc(feature("Polygon", bowtie, zoom14)), wantPath: "features[0].geometry", wantInErr: "exterior ring intersects itself"},
		{name: "self-intersecting hole", in: fc(feature("Polygon", `[[[30, 30], [40, 30], [40, 40], [30, 40], [30, 30]], [[32, 32], [34, 34], [34, 32], [32, 34], [32, 32]]]`, zoom14)), wantPath: "features[0].geometry", wantInErr: "hole 0 intersects itself"},
		{name: "hole outside its shell", in: fc(feature("Polygon", holeOutside, zoom14)), wantPath: "features[0].geometry", wantInErr: "hole 0 lies outside the exterior ring"},
		{name: "overlapping polygons", in: fc(feature("MultiPolygon", `[`+square+`,`+square+`]`, zoom14)), wantPath: "features[0].geometry", wantInErr: "overlap"},
		{name: "second polygon's ring", in: fc(feature("MultiPolygon", `[`+square+`, [[[50, 1], [51, 1], [50, 1]]]]`, zoom14)), wantPath: "features[0].geometry", wantInErr: "polygon 1: exterior ring has 3 positions"},
		{name: "longitude out of range", in: fc(feature("Polygon", `[[[179, 31], [181, 31], [181, 32], [179, 31]]]`, zoom14)), wantPath: "features[0].geometry", wantInErr: "position 1 [181, 31] is outside"},
		{name: "latitude out of range", in: fc(feature("Polygon", `[[[0, 89], [1, 89], [1, 91], [0, 89]]]`, zoom14)), wantPath: "features[0].geometry", wantInErr: "outside"},
		{name: "number too large", in: fc(feature("Polygon", `[[[0, 1e400], [1, 0], [1, 1], [0, 0]]]`, zoom14)), wantPath: "features[0].geometry", wantInErr: "number 1e400"},
		{name: "too many vertices", in: fc(ok, ok), lim: area.Limits{MaxVertices: 9}, wantPath: "features[1].geometry", wantInErr: "more than 9 vertices in all its features (10 up to this one)"},
		{name: "no properties", in: fc(`{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": ` + square + `}}`), wantPath: "features[0].properties.maxResolutionDeg", wantInErr: "required"},
		{name: "properties not an object", in: fc(`{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": ` + square + `}, "properties": 3}`), wantPath: "features[0].properties", wantInErr: "must be an object"},
		{name: "resolution a string", in: fc(feature("Polygon", square, `"maxResolutionDeg": "0.1"`)), wantPath: "features[0].properties.maxResolutionDeg", wantInErr: "must be a number"},
		{name: "resolution null", in: fc(feature("Polygon", square, `"maxResolutionDeg": null`)), wantPath: "features[0].properties.maxResolutionDeg", wantInErr: "must be a number"},
		{name: "resolution zero", in: fc(feature("Polygon", square, `"maxResolutionDeg": 0`)), wantPath: "features[0].properties.maxResolutionDeg", wantInErr: "not a positive"},
		{name: "resolution coarser than zoom 0", in: fc(feature("Polygon", square, `"maxResolutionDeg": 1`)), wantPath: "features[0].properties.maxResolutionDeg", wantInErr: "coarser than zoom 0"},
		{name: "resolution finer than the grid", in: fc(feature("Polygon", square, `"maxResolutionDeg": 1e-9`)), wantPath: "features[0].properties.maxResolutionDeg", wantInErr: "finer than zoom 22"},
		{name: "min resolution out of range", in: fc(feature("Polygon", square, zoom14+`, "minResolutionDeg": 2`)), wantPath: "features[0].properties.minResolutionDeg", wantInErr: "coarser than zoom 0"},
		{name: "min finer than max", in: fc(feature("Polygon", square, `"maxResolutionDeg": 0.001, "minResolutionDeg": 0.0001`)), wantPath: "features[0].properties.minResolutionDeg", wantInErr: "finer than maxResolutionDeg"},
		{name: "finer than the layer", in: fc(feature("Polygon", square, zoom14)), lim: area.Limits{MaxZoom: 12}, wantPath: "features[0].properties.maxResolutionDeg", wantInErr: "finer than the layer's finest resolution"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lim := tc.lim
			if lim.MaxZoom == 0 {
				lim.MaxZoom = grid.MaxZoom
			}
			_, err := area.Decode([]byte(tc.in), lim)
			var ae *area.Error
			if !errors.As(err, &ae) {
				t.Fatalf("Decode() error = %v, want an *area.Error", err)
			}
			if ae.Path() != tc.wantPath || !strings.Contains(ae.Reason, tc.wantInErr) {
				t.Errorf("Decode() error = %q at %q, want %q containing %q", ae.Reason, ae.Path(), tc.wantPath, tc.wantInErr)
			}
		})
	}
}
