package source_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

// objectsOf is an object store of no objects, for the layers that need
// one to be configured; ForLayer does not read from it.
type objectsOf struct{}

func (objectsOf) ReadObject(context.Context, string, int64) ([]byte, error) {
	return nil, os.ErrNotExist
}

func (objectsOf) OpenObject(context.Context, string) (io.ReadCloser, error) {
	return nil, os.ErrNotExist
}

// regionFootprint is a layer footprint around the specification's example.
var regionFootprint = grid.BBox{MinX: 34.2, MinY: 29.4, MaxX: 35.9, MaxY: 33.4}

// TestForLayer opens a source of every kind from catalog records, and
// checks the records ForLayer cannot open without a dependency.
func TestForLayer(t *testing.T) {
	t.Parallel()
	footprint := regionFootprint
	full := source.LayerDeps{Objects: objectsOf{}, Opener: objectsOf{}, TempDir: t.TempDir()}
	tests := []struct {
		name    string
		src     catalog.Source
		deps    source.LayerDeps
		wantErr string // empty: opens
	}{
		{name: "demo", src: catalog.Source{Kind: catalog.SourceDemo}},
		{name: "demo with a no-data colour", src: catalog.Source{Kind: catalog.SourceDemo, NoData: &catalog.Color{R: 255, G: 255, B: 255}}},
		{name: "tile store directory", src: catalog.Source{Kind: catalog.SourceTileStore, Path: t.TempDir(), RowOrigin: "bottom"}},
		{name: "tile store s3 prefix", src: catalog.Source{Kind: catalog.SourceTileStore, S3Prefix: "tiles/ortho", RowOrigin: "top"}, deps: full},
		{name: "tile store s3 prefix without s3", src: catalog.Source{Kind: catalog.SourceTileStore, S3Prefix: "tiles/ortho", RowOrigin: "top"},
			wantErr: `reads s3 prefix "tiles/ortho" but no S3 storage is configured`},
		{name: "tile store bad row origin", src: catalog.Source{Kind: catalog.SourceTileStore, Path: t.TempDir(), RowOrigin: "middle"},
			wantErr: "row origin"},
		{name: "wms", src: catalog.Source{Kind: catalog.SourceWMS, URL: "http://127.0.0.1:1/wms", Layers: []string{"ortho"}, Metatile: []int{2, 2}}},
		{name: "wmts", src: catalog.Source{Kind: catalog.SourceWMTS, URL: "http://127.0.0.1:1/wmts", Layer: "ortho", TileMatrixSet: "grid"}},
		{name: "xyz", src: catalog.Source{Kind: catalog.SourceXYZ, URL: "http://127.0.0.1:1/{z}/{x}/{y}.png"}},
		{name: "xyz that is no template", src: catalog.Source{Kind: catalog.SourceXYZ, URL: "http://127.0.0.1:1/tiles"}, wantErr: "xyz template"},
		{name: "geopackage file", src: catalog.Source{Kind: catalog.SourceGeoPackage, Path: "/data/ortho.gpkg"}},
		{name: "geopackage object", src: catalog.Source{Kind: catalog.SourceGeoPackage, S3Key: "sources/ortho.gpkg"}, deps: full},
		{name: "geopackage object without s3", src: catalog.Source{Kind: catalog.SourceGeoPackage, S3Key: "sources/ortho.gpkg"},
			wantErr: `reads s3 key "sources/ortho.gpkg" but no S3 storage is configured`},
		{name: "unknown kind", src: catalog.Source{Kind: "ftp"}, wantErr: `unknown source kind "ftp"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := catalog.Layer{ID: "layer-1", Footprint: footprint, MaxResolution: grid.Zoom(18).Resolution(), Source: tc.src}
			src, err := source.ForLayer(l, tc.deps)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ForLayer(%s) = %v, want an error containing %q", tc.name, err, tc.wantErr)
				}
				return
			}
			if err != nil || src == nil {
				t.Fatalf("ForLayer(%s) = %v, %v; want a source", tc.name, src, err)
			}
			if c, ok := src.(io.Closer); ok {
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		})
	}
}

// TestForLayerDemoDraws reads a tile of the demo layer, given a footprint
// smaller than its world, through ForLayer: one inside the footprint has
// an image, one outside it has no data.
func TestForLayerDemoDraws(t *testing.T) {
	t.Parallel()
	l := catalog.Demo().Layers()[0]
	l.Footprint = regionFootprint
	src, err := source.ForLayer(l, source.LayerDeps{})
	if err != nil {
		t.Fatal(err)
	}
	z := grid.Zoom(8)
	r := z.Range(l.Footprint)
	tile, err := src.Tile(t.Context(), grid.Tile{Zoom: z, Col: r.MinCol, Row: r.MinRow})
	if err != nil || (tile.Image == nil && tile.Data == nil) {
		t.Errorf("Tile inside the footprint = %+v, %v; want a tile", tile, err)
	}
	if _, err := src.Tile(t.Context(), grid.Tile{Zoom: z, Col: 0, Row: 0}); !errors.Is(err, source.ErrNoData) {
		t.Errorf("Tile outside the footprint: %v, want ErrNoData", err)
	}
}

// TestLayerMetatile checks the blocks the planner aligns batches to: a
// WMS's metatile (its default when the record names none, or a zero
// side), 1 × 1 for sources that fetch tile by tile.
func TestLayerMetatile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		src        catalog.Source
		cols, rows int
	}{
		{name: "wms default", src: catalog.Source{Kind: catalog.SourceWMS}, cols: source.DefaultMetatile, rows: source.DefaultMetatile},
		{name: "wms 8x2", src: catalog.Source{Kind: catalog.SourceWMS, Metatile: []int{8, 2}}, cols: 8, rows: 2},
		{name: "wms zero side", src: catalog.Source{Kind: catalog.SourceWMS, Metatile: []int{0, 3}}, cols: source.DefaultMetatile, rows: 3},
		{name: "xyz", src: catalog.Source{Kind: catalog.SourceXYZ}, cols: 1, rows: 1},
		{name: "tile store", src: catalog.Source{Kind: catalog.SourceTileStore}, cols: 1, rows: 1},
	} {
		if cols, rows := source.LayerMetatile(catalog.Layer{Source: tc.src}); cols != tc.cols || rows != tc.rows {
			t.Errorf("%s: LayerMetatile() = %d × %d, want %d × %d", tc.name, cols, rows, tc.cols, tc.rows)
		}
	}
}
