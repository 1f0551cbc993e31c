package sourcetest

import (
	"fmt"
	"image"
	"image/color"

	"github.com/geoexport/exporter/internal/grid"
)

// NorthColor is the colour of the north half of PatternTile(t): opaque,
// different for every tile of zooms 0..4, with channels 8 or more apart
// so that JPEG compression cannot blur one tile into another.
func NorthColor(t grid.Tile) color.NRGBA {
	return color.NRGBA{R: uint8(16 + 24*int(t.Zoom)), G: uint8(t.Col * 8), B: uint8(t.Row * 8), A: 255}
}

// SouthColor is the colour of the south half of PatternTile(t): the
// inverse of NorthColor, far from it in every channel.
func SouthColor(t grid.Tile) color.NRGBA {
	c := NorthColor(t)
	return color.NRGBA{R: 255 - c.R, G: 255 - c.G, B: 255 - c.B, A: 255}
}

// PatternTile returns a 256 × 256 opaque tile whose north half (rows
// 0..127) is NorthColor(t) and south half SouthColor(t), so that both its
// address and its orientation can be read back.
func PatternTile(t grid.Tile) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, grid.TileSize, grid.TileSize))
	n, s := NorthColor(t), SouthColor(t)
	for y := range grid.TileSize {
		c := n
		if y >= grid.TileSize/2 {
			c = s
		}
		for x := range grid.TileSize {
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// CheckPattern reports how img differs from PatternTile(t) at the centres
// of its two halves: a wrong tile, a tile upside down, or a blank one.
// Colours may differ by tolerance per channel (JPEG moves them a little).
func CheckPattern(img image.Image, t grid.Tile, tolerance uint8) error {
	b := img.Bounds()
	if b.Dx() != grid.TileSize || b.Dy() != grid.TileSize {
		return fmt.Errorf("tile %s: image is %d × %d pixels, want %d × %d", t, b.Dx(), b.Dy(), grid.TileSize, grid.TileSize)
	}
	for _, probe := range []struct {
		name string
		y    int
		want color.NRGBA
	}{
		{"north", grid.TileSize / 4, NorthColor(t)},
		{"south", 3 * grid.TileSize / 4, SouthColor(t)},
	} {
		got := color.NRGBAModel.Convert(img.At(b.Min.X+grid.TileSize/2, b.Min.Y+probe.y)).(color.NRGBA)
		if !near(got, probe.want, tolerance) {
			return fmt.Errorf("tile %s: %s half is %v, want %v (north %v, south %v)",
				t, probe.name, got, probe.want, NorthColor(t), SouthColor(t))
		}
	}
	return nil
}

func near(a, b color.NRGBA, tol uint8) bool {
	d := func(x, y uint8) bool { return max(x, y)-min(x, y) <= tol }
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B) && d(a.A, b.A)
}
