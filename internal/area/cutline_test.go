package area_test

import (
	"testing"

	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/grid"
)

func TestCutterMask(t *testing.T) {
	t.Parallel()
	z := grid.Zoom(10)
	tile := grid.Tile{Zoom: z, Col: 1200, Row: 300}
	b := z.TileBounds(tile.Col, tile.Row)
	mid := (b.MinX + b.MaxX) / 2
	// The west half of the tile at zooms 9–10, and a box around its zoom-5
	// ancestor at zooms 0–5.
	west := area.BBoxFeature(grid.BBox{MinX: b.MinX - 1, MinY: b.MinY - 1, MaxX: mid, MaxY: b.MaxY + 1}, z.Resolution(), z)
	west.MinZoom = 9
	parent := grid.Tile{Zoom: 5, Col: tile.Col >> 5, Row: tile.Row >> 5}
	pb := parent.Zoom.TileBounds(parent.Col, parent.Row)
	around := area.BBoxFeature(grid.BBox{MinX: pb.MinX - 1, MinY: pb.MinY - 1, MaxX: pb.MaxX + 1, MaxY: pb.MaxY + 1}, grid.Zoom(5).Resolution(), 5)
	c, err := area.NewCutter([]area.Feature{west, around}, area.BBoxFootprint(grid.World))
	if err != nil {
		t.Fatal(err)
	}
	mask, whole := c.Mask(tile)
	if whole || mask.Count() != 128*256 || mask.Zoom != z+area.PixelZoom {
		t.Errorf("Mask of a half-covered tile = %d pixels at zoom %d (whole %v), want 128 × 256 at zoom %d", mask.Count(), mask.Zoom, whole, z+area.PixelZoom)
	}
	if r := mask.Bounds(); r.MinCol != tile.Col*256 || r.MaxCol != tile.Col*256+128 || r.MinRow != tile.Row*256 || r.MaxRow != (tile.Row+1)*256 {
		t.Errorf("mask bounds = %+v, want the tile's west half in pixels", r)
	}
	if _, whole := c.Mask(parent); !whole {
		t.Errorf("Mask of a tile inside the box at zoom 5 is not whole")
	}
	if mask, _ := c.Mask(grid.Tile{Zoom: 7, Col: tile.Col >> 3, Row: tile.Row >> 3}); mask.Count() != 0 {
		t.Errorf("Mask at zoom 7, which no feature asks for = %d pixels, want 0", mask.Count())
	}
}
