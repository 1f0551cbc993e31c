package source

import (
	"errors"
	"fmt"
	"image"

	"golang.org/x/image/draw"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/grid"
)

// maxImageSide caps the width and height of an image a source decodes, so
// that a hostile or broken server cannot make a worker allocate gigabytes:
// 16 tiles, the largest metatile side.
const maxImageSide = MaxMetatile * grid.TileSize

// decodeImage decodes a PNG or JPEG image that should be w × h pixels
// into an *image.NRGBA (PNG with alpha, as decoded, without a copy) or an
// *image.RGBA (anything else) of exactly that size, at the origin. An
// image of another size is scaled (Catmull-Rom) when resample is set, and
// otherwise an error wrapping ErrInvalidData that names both sizes. Images
// larger than maxImageSide on a side are refused before they are decoded.
func decodeImage(data []byte, w, h int, resample bool) (image.Image, error) {
	f, size, err := readHeader(data)
	if err != nil {
		return nil, err
	}
	sized := size.X == w && size.Y == h
	switch {
	case size.X <= 0 || size.Y <= 0 || size.X > maxImageSide || size.Y > maxImageSide:
		return nil, fmt.Errorf("%w: image is %d × %d pixels, want %d × %d (at most %d on a side)",
			ErrInvalidData, size.X, size.Y, w, h, maxImageSide)
	case !sized && !resample:
		return nil, fmt.Errorf("%w: %w: image is %d × %d pixels, want %d × %d", ErrInvalidData, errWrongSize, size.X, size.Y, w, h)
	}
	img, err := decodeData(data, f)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidData, err)
	}
	if sized && img.Bounds().Min == (image.Point{}) {
		switch img.(type) {
		case *image.RGBA, *image.NRGBA:
			return img, nil
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	if sized {
		draw.Draw(dst, dst.Rect, img, img.Bounds().Min, draw.Src)
	} else {
		draw.CatmullRom.Scale(dst, dst.Rect, img, img.Bounds(), draw.Src, nil)
	}
	return dst, nil
}

// errWrongSize marks an image of the wrong size, which may be resampled.
var errWrongSize = errors.New("wrong size")

// cutTile copies the tile-sized block of m (an *image.RGBA or
// *image.NRGBA from decodeImage) whose top-left pixel is (x0, y0) into a
// new image of the same type, which the caller owns.
func cutTile(m image.Image, x0, y0 int) image.Image {
	const rowBytes = grid.TileSize * 4
	r := image.Rect(0, 0, grid.TileSize, grid.TileSize)
	cut := func(dst, src []byte, dstStride, srcStride, off int) {
		for y := range grid.TileSize {
			copy(dst[y*dstStride:y*dstStride+rowBytes], src[off+y*srcStride:])
		}
	}
	switch m := m.(type) {
	case *image.NRGBA:
		dst := image.NewNRGBA(r)
		cut(dst.Pix, m.Pix, dst.Stride, m.Stride, m.PixOffset(x0, y0))
		return dst
	case *image.RGBA:
		dst := image.NewRGBA(r)
		cut(dst.Pix, m.Pix, dst.Stride, m.Stride, m.PixOffset(x0, y0))
		return dst
	}
	dst := image.NewRGBA(r)
	draw.Draw(dst, r, m, image.Pt(x0, y0), draw.Src)
	return dst
}

// checkStored validates stored tile bytes for a source that passes them
// through: what gpkg writes (gpkg.CheckTileData). It returns the format and
// whether the header says the tile is opaque; errors wrap ErrInvalidData,
// and errWrongSize for an image of other dimensions.
func checkStored(data []byte) (Format, bool, error) {
	f, err := gpkg.CheckTileData(data)
	switch {
	case errors.Is(err, gpkg.ErrTileSize):
		return "", false, fmt.Errorf("%w: %w: %w", ErrInvalidData, errWrongSize, err)
	case err != nil:
		return "", false, fmt.Errorf("%w: %w", ErrInvalidData, err)
	}
	return f, f == JPEG || pngOpaque(data), nil
}

// readHeader detects an image's format and reads its size from its
// header; errors wrap ErrInvalidData.
func readHeader(data []byte) (Format, image.Point, error) {
	f, size, err := gpkg.DecodeTileHeader(data)
	if err != nil {
		return "", size, fmt.Errorf("%w: %w", ErrInvalidData, err)
	}
	return f, size, nil
}

// DecodeTile decodes a stored tile's PNG or JPEG bytes into an
// *image.NRGBA or *image.RGBA of exactly one tile; an image of another
// size is an error wrapping ErrInvalidData.
func DecodeTile(data []byte) (image.Image, error) {
	return decodeImage(data, grid.TileSize, grid.TileSize, false)
}
