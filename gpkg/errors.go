package gpkg

import (
	"context"
	"database/sql"
	"errors"

	"github.com/mattn/go-sqlite3"
)

// Errors returned by this package. Every error that comes from SQLite is
// classified into one of them (ErrDatabase when nothing more specific fits),
// so callers test with errors.Is and never see the driver's types.
var (
	// ErrNotGeoPackage means the file is not an SQLite database, or is one
	// without the GeoPackage application_id or required tables.
	ErrNotGeoPackage = errors.New("gpkg: not a geopackage")
	// ErrNotTiles means the file is a GeoPackage without a usable tile
	// pyramid table.
	ErrNotTiles = errors.New("gpkg: not a tiles geopackage")
	// ErrCorrupt means SQLite or the header checks found the file damaged.
	ErrCorrupt = errors.New("gpkg: file is corrupt")
	// ErrExists means Create was given a path that already exists.
	ErrExists = errors.New("gpkg: file already exists")
	// ErrInvalidOptions means Options.Validate found a problem.
	ErrInvalidOptions = errors.New("gpkg: invalid options")
	// ErrNoParts means Merge was given no part to merge.
	ErrNoParts = errors.New("gpkg: no parts to merge")
	// ErrTooManyParts means Merge was given more than MaxMergeParts parts.
	ErrTooManyParts = errors.New("gpkg: too many parts to merge")
	// ErrInvalidMetadata means a Metadata document is not JSON or is larger
	// than MaxMetadataSize.
	ErrInvalidMetadata = errors.New("gpkg: invalid metadata")
	// ErrInvalidTable means a table name is not a safe SQL identifier for a
	// tile table (see ValidateTable).
	ErrInvalidTable = errors.New("gpkg: invalid table name")
	// ErrInvalidTile means a tile address lies outside the grid.
	ErrInvalidTile = errors.New("gpkg: tile outside the grid")
	// ErrTileFormat means tile data is not a PNG or JPEG image of
	// grid.TileSize × grid.TileSize pixels.
	ErrTileFormat = errors.New("gpkg: unsupported tile data")
	// ErrTileSize means tile data is an image of other dimensions than
	// grid.TileSize × grid.TileSize; errors that wrap it wrap ErrTileFormat
	// too.
	ErrTileSize = errors.New("wrong dimensions")
	// ErrTooLarge means a tile (or another value in the file) is larger
	// than MaxTileSize.
	ErrTooLarge = errors.New("gpkg: value too large")
	// ErrNotGrid means a tile table is not in the grid of package grid:
	// another CRS, or zoom levels or bounds the grid does not have.
	ErrNotGrid = errors.New("gpkg: tile table not in the grid")
	// ErrTableNotFound means the package has no tile table of that name.
	ErrTableNotFound = errors.New("gpkg: tile table not found")
	// ErrTileNotFound means the tile table has no tile at that address.
	ErrTileNotFound = errors.New("gpkg: tile not found")
	// ErrClosed means the Writer or Reader was used after Close or Abort.
	ErrClosed = errors.New("gpkg: closed")
	// ErrBusy means another connection holds a lock on the file.
	ErrBusy = errors.New("gpkg: database is locked")
	// ErrFull means the disk (or a configured size limit) is full.
	ErrFull = errors.New("gpkg: disk full")
	// ErrIO means the operating system failed to read or write the file.
	ErrIO = errors.New("gpkg: i/o error")
	// ErrDatabase is any other SQLite failure.
	ErrDatabase = errors.New("gpkg: database error")
)

// sqliteError is a driver error classified as one of the sentinels. It
// unwraps to the sentinel only and keeps the message (with any context
// wrapped around the driver error) as text, so the driver's types never
// leak to callers.
type sqliteError struct {
	kind error
	msg  string
}

func (e *sqliteError) Error() string { return e.kind.Error() + ": " + e.msg }

func (e *sqliteError) Unwrap() error { return e.kind }

// translate classifies an error from database/sql or the SQLite driver. An
// interrupt or a rolled-back transaction caused by ctx becomes ctx.Err();
// other errors that did not come from SQLite pass through unchanged.
func translate(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	// database/sql rolls a transaction back as soon as its context is done,
	// and the statements after that report ErrTxDone instead of the cause.
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, sql.ErrTxDone) {
		return ctxErr
	}
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return err
	}
	var kind error
	switch se.Code {
	case sqlite3.ErrInterrupt:
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		kind = ErrDatabase
	case sqlite3.ErrCorrupt:
		kind = ErrCorrupt
	case sqlite3.ErrNotADB:
		kind = ErrNotGeoPackage
	case sqlite3.ErrBusy, sqlite3.ErrLocked:
		kind = ErrBusy
	case sqlite3.ErrFull:
		kind = ErrFull
	case sqlite3.ErrIoErr, sqlite3.ErrCantOpen, sqlite3.ErrPerm, sqlite3.ErrReadonly, sqlite3.ErrNoLFS:
		kind = ErrIO
	case sqlite3.ErrTooBig:
		kind = ErrTooLarge
	default:
		kind = ErrDatabase
	}
	return &sqliteError{kind: kind, msg: err.Error()}
}
