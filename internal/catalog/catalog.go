// Package catalog holds the layer records an export can be made of: their
// identity and version, footprint, finest resolution, tile source and tile
// format policy. The trigger looks layers up in it; the worker receives the
// layer record inside the job, so both always agree on what was requested.
//
// It imports internal/grid only.
package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/geoexport/exporter/internal/grid"
)

// ErrNotFound is returned by Lookup for an unknown layer id.
var ErrNotFound = errors.New("catalog: layer not found")

// Source kinds.
const (
	SourceDemo      = "demo"
	SourceTileStore = "tilestore"
)

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
	// Footprint is the layer's extent in EPSG:4326.
	Footprint grid.BBox `json:"footprint"`
	// MaxResolution is the finest resolution offered, in degrees/pixel.
	MaxResolution float64 `json:"maxResolution"`
	// Source says where tiles come from.
	Source Source `json:"source"`
	// TileFormat is png, jpeg or mixed (PNG where a tile has transparency,
	// JPEG where it is opaque). Default mixed.
	TileFormat string `json:"tileFormat,omitempty"`
	// JPEGQuality is 1..100. Default 85.
	JPEGQuality int `json:"jpegQuality,omitempty"`
}

// Source locates a layer's tiles.
type Source struct {
	// Kind is demo or tilestore.
	Kind string `json:"kind"`
	// Path is a tile store directory, for kind tilestore without S3Prefix.
	Path string `json:"path,omitempty"`
	// S3Prefix is a tile store under this prefix of the package bucket.
	S3Prefix string `json:"s3Prefix,omitempty"`
	// RowOrigin is top (rows from the north) or bottom (TMS). Default top.
	RowOrigin string `json:"rowOrigin,omitempty"`
	// Extensions are tried in order. Default png, jpg, jpeg.
	Extensions []string `json:"extensions,omitempty"`
}

// MaxZoom is the finest zoom the layer offers.
func (l Layer) MaxZoom() grid.Zoom {
	z, err := grid.ZoomForResolution(l.MaxResolution)
	if err != nil {
		return 0
	}
	return z
}

// Validate checks one record.
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
	if _, err := grid.ZoomForResolution(l.MaxResolution); err != nil {
		add("maxResolution: %v", err)
	}
	switch l.Source.Kind {
	case SourceDemo:
	case SourceTileStore:
		if (l.Source.Path == "") == (l.Source.S3Prefix == "") {
			add("source: a tilestore needs exactly one of path and s3Prefix")
		}
	default:
		add("source.kind %q is not %s or %s", l.Source.Kind, SourceDemo, SourceTileStore)
	}
	switch l.Source.RowOrigin {
	case "", "top", "bottom":
	default:
		add("source.rowOrigin %q is not top or bottom", l.Source.RowOrigin)
	}
	switch l.TileFormat {
	case "", "png", "jpeg", "mixed":
	default:
		add("tileFormat %q is not png, jpeg or mixed", l.TileFormat)
	}
	if l.JPEGQuality < 0 || l.JPEGQuality > 100 {
		add("jpegQuality %d is not within 1..100", l.JPEGQuality)
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
	if len(l.Source.Extensions) == 0 {
		l.Source.Extensions = []string{"png", "jpg", "jpeg"}
	}
	l.ID = strings.ToLower(l.ID)
	return l
}

// Catalog is an immutable set of layers, safe for concurrent use.
type Catalog struct {
	layers []Layer
	byID   map[string]int
}

// New validates layers and builds a catalog of them.
func New(layers []Layer) (*Catalog, error) {
	c := &Catalog{byID: make(map[string]int, len(layers))}
	var errs []error
	for _, l := range layers {
		if err := l.Validate(); err != nil {
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

// Load reads a catalog file: {"layers": [Layer, ...]}.
func Load(path string) (*Catalog, error) {
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
	return New(f.Layers)
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

// Demo returns the built-in catalog: one layer drawn by the synthetic demo
// source over a footprint around the specification's example bbox.
func Demo() *Catalog {
	c, err := New([]Layer{{
		ID:            DemoLayerID,
		ProductID:     "demo-terrain",
		ProductType:   "Orthophoto",
		Version:       "1.0",
		Description:   "Synthetic demo raster (no real imagery), zoom 0 to 18",
		Footprint:     grid.BBox{MinX: 34.2, MinY: 29.4, MaxX: 35.9, MaxY: 33.4},
		MaxResolution: grid.Zoom(18).Resolution(),
		Source:        Source{Kind: SourceDemo},
		TileFormat:    "mixed",
	}})
	if err != nil {
		panic(err) // the built-in record is a constant; a test covers it
	}
	return c
}
