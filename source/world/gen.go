//go:build ignore

// gen.go writes world-110m.geojson.gz and world-50m.geojson.gz from the npm
// package world-atlas (Natural Earth, public domain), with topojson-client
// turning its TopoJSON into GeoJSON (topo2geo.mjs). It needs npm and node:
//
//	go generate ./source/world   (or: make demo-data)
//
// The output is the same bytes on every run with the same Go version: the
// package versions and the digests of their input files are pinned below,
// and gzip writes no time or name into its header.
//
// What it changes on the way, so that a flat longitude/latitude renderer
// (the demo source, or the web page's map) can draw the data as it is:
//
//   - Rings that cross the antimeridian (Chukotka, Fiji, Wrangel Island)
//     are cut at ±180° into pieces that each lie within [-180, 180].
//   - Antarctica, a ring around the South Pole on the sphere, is closed
//     along the pole's edge of the map (latitude -90), and the 50m data's
//     line around the pole (a ring at -89.999°) is dropped.
//   - Borders that cross the antimeridian are split there.
//   - Coordinates are rounded to 1e-4° (about 11 m, far below the 1:50m
//     data's accuracy); shells turn anticlockwise and holes clockwise, as
//     RFC 7946 asks.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/peterstace/simplefeatures/geom"
)

// Pinned inputs: the packages and the sha256 of the files read from them.
const (
	worldAtlas     = "world-atlas@2.0.2"
	topojsonClient = "topojson-client@3.1.0"
)

var inputDigests = map[string]string{
	"110m": "2516c915867c7baf18ddec727aec46c315541a07cfb3d79a6559b05d5e94eee8",
	"50m":  "04342cdc1e3016bcd7db1630de95684d67b79fe3c8c460321e87aef469502394",
}

// precision is the rounding of every coordinate, in degrees.
const precision = 1e-4

type point = [2]float64

func main() {
	log.SetFlags(0)
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	tmp, err := os.MkdirTemp("", "world-atlas-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	install := exec.Command("npm", "install", "--prefix", tmp, "--no-save", "--no-package-lock",
		"--no-audit", "--no-fund", "--ignore-scripts", worldAtlas, topojsonClient)
	install.Stdout, install.Stderr = os.Stderr, os.Stderr
	if err := install.Run(); err != nil {
		return fmt.Errorf("npm install %s %s: %w", worldAtlas, topojsonClient, err)
	}
	script, err := os.ReadFile("topo2geo.mjs")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "topo2geo.mjs"), script, 0o644); err != nil {
		return err
	}
	for _, scale := range []string{"110m", "50m"} {
		if err := convert(tmp, scale); err != nil {
			return fmt.Errorf("scale %s: %w", scale, err)
		}
	}
	return nil
}

func convert(dir, scale string) error {
	in, err := os.ReadFile(filepath.Join(dir, "node_modules", "world-atlas", "countries-"+scale+".json"))
	if err != nil {
		return err
	}
	if sum := sha256.Sum256(in); hex.EncodeToString(sum[:]) != inputDigests[scale] {
		return fmt.Errorf("countries-%s.json has sha256 %x, want %s: the package changed", scale, sum, inputDigests[scale])
	}
	node := exec.Command("node", "topo2geo.mjs", scale)
	node.Dir, node.Stderr = dir, os.Stderr
	out, err := node.Output()
	if err != nil {
		return fmt.Errorf("node topo2geo.mjs: %w", err)
	}
	var fc struct {
		Features []struct {
			Properties struct{ Kind string }
			Geometry   json.RawMessage
		}
	}
	if err := json.Unmarshal(out, &fc); err != nil {
		return err
	}
	kinds := map[string]geom.Geometry{}
	for _, f := range fc.Features {
		g, err := geom.UnmarshalGeoJSON(f.Geometry, geom.NoValidate{})
		if err != nil {
			return fmt.Errorf("%s: %w", f.Properties.Kind, err)
		}
		kinds[f.Properties.Kind] = g
	}
	mp, isLand := kinds["land"].AsMultiPolygon()
	ml, isBorders := kinds["borders"].AsMultiLineString()
	if !isLand || !isBorders || mp.IsEmpty() || ml.IsEmpty() {
		return errors.New("want a land MultiPolygon and a borders MultiLineString")
	}
	land, borders := planarLand(mp), planarBorders(ml)
	data, err := json.Marshal(geom.GeoJSONFeatureCollection{
		{Geometry: land.AsGeometry(), Properties: map[string]any{"kind": "land"}},
		{Geometry: borders.AsGeometry(), Properties: map[string]any{"kind": "borders"}},
	})
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	w, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	name := "world-" + scale + ".geojson.gz"
	log.Printf("%s: %d polygons, %d border lines, %d bytes of GeoJSON, %d gzipped", name,
		land.NumPolygons(), borders.NumLineStrings(), len(data), gz.Len())
	return os.WriteFile(name, gz.Bytes(), 0o644)
}

// planarLand unwraps, closes and cuts every polygon (see the file comment).
func planarLand(mp geom.MultiPolygon) geom.MultiPolygon {
	var polys []geom.Polygon
	for i := range mp.NumPolygons() {
		p := mp.PolygonN(i)
		var rings [][]point
		for _, seq := range p.Coordinates() {
			r := unwrap(points(seq))
			if r == nil {
				continue
			}
			rings = append(rings, r)
		}
		if len(rings) == 0 {
			continue
		}
		for k := -1; k <= 1; k++ {
			lo, hi := -180+360*float64(k), 180+360*float64(k)
			var pieces [][]point
			for j, r := range rings {
				c := shift(clipX(r, lo, hi), -360*float64(k))
				c = roundRing(c)
				if len(c) < 4 || math.Abs(area(c)) < precision*precision {
					if j == 0 {
						break // no shell here: its holes are not either
					}
					continue
				}
				if (area(c) > 0) != (j == 0) {
					slices.Reverse(c)
				}
				pieces = append(pieces, c)
			}
			if len(pieces) == 0 {
				continue
			}
			polys = append(polys, polygon(pieces))
		}
	}
	return geom.NewMultiPolygon(polys)
}

// planarBorders splits lines where they cross the antimeridian.
func planarBorders(ml geom.MultiLineString) geom.MultiLineString {
	var lines []geom.LineString
	add := func(l []point) {
		if l = dedupe(l); len(l) >= 2 {
			lines = append(lines, geom.NewLineString(sequence(l)))
		}
	}
	for i := range ml.NumLineStrings() {
		pts := points(ml.LineStringN(i).Coordinates())
		var cur []point
		for j, p := range pts {
			if j > 0 && math.Abs(p[0]-pts[j-1][0]) > 180 {
				a := pts[j-1]
				edge := math.Copysign(180, a[0])
				b := p[0] + 2*edge // p on a's side of the map
				y := a[1] + (p[1]-a[1])*(edge-a[0])/(b-a[0])
				cur = append(cur, point{edge, y})
				add(cur)
				cur = []point{{-edge, y}}
			}
			cur = append(cur, p)
		}
		add(cur)
	}
	return geom.NewMultiLineString(lines)
}

// unwrap makes a ring's longitudes continuous (no step over 180°), so a
// ring across the antimeridian runs past ±180. A ring that goes once
// around a pole is closed along that pole's edge of the map; one that lies
// on the pole's edge (the 50m data's line around the South Pole) is nil.
func unwrap(r []point) []point {
	out := make([]point, len(r))
	off := 0.0
	for i, p := range r {
		if i > 0 {
			switch d := p[0] + off - out[i-1][0]; {
			case d > 180:
				off -= 360
			case d < -180:
				off += 360
			}
		}
		out[i] = point{p[0] + off, p[1]}
	}
	first, last := out[0], out[len(out)-1]
	if math.Abs(last[0]-first[0]) < 180 {
		return out
	}
	var ySum float64
	polar := true
	for _, p := range r {
		ySum += p[1]
		polar = polar && math.Abs(p[1]) > 89.99
	}
	if polar {
		return nil
	}
	pole := math.Copysign(90, ySum)
	return append(out, point{last[0], pole}, point{first[0], pole}, first)
}

// clipX keeps the part of a closed ring with lo <= x <= hi
// (Sutherland–Hodgman, one edge at a time). Pieces joined along the cut
// stay one ring with an edge there, which fills correctly.
func clipX(r []point, lo, hi float64) []point {
	r = clipHalf(r, func(p point) float64 { return p[0] - lo })
	return clipHalf(r, func(p point) float64 { return hi - p[0] })
}

// clipHalf keeps the part of a closed ring where inside(p) >= 0; inside
// must be linear.
func clipHalf(r []point, inside func(point) float64) []point {
	if len(r) == 0 {
		return nil
	}
	var out []point
	for i := range len(r) - 1 {
		a, b := r[i], r[i+1]
		da, db := inside(a), inside(b)
		if da >= 0 {
			out = append(out, a)
		}
		if (da >= 0) != (db >= 0) {
			t := da / (da - db)
			out = append(out, point{a[0] + (b[0]-a[0])*t, a[1] + (b[1]-a[1])*t})
		}
	}
	if len(out) > 0 {
		out = append(out, out[0])
	}
	return out
}

func shift(r []point, dx float64) []point {
	for i := range r {
		r[i][0] += dx
	}
	return r
}

// roundRing rounds a closed ring's points and drops repeats.
func roundRing(r []point) []point {
	r = dedupe(r)
	if len(r) > 0 && r[0] != r[len(r)-1] {
		r = append(r, r[0])
	}
	return r
}

// dedupe rounds points to precision and drops consecutive repeats.
func dedupe(l []point) []point {
	var out []point
	for _, p := range l {
		q := point{round(p[0]), round(p[1])}
		if len(out) == 0 || out[len(out)-1] != q {
			out = append(out, q)
		}
	}
	return out
}

func round(v float64) float64 {
	r := math.Round(v/precision) * precision
	// Print the shortest decimal of that rounding, not 34.812300000000001.
	s := fmt.Sprintf("%.4f", r)
	var f float64
	fmt.Sscan(s, &f)
	if f == 0 {
		return 0 // no -0
	}
	return f
}

// area is a closed ring's signed planar area: positive when anticlockwise.
func area(r []point) float64 {
	var s float64
	for i := range len(r) - 1 {
		s += r[i][0]*r[i+1][1] - r[i+1][0]*r[i][1]
	}
	return s / 2
}

func points(seq geom.Sequence) []point {
	out := make([]point, seq.Length())
	for i := range out {
		xy := seq.GetXY(i)
		out[i] = point{xy.X, xy.Y}
	}
	return out
}

func sequence(pts []point) geom.Sequence {
	flat := make([]float64, 0, 2*len(pts))
	for _, p := range pts {
		flat = append(flat, p[0], p[1])
	}
	return geom.NewSequence(flat, geom.DimXY)
}

func polygon(rings [][]point) geom.Polygon {
	ls := make([]geom.LineString, len(rings))
	for i, r := range rings {
		ls[i] = geom.NewLineString(sequence(r))
	}
	return geom.NewPolygon(ls)
}
