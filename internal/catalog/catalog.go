// Package catalog holds the layer records an export can be made of: their
// identity and version, footprint, finest resolution, tile source and tile
// format policy. The trigger looks layers up in it; the worker receives the
// layer record inside the job, so both always agree on what was requested.
//
// It imports internal/grid and internal/area (footprints given as
// polygons).
package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/grid"
)

// ErrNotFound is returned by Lookup for an unknown layer id.
var ErrNotFound = errors.New("catalog: layer not found")

// Source kinds.
const (
	SourceDemo       = "demo"
	SourceTileStore  = "tilestore"
	SourceWMS        = "wms"
	SourceWMTS       = "wmts"
	SourceXYZ        = "xyz"
	SourceGeoPackage = "gpkg"
)

// SourceKinds lists every source kind.
var SourceKinds = []string{SourceDemo, SourceTileStore, SourceWMS, SourceWMTS, SourceXYZ, SourceGeoPackage}

// Layer is one catalog record.
type Layer struct {
	// ID is the record's primary key, the dbId of a request.
	ID string `json:"id"`
	// ProductID, ProductType and Version name the product; a new Version
	// never shares cached packages with an older one.
	ProductID   string `json:"productId"`
	ProductType string `json:"productType"`
	Version     string `json:"version"`
	// Description is shown in listings.
	Description string `json:"description,omitempty"`
	// Footprint is the layer's extent in EPSG:4326: the bbox of
	// FootprintGeometry when it is set. In JSON, "footprint" is either
	// [minx, miny, maxx, maxy] or a GeoJSON Polygon or MultiPolygon.
	Footprint grid.BBox `json:"-"`
	// FootprintGeometry is the footprint as a GeoJSON Polygon or
	// MultiPolygon, when the catalog gives one; nil for a bbox.
	FootprintGeometry json.RawMessage `json:"-"`
	// MaxResolution is the finest resolution offered, in degrees/pixel.
	MaxResolution float64 `json:"maxResolution"`
	// Source says where tiles come from.
	Source Source `json:"source"`
	// TileFormat is png, jpeg or mixed (PNG where a tile has transparency,
	// JPEG where it is opaque). Default mixed.
	TileFormat string `json:"tileFormat,omitempty"`
	// JPEGQuality is 1..100. Default 85.
	JPEGQuality int `json:"jpegQuality,omitempty"`
	// Overviews says where the zooms coarser than an export's finest come
	// from: OverviewsSource (empty means it) asks the source for every
	// zoom, OverviewsDownsample builds each such tile from its four
	// children, as gdaladdo builds overviews.
	Overviews string `json:"overviews,omitempty"`
	// OverviewResampling is how OverviewsDownsample reduces four children
	// to their parent: ResampleAverage (empty means it) or
	// ResampleNearest.
	OverviewResampling string `json:"overviewResampling,omitempty"`
}

// Overview settings of a layer.
const (
	OverviewsSource     = "source"
	OverviewsDownsample = "downsample"
	ResampleAverage     = "average"
	ResampleNearest     = "nearest"
)

// Downsample reports whether the layer's overviews are built from the
// finest zoom rather than asked of its source.
func (l Layer) Downsample() bool { return l.Overviews == OverviewsDownsample }

// layerFields is Layer without its methods, for its JSON encoding.
type layerFields Layer

// layerJSON is how a Layer is written: its fields, with "footprint" a
// bbox or a geometry.
type layerJSON struct {
	layerFields
	Footprint json.RawMessage `json:"footprint"`
}

// MarshalJSON writes the footprint as its geometry, or as a bbox.
func (l Layer) MarshalJSON() ([]byte, error) {
	fp := l.FootprintGeometry
	if len(fp) == 0 {
		var err error
		if fp, err = json.Marshal(l.Footprint); err != nil {
			return nil, err
		}
	}
	return json.Marshal(layerJSON{layerFields: layerFields(l), Footprint: fp})
}

// UnmarshalJSON reads a layer whose footprint is a bbox or a GeoJSON
// Polygon or MultiPolygon; Footprint is then that geometry's bbox.
func (l *Layer) UnmarshalJSON(data []byte) error {
	var v layerJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*l = Layer(v.layerFields)
	l.Footprint, l.FootprintGeometry = grid.BBox{}, nil
	raw := []byte(strings.TrimSpace(string(v.Footprint)))
	switch {
	case len(raw) == 0 || string(raw) == "null":
	case raw[0] == '{':
		fp, err := area.DecodeFootprint(raw)
		if err != nil {
			return fmt.Errorf("layer %q: footprint: %w", l.ID, err)
		}
		l.Footprint, l.FootprintGeometry = fp.BBox(), json.RawMessage(raw)
	default:
		if err := json.Unmarshal(raw, &l.Footprint); err != nil {
			return fmt.Errorf("layer %q: footprint: %w", l.ID, err)
		}
	}
	return nil
}

// AreaFootprint is the footprint the tiles of an export are clipped to:
// the polygon when the layer has one, else the bbox.
func (l Layer) AreaFootprint() (area.Footprint, error) {
	if len(l.FootprintGeometry) == 0 {
		return area.BBoxFootprint(l.Footprint), nil
	}
	return area.DecodeFootprint(l.FootprintGeometry)
}

// Source locates a layer's tiles and says how to read them. Which fields
// apply depends on Kind; docs/catalog.md has the table.
type Source struct {
	// Kind is demo, tilestore, wms, wmts, xyz or gpkg.
	Kind string `json:"kind"`
	// Path is a tile store directory (tilestore) or a GeoPackage file
	// (gpkg) every worker can read.
	Path string `json:"path,omitempty"`
	// S3Prefix is a tile store under this prefix of the package bucket.
	S3Prefix string `json:"s3Prefix,omitempty"`
	// S3Key is a GeoPackage object in the package bucket (gpkg), which a
	// worker downloads before reading it.
	S3Key string `json:"s3Key,omitempty"`
	// Table is the GeoPackage's tile table (gpkg). Default: its only one.
	Table string `json:"table,omitempty"`
	// RowOrigin is top (rows from the north) or bottom (TMS), for
	// tilestore and xyz. Default top.
	RowOrigin string `json:"rowOrigin,omitempty"`
	// Extensions are tried in order (tilestore). Default png, jpg, jpeg.
	Extensions []string `json:"extensions,omitempty"`

	// URL is the service endpoint (wms, wmts KVP) or URL template (wmts
	// REST with {TileMatrix}, {TileRow}, {TileCol}; xyz with {z}, {x} and
	// {y} or {-y}).
	URL string `json:"url,omitempty"`
	// Version is the WMS version, 1.1.1 or 1.3.0. Default 1.3.0.
	Version string `json:"version,omitempty"`
	// Layers are the WMS layers, bottom to top.
	Layers []string `json:"layers,omitempty"`
	// Styles are the WMS styles, one per layer. Default: none.
	Styles []string `json:"styles,omitempty"`
	// Layer, Style and TileMatrixSet name the WMTS layer, its style
	// (default "default") and its tile matrix set.
	Layer         string `json:"layer,omitempty"`
	Style         string `json:"style,omitempty"`
	TileMatrixSet string `json:"tileMatrixSet,omitempty"`
	// TileMatrixFormat makes a WMTS tile matrix identifier of a level: a
	// format with one %d, such as %02d or EPSG:4326:%d. Default %d.
	TileMatrixFormat string `json:"tileMatrixFormat,omitempty"`
	// Format is the image format asked of a WMS or WMTS: image/png or
	// image/jpeg. Default image/png.
	Format string `json:"format,omitempty"`
	// Transparent asks a WMS for transparent images. Default true for PNG;
	// JPEG cannot be transparent.
	Transparent *bool `json:"transparent,omitempty"`
	// Params are further WMS GetMap or WMTS GetTile parameters.
	Params map[string]string `json:"params,omitempty"`
	// Metatile is the WMS request size in tiles, [columns, rows], each
	// 1..16. Default [4, 4].
	Metatile []int `json:"metatile,omitempty"`
	// ZoomOffset is added to a grid zoom to get a WMTS or XYZ service's
	// level. Default 0.
	ZoomOffset int `json:"zoomOffset,omitempty"`

	// Timeout bounds one request (wms, wmts, xyz). Default 2m.
	Timeout Duration `json:"timeout,omitempty"`
	// ConnectTimeout bounds connecting. Default 10s.
	ConnectTimeout Duration `json:"connectTimeout,omitempty"`
	// HeaderTimeout bounds the wait for the answer's headers. Default 1m.
	HeaderTimeout Duration `json:"headerTimeout,omitempty"`
	// MaxAttempts is how often a request is tried (network errors,
	// timeouts, 408, 429, 5xx). Default 4; 1 means no retries.
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// Concurrency caps a worker's requests in flight to the service, per
	// render task. Default 8.
	Concurrency int `json:"concurrency,omitempty"`
	// NotFound says what a 404 means: nodata or error. Default error for
	// wms, nodata for wmts and xyz.
	NotFound string `json:"notFound,omitempty"`
	// Resample scales images of the wrong size to 256 × 256 tiles (or to
	// the metatile size) instead of failing the job.
	Resample bool `json:"resample,omitempty"`

	// NoData is the colour the source paints where it has no data, as
	// "#rrggbb" or [r, g, b]: tiles entirely of it (or transparent) are
	// not written. Any kind.
	NoData *Color `json:"noData,omitempty"`
	// NoDataTolerance is the largest difference per channel that still
	// counts as NoData, 0..255 (JPEG sources need a few units). Default 0.
	NoDataTolerance int `json:"noDataTolerance,omitempty"`
}

// IsHTTP reports whether the kind reads a web service.
func (s Source) IsHTTP() bool {
	return s.Kind == SourceWMS || s.Kind == SourceWMTS || s.Kind == SourceXYZ
}

// Duration is a time.Duration written in JSON as Go duration text, such
// as "30s" or "2m".
type Duration time.Duration

// MarshalJSON writes d as text.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads Go duration text.
func (d *Duration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("duration: want text such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Color is an RGB colour, written in JSON as "#rrggbb"; "#rgb" and
// [r, g, b] (0..255 each) are read too.
type Color struct {
	R, G, B uint8
}

// String formats c as #rrggbb.
func (c Color) String() string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// MarshalJSON writes c as "#rrggbb".
func (c Color) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// UnmarshalJSON reads "#rrggbb", "#rgb" or [r, g, b].
func (c *Color) UnmarshalJSON(data []byte) error {
	var rgb []int
	if err := json.Unmarshal(data, &rgb); err == nil {
		if len(rgb) != 3 {
			return fmt.Errorf("colour: want [r, g, b], got %d numbers", len(rgb))
		}
		for _, v := range rgb {
			if v < 0 || v > 255 {
				return fmt.Errorf("colour: %v: want numbers 0..255", rgb)
			}
		}
		*c = Color{uint8(rgb[0]), uint8(rgb[1]), uint8(rgb[2])}
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New(`colour: want "#rrggbb" or [r, g, b]`)
	}
	hex := strings.TrimPrefix(s, "#")
	if len(hex) == 3 {
		hex = string([]byte{hex[0], hex[0], hex[1], hex[1], hex[2], hex[2]})
	}
	v, err := strconv.ParseUint(hex, 16, 32)
	if !strings.HasPrefix(s, "#") || len(hex) != 6 || err != nil {
		return fmt.Errorf(`colour %q: want "#rrggbb" or [r, g, b]`, s)
	}
	*c = Color{uint8(v >> 16), uint8(v >> 8), uint8(v)}
	return nil
}

// MaxZoom is the finest zoom the layer offers.
func (l Layer) MaxZoom() grid.Zoom {
	z, err := grid.ZoomForResolution(l.MaxResolution)
	if err != nil {
		return 0
	}
	return z
}

// Validate checks one record, all but its source's settings: each kind of
// source checks its own (a Check passed to New, such as source.CheckLayer).
func (l Layer) Validate() error {
	var errs []error
	add := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("layer %q: "+format, append([]any{l.ID}, a...)...))
	}
	if _, err := uuid.Parse(l.ID); err != nil {
		add("id is not a uuid")
	}
	if l.ProductID == "" || l.ProductType == "" || l.Version == "" {
		add("productId, productType and version are required")
	}
	if err := l.Footprint.Validate(); err != nil {
		add("footprint: %v", err)
	}
	if len(l.FootprintGeometry) > 0 {
		if fp, err := l.AreaFootprint(); err != nil {
			add("footprint: %v", err)
		} else if fp.BBox() != l.Footprint {
			add("footprint: bbox %s is not the bbox %s of the footprint's geometry", l.Footprint, fp.BBox())
		}
	}
	if _, err := grid.ZoomForResolution(l.MaxResolution); err != nil {
		add("maxResolution: %v", err)
	}
	switch l.TileFormat {
	case "", "png", "jpeg", "mixed":
	default:
		add("tileFormat %q is not png, jpeg or mixed", l.TileFormat)
	}
	if l.JPEGQuality < 0 || l.JPEGQuality > 100 {
		add("jpegQuality %d is not within 1..100", l.JPEGQuality)
	}
	switch l.Overviews {
	case "", OverviewsSource, OverviewsDownsample:
	default:
		add("overviews %q is not source or downsample", l.Overviews)
	}
	switch l.OverviewResampling {
	case "", ResampleAverage, ResampleNearest:
		if l.OverviewResampling != "" && !l.Downsample() {
			add("overviewResampling applies to overviews downsample")
		}
	default:
		add("overviewResampling %q is not average or nearest", l.OverviewResampling)
	}
	return errors.Join(errs...)
}

// withDefaults fills in the optional fields.
func (l Layer) withDefaults() Layer {
	if l.TileFormat == "" {
		l.TileFormat = "mixed"
	}
	if l.JPEGQuality == 0 {
		l.JPEGQuality = 85
	}
	if l.Source.RowOrigin == "" {
		l.Source.RowOrigin = "top"
	}
	if len(l.Source.Extensions) == 0 && (l.Source.Kind == SourceTileStore || l.Source.Kind == SourceDemo) {
		l.Source.Extensions = []string{"png", "jpg", "jpeg"}
	}
	if l.Source.Kind == SourceWMS && l.Source.Transparent == nil {
		// A JPEG has no alpha channel to be transparent with.
		transparent := strings.ToLower(strings.TrimSpace(l.Source.Format)) != "image/jpeg"
		l.Source.Transparent = &transparent
	}
	l.ID = strings.ToLower(l.ID)
	return l
}

// Catalog is an immutable set of layers, safe for concurrent use.
type Catalog struct {
	layers []Layer
	byID   map[string]int
}

// Check checks what Layer.Validate leaves to others, such as the settings
// of a layer's source; errors name the layer.
type Check func(Layer) error

// New validates layers, with Validate and every check, and builds a
// catalog of them.
func New(layers []Layer, checks ...Check) (*Catalog, error) {
	c := &Catalog{byID: make(map[string]int, len(layers))}
	var errs []error
	for _, l := range layers {
		layerErrs := []error{l.Validate()}
		for _, check := range checks {
			layerErrs = append(layerErrs, check(l))
		}
		if err := errors.Join(layerErrs...); err != nil {
			errs = append(errs, err)
			continue
		}
		l = l.withDefaults()
		if _, dup := c.byID[l.ID]; dup {
			errs = append(errs, fmt.Errorf("layer %q: duplicate id", l.ID))
			continue
		}
		c.byID[l.ID] = len(c.layers)
		c.layers = append(c.layers, l)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return c, nil
}

// Load reads a catalog file, {"layers": [Layer, ...]}, and builds it with
// New and checks.
func Load(path string, checks ...Check) (*Catalog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	var f struct {
		Layers []Layer `json:"layers"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return New(f.Layers, checks...)
}

// Lookup returns the layer with id (case-insensitive) or ErrNotFound.
func (c *Catalog) Lookup(id string) (Layer, error) {
	i, ok := c.byID[strings.ToLower(id)]
	if !ok {
		return Layer{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return c.layers[i], nil
}

// Layers returns every layer, in catalog order.
func (c *Catalog) Layers() []Layer { return slices.Clone(c.layers) }

// DemoLayerID is the id of the built-in demo layer: the dbId of the
// specification's example request, so that the example works as given.
const DemoLayerID = "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8"

// Demo returns the built-in catalog: one layer drawn by the demo source (a
// world map from Natural Earth, embedded) over the whole world, so that a
// first export of any place on Earth works.
func Demo() *Catalog {
	c, err := New([]Layer{{
		ID:            DemoLayerID,
		ProductID:     "demo-terrain",
		ProductType:   "Orthophoto",
		Version:       "1.0",
		Description:   "Demo world map from Natural Earth (no imagery), zoom 0 to 18",
		Footprint:     grid.World,
		MaxResolution: grid.Zoom(18).Resolution(),
		Source:        Source{Kind: SourceDemo},
		TileFormat:    "mixed",
	}})
	if err != nil {
		panic(err) // the built-in record is a constant; a test covers it
	}
	return c
}
