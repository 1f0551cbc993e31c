package area

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/peterstace/simplefeatures/geom"

	"github.com/geoexport/exporter/internal/grid"
)

// Feature is one part of a region of interest: a valid Polygon or
// MultiPolygon and the resolution range asked for over it.
type Feature struct {
	// Geometry is a valid Polygon or MultiPolygon in longitude/latitude,
	// without Z or M.
	Geometry geom.Geometry
	// MinResolution and MaxResolution are the coarsest and finest
	// resolution asked for, in degrees per pixel, as the caller gave them.
	MinResolution, MaxResolution float64
	// MinZoom and MaxZoom are those resolutions' zooms, MinZoom ≤ MaxZoom.
	MinZoom, MaxZoom grid.Zoom
}

// featureJSON is how a Feature is stored (in a job's spec).
type featureJSON struct {
	Geometry      json.RawMessage `json:"geometry"`
	MinResolution float64         `json:"min_resolution_deg"`
	MaxResolution float64         `json:"max_resolution_deg"`
	MinZoom       grid.Zoom       `json:"min_zoom"`
	MaxZoom       grid.Zoom       `json:"max_zoom"`
}

// MarshalJSON stores f with its geometry as GeoJSON.
func (f Feature) MarshalJSON() ([]byte, error) {
	g, err := f.Geometry.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return json.Marshal(featureJSON{Geometry: g, MinResolution: f.MinResolution, MaxResolution: f.MaxResolution, MinZoom: f.MinZoom, MaxZoom: f.MaxZoom})
}

// UnmarshalJSON reads a stored feature. It does not validate the geometry
// again (Decode did, before it was stored), so reading a job stays cheap.
func (f *Feature) UnmarshalJSON(data []byte) error {
	var v featureJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	g, err := geom.UnmarshalGeoJSON(v.Geometry, geom.NoValidate{})
	if err != nil {
		return fmt.Errorf("area: stored geometry: %w", err)
	}
	*f = Feature{Geometry: g, MinResolution: v.MinResolution, MaxResolution: v.MaxResolution, MinZoom: v.MinZoom, MaxZoom: v.MaxZoom}
	return nil
}

// Encode writes features as the GeoJSON FeatureCollection Decode reads,
// with their resolutions as properties.
func Encode(features []Feature) ([]byte, error) {
	fc := geom.GeoJSONFeatureCollection(make([]geom.GeoJSONFeature, len(features)))
	for i, f := range features {
		fc[i] = geom.GeoJSONFeature{Geometry: f.Geometry, Properties: map[string]any{
			"maxResolutionDeg": f.MaxResolution,
			"minResolutionDeg": f.MinResolution,
		}}
	}
	return json.Marshal(fc)
}

// BBoxFeature is the feature of a rectangle from zoom 0 down to maxZoom
// (whose resolution the caller asked for as maxResolution): the area of a
// /create bbox, or of a whole layer.
func BBoxFeature(b grid.BBox, maxResolution float64, maxZoom grid.Zoom) Feature {
	g := geom.NewEnvelope(geom.XY{X: b.MinX, Y: b.MinY}, geom.XY{X: b.MaxX, Y: b.MaxY}).AsGeometry()
	return Feature{Geometry: g, MinResolution: grid.Resolution0, MaxResolution: maxResolution, MinZoom: 0, MaxZoom: maxZoom}
}

// Zooms reports whether the feature asks for tiles at z.
func (f Feature) Zooms(z grid.Zoom) bool { return f.MinZoom <= z && z <= f.MaxZoom }

// Footprint is a layer's extent: a bbox, or a Polygon or MultiPolygon.
type Footprint struct {
	bbox     grid.BBox
	geometry geom.Geometry
	polygon  bool
}

// BBoxFootprint is the footprint of a layer whose extent is a bbox.
func BBoxFootprint(b grid.BBox) Footprint { return Footprint{bbox: b} }

// ErrFootprint is returned for a footprint geometry that cannot be one.
var ErrFootprint = errors.New("area: invalid footprint")

// GeometryFootprint is the footprint of a layer whose extent is a valid
// Polygon or MultiPolygon in longitude/latitude.
func GeometryFootprint(g geom.Geometry) (Footprint, error) {
	if !g.IsPolygon() && !g.IsMultiPolygon() || g.IsEmpty() {
		return Footprint{}, fmt.Errorf("%w: a %s, want a Polygon or MultiPolygon", ErrFootprint, g.Type())
	}
	g = g.Force2D()
	if err := checkGeometry(g); err != nil {
		return Footprint{}, fmt.Errorf("%w: %w", ErrFootprint, err)
	}
	b := g.Envelope()
	lo, hi, _ := b.MinMaxXYs()
	return Footprint{geometry: g, polygon: true, bbox: grid.BBox{MinX: lo.X, MinY: lo.Y, MaxX: hi.X, MaxY: hi.Y}}, nil
}

// DecodeFootprint reads a footprint given as a GeoJSON Polygon or
// MultiPolygon geometry (GeometryFootprint's rules), failing with an
// error wrapping ErrFootprint.
func DecodeFootprint(data []byte) (Footprint, error) {
	g, err := geom.UnmarshalGeoJSON(data, geom.NoValidate{})
	if err != nil {
		return Footprint{}, fmt.Errorf("%w: %w", ErrFootprint, err)
	}
	return GeometryFootprint(g)
}

// BBox is the footprint's bounding box.
func (fp Footprint) BBox() grid.BBox { return fp.bbox }

// Cover returns the tiles of the area at every zoom: at zoom z, the tiles
// whose square meets, with a non-zero area, the union of the features
// that ask for z, within the footprint. A feature is covered at its finest
// zoom by grid's scanline and its coarser zooms are derived from that
// level (a tile is covered when one of its children is), so the cost
// grows with vertices and rows, not tiles.
//
// A feature that does not meet the footprint with a non-zero area is an
// *Error naming it. With a bbox footprint nothing else can fail; with a
// geometry footprint the library's intersection can.
func Cover(features []Feature, fp Footprint) (grid.Coverage, error) {
	return CoverAtMost(features, fp, math.MaxInt64)
}

// CoverAtMost is Cover that gives up with a *TooManyTilesError as soon as
// the coverage holds more than limit tiles, so that its time and memory
// are bounded by the limit and the rows of the features' finest zooms,
// whatever their extent: a thin diagonal corridor across a continent is
// covered and counted exactly, and a large area is refused without being
// covered.
func CoverAtMost(features []Feature, fp Footprint, limit int64) (grid.Coverage, error) {
	var c grid.Coverage
	for i, f := range features {
		g := f.Geometry
		if fp.polygon {
			var err error
			if g, err = geom.Intersection(g, fp.geometry); err != nil {
				return grid.Coverage{}, fmt.Errorf("area: clip feature %d to the footprint: %w", i, err)
			}
		}
		l, ok := f.MaxZoom.CoverRingsAtMost(Rings(g), fp.bbox, limit)
		if !ok {
			return grid.Coverage{}, &TooManyTilesError{Limit: limit, Feature: i}
		}
		if l.Empty() {
			return grid.Coverage{}, featureError(i, "geometry", "does not meet the layer's footprint %v", fp.bbox)
		}
		for {
			c = c.Add(l)
			if l.Zoom <= f.MinZoom {
				break
			}
			l = l.Parent()
		}
		if c.Count() > limit {
			return grid.Coverage{}, &TooManyTilesError{Limit: limit, Feature: i}
		}
	}
	return c, nil
}

// Rings lists the rings of every polygon in g (a Polygon, MultiPolygon or
// a collection of them; other parts have no area and are left out), for
// grid's scanline, whose even-odd rule fills a valid geometry's interior.
func Rings(g geom.Geometry) []grid.Ring {
	var out []grid.Ring
	for _, part := range g.Dump() {
		p, ok := part.AsPolygon()
		if !ok {
			continue
		}
		for _, seq := range p.Coordinates() {
			ring := make(grid.Ring, seq.Length())
			for k := range ring {
				xy := seq.GetXY(k)
				ring[k] = grid.Point{xy.X, xy.Y}
			}
			out = append(out, ring)
		}
	}
	return out
}
