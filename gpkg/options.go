package gpkg

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/geoexport/exporter/internal/grid"
)

// DefaultBatchSize is the number of tiles written per transaction when
// Options.BatchSize is zero. Commits are cheap during a bulk load (no fsync,
// in-memory journal), so the size mostly bounds the dirty pages one
// transaction keeps.
const DefaultBatchSize = 5000

// MaxTableNameLength is the longest tile table name ValidateTable accepts,
// in bytes.
const MaxTableNameLength = 64

// Options configures Create.
type Options struct {
	// Table is the name of the tile pyramid table. Required; it must pass
	// ValidateTable.
	Table string
	// Identifier is the human-readable name stored in
	// gpkg_contents.identifier. Empty means Table.
	Identifier string
	// Description is stored in gpkg_contents.description. Empty is allowed.
	Description string
	// Extent is the area the package covers, stored as the bounds in
	// gpkg_contents; GDAL sizes the raster from it. Required: it must pass
	// grid.BBox.Validate. Tiles are not checked against it.
	Extent grid.BBox
	// BatchSize is the number of tiles written per transaction. Zero means
	// DefaultBatchSize; negative is invalid.
	BatchSize int
	// NoSync, when true, skips the one fsync Close makes: the file is
	// temporary (uploaded, then deleted) or will be synced by whoever
	// stores it, and a crash before then is repaired by building it again,
	// not by what the disk kept. The zero value syncs.
	NoSync bool
	// Record, when true, makes the Writer keep the content digest of the
	// tiles it holds as they are put, and leave it with their number and
	// bytes per zoom in the package at Close (see partRecordTable), for an
	// Assembly to merge the package as a part without reading its tiles'
	// data for the digest. Put then hashes each tile and keeps 40 bytes
	// per tile until Close. The record is not part of the GeoPackage
	// specification: set it for parts, not for packages handed out. Only
	// Create reads it; Merge and OpenAssembly write no record.
	Record bool
	// Now returns the time stored in gpkg_contents.last_change when the
	// package is created and again when it is closed. Nil means time.Now.
	Now func() time.Time
}

// Validate reports every problem with o at once (joined with errors.Join).
// Each problem wraps ErrInvalidOptions; a bad table name also wraps
// ErrInvalidTable and a bad extent grid.ErrBBox.
func (o Options) Validate() error {
	var errs []error
	if err := ValidateTable(o.Table); err != nil {
		errs = append(errs, fmt.Errorf("%w: table: %w", ErrInvalidOptions, err))
	}
	if err := o.Extent.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: extent: %w", ErrInvalidOptions, err))
	}
	if o.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("%w: batch size %d is negative", ErrInvalidOptions, o.BatchSize))
	}
	return errors.Join(errs...)
}

// withDefaults returns o with its zero values replaced by the defaults.
func (o Options) withDefaults() Options {
	if o.Identifier == "" {
		o.Identifier = o.Table
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ValidateTable checks that name can be used as a tile table name without
// quoting surprises: 1 to MaxTableNameLength ASCII letters, digits and
// underscores, not starting with a digit, and not starting with "gpkg_"
// (reserved by the GeoPackage specification) or "sqlite_" (reserved by
// SQLite), in any case. Errors wrap ErrInvalidTable.
func ValidateTable(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidTable)
	case len(name) > MaxTableNameLength:
		return fmt.Errorf("%w: %d bytes long, at most %d allowed", ErrInvalidTable, len(name), MaxTableNameLength)
	case name[0] >= '0' && name[0] <= '9':
		return fmt.Errorf("%w: %q starts with a digit", ErrInvalidTable, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("%w: %q has %q at byte %d; only letters, digits and _ are allowed", ErrInvalidTable, name, c, i)
		}
	}
	lower := strings.ToLower(name)
	for _, prefix := range []string{"gpkg_", "sqlite_"} {
		if strings.HasPrefix(lower, prefix) {
			return fmt.Errorf("%w: %q starts with the reserved prefix %q", ErrInvalidTable, name, prefix)
		}
	}
	return nil
}
