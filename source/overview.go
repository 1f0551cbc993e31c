package source

import (
	"fmt"
	"image"
	"image/draw"

	"github.com/geoexport/exporter/internal/grid"
)

// Resampling is how Reduce turns each 2 × 2 block of a child tile's pixels
// into one pixel of its parent.
type Resampling string

// Resamplings a layer may name (catalog's overviewResampling).
const (
	// ResampleAverage is the area average fit for imagery, as gdaladdo's
	// "average": the colour is the mean of the four samples that carry
	// data, weighted by their alpha, so transparent and no-data samples at
	// the edges of the data never darken or lighten it; the alpha is the
	// mean of the four alphas, rounded up.
	ResampleAverage Resampling = "average"
	// ResampleNearest takes the top-left sample of each block as it is:
	// no new colours, for paletted or classified maps.
	ResampleNearest Resampling = "nearest"
)

// ParseResampling parses a layer's overviewResampling; empty is
// ResampleAverage.
func ParseResampling(s string) (Resampling, error) {
	switch r := Resampling(s); r {
	case "":
		return ResampleAverage, nil
	case ResampleAverage, ResampleNearest:
		return r, nil
	}
	return "", fmt.Errorf("source: unknown resampling %q: want average or nearest", s)
}

// half is the side of a child's pixels in its parent.
const half = grid.TileSize / 2

// NewOverview returns a fully transparent tile, for Reduce to fill with the
// quadrants of the children that have data. A child with no data leaves
// its quadrant transparent.
func NewOverview() *image.NRGBA {
	return image.NewNRGBA(image.Rect(0, 0, grid.TileSize, grid.TileSize))
}

// Quadrant is where child (col, row) of a tile lies in it: 0 top-left,
// 1 top-right, 2 bottom-left, 3 bottom-right (rows from the north).
func Quadrant(child grid.Tile) int {
	return int(child.Col&1) + 2*int(child.Row&1)
}

// Reduce draws child, a 256 × 256 tile, at half its size into quadrant q
// of dst (a tile from NewOverview) by r. Samples of nd's colour (within
// its tolerance) count as no data, like transparent ones: they give the
// average no colour, and a pixel whose samples are all of it keeps it,
// opaque as the source painted it. nd may be nil.
func Reduce(dst *image.NRGBA, q int, child image.Image, r Resampling, nd *NoData) error {
	if b := child.Bounds(); b.Dx() != grid.TileSize || b.Dy() != grid.TileSize {
		return fmt.Errorf("source: reduce a %dx%d image: want a %dx%d tile", b.Dx(), b.Dy(), grid.TileSize, grid.TileSize)
	}
	src := nrgba(child)
	x0, y0 := (q&1)*half, (q>>1)*half
	for y := range half {
		top := src.Pix[(2*y)*src.Stride:][:8*half]
		bottom := src.Pix[(2*y+1)*src.Stride:][:8*half]
		out := dst.Pix[(y0+y)*dst.Stride+x0*4:][:4*half]
		if r == ResampleNearest {
			for x := range half {
				copy(out[4*x:4*x+4], top[8*x:8*x+4])
			}
			continue
		}
		for x := range half {
			t, b, o := top[8*x:8*x+8:8*x+8], bottom[8*x:8*x+8:8*x+8], out[4*x:4*x+4:4*x+4]
			if nd == nil && t[3]&t[7]&b[3]&b[7] == 0xff {
				// Opaque data, the common case: the plain mean.
				o[0] = byte((uint32(t[0]) + uint32(t[4]) + uint32(b[0]) + uint32(b[4]) + 2) / 4)
				o[1] = byte((uint32(t[1]) + uint32(t[5]) + uint32(b[1]) + uint32(b[5]) + 2) / 4)
				o[2] = byte((uint32(t[2]) + uint32(t[6]) + uint32(b[2]) + uint32(b[6]) + 2) / 4)
				o[3] = 0xff
				continue
			}
			average(o, t[0:4], t[4:8], b[0:4], b[4:8], nd)
		}
	}
	return nil
}

// average writes into o the area average of four non-premultiplied RGBA
// samples.
func average(o, s0, s1, s2, s3 []byte, nd *NoData) {
	var alpha, weight, r, g, b uint32
	for _, p := range [4][]byte{s0, s1, s2, s3} {
		a := uint32(p[3])
		alpha += a
		if a == 0 || nd != nil && nd.near(p[0], p[1], p[2]) {
			continue
		}
		weight += a
		r += uint32(p[0]) * a
		g += uint32(p[1]) * a
		b += uint32(p[2]) * a
	}
	switch {
	case weight > 0:
		o[0], o[1], o[2] = byte((r+weight/2)/weight), byte((g+weight/2)/weight), byte((b+weight/2)/weight)
	case alpha > 0: // only no-data samples: keep the colour the source paints
		o[0], o[1], o[2] = nd.R, nd.G, nd.B
	default:
		o[0], o[1], o[2] = 0, 0, 0
	}
	// Rounded up, so that a pixel with any data is never fully
	// transparent: an area smaller than a pixel stays visible at every
	// coarser zoom, and a tile is left out only where no finer one has
	// data.
	o[3] = byte((alpha + 3) / 4)
}

// nrgba returns img as non-premultiplied RGBA starting at (0, 0): as it is
// when it already is, else converted.
func nrgba(img image.Image) *image.NRGBA {
	b := img.Bounds()
	if m, ok := img.(*image.NRGBA); ok {
		// A view from (0, 0): a tile cut from a metatile is a sub-image.
		return &image.NRGBA{Pix: m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], Stride: m.Stride, Rect: image.Rect(0, 0, b.Dx(), b.Dy())}
	}
	if rgba, ok := img.(*image.RGBA); ok && IsOpaque(rgba) {
		// Opaque premultiplied pixels are the same bytes (a decoded JPEG).
		return &image.NRGBA{Pix: rgba.Pix[rgba.PixOffset(b.Min.X, b.Min.Y):], Stride: rgba.Stride, Rect: image.Rect(0, 0, b.Dx(), b.Dy())}
	}
	m := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	if rgba, ok := img.(*image.RGBA); ok {
		// Un-premultiply directly: draw's generic path goes through
		// color.Color per pixel.
		for y := range b.Dy() {
			in := rgba.Pix[rgba.PixOffset(b.Min.X, b.Min.Y+y):][:4*b.Dx()]
			out := m.Pix[y*m.Stride:][:4*b.Dx()]
			for i := 0; i < len(in); i += 4 {
				a := uint32(in[i+3])
				switch a {
				case 0xff:
					copy(out[i:i+4], in[i:i+4])
				case 0:
				default:
					out[i] = byte((uint32(in[i])*0xff + a/2) / a)
					out[i+1] = byte((uint32(in[i+1])*0xff + a/2) / a)
					out[i+2] = byte((uint32(in[i+2])*0xff + a/2) / a)
					out[i+3] = byte(a)
				}
			}
		}
		return m
	}
	draw.Draw(m, m.Rect, img, b.Min, draw.Src)
	return m
}
