package gpkg

import (
	"bytes"
	"fmt"
	"image"
	"image/png"

	"github.com/geoexport/exporter/internal/grid"
)

// MaxTileSize is the largest tile data, in bytes, that Put writes and
// ReadTile returns. A 256 × 256 RGBA PNG of pure noise is about 260 KiB, so
// the cap only stops data that cannot be a sane tile.
const MaxTileSize = 2 << 20

// Format is the image encoding of a tile.
type Format string

// String returns f's name, or "unknown" for the zero value.
func (f Format) String() string {
	if f == "" {
		return "unknown"
	}
	return string(f)
}

// DetectFormat returns the encoding of data from its magic bytes, and false
// when data starts like neither a PNG nor a JPEG.
func DetectFormat(data []byte) (Format, bool) {
	switch {
	case bytes.HasPrefix(data, pngMagic):
		return PNG, true
	case bytes.HasPrefix(data, jpegMagic):
		return JPEG, true
	}
	return "", false
}

// Tile formats that a tiles GeoPackage may hold without extensions.
const (
	PNG  Format = "png"
	JPEG Format = "jpeg"
)

var (
	pngMagic  = []byte("\x89PNG\r\n\x1a\n")
	jpegMagic = []byte{0xff, 0xd8, 0xff}
)

// checkTile reports whether t is an address of the grid. Errors wrap
// ErrInvalidTile.
func checkTile(t grid.Tile) error {
	if err := t.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTile, err)
	}
	return nil
}

// CheckTileData reports the format of data, or an error if it is not a PNG
// or JPEG image of grid.TileSize × grid.TileSize pixels of at most
// MaxTileSize bytes. Only the image header is read, so the cost does not
// depend on the pixel data. Errors wrap ErrTileFormat (and ErrTileSize for
// an image of other dimensions) or ErrTooLarge.
func CheckTileData(data []byte) (Format, error) {
	if len(data) > MaxTileSize {
		return "", fmt.Errorf("%w: tile data is %d bytes, at most %d allowed", ErrTooLarge, len(data), MaxTileSize)
	}
	format, size, err := DecodeTileHeader(data)
	if err != nil {
		return "", err
	}
	if size.X != grid.TileSize || size.Y != grid.TileSize {
		return "", fmt.Errorf("%w: %w: %s image is %d × %d pixels, want %d × %d", ErrTileFormat, ErrTileSize, format, size.X, size.Y, grid.TileSize, grid.TileSize)
	}
	return format, nil
}

// DecodeTileHeader detects the format of image data and reads the image's
// width and height from its header; errors wrap ErrTileFormat. It does not
// check the size. A JPEG's frame header is read without a decoder (see
// jpegSize); a PNG's header by image/png.
func DecodeTileHeader(data []byte) (Format, image.Point, error) {
	var (
		size image.Point
		err  error
	)
	format, _ := DetectFormat(data)
	switch {
	case format == PNG:
		var cfg image.Config
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
		size = image.Pt(cfg.Width, cfg.Height)
	case format == JPEG:
		size, err = jpegSize(data)
	case len(data) == 0:
		return "", size, fmt.Errorf("%w: empty", ErrTileFormat)
	default:
		return "", size, fmt.Errorf("%w: neither PNG nor JPEG (starts with % x)", ErrTileFormat, data[:min(len(data), 8)])
	}
	if err != nil {
		return "", size, fmt.Errorf("%w: bad %s header: %w", ErrTileFormat, format, err)
	}
	return format, size, nil
}
