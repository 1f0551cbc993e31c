package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/geoexport/exporter/internal/grid"
)

// Config is what one export asks for and where it goes. The command's
// flags (cmd/exporter) fill it; each problem Validate reports names the
// flag.
type Config struct {
	// Server is the exporter's base URL. Default http://localhost:8080.
	Server string
	// Token is the JWT sent as a bearer token. Required. Never logged.
	Token string
	// Layer is the catalog id (dbId) of the layer to export. Required.
	Layer string
	// BBox is "minx,miny,maxx,maxy" in degrees (EPSG:4326), exported as
	// an area of one rectangle. Exactly one of BBox and ROIFile.
	BBox string
	// ROIFile is a GeoJSON file: a FeatureCollection of Polygons and
	// MultiPolygons, one such Feature, or one such geometry.
	ROIFile string
	// MaxZoom is the finest zoom; -1 (the default) is unset.
	MaxZoom int
	// Resolution is the finest resolution in degrees per pixel, instead
	// of MaxZoom; 0 (the default) is unset.
	Resolution float64
	// MinZoom is the coarsest zoom; -1 (the default) is unset, zoom 0.
	MinZoom int
	// Priority is the export's priority, 0..999999999. Default 0.
	Priority int
	// Description is free text kept with the export.
	Description string
	// Output is the package's path, or a directory to put it in under its
	// package name. Default: the current directory.
	Output string
	// NoWait only posts the export and reports the job id.
	NoWait bool
	// Poll is how often the job's status is read. Default 1s.
	Poll time.Duration
}

// DefaultConfig is the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{Server: "http://localhost:8080", MaxZoom: -1, MinZoom: -1, Poll: time.Second}
}

// maxPriority is the highest priority the API accepts.
const maxPriority = 999_999_999

// Validate reports every problem of c at once, each named by its flag.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if u, err := url.Parse(c.Server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("server: %q is not an http:// or https:// URL", c.Server)
	}
	if strings.TrimSpace(c.Token) == "" {
		add(`token: required (a JWT; "exporter token -sub NAME" mints one with the server's key)`)
	}
	if c.Layer == "" {
		add("layer: required: the layer's id, as GET /layers lists it")
	}
	switch {
	case c.BBox == "" && c.ROIFile == "":
		add("bbox, roi: one is required: the area to export")
	case c.BBox != "" && c.ROIFile != "":
		add("bbox, roi: give one area, not both")
	case c.BBox != "":
		if _, err := parseBBox(c.BBox); err != nil {
			add("bbox: %v", err)
		}
	}
	switch {
	case c.MaxZoom >= 0 && c.Resolution != 0:
		add("max-zoom, resolution: give one, not both")
	case c.MaxZoom > int(grid.MaxZoom):
		add("max-zoom: %d is beyond the grid's finest zoom %d", c.MaxZoom, grid.MaxZoom)
	case c.MaxZoom < -1:
		add("max-zoom: %d is negative", c.MaxZoom)
	case c.Resolution < 0:
		add("resolution: %v is not positive", c.Resolution)
	case c.BBox != "" && c.MaxZoom < 0 && c.Resolution == 0:
		add("max-zoom, resolution: one is required with bbox: the finest level to export")
	}
	switch {
	case c.MinZoom < -1 || c.MinZoom > int(grid.MaxZoom):
		add("min-zoom: %d is not a zoom of the grid, 0..%d", c.MinZoom, grid.MaxZoom)
	case c.MinZoom >= 0 && c.MaxZoom >= 0 && c.MinZoom > c.MaxZoom:
		add("min-zoom: %d is finer than max-zoom %d", c.MinZoom, c.MaxZoom)
	}
	if c.Priority < 0 || c.Priority > maxPriority {
		add("priority: %d is not within 0..%d", c.Priority, maxPriority)
	}
	if c.Poll <= 0 {
		add("poll: %v must be positive", c.Poll)
	}
	return errors.Join(errs...)
}

// parseBBox reads "minx,miny,maxx,maxy". The server checks the rest
// (order, world bounds, the layer's footprint) and says what is wrong.
func parseBBox(s string) ([4]float64, error) {
	var b [4]float64
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return b, fmt.Errorf("%q is not four numbers minx,miny,maxx,maxy", s)
	}
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return b, fmt.Errorf("%q is not four numbers minx,miny,maxx,maxy", s)
		}
		b[i] = v
	}
	return b, nil
}

// resolutions are the properties the flags give every feature: its
// finest and coarsest resolution, or none.
func (c Config) resolutions() map[string]any {
	p := map[string]any{}
	switch {
	case c.Resolution > 0:
		p["maxResolutionDeg"] = c.Resolution
	case c.MaxZoom >= 0:
		p["maxResolutionDeg"] = grid.Zoom(c.MaxZoom).Resolution()
	}
	if c.MinZoom >= 0 {
		p["minResolutionDeg"] = grid.Zoom(c.MinZoom).Resolution()
	}
	return p
}

// ExportBody is the POST /export request of a valid c. A bbox is sent as
// an area of one rectangle rather than as POST /create's bbox: /create
// always exports every zoom from 0, while an area's feature carries a
// minimum zoom too, and the service gives a rectangle's tiles the same
// package either way. Features of a GeoJSON file keep their own
// resolutions unless a flag gives them.
func (c Config) ExportBody() ([]byte, error) {
	var roi map[string]any
	if c.BBox != "" {
		b, err := parseBBox(c.BBox)
		if err != nil {
			return nil, fmt.Errorf("bbox: %w", err)
		}
		ring := [][2]float64{{b[0], b[1]}, {b[2], b[1]}, {b[2], b[3]}, {b[0], b[3]}, {b[0], b[1]}}
		roi = featureCollection(feature(map[string]any{"type": "Polygon", "coordinates": [][][2]float64{ring}}))
	} else {
		var err error
		if roi, err = readROI(c.ROIFile); err != nil {
			return nil, err
		}
	}
	if res := c.resolutions(); len(res) > 0 {
		features, _ := roi["features"].([]any)
		for _, f := range features {
			f, ok := f.(map[string]any)
			if !ok {
				continue // the server names the bad feature
			}
			props, _ := f["properties"].(map[string]any)
			if props == nil {
				props = map[string]any{}
			}
			for k, v := range res {
				props[k] = v
			}
			f["properties"] = props
		}
	}
	body := map[string]any{"dbId": c.Layer, "roi": roi, "callbackURLs": []string{}, "crs": "EPSG:4326", "priority": c.Priority}
	if c.Description != "" {
		body["description"] = c.Description
	}
	return json.Marshal(body)
}

func feature(geometry any) map[string]any {
	return map[string]any{"type": "Feature", "properties": map[string]any{}, "geometry": geometry}
}

func featureCollection(features ...any) map[string]any {
	return map[string]any{"type": "FeatureCollection", "features": features}
}

// readROI reads a GeoJSON file as a FeatureCollection: a Feature or a
// bare geometry is wrapped in one.
func readROI(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("roi: %w", err)
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("roi: %s is not a GeoJSON object: %w", path, err)
	}
	switch t, _ := v["type"].(string); t {
	case "FeatureCollection":
		return v, nil
	case "Feature":
		return featureCollection(v), nil
	case "Polygon", "MultiPolygon":
		return featureCollection(feature(v)), nil
	default:
		return nil, fmt.Errorf("roi: %s is a GeoJSON %q; want a FeatureCollection, a Feature, a Polygon or a MultiPolygon", path, t)
	}
}
