package gpkg_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/gpkg/gpkgtest"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestGDALValidates writes packages the way exports do (several zooms, some
// only partly covered, PNG tiles with alpha mixed with JPEG tiles) and has
// GDAL check them: validate_gpkg.py with extra checks and warnings as
// errors must report nothing, and gdalinfo must read the raster with the
// extent, resolution and overviews the package was written with, decoding
// every tile (-checksum) without a warning.
func TestGDALValidates(t *testing.T) {
	t.Parallel()
	gdal := gpkgtest.RequireGDAL(t)

	// The worked example of ARCHITECTURE.md: one tile at zooms 0–13, 2 × 2
	// at zoom 14, of which one is left out (no source data).
	example := grid.BBox{MinX: 34.8046875, MinY: 31.9482421875, MaxX: 34.82666015625, MaxY: 31.97021484375}
	var exampleTiles []grid.Tile
	for _, r := range grid.Pyramid(example, 14) {
		for tile := range r.Tiles {
			exampleTiles = append(exampleTiles, tile)
		}
	}
	exampleTiles = exampleTiles[:len(exampleTiles)-1]

	// The whole world: zoom 0 full, zoom 1 missing, zoom 2 the western
	// half, zoom 3 a checkerboard.
	var worldTiles []grid.Tile
	for _, r := range grid.Pyramid(grid.World, 3) {
		for tile := range r.Tiles {
			switch {
			case tile.Zoom == 1,
				tile.Zoom == 2 && tile.Col >= 4,
				tile.Zoom == 3 && (tile.Col+tile.Row)%2 == 1:
				continue
			}
			worldTiles = append(worldTiles, tile)
		}
	}

	tests := []struct {
		name          string
		extent        grid.BBox
		tiles         []grid.Tile
		maxZoom       grid.Zoom
		zooms         int // zoom levels holding tiles
		wantOverviews int
	}{
		{
			name: "world with a missing and partial zooms", extent: grid.World, tiles: worldTiles,
			maxZoom: 3, zooms: 3,
			// One overview per zoom present below the finest.
			wantOverviews: 3 - 1,
		},
		{
			name: "worked example at zoom 14", extent: example, tiles: exampleTiles,
			maxZoom: 14, zooms: 15,
			// GDAL (read-only OpenRaster) lists overviews from the finest
			// down and stops after the first one smaller than a tile in both
			// dimensions: 256 × 256 at zoom 13, 128 × 128 at zoom 12. The
			// coarser zooms are still in the file and valid.
			wantOverviews: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := gpkgtest.BuildPackage(t,
				gpkgtest.WithTable("export_tiles"),
				gpkgtest.WithExtent(tc.extent),
				gpkgtest.WithTiles(tc.tiles...),
				gpkgtest.WithFileName("export.gpkg"), // the validator wants the .gpkg extension
			)
			zooms, err := open(t, p.Path).Zooms(t.Context(), "export_tiles")
			if err != nil || len(zooms) != tc.zooms {
				t.Fatalf("Zooms() = %v, %v, want %d levels", zooms, err, tc.zooms)
			}

			gdal.Validate(t, p.Path)
			info := gdal.Info(t, p.Path)
			res := tc.maxZoom.Resolution()
			want := gpkgtest.Info{
				DriverShortName: "GPKG",
				Size: []int{
					int((tc.extent.MaxX-tc.extent.MinX)/res + 0.5),
					int((tc.extent.MaxY-tc.extent.MinY)/res + 0.5),
				},
				GeoTransform: []float64{tc.extent.MinX, res, 0, tc.extent.MaxY, 0, -res},
			}
			got := gpkgtest.Info{DriverShortName: info.DriverShortName, Size: info.Size, GeoTransform: info.GeoTransform}
			if diff := cmp.Diff(want, got, cmpopts.EquateApprox(1e-12, 0)); diff != "" {
				t.Errorf("gdalinfo (-want +got):\n%s", diff)
			}
			if wkt := info.CoordinateSystem.WKT; !strings.Contains(wkt, `ID["EPSG",4326]`) {
				t.Errorf("gdalinfo coordinate system = %q, want EPSG:4326", wkt)
			}
			if id := info.Metadata[""]["IDENTIFIER"]; id != "export_tiles" {
				t.Errorf("gdalinfo IDENTIFIER = %q, want %q", id, "export_tiles")
			}
			if len(info.Bands) != 4 {
				t.Fatalf("gdalinfo bands = %d, want 4 (RGBA)", len(info.Bands))
			}
			if n := gpkgtest.ExpectedOverviews(tc.extent, zooms); n != tc.wantOverviews {
				t.Errorf("ExpectedOverviews = %d, want %d", n, tc.wantOverviews)
			}
			for i, b := range info.Bands {
				if len(b.Overviews) != tc.wantOverviews {
					t.Errorf("band %d: %d overviews, want %d", i+1, len(b.Overviews), tc.wantOverviews)
				}
			}
		})
	}
}

// TestGDALValidatesSingleTile checks the smallest package: one JPEG tile.
func TestGDALValidatesSingleTile(t *testing.T) {
	t.Parallel()
	gdal := gpkgtest.RequireGDAL(t)
	path := gpkgtest.Build(t, gpkgtest.WithTiles(grid.Tile{Zoom: 0, Col: 0, Row: 0}),
		gpkgtest.WithExtent(grid.BBox{MinX: -180, MinY: -90, MaxX: 0, MaxY: 90}), gpkgtest.WithFormat(gpkg.JPEG),
		gpkgtest.WithFileName("single.gpkg"))
	gdal.Validate(t, path)
	gdal.Info(t, path)
}

// TestGDALValidatesMergedPackage merges overlapping parts the way finalize
// does, adds the export metadata, and has GDAL check the result at both
// stages: the metadata tables and their registration must satisfy
// validate_gpkg.py with extra checks and warnings as errors, and gdalinfo
// must read the raster and show the metadata document.
func TestGDALValidatesMergedPackage(t *testing.T) {
	t.Parallel()
	gdal := gpkgtest.RequireGDAL(t)
	var tiles []grid.Tile
	for _, r := range grid.Pyramid(grid.World, 2) {
		for tile := range r.Tiles {
			if tile.Zoom == 2 && (tile.Col+tile.Row)%2 == 1 {
				continue // a checkerboard, so the finest zoom is partial
			}
			tiles = append(tiles, tile)
		}
	}
	third := len(tiles) / 3
	table := gpkgtest.WithTable("export_tiles") // parts carry the export's table name
	parts := []string{buildPart(t, tiles[:2*third], table), buildPart(t, tiles[third:], table), buildPart(t, tiles[2*third:], table)}
	opt := gpkg.Options{Table: "export_tiles", Identifier: "export 42", Extent: grid.World}
	path := filepath.Join(t.TempDir(), "export.gpkg")
	res, err := gpkg.Merge(t.Context(), path, parts, opt)
	if err != nil {
		t.Fatalf("Merge() = %v", err)
	}
	if res.Tiles != int64(len(tiles)) {
		t.Errorf("Merge() = %d tiles, want %d", res.Tiles, len(tiles))
	}
	gdal.Validate(t, path)

	doc := `{"layer":"orthophoto","tiles":` + fmt.Sprint(res.Tiles) + `,"content_digest":"` + digestOf(t, path, opt.Table) + `"}`
	if err := gpkg.WriteMetadata(t.Context(), path, gpkg.Metadata{Document: []byte(doc), Now: fixedClock(time.Date(2025, 8, 9, 10, 11, 12, 0, time.UTC))}); err != nil {
		t.Fatalf("WriteMetadata() = %v", err)
	}
	gdal.Validate(t, path)
	info := gdal.Info(t, path)
	pixel := grid.Zoom(2).Resolution()
	want := gpkgtest.Info{
		DriverShortName: "GPKG",
		Size:            []int{int(360/pixel + 0.5), int(180/pixel + 0.5)},
		GeoTransform:    []float64{-180, pixel, 0, 90, 0, -pixel},
	}
	got := gpkgtest.Info{DriverShortName: info.DriverShortName, Size: info.Size, GeoTransform: info.GeoTransform}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(1e-12, 0)); diff != "" {
		t.Errorf("gdalinfo (-want +got):\n%s", diff)
	}
	if id := info.Metadata[""]["IDENTIFIER"]; id != "export 42" {
		t.Errorf("gdalinfo IDENTIFIER = %q, want %q", id, "export 42")
	}
	wantOverviews := gpkgtest.ExpectedOverviews(grid.World, []grid.Zoom{0, 1, 2})
	for i, b := range info.Bands {
		if len(b.Overviews) != wantOverviews {
			t.Errorf("band %d: %d overviews, want %d", i+1, len(b.Overviews), wantOverviews)
		}
	}
	if diff := cmp.Diff(map[string]string{"GPKG_METADATA_ITEM_1": doc}, gdal.MetadataDomain(t, path, "GEOPACKAGE")); diff != "" {
		t.Errorf("gdalinfo -mdd GEOPACKAGE (-want +got):\n%s", diff)
	}
}

// digestOf returns the content digest of table in path.
func digestOf(t *testing.T, path, table string) string {
	t.Helper()
	d, err := gpkg.ContentDigest(t.Context(), path, table)
	if err != nil {
		t.Fatalf("ContentDigest(%q) = %v", path, err)
	}
	return "sha256:" + d
}
