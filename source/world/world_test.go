package world_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"testing"

	"github.com/peterstace/simplefeatures/geom"

	"github.com/geoexport/exporter/source/world"
)

// TestLoad checks what the generator promises of every scale: planar
// coordinates within the world, shells anticlockwise and holes clockwise,
// and land covering a plausible share of the flat map (Natural Earth's land
// is 29 % of the sphere; on a longitude/latitude map Antarctica grows).
func TestLoad(t *testing.T) {
	t.Parallel()
	for _, s := range world.Scales {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			m, err := world.Load(s)
			if err != nil {
				t.Fatalf("Load(%s): %v", s, err)
			}
			if n := m.Land.NumPolygons(); n < 100 {
				t.Errorf("Load(%s): %d land polygons, want 100 or more", s, n)
			}
			if n := m.Borders.NumLineStrings(); n < 100 {
				t.Errorf("Load(%s): %d border lines, want 100 or more", s, n)
			}
			var landArea float64
			for i, p := range m.Land.Dump() {
				for j, r := range p.Coordinates() {
					checkRing(t, s, i, j, r)
					landArea += signedArea(r)
				}
			}
			if share := landArea / (360 * 180); share < 0.25 || share > 0.4 {
				t.Errorf("Load(%s): land is %.1f %% of the map, want 25 to 40 %%", s, 100*share)
			}
			for _, l := range m.Borders.Dump() {
				seq := l.Coordinates()
				for i := range seq.Length() {
					checkPoint(t, s, seq.GetXY(i))
				}
			}
		})
	}
}

func checkRing(t *testing.T, s world.Scale, polygon, ring int, r geom.Sequence) {
	t.Helper()
	n := r.Length()
	if n < 4 || r.GetXY(0) != r.GetXY(n-1) {
		t.Errorf("%s polygon %d ring %d: %d points, first %v, last %v; want a closed ring", s, polygon, ring, n, r.GetXY(0), r.GetXY(n-1))
		return
	}
	for i := range n {
		checkPoint(t, s, r.GetXY(i))
	}
	if a := signedArea(r); (a > 0) != (ring == 0) {
		t.Errorf("%s polygon %d ring %d: signed area %v; want shells anticlockwise, holes clockwise", s, polygon, ring, a)
	}
}

func checkPoint(t *testing.T, s world.Scale, p geom.XY) {
	t.Helper()
	if p.X < -180 || p.X > 180 || p.Y < -90 || p.Y > 90 {
		t.Errorf("%s: point %v outside [-180, 180] × [-90, 90]", s, p)
	}
}

func signedArea(r geom.Sequence) float64 {
	var sum float64
	for i := range r.Length() - 1 {
		a, b := r.GetXY(i), r.GetXY(i+1)
		sum += a.X*b.Y - b.X*a.Y
	}
	return sum / 2
}

// TestFS checks that every file FS serves is a gzipped GeoJSON
// FeatureCollection of a land and a borders feature, as its doc says.
func TestFS(t *testing.T) {
	t.Parallel()
	for _, s := range world.Scales {
		gz, err := fs.ReadFile(world.FS(), world.FileName(s))
		if err != nil {
			t.Fatalf("ReadFile(FS(), %q): %v", world.FileName(s), err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatalf("%s: %v", world.FileName(s), err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", world.FileName(s), err)
		}
		var fc geom.GeoJSONFeatureCollection
		if err := json.Unmarshal(data, &fc); err != nil {
			t.Fatalf("%s: %v", world.FileName(s), err)
		}
		var kinds []string
		for _, f := range fc {
			kinds = append(kinds, f.Properties["kind"].(string)+" "+f.Geometry.Type().String())
		}
		if len(kinds) != 2 || kinds[0] != "land MultiPolygon" || kinds[1] != "borders MultiLineString" {
			t.Errorf("%s holds %v, want land MultiPolygon and borders MultiLineString", world.FileName(s), kinds)
		}
	}
}

func TestLoadUnknownScale(t *testing.T) {
	t.Parallel()
	if _, err := world.Load("10m"); err == nil {
		t.Error("Load(10m) = nil error, want an error: that scale is not embedded")
	}
}
