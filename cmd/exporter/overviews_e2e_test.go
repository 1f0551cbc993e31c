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
)

// storeColour is the colour of tile (col, row) of the finest-zoom store.
func storeColour(col, row int64) color.NRGBA {
	return color.NRGBA{R: uint8(col * 29), G: uint8(row * 53), B: 128, A: 255}
}

// TestEndToEndDownsampleTileStore exports a tile store that holds only
// its finest zoom (12) with overviews built by downsampling, in batches
// of at most 100 tiles, so that the zooms above the pivot are built by the
// finalize from the merged parts: every zoom 0..12 holds exactly the
// pyramid's tiles, each built tile shows its children's colours, and
// GDAL reads the package as valid.
func TestEndToEndDownsampleTileStore(t *testing.T) {
	t.Parallel()
	const z = grid.Zoom(12)
	// 16 × 16 tiles at zoom 12, aligned to 16, so every coarser zoom has whole tiles.
	r := grid.TileRange{Zoom: z, MinCol: 4880, MaxCol: 4896, MinRow: 1312, MaxRow: 1328}
	extent := r.Bounds()
	store := t.TempDir()
	for tile := range r.Tiles {
		m := image.NewNRGBA(image.Rect(0, 0, grid.TileSize, grid.TileSize))
		c := storeColour(tile.Col, tile.Row)
		for i := 0; i < len(m.Pix); i += 4 {
			m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, c.A
		}
		path := filepath.Join(store, fmt.Sprint(z), fmt.Sprint(tile.Col), fmt.Sprintf("%d.png", tile.Row))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, m); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cat := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(cat, []byte(fmt.Sprintf(`{"layers":[{"id":"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a11","productId":"finest",
	  "productType":"Orthophoto","version":"1","footprint":[%v,%v,%v,%v],"maxResolution":%v,"tileFormat":"png",
	  "overviews":"downsample","source":{"kind":"tilestore","path":%q,"rowOrigin":"top"}}]}`,
		extent.MinX, extent.MinY, extent.MaxX, extent.MaxY, z.Resolution(), store)), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, 100, map[string]string{"EXPORTER_CATALOG_FILE": cat})
	c.worker(map[string]string{"EXPORTER_WORKER_FETCHERS": "4", "EXPORTER_WORKER_ENCODERS": "2"})
	created := c.api.postJSON(t, "/create", fmt.Sprintf(`{"dbId":"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a11","bbox":[%v,%v,%v,%v],
	  "targetResolution":%v,"callbackURLs":[]}`, extent.MinX, extent.MinY, extent.MaxX, extent.MaxY, z.Resolution()))
	j := waitCompleted(t, c.api, created["id"].(string))
	path := downloadPackage(t, c.api, j["result"].(map[string]any)["fileUri"].(string))

	want := map[grid.Zoom]int64{}
	for _, pr := range grid.Pyramid(extent, z) {
		want[pr.Zoom] = pr.Count()
	}
	_, got := tileCount(t, path)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tiles by zoom (-want +got):\n%s", diff)
	}
	checkWithGDAL(t, path, extent, z)

	rd, err := gpkg.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	tables, err := rd.Tables(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A tile of zoom 11 (built by a batch) and of zoom 9 (built by the
	// finalize) show each child's colour in its quadrant.
	for _, parent := range []grid.Tile{{Zoom: 11, Col: 2441, Row: 657}, {Zoom: 9, Col: 610, Row: 164}} {
		data, err := rd.ReadTile(t.Context(), tables[0], parent)
		if err != nil {
			t.Fatalf("ReadTile(%s): %v", parent, err)
		}
		img, err := source.DecodeTile(data)
		if err != nil {
			t.Fatal(err)
		}
		shift := uint(z - parent.Zoom)
		for _, at := range []image.Point{{0, 0}, {255, 0}, {0, 255}, {200, 100}} {
			col := parent.Col<<shift + int64(at.X)>>(8-shift)
			row := parent.Row<<shift + int64(at.Y)>>(8-shift)
			if got, want := color.NRGBAModel.Convert(img.At(at.X, at.Y)), storeColour(col, row); got != want {
				t.Errorf("tile %s pixel %v = %v, want %v, the colour of tile %d/%d/%d", parent, at, got, want, z, col, row)
			}
		}
	}
}
