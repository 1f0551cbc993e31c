package client_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/client"
	"github.com/geoexport/exporter/internal/grid"
)

// valid is a configuration Validate accepts.
func valid() client.Config {
	c := client.DefaultConfig()
	c.Token, c.Layer, c.BBox, c.MaxZoom = "t", "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8", "34.8,31.9,34.9,32", 14
	return c
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*client.Config)
		want   []string // each problem's start; none for a valid config
	}{
		{"valid", func(*client.Config) {}, nil},
		{"resolution instead of a zoom", func(c *client.Config) { c.MaxZoom, c.Resolution = -1, 0.0001 }, nil},
		{"roi with its own resolutions", func(c *client.Config) { c.BBox, c.ROIFile, c.MaxZoom = "", "area.json", -1 }, nil},
		{"nothing", func(c *client.Config) { *c = client.Config{} }, []string{"server:", "token:", "layer:", "bbox, roi:", "poll:"}},
		{"server not http", func(c *client.Config) { c.Server = "localhost:8080" }, []string{"server:"}},
		{"both areas", func(c *client.Config) { c.ROIFile = "a.json" }, []string{"bbox, roi: give one"}},
		{"bbox of three numbers", func(c *client.Config) { c.BBox = "1,2,3" }, []string{"bbox:"}},
		{"bbox of words", func(c *client.Config) { c.BBox = "a,b,c,d" }, []string{"bbox:"}},
		{"bbox without a level", func(c *client.Config) { c.MaxZoom = -1 }, []string{"max-zoom, resolution: one is required"}},
		{"zoom and resolution", func(c *client.Config) { c.Resolution = 0.001 }, []string{"max-zoom, resolution: give one"}},
		{"zoom beyond the grid", func(c *client.Config) { c.MaxZoom = 23 }, []string{"max-zoom:"}},
		{"negative resolution", func(c *client.Config) { c.MaxZoom, c.Resolution = -1, -0.1 }, []string{"resolution:"}},
		{"min zoom finer than max", func(c *client.Config) { c.MinZoom = 15 }, []string{"min-zoom:"}},
		{"priority too high", func(c *client.Config) { c.Priority = 1_000_000_000 }, []string{"priority:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tc.change(&c)
			err := c.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Validate() = %v, want %d problems %q", err, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("Validate() problem %d = %q, want it to start %q", i, got[i], w)
				}
			}
		})
	}
}

// body decodes an ExportBody.
func body(t *testing.T, c client.Config) map[string]any {
	t.Helper()
	b, err := c.ExportBody()
	if err != nil {
		t.Fatalf("ExportBody() = %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestExportBodyOfBBox(t *testing.T) {
	t.Parallel()
	c := valid()
	c.MinZoom, c.Priority, c.Description = 10, 7, "harbour"
	want := map[string]any{
		"dbId": c.Layer, "callbackURLs": []any{}, "crs": "EPSG:4326", "priority": 7.0, "description": "harbour",
		"roi": map[string]any{"type": "FeatureCollection", "features": []any{map[string]any{
			"type":       "Feature",
			"properties": map[string]any{"maxResolutionDeg": grid.Zoom(14).Resolution(), "minResolutionDeg": grid.Zoom(10).Resolution()},
			"geometry": map[string]any{"type": "Polygon", "coordinates": []any{[]any{
				[]any{34.8, 31.9}, []any{34.9, 31.9}, []any{34.9, 32.0}, []any{34.8, 32.0}, []any{34.8, 31.9},
			}}},
		}}},
	}
	if diff := cmp.Diff(want, body(t, c)); diff != "" {
		t.Errorf("ExportBody() (-want +got):\n%s", diff)
	}
}

func TestExportBodyOfROIFile(t *testing.T) {
	t.Parallel()
	square := `{"type":"Polygon","coordinates":[[[35,31],[35.1,31],[35.1,31.1],[35,31.1],[35,31]]]}`
	own := map[string]any{"maxResolutionDeg": 0.001}
	tests := []struct {
		name       string
		file       string
		maxZoom    int
		resolution float64
		want       []map[string]any // each feature's properties
	}{
		{"collection keeps its resolutions", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"maxResolutionDeg":0.001},"geometry":` + square + `}]}`, -1, 0, []map[string]any{own}},
		{"a flag replaces them", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"maxResolutionDeg":0.001,"name":"a"},"geometry":` + square + `},{"type":"Feature","properties":null,"geometry":` + square + `}]}`, 12, 0,
			[]map[string]any{{"maxResolutionDeg": grid.Zoom(12).Resolution(), "name": "a"}, {"maxResolutionDeg": grid.Zoom(12).Resolution()}}},
		{"a feature", `{"type":"Feature","properties":{"maxResolutionDeg":0.001},"geometry":` + square + `}`, -1, 0, []map[string]any{own}},
		{"a geometry, with a resolution", square, -1, 0.0001, []map[string]any{{"maxResolutionDeg": 0.0001}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "area.geojson")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			c := valid()
			c.BBox, c.ROIFile, c.MaxZoom, c.Resolution = "", path, tc.maxZoom, tc.resolution
			roi := body(t, c)["roi"].(map[string]any)
			features := roi["features"].([]any)
			if roi["type"] != "FeatureCollection" || len(features) != len(tc.want) {
				t.Fatalf("roi = %v, want a FeatureCollection of %d features", roi, len(tc.want))
			}
			for i, f := range features {
				f := f.(map[string]any)
				if diff := cmp.Diff(tc.want[i], f["properties"]); diff != "" {
					t.Errorf("feature %d properties (-want +got):\n%s", i, diff)
				}
				if f["geometry"].(map[string]any)["type"] != "Polygon" {
					t.Errorf("feature %d geometry = %v, want the file's Polygon", i, f["geometry"])
				}
			}
		})
	}
}

func TestExportBodyOfBadROIFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{"point.json": `{"type":"Point","coordinates":[35,31]}`, "text.json": "not json"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"point.json", "text.json", "missing.json"} {
		c := valid()
		c.BBox, c.ROIFile = "", filepath.Join(dir, name)
		if _, err := c.ExportBody(); err == nil || !strings.HasPrefix(err.Error(), "roi: ") {
			t.Errorf("ExportBody() of %s = %v, want an error about roi", name, err)
		}
	}
}
