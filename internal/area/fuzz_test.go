package area_test

import (
	"errors"
	"testing"

	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/grid"
)

// FuzzDecode checks that Decode never panics, refuses with an *area.Error
// only, and that what it accepts is valid, within the limits, covers what
// its bound says at most, and survives Encode and Decode unchanged.
func FuzzDecode(f *testing.F) {
	ok := feature("Polygon", square, zoom14)
	for _, s := range []string{
		fc(ok),
		fc(ok, feature("MultiPolygon", `[`+square+`, [[[40, 10], [41, 10], [41, 11], [40, 10]]]]`, zooms10)),
		fc(feature("Polygon", `[[[30, 30], [40, 30], [40, 40], [30, 40], [30, 30]], [[32, 32], [34, 32], [34, 34], [32, 32]]]`, `"maxResolutionDeg": 0.02`)),
		fc(feature("Polygon", `[[[34, 31], [35, 32], [35, 31], [34, 32], [34, 31]]]`, zoom14)),
		fc(feature("Polygon", `[[[34, 31], [35, 31], [35, 32], [34, 32]]]`, zoom14)),
		fc(feature("Point", `[1, 2]`, zoom14)),
		fc(feature("Polygon", `[[[], [1], [1, 2, 3, 4], [0, 0]]]`, zoom14)),
		fc(feature("MultiPolygon", `[[[]], []]`, zoom14)),
		fc(), `{"type": "FeatureCollection"}`, `null`, `[]`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	lim := area.Limits{MaxVertices: 1000, MaxZoom: 18}
	f.Fuzz(func(t *testing.T, data []byte) {
		features, err := area.Decode(data, lim)
		if err != nil {
			var ae *area.Error
			if !errors.As(err, &ae) {
				t.Fatalf("Decode() error = %v, want an *area.Error", err)
			}
			return
		}
		if len(features) == 0 {
			t.Fatal("Decode() accepted no features")
		}
		vertices := 0
		for i, f := range features {
			if err := f.Geometry.Validate(); err != nil {
				t.Errorf("feature %d is invalid: %v", i, err)
			}
			if !f.Geometry.IsPolygon() && !f.Geometry.IsMultiPolygon() {
				t.Errorf("feature %d is a %s", i, f.Geometry.Type())
			}
			if f.MinZoom > f.MaxZoom || f.MaxZoom > lim.MaxZoom || f.MinZoom < 0 {
				t.Errorf("feature %d has zooms %d..%d", i, f.MinZoom, f.MaxZoom)
			}
			vertices += f.Geometry.DumpCoordinates().Length()
		}
		if vertices > lim.MaxVertices {
			t.Errorf("Decode() accepted %d vertices, limit %d", vertices, lim.MaxVertices)
		}
		checkRoundTrip(t, features, lim)
		fp := area.BBoxFootprint(grid.World)
		const limit = 1_000_000
		c, err := area.CoverAtMost(features, fp, limit)
		var ae *area.Error
		var tooMany *area.TooManyTilesError
		switch {
		case errors.As(err, &tooMany):
			if tooMany.Limit != limit || tooMany.Feature < 0 || tooMany.Feature >= len(features) {
				t.Errorf("CoverAtMost() error = %+v", tooMany)
			}
		case err != nil && !errors.As(err, &ae):
			t.Fatalf("CoverAtMost() error = %v", err)
		case err == nil && c.Count() > limit:
			t.Errorf("CoverAtMost() = %d tiles, above its limit %d", c.Count(), limit)
		}
	})
}
