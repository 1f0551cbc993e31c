package source_test

import (
	"strings"
	"testing"
	"time"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

// validLayer is a layer whose record is valid, with the demo source.
func validLayer() catalog.Layer {
	return catalog.Layer{
		ID: "5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a11", ProductID: "p", ProductType: "t", Version: "1",
		Footprint: grid.BBox{MaxX: 1, MaxY: 1}, MaxResolution: 0.001, Source: catalog.Source{Kind: catalog.SourceDemo},
	}
}

func TestInvalidSources(t *testing.T) {
	t.Parallel()
	good := validLayer()
	yes := true
	tests := []struct {
		name string
		src  catalog.Source
		want []string // empty: valid
	}{
		{name: "wms", src: catalog.Source{Kind: "wms", URL: "https://x/wms", Layers: []string{"a"}}},
		{name: "wmts kvp", src: catalog.Source{Kind: "wmts", URL: "https://x/wmts", Layer: "a", TileMatrixSet: "s"}},
		{name: "wmts rest", src: catalog.Source{Kind: "wmts", URL: "https://x/{Layer}/{TileMatrix}/{TileRow}/{TileCol}", Layer: "a"}},
		{name: "xyz", src: catalog.Source{Kind: "xyz", URL: "https://x/{z}/{x}/{y}.png", RowOrigin: "bottom"}},
		{name: "gpkg", src: catalog.Source{Kind: "gpkg", Path: "/srv/a.gpkg"}},
		{name: "tilestore with no data", src: catalog.Source{Kind: "tilestore", Path: "/srv/t", NoData: &catalog.Color{}, NoDataTolerance: 4}},
		{
			name: "wms with every problem",
			src: catalog.Source{
				Kind: "wms", URL: "ftp://x", Version: "1.0.0", Layers: []string{"a,b"}, Styles: []string{"s", "t"}, Format: "image/gif",
				Params: map[string]string{"bbox": "0"}, Metatile: []int{0, 17}, ZoomOffset: 1, Timeout: -1, MaxAttempts: -1, Concurrency: 1000,
				NotFound: "maybe", NoDataTolerance: 300,
			},
			want: []string{
				"url is not an absolute http or https url", `version "1.0.0"`, `layer "a,b"`, "2 styles for 1 layers", `format "image/gif"`,
				"params: bbox is set by the source", "metatile [0 17]", "zoomOffset applies to wmts and xyz", "timeout -1ns is negative",
				"maxAttempts -1", "concurrency 1000", `notFound "maybe"`, "noDataTolerance 300", "noDataTolerance needs noData",
			},
		},
		{name: "wms without layers", src: catalog.Source{Kind: "wms", URL: "https://x/wms"}, want: []string{"a wms needs layers"}},
		{name: "wms template", src: catalog.Source{Kind: "wms", URL: "https://x/{z}", Layers: []string{"a"}}, want: []string{"not a template"}},
		{name: "wms transparent jpeg", src: catalog.Source{Kind: "wms", URL: "https://x/wms", Layers: []string{"a"}, Format: "image/jpeg", Transparent: &yes}, want: []string{"cannot be transparent"}},
		{name: "wms metatile of three", src: catalog.Source{Kind: "wms", URL: "https://x/wms", Layers: []string{"a"}, Metatile: []int{1, 2, 3}}, want: []string{"want [columns, rows], got 3"}},
		{name: "wmts kvp without layer", src: catalog.Source{Kind: "wmts", URL: "https://x/wmts"}, want: []string{"needs layer and tileMatrixSet"}},
		{name: "wmts template without row", src: catalog.Source{Kind: "wmts", URL: "https://x/{TileMatrix}/{TileCol}"}, want: []string{"needs {TileMatrix}, {TileRow} and {TileCol}"}},
		{name: "wmts template without layer", src: catalog.Source{Kind: "wmts", URL: "https://x/{Layer}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}"}, want: []string{"{Layer} but no layer", "{TileMatrixSet} but no tileMatrixSet"}},
		{name: "wmts bad matrix format", src: catalog.Source{Kind: "wmts", URL: "https://x/wmts", Layer: "a", TileMatrixSet: "s", TileMatrixFormat: "%s"}, want: []string{`tileMatrixFormat "%s"`}},
		{name: "wmts reserved param", src: catalog.Source{Kind: "wmts", URL: "https://x/wmts", Layer: "a", TileMatrixSet: "s", Params: map[string]string{"TileRow": "1"}}, want: []string{"params: TileRow"}},
		{name: "xyz without y", src: catalog.Source{Kind: "xyz", URL: "https://x/{z}/{x}.png"}, want: []string{"needs {z}, {x} and one of {y} and {-y}"}},
		{name: "xyz flipped twice", src: catalog.Source{Kind: "xyz", URL: "https://x/{z}/{x}/{-y}.png", RowOrigin: "bottom"}, want: []string{"flip rows twice"}},
		{name: "xyz zoom offset", src: catalog.Source{Kind: "xyz", URL: "https://x/{z}/{x}/{y}.png", ZoomOffset: 99}, want: []string{"zoomOffset 99"}},
		{name: "gpkg with both", src: catalog.Source{Kind: "gpkg", Path: "/a", S3Key: "a"}, want: []string{"exactly one of path and s3Key"}},
		{name: "gpkg with neither", src: catalog.Source{Kind: "gpkg"}, want: []string{"exactly one of path and s3Key"}},
		{name: "http settings on a tile store", src: catalog.Source{Kind: "tilestore", Path: "/t", URL: "https://x", Timeout: catalog.Duration(time.Second), Resample: true}, want: []string{"url applies to wms, wmts and xyz, not tilestore", "timeout applies", "resample applies"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := good
			l.Source = tc.src
			_, err := catalog.New([]catalog.Layer{l}, source.CheckLayer)
			checkProblems(t, "New", err, tc.want)
		})
	}
}

// TestCheckLayerInCatalog: a catalog built with CheckLayer refuses layers
// whose source is of no kind or lacks what its kind needs.
func TestCheckLayerInCatalog(t *testing.T) {
	t.Parallel()
	good := validLayer()
	tests := []struct {
		name   string
		mutate func(*catalog.Layer)
		want   string
	}{
		{"bad source", func(l *catalog.Layer) { l.Source.Kind = "ftp" }, `source: kind "ftp" is not one of demo, tilestore, wms, wmts, xyz, gpkg`},
		{"tilestore without path", func(l *catalog.Layer) { l.Source.Kind = catalog.SourceTileStore }, "exactly one of path and s3Prefix"},
		{"bad row origin", func(l *catalog.Layer) { l.Source.RowOrigin = "middle" }, "rowOrigin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := good
			tc.mutate(&l)
			if _, err := catalog.New([]catalog.Layer{l}, source.CheckLayer); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := catalog.New([]catalog.Layer{good}, source.CheckLayer); err != nil {
		t.Errorf("New(demo layer) = %v", err)
	}
}
