package area

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/peterstace/simplefeatures/geom"

	"github.com/geoexport/exporter/internal/grid"
)

// DefaultMaxVertices is the most positions an area may have in all its
// features together when Limits names no other number.
const DefaultMaxVertices = 100_000

// Limits bound what Decode accepts.
type Limits struct {
	// MaxVertices is the most positions (closing ones included) all
	// features may have together. Zero means DefaultMaxVertices.
	MaxVertices int
	// MaxZoom is the finest zoom a feature may ask for: the layer's
	// finest. Its zero value allows zoom 0 only; pass grid.MaxZoom for no
	// limit beyond the grid's.
	MaxZoom grid.Zoom
}

// Decode reads a region of interest: a GeoJSON FeatureCollection whose
// features each have a Polygon or MultiPolygon geometry in EPSG:4326
// longitude/latitude and the properties maxResolutionDeg (required: the
// finest resolution, in degrees per pixel) and minResolutionDeg (optional:
// the coarsest, default zoom 0's 0.703125), both mapped to zooms as
// grid.ZoomForResolution maps them. Every refusal is an *Error naming the
// feature and the reason; the first one found is returned. Decode never
// panics, whatever data holds.
func Decode(data []byte, lim Limits) ([]Feature, error) {
	maxVertices := lim.MaxVertices
	if maxVertices <= 0 {
		maxVertices = DefaultMaxVertices
	}
	var fc struct {
		Type     string            `json:"type"`
		Features []json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(data, &fc); err != nil {
		return nil, &Error{Feature: -1, Reason: fmt.Sprintf("not a GeoJSON FeatureCollection: %v", err)}
	}
	if fc.Type != "FeatureCollection" {
		return nil, &Error{Feature: -1, Field: "type", Reason: fmt.Sprintf("not a GeoJSON FeatureCollection: type is %q, want \"FeatureCollection\"", fc.Type)}
	}
	if len(fc.Features) == 0 {
		return nil, &Error{Feature: -1, Field: "features", Reason: "the collection has no features"}
	}
	out := make([]Feature, 0, len(fc.Features))
	vertices := 0
	for i, raw := range fc.Features {
		f, n, err := decodeFeature(i, raw, lim.MaxZoom, vertices, maxVertices)
		if err != nil {
			return nil, err
		}
		vertices += n
		out = append(out, f)
	}
	return out, nil
}

// decodeFeature reads feature i, which may have at most maxVertices-used
// positions (the features before it have used).
func decodeFeature(i int, raw json.RawMessage, maxZoom grid.Zoom, used, maxVertices int) (Feature, int, error) {
	var f Feature
	var obj struct {
		Type       string          `json:"type"`
		Geometry   json.RawMessage `json:"geometry"`
		Properties json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return f, 0, featureError(i, "", "not a GeoJSON Feature: %v", err)
	}
	if obj.Type != "Feature" {
		return f, 0, featureError(i, "type", "not a GeoJSON Feature: type is %q, want \"Feature\"", obj.Type)
	}
	if err := f.decodeResolutions(i, obj.Properties, maxZoom); err != nil {
		return f, 0, err
	}
	if len(obj.Geometry) == 0 || bytes.Equal(obj.Geometry, []byte("null")) {
		return f, 0, featureError(i, "geometry", "missing: want a Polygon or MultiPolygon")
	}
	g, err := unmarshalGeometry(obj.Geometry)
	if err != nil {
		return f, 0, featureError(i, "geometry", "not a GeoJSON geometry: %v", err)
	}
	if !g.IsPolygon() && !g.IsMultiPolygon() {
		return f, 0, featureError(i, "geometry", "type %s is not allowed: want Polygon or MultiPolygon", g.Type())
	}
	if g.IsEmpty() {
		return f, 0, featureError(i, "geometry", "the %s has no coordinates", g.Type())
	}
	g = g.Force2D()
	n := g.DumpCoordinates().Length()
	if used+n > maxVertices {
		return f, 0, featureError(i, "geometry", "the area has more than %d vertices in all its features (%d up to this one)", maxVertices, used+n)
	}
	if err := checkGeometry(g); err != nil {
		return f, 0, featureError(i, "geometry", "%v", err)
	}
	f.Geometry = g
	return f, n, nil
}

// unmarshalGeometry decodes GeoJSON without the library's validation, so
// that checkGeometry can say which rule a geometry breaks. A panic of the
// decoder is a refusal of the input, not a crash of the request.
func unmarshalGeometry(raw []byte) (g geom.Geometry, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed coordinates")
		}
	}()
	return geom.UnmarshalGeoJSON(raw, geom.NoValidate{})
}

// decodeResolutions reads the feature's resolution range into f.
func (f *Feature) decodeResolutions(i int, raw json.RawMessage, maxZoom grid.Zoom) error {
	var props map[string]json.RawMessage
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &props); err != nil {
			return featureError(i, "properties", "must be an object with maxResolutionDeg")
		}
	}
	number := func(name string, v json.RawMessage) (float64, error) {
		var x float64
		if err := json.Unmarshal(v, &x); err != nil || bytes.Equal(v, []byte("null")) {
			return 0, featureError(i, "properties."+name, "must be a number, got %s", clip(v))
		}
		return x, nil
	}
	fine, ok := props["maxResolutionDeg"]
	if !ok {
		return featureError(i, "properties.maxResolutionDeg", "required: the finest resolution in degrees per pixel")
	}
	var err error
	if f.MaxResolution, err = number("maxResolutionDeg", fine); err != nil {
		return err
	}
	f.MinResolution = grid.Resolution0
	if coarse, ok := props["minResolutionDeg"]; ok {
		if f.MinResolution, err = number("minResolutionDeg", coarse); err != nil {
			return err
		}
	}
	if f.MaxZoom, err = grid.ZoomForResolution(f.MaxResolution); err != nil {
		return featureError(i, "properties.maxResolutionDeg", "%v", err)
	}
	if f.MinZoom, err = grid.ZoomForResolution(f.MinResolution); err != nil {
		return featureError(i, "properties.minResolutionDeg", "%v", err)
	}
	if f.MinResolution < f.MaxResolution {
		return featureError(i, "properties.minResolutionDeg", "%v is finer than maxResolutionDeg %v: the coarsest resolution must not be finer than the finest", f.MinResolution, f.MaxResolution)
	}
	if f.MaxZoom > maxZoom {
		return featureError(i, "properties.maxResolutionDeg", "%v (zoom %d) is finer than the layer's finest resolution %v (zoom %d)", f.MaxResolution, f.MaxZoom, maxZoom.Resolution(), maxZoom)
	}
	return nil
}

// clip shortens a JSON value for an error message.
func clip(v json.RawMessage) string {
	if len(v) > 40 {
		return string(v[:40]) + "…"
	}
	return string(v)
}

// checkGeometry checks a Polygon or MultiPolygon, ring by ring and then as
// a whole, and says which rule it breaks first.
func checkGeometry(g geom.Geometry) error {
	if p, ok := g.AsPolygon(); ok {
		return checkPolygon(p, "")
	}
	mp := g.MustAsMultiPolygon()
	for k := range mp.NumPolygons() {
		if err := checkPolygon(mp.PolygonN(k), fmt.Sprintf("polygon %d: ", k)); err != nil {
			return err
		}
	}
	if err := mp.Validate(); err != nil {
		return fmt.Errorf("its polygons overlap: %w", err)
	}
	return nil
}

func checkPolygon(p geom.Polygon, where string) error {
	if p.IsEmpty() {
		return fmt.Errorf("%shas no rings", where)
	}
	shell := p.ExteriorRing()
	for r := range p.NumRings() {
		ring, name := shell, "exterior ring"
		if r > 0 {
			ring, name = p.InteriorRingN(r-1), fmt.Sprintf("hole %d", r-1)
		}
		if err := checkRing(ring.Coordinates()); err != nil {
			return fmt.Errorf("%s%s %w", where, name, err)
		}
		if !ring.IsSimple() {
			return fmt.Errorf("%s%s intersects itself", where, name)
		}
		if r == 0 {
			continue
		}
		inside, err := geom.Covers(geom.NewPolygon([]geom.LineString{shell}).AsGeometry(), geom.NewPolygon([]geom.LineString{ring}).AsGeometry())
		if err != nil {
			return fmt.Errorf("%s%s: %w", where, name, err)
		}
		if !inside {
			return fmt.Errorf("%s%s lies outside the exterior ring", where, name)
		}
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%sinvalid polygon: %w", where, err)
	}
	return nil
}

// checkRing checks a ring's positions: at least four, closed, finite and
// within EPSG:4326's range.
func checkRing(seq geom.Sequence) error {
	n := seq.Length()
	if n < 4 {
		return fmt.Errorf("has %d positions: a ring needs at least 4, the last repeating the first", n)
	}
	for k := range n {
		xy := seq.GetXY(k)
		switch {
		case math.IsNaN(xy.X) || math.IsInf(xy.X, 0) || math.IsNaN(xy.Y) || math.IsInf(xy.Y, 0):
			return fmt.Errorf("position %d is not finite", k)
		case xy.X < -180 || xy.X > 180 || xy.Y < -90 || xy.Y > 90:
			return fmt.Errorf("position %d [%v, %v] is outside longitude [-180, 180], latitude [-90, 90]", k, xy.X, xy.Y)
		}
	}
	if first, last := seq.GetXY(0), seq.GetXY(n-1); first != last {
		return fmt.Errorf("is not closed: its last position [%v, %v] differs from its first [%v, %v]", last.X, last.Y, first.X, first.Y)
	}
	return nil
}
