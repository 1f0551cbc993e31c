package source

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"

	"github.com/geoexport/exporter/internal/grid"
)

// NoData is the colour a source paints where it has no data, such as the
// black or white background of a WMS without transparency or of JPEG
// imagery. A tile whose every pixel is that colour, or fully transparent,
// carries no data and is not written.
type NoData struct {
	// R, G and B are the colour, without premultiplied alpha.
	R, G, B uint8
	// Tolerance is the largest difference per channel that still counts
	// as the colour. Zero means an exact match; JPEG tiles need a few
	// units (8 is typical), because compression moves flat colours.
	Tolerance uint8
}

// String formats n as #rrggbb, with the tolerance when there is one.
func (n NoData) String() string {
	if n.Tolerance == 0 {
		return fmt.Sprintf("#%02x%02x%02x", n.R, n.G, n.B)
	}
	return fmt.Sprintf("#%02x%02x%02x±%d", n.R, n.G, n.B, n.Tolerance)
}

// blank says why img carries no data, completing "tile is …":
// "transparent" when every pixel is fully transparent, "all <nd>" when nd
// is set and every pixel is its colour; "" when img has data.
func blank(img image.Image, nd *NoData) string {
	if IsEmpty(img) {
		return "transparent"
	}
	if nd != nil && IsNoData(img, *nd) {
		return fmt.Sprintf("all %s", nd)
	}
	return ""
}

// IsNoData reports whether every pixel of img is either fully transparent
// or n's colour, within n's tolerance. Translucent pixels are compared by
// their colour without alpha. An image with empty bounds is no data. It
// returns at the first pixel that is data, so tiles with data cost little.
func IsNoData(img image.Image, n NoData) bool {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.RGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][: b.Dx()*4 : b.Dx()*4]
			for i := 0; i < len(row); i += 4 {
				px := row[i : i+4 : i+4]
				switch a := px[3]; a {
				case 0:
				case 0xff:
					if !n.near(px[0], px[1], px[2]) {
						return false
					}
				default:
					c := color.NRGBAModel.Convert(color.RGBA{px[0], px[1], px[2], a}).(color.NRGBA)
					if !n.near(c.R, c.G, c.B) {
						return false
					}
				}
			}
		}
		return true
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][: b.Dx()*4 : b.Dx()*4]
			for i := 0; i < len(row); i += 4 {
				px := row[i : i+4 : i+4]
				if px[3] != 0 && !n.near(px[0], px[1], px[2]) {
					return false
				}
			}
		}
		return true
	case *image.YCbCr:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				r, g, bl := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				if !n.near(r, g, bl) {
					return false
				}
			}
		}
		return true
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if c.A != 0 && !n.near(c.R, c.G, c.B) {
				return false
			}
		}
	}
	return true
}

func (n NoData) near(r, g, b uint8) bool {
	return absDiff(r, n.R) <= n.Tolerance && absDiff(g, n.G) <= n.Tolerance && absDiff(b, n.B) <= n.Tolerance
}

func absDiff(a, b uint8) uint8 {
	if a > b {
		return a - b
	}
	return b - a
}

// FilterNoData wraps src so that tiles with no data become ErrNoData:
// tiles that IsNoData finds entirely of nd's colour (or transparent), and
// rendered tiles that are entirely transparent. Stored tiles (Tile.Data)
// are decoded for the check and passed on unchanged when they hold data.
//
// Use it for sources that do not check a no-data colour themselves (the
// tile store, the demo); the HTTP and GeoPackage sources take NoData in
// their configs and check while they decode. The result is safe for
// concurrent use when src is, and its Close closes src when src is an
// io.Closer.
func FilterNoData(src Source, nd NoData) Source {
	return &noDataFilter{src: src, nd: nd}
}

type noDataFilter struct {
	src Source
	nd  NoData
}

func (f *noDataFilter) Tile(ctx context.Context, t grid.Tile) (Tile, error) {
	tile, err := f.src.Tile(ctx, t)
	if err != nil {
		return Tile{}, err
	}
	img := tile.Image
	if img == nil {
		if img, err = decodeData(tile.Data, tile.Format); err != nil {
			return Tile{}, fmt.Errorf("check tile %s for no data: %w: %w", t, ErrInvalidData, err)
		}
	}
	if IsNoData(img, f.nd) {
		return Tile{}, fmt.Errorf("tile %s is all %s: %w", t, f.nd, ErrNoData)
	}
	return tile, nil
}

// Close closes the wrapped source when it is an io.Closer.
func (f *noDataFilter) Close() error {
	if c, ok := f.src.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// decodeData decodes a stored tile of format f.
func decodeData(data []byte, f Format) (image.Image, error) {
	switch f {
	case PNG:
		return png.Decode(bytes.NewReader(data))
	case JPEG:
		if m, err := turboDecode(data); err == nil {
			return m, nil
		}
		return jpeg.Decode(bytes.NewReader(data))
	}
	return nil, fmt.Errorf("decode tile: format %s", f)
}
