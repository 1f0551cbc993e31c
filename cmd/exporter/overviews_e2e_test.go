package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
	"github.com/geoexport/exporter/source/sourcetest"
)

// finestZoom is the only zoom the sources of the overviews tests hold.
const finestZoom = grid.Zoom(12)

// storeColour is the colour of tile (col, row) of the finest zoom.
func storeColour(col, row int64) color.NRGBA {
	return color.NRGBA{R: uint8(col * 29), G: uint8(row * 53), B: 128, A: 255}
}

// finestTiles is a tile of storeColour for each tile of r.
func finestTiles(r grid.TileRange) map[grid.Tile]image.Image {
	tiles := map[grid.Tile]image.Image{}
	for tile := range r.Tiles {
		m := image.NewNRGBA(image.Rect(0, 0, grid.TileSize, grid.TileSize))
		c := storeColour(tile.Col, tile.Row)
		for i := 0; i < len(m.Pix); i += 4 {
			m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, c.A
		}
		tiles[tile] = m
	}
	return tiles
}

// TestEndToEndDownsampleTileStore exports a tile store that holds only
// its finest zoom with overviews built by downsampling, in batches of at
// most 100 tiles, so that the zooms above the pivot are built by the
// finalize from the merged parts.
func TestEndToEndDownsampleTileStore(t *testing.T) {
	t.Parallel()
	// 16 × 16 tiles, aligned to 16: every coarser zoom has whole tiles.
	r := grid.TileRange{Zoom: finestZoom, MinCol: 4880, MaxCol: 4896, MinRow: 1312, MaxRow: 1328}
	store := t.TempDir()
	for tile, img := range finestTiles(r) {
		path := filepath.Join(store, fmt.Sprint(tile.Zoom), fmt.Sprint(tile.Col), fmt.Sprintf("%d.png", tile.Row))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	path := exportDownsampled(t, r, fmt.Sprintf(`{"kind":"tilestore","path":%q,"rowOrigin":"top"}`, store))
	// Zoom 11 is built by a batch, zoom 9 by the finalize.
	checkQuadrants(t, path, grid.Tile{Zoom: 11, Col: 2441, Row: 657}, r)
	checkQuadrants(t, path, grid.Tile{Zoom: 9, Col: 610, Row: 164}, r)
}

// TestEndToEndDownsampleWMS exports from a WMS (MapProxy, 4 × 4 metatiles)
// whose data exists only at the finest zoom, over an extent not aligned to
// any coarser zoom, so that the edge tiles of every coarser zoom are built
// from the children the export holds and are transparent beyond them.
func TestEndToEndDownsampleWMS(t *testing.T) {
	t.Parallel()
	r := grid.TileRange{Zoom: finestZoom, MinCol: 4883, MaxCol: 4897, MinRow: 1313, MaxRow: 1327}
	mp := sourcetest.ServeTiles(t, finestZoom, finestTiles(r))
	path := exportDownsampled(t, r, fmt.Sprintf(`{"kind":"wms","url":%q,"layers":[%q],"format":"image/png","transparent":true,"metatile":[4,4]}`,
		mp.WMSURL(), sourcetest.Layer))
	// The top-left tile of zoom 11 holds only its bottom-right child.
	checkQuadrants(t, path, grid.Tile{Zoom: 11, Col: 2441, Row: 656}, r)
	checkQuadrants(t, path, grid.Tile{Zoom: 11, Col: 2444, Row: 660}, r)
	checkQuadrants(t, path, grid.Tile{Zoom: 8, Col: 305, Row: 82}, r)
}

// exportDownsampled exports the extent of r from a layer of src with
// overviews built by downsampling and returns the package: every zoom
// 0..finestZoom holds exactly the pyramid's tiles, and GDAL reads it as
// valid.
func exportDownsampled(t *testing.T, r grid.TileRange, src string) string {
	t.Helper()
	extent := r.Bounds()
	cat := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(cat, []byte(fmt.Sprintf(`{"layers":[{"id":"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a11","productId":"finest",
	  "productType":"Orthophoto","version":"1","footprint":[%v,%v,%v,%v],"maxResolution":%v,"tileFormat":"png",
	  "overviews":"downsample","source":%s}]}`,
		extent.MinX, extent.MinY, extent.MaxX, extent.MaxY, finestZoom.Resolution(), src)), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, 100, map[string]string{"EXPORTER_CATALOG_FILE": cat})
	c.worker(map[string]string{"EXPORTER_WORKER_FETCHERS": "4", "EXPORTER_WORKER_ENCODERS": "2"})
	created := c.api.postJSON(t, "/create", fmt.Sprintf(`{"dbId":"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a11","bbox":[%v,%v,%v,%v],
	  "targetResolution":%v,"callbackURLs":[]}`, extent.MinX, extent.MinY, extent.MaxX, extent.MaxY, finestZoom.Resolution()))
	if n := len(created["taskIds"].([]any)); n < 3 {
		t.Fatalf("POST /create planned %d batches, want a top batch and several below the pivot", n)
	}
	j := waitCompleted(t, c.api, created["id"].(string))
	path := downloadPackage(t, c.api, j["result"].(map[string]any)["fileUri"].(string))
	want := map[grid.Zoom]int64{}
	for _, pr := range grid.Pyramid(extent, finestZoom) {
		want[pr.Zoom] = pr.Count()
	}
	if _, got := tileCount(t, path); !cmp.Equal(want, got) {
		t.Errorf("tiles by zoom (-want +got):\n%s", cmp.Diff(want, got))
	}
	checkWithGDAL(t, path, extent, finestZoom)
	return path
}

// checkQuadrants reads tile parent of the package at path and checks a
// few pixels of each of its quadrants: the colour of the finest tile
// below them where r holds one, transparent where it does not.
func checkQuadrants(t *testing.T, path string, parent grid.Tile, r grid.TileRange) {
	t.Helper()
	rd, err := gpkg.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	tables, err := rd.Tables(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	data, err := rd.ReadTile(t.Context(), tables[0], parent)
	if err != nil {
		t.Fatalf("ReadTile(%s): %v", parent, err)
	}
	img, err := source.DecodeTile(data)
	if err != nil {
		t.Fatal(err)
	}
	shift := uint(finestZoom - parent.Zoom)
	for _, at := range []image.Point{{1, 1}, {254, 1}, {1, 254}, {254, 254}, {200, 100}} {
		col := parent.Col<<shift + int64(at.X)>>(8-shift)
		row := parent.Row<<shift + int64(at.Y)>>(8-shift)
		want := color.NRGBA{}
		if r.Contains(col, row) {
			want = storeColour(col, row)
		}
		if got := color.NRGBAModel.Convert(img.At(at.X, at.Y)); got != want {
			t.Errorf("tile %s pixel %v = %v, want %v (tile %d/%d/%d)", parent, at, got, want, finestZoom, col, row)
		}
	}
}
