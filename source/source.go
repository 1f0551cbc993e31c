package source

import (
	"context"
	"errors"
	"fmt"
	"image"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/grid"
)

// Errors returned by sources in this package. Callers inspect them with
// errors.Is.
var (
	// ErrNoData reports that a source has nothing at a tile. It is not a
	// failure: the tile is simply not written to the package.
	ErrNoData = errors.New("source: no data")

	// ErrInvalidTile reports a tile address outside the grid: a zoom beyond
	// grid.MaxZoom or a column or row outside the matrix at that zoom.
	ErrInvalidTile = errors.New("source: tile outside the grid")

	// ErrInvalidData reports stored tile bytes that cannot be used: not a PNG
	// or JPEG image, not 256 × 256 pixels, or larger than the size cap.
	// Retrying does not help; the store needs fixing.
	ErrInvalidData = errors.New("source: invalid tile data")
)

// Source yields the tiles of one layer.
//
// Implementations are safe for concurrent use: a render worker calls Tile
// from many goroutines at once.
type Source interface {
	// Tile returns the tile at t (rows counted from the north).
	//
	// Errors wrap ErrNoData when the source has nothing there (not a
	// failure: the tile is skipped), ErrInvalidTile when t is not a tile
	// of the grid, ErrInvalidData when the stored tile is unusable, and
	// ctx.Err() when ctx ends first. Any other error is a failure to read
	// or produce the tile, which may be transient. Errors name the tile
	// and, where there is one, the file or object read. Tile does not
	// retain ctx, and the returned Tile belongs to the caller.
	Tile(ctx context.Context, t grid.Tile) (Tile, error)
}

// Tile is one tile as a source yields it: either encoded bytes passed
// through from storage (Data and Format set, Image nil) or an image the
// source rendered (Image set, Data nil), which the caller encodes with
// [Encode].
type Tile struct {
	// Data holds the encoded tile, exactly as stored; nil when Image is set.
	Data []byte
	// Format is the encoding of Data, detected from its magic bytes; empty
	// when Data is nil.
	Format Format
	// Opaque is true when the source knows every pixel is fully opaque.
	// False means not opaque or not known: check with IsOpaque after
	// decoding when it matters.
	Opaque bool
	// Image is the rendered tile, 256 × 256 pixels, when the source drew
	// it; nil when Data is set.
	Image image.Image
}

// Format is the encoding of a tile: the formats a GeoPackage tile table
// holds, as gpkg defines them.
type Format = gpkg.Format

// Tile encodings a GeoPackage tile table holds.
const (
	PNG  = gpkg.PNG
	JPEG = gpkg.JPEG
)

// checkRequest is the first step of every Tile method: ctx.Err() when
// ctx has ended, else checkTile(t).
func checkRequest(ctx context.Context, t grid.Tile) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return checkTile(t)
}

// checkTile reports whether t is a tile of the grid.
func checkTile(t grid.Tile) error {
	if err := t.Check(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidTile, t, err)
	}
	return nil
}
