package gpkg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// sqliteMagic starts every SQLite 3 database file.
const sqliteMagic = "SQLite format 3\x00"

// headerSize is the size of the SQLite database header.
const headerSize = 100

// Application ids of the GeoPackage versions: "GPKG" from 1.2 on, "GP11"
// and "GP10" before.
const (
	appIDGP10 = 0x47503130
	appIDGP11 = 0x47503131
)

// header is what Open needs from the SQLite database header
// (https://www.sqlite.org/fileformat2.html#the_database_header).
type header struct {
	pageSize      int64
	pageCount     int64 // from the file size
	applicationID uint32
	userVersion   uint32
	wal           bool // the file is in WAL mode
}

// readHeader checks the SQLite header of path before SQLite parses anything:
// the magic string, a legal page size, a file size that is a whole number
// of pages and agrees with the page count in the header, the payload
// fractions every SQLite file has, and a GeoPackage application_id. Errors
// wrap ErrNotGeoPackage or ErrCorrupt, or are the os errors of reading.
func readHeader(path string) (header, error) {
	f, err := os.Open(path)
	if err != nil {
		return header{}, unwrapPath(err)
	}
	defer f.Close() //nolint:errcheck // read-only: nothing to flush
	fi, err := f.Stat()
	if err != nil {
		return header{}, unwrapPath(err)
	}
	if !fi.Mode().IsRegular() {
		return header{}, fmt.Errorf("%w: not a regular file", ErrNotGeoPackage)
	}
	size := fi.Size()
	if size < headerSize {
		return header{}, fmt.Errorf("%w: %d bytes is too small for an SQLite database", ErrNotGeoPackage, size)
	}
	var b [headerSize]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return header{}, fmt.Errorf("read header: %w", err)
	}
	if string(b[:16]) != sqliteMagic {
		return header{}, fmt.Errorf("%w: no SQLite header", ErrNotGeoPackage)
	}
	be := binary.BigEndian
	h := header{
		pageSize:      int64(be.Uint16(b[16:])),
		applicationID: be.Uint32(b[68:]),
		userVersion:   be.Uint32(b[60:]),
	}
	if h.pageSize == 1 {
		h.pageSize = 65536
	}
	if h.pageSize < 512 || h.pageSize > 65536 || h.pageSize&(h.pageSize-1) != 0 {
		return header{}, fmt.Errorf("%w: page size %d", ErrCorrupt, h.pageSize)
	}
	if size%h.pageSize != 0 {
		return header{}, fmt.Errorf("%w: file size %d is not a multiple of the page size %d", ErrCorrupt, size, h.pageSize)
	}
	h.pageCount = size / h.pageSize
	if w, r := b[18], b[19]; w < 1 || w > 2 || r < 1 || r > 2 {
		return header{}, fmt.Errorf("%w: file format versions %d/%d", ErrCorrupt, w, r)
	}
	h.wal = b[18] == 2 || b[19] == 2
	if b[21] != 64 || b[22] != 32 || b[23] != 32 {
		return header{}, fmt.Errorf("%w: payload fractions %d/%d/%d", ErrCorrupt, b[21], b[22], b[23])
	}
	// The page count in the header is valid when the change counter matches
	// version-valid-for (SQLite 3.7.0 and later always write both).
	if n, changes, validFor := int64(be.Uint32(b[28:])), be.Uint32(b[24:]), be.Uint32(b[92:]); n != 0 && changes == validFor && n != h.pageCount {
		return header{}, fmt.Errorf("%w: header says %d pages, file holds %d", ErrCorrupt, n, h.pageCount)
	}
	switch h.applicationID {
	case applicationID, appIDGP11, appIDGP10:
	default:
		return header{}, fmt.Errorf("%w: application_id %#08x", ErrNotGeoPackage, h.applicationID)
	}
	return h, nil
}

// unwrapPath drops the operation and path from an *fs.PathError, which the
// caller's own wrapping already names, keeping the cause (errors.Is with
// fs.ErrNotExist still holds).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
