// Package world holds the map of the world that the demo source draws:
// Natural Earth's land and the borders between countries (public domain),
// at the scales 1:110m and 1:50m, embedded in the binary as gzipped
// GeoJSON. README.md beside this file names the source, its version and
// licence; gen.go regenerates the files (go generate, or make demo-data).
//
// The files are planar: every coordinate lies in [-180, 180] × [-90, 90],
// rings that cross the antimeridian are cut there and Antarctica is closed
// along latitude -90, so that a flat longitude/latitude renderer can fill
// them as they are. [FS] gives them to whatever else wants to show the same
// map (the web tool's basemap can be served from it).
//
// It imports no project package.
package world

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"

	"github.com/peterstace/simplefeatures/geom"
)

//go:generate go run gen.go

//go:embed world-110m.geojson.gz world-50m.geojson.gz
var files embed.FS

// Scale is a Natural Earth scale.
type Scale string

// The scales embedded.
const (
	Small  Scale = "110m" // 1:110,000,000: the whole world on a screen
	Medium Scale = "50m"  // 1:50,000,000: a continent or a country
)

// Scales lists every embedded scale, the smallest (coarsest) first.
var Scales = []Scale{Small, Medium}

// FileName is the name in [FS] of the GeoJSON of scale s.
func FileName(s Scale) string { return "world-" + string(s) + ".geojson.gz" }

// FS returns the embedded files, gzipped GeoJSON FeatureCollections named
// by [FileName]. Each holds two features, told apart by their "kind"
// property: "land", a MultiPolygon, and "borders", a MultiLineString of
// the boundaries between countries (each once; coastlines are the land's
// outline).
func FS() fs.FS { return files }

// Map is the world at one scale.
type Map struct {
	// Land is every land polygon; its rings' edges along longitude ±180
	// and latitude -90 are cuts, not coastline.
	Land geom.MultiPolygon
	// Borders are the boundaries between countries.
	Borders geom.MultiLineString
}

// Load decodes the map of scale s. It reads and parses the embedded file
// on every call (tens of milliseconds for Medium): callers keep the result.
func Load(s Scale) (Map, error) {
	gz, err := files.ReadFile(FileName(s))
	if err != nil {
		return Map{}, fmt.Errorf("world: scale %q: %w", s, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return Map{}, fmt.Errorf("world: %s: %w", FileName(s), err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return Map{}, fmt.Errorf("world: %s: %w", FileName(s), err)
	}
	var fc struct {
		Features []struct {
			Properties struct {
				Kind string `json:"kind"`
			} `json:"properties"`
			Geometry json.RawMessage `json:"geometry"`
		} `json:"features"`
	}
	if err := json.Unmarshal(data, &fc); err != nil {
		return Map{}, fmt.Errorf("world: %s: %w", FileName(s), err)
	}
	var m Map
	for _, f := range fc.Features {
		// The generator's output is checked by the tests; validating
		// 60,000 points again at every start would cost more than the
		// parse.
		g, err := geom.UnmarshalGeoJSON(f.Geometry, geom.NoValidate{})
		if err != nil {
			return Map{}, fmt.Errorf("world: %s: %s: %w", FileName(s), f.Properties.Kind, err)
		}
		var ok bool
		switch f.Properties.Kind {
		case "land":
			m.Land, ok = g.AsMultiPolygon()
		case "borders":
			m.Borders, ok = g.AsMultiLineString()
		default:
			return Map{}, fmt.Errorf("world: %s: unknown feature kind %q", FileName(s), f.Properties.Kind)
		}
		if !ok {
			return Map{}, fmt.Errorf("world: %s: %s is a %s", FileName(s), f.Properties.Kind, g.Type())
		}
	}
	if m.Land.IsEmpty() || m.Borders.IsEmpty() {
		return Map{}, fmt.Errorf("world: %s: land or borders missing", FileName(s))
	}
	return m, nil
}
