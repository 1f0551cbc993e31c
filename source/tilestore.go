package source

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/grid"
)

// RowOrigin says which edge of the world a tile store counts rows from.
type RowOrigin string

// Row origins a tile store may use.
const (
	// RowOriginTop counts rows from the north, as GeoPackage and XYZ
	// tiles do: row 0 touches latitude 90.
	RowOriginTop RowOrigin = "top"
	// RowOriginBottom counts rows from the south, as TMS does: row 0
	// touches latitude -90.
	RowOriginBottom RowOrigin = "bottom"
)

// ParseRowOrigin parses "top" or "bottom" (any case, surrounding space
// ignored).
func ParseRowOrigin(s string) (RowOrigin, error) {
	switch o := RowOrigin(strings.ToLower(strings.TrimSpace(s))); o {
	case RowOriginTop, RowOriginBottom:
		return o, nil
	}
	return "", fmt.Errorf("source: unknown row origin %q: want top or bottom", s)
}

// DefaultExtensions are the file extensions a tile store tries, in order,
// when its config names none.
var DefaultExtensions = []string{"png", "jpg", "jpeg"}

// DefaultMaxTileBytes caps the size of one stored tile when the config sets
// no cap: far above any real 256 × 256 tile, far below what would hurt a
// worker reading many at once.
const DefaultMaxTileBytes = 16 << 20

// ObjectReader reads whole objects from an object store. The project's
// S3/MinIO storage adapter satisfies it; this package never talks to S3
// itself.
type ObjectReader interface {
	// ReadObject returns the bytes of the object at key, but never more
	// than limit+1 of them, so that the caller can tell an object over the
	// limit without downloading all of it. A missing object (or bucket) is
	// reported with an error satisfying errors.Is(err, fs.ErrNotExist) or
	// errors.Is(err, ErrNoData); any other error is a failure to read,
	// which the caller may retry. ReadObject must honour ctx and be safe
	// for concurrent use; the returned slice belongs to the caller.
	ReadObject(ctx context.Context, key string, limit int64) ([]byte, error)
}

// TileStoreConfig configures a TileStore. Exactly one of Dir, FS and
// Objects is set.
type TileStoreConfig struct {
	// Dir is a local directory holding the tiles. Reads cannot leave it
	// (os.Root): symbolic links are followed only when they are relative
	// and stay inside it; an absolute link is an error even if it points
	// inside.
	Dir string
	// FS is a file system holding the tiles, e.g. an embed.FS.
	FS fs.FS
	// Objects reads the tiles from an object store.
	Objects ObjectReader

	// Prefix is the folder under Dir, FS or Objects that holds the
	// {z}/{x}/{y}.{ext} tree, slash-separated, without "." or ".."
	// elements. Empty means the root; leading and trailing slashes are
	// ignored.
	Prefix string
	// Extensions are the file extensions tried for each tile, in order,
	// without the dot: letters and digits only. Empty means
	// DefaultExtensions. The first file found is used, whatever its
	// extension; the format is read from its bytes.
	Extensions []string
	// RowOrigin is the edge the store counts rows from. Empty means
	// RowOriginTop.
	RowOrigin RowOrigin
	// MaxTileBytes caps the size of one tile file. Zero means
	// DefaultMaxTileBytes.
	MaxTileBytes int64
}

// Validate reports every problem with c at once.
func (c TileStoreConfig) Validate() error {
	var errs []error
	n := 0
	for _, set := range []bool{c.Dir != "", c.FS != nil, c.Objects != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		errs = append(errs, fmt.Errorf("source: tile store needs exactly one of dir, fs and objects, got %d", n))
	}
	if p := strings.Trim(c.Prefix, "/"); p != "" && !fs.ValidPath(p) || p == "." {
		errs = append(errs, fmt.Errorf("source: tile store prefix %q: want a slash-separated path without empty, \".\" or \"..\" elements", c.Prefix))
	}
	for _, ext := range c.Extensions {
		if !validExtension(ext) {
			errs = append(errs, fmt.Errorf("source: tile store extension %q: want letters and digits only, without the dot", ext))
		}
	}
	switch c.RowOrigin {
	case "", RowOriginTop, RowOriginBottom:
	default:
		errs = append(errs, fmt.Errorf("source: unknown row origin %q: want top or bottom", string(c.RowOrigin)))
	}
	if c.MaxTileBytes < 0 {
		errs = append(errs, fmt.Errorf("source: tile store max tile bytes %d: want a positive number, or 0 for %d", c.MaxTileBytes, DefaultMaxTileBytes))
	}
	return errors.Join(errs...)
}

func validExtension(ext string) bool {
	if ext == "" {
		return false
	}
	for _, r := range ext {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// TileStore is a Source over pre-cut tiles stored as {z}/{x}/{y}.{ext}
// files in a directory, a file system or under an object-store prefix.
// Tiles are returned as stored, without decoding or re-encoding.
//
// TileStore is safe for concurrent use. Close it when done: a store over
// Dir holds the directory open.
type TileStore struct {
	fsys    fs.FS
	objects ObjectReader
	root    *os.Root  // only for Dir; closed by Close
	dirs    *tileDirs // only for Dir: its column directories, kept open
	where   string    // Dir, for error messages
	prefix  string
	exts    []string
	bottom  bool
	max     int64
}

var _ Source = (*TileStore)(nil)

// NewTileStore returns a tile store, or an error if cfg is invalid or its
// Dir cannot be opened.
func NewTileStore(cfg TileStoreConfig) (*TileStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &TileStore{
		fsys:    cfg.FS,
		objects: cfg.Objects,
		prefix:  strings.Trim(cfg.Prefix, "/"),
		exts:    append([]string(nil), cfg.Extensions...),
		bottom:  cfg.RowOrigin == RowOriginBottom,
		max:     cfg.MaxTileBytes,
	}
	if len(s.exts) == 0 {
		s.exts = append(s.exts, DefaultExtensions...)
	}
	if s.max == 0 {
		s.max = DefaultMaxTileBytes
	}
	if cfg.Dir != "" {
		root, err := os.OpenRoot(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("source: open tile store: %w", err)
		}
		s.root, s.fsys, s.where = root, root.FS(), cfg.Dir
		s.dirs = newTileDirs(root)
	}
	return s, nil
}

// Close releases the directory a store over Dir holds open. It does nothing
// for other stores. Tile must not be called after Close.
func (s *TileStore) Close() error {
	if s.root == nil {
		return nil
	}
	s.dirs.close()
	return s.root.Close()
}

// Tile returns the stored bytes of the tile at t, trying each extension in
// order. It returns ErrNoData when no file exists for t, an error wrapping
// ErrInvalidData and naming the file when the file found is over the size
// cap, not a PNG or JPEG, or not 256 × 256 pixels, and any other read error
// with the file named. JPEG tiles, and PNG tiles without an alpha channel or
// transparency chunk, are marked Opaque.
func (s *TileStore) Tile(ctx context.Context, t grid.Tile) (Tile, error) {
	if err := checkRequest(ctx, t); err != nil {
		return Tile{}, err
	}
	row := t.Row
	if s.bottom {
		row = t.Zoom.FlipRow(row)
	}
	for _, ext := range s.exts {
		name := fmt.Sprintf("%d/%d/%d.%s", t.Zoom, t.Col, row, ext)
		if s.prefix != "" {
			name = s.prefix + "/" + name
		}
		data, err := s.read(ctx, name)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNoData) {
			continue
		}
		if err != nil {
			return Tile{}, fmt.Errorf("read tile %s: %w", t, err)
		}
		tile, err := s.check(data, name)
		if err != nil {
			return Tile{}, fmt.Errorf("read tile %s: %w", t, err)
		}
		return tile, nil
	}
	return Tile{}, fmt.Errorf("read tile %s: %w", t, ErrNoData)
}

// read returns the bytes at name, at most s.max+1 of them. Its errors name
// the file or object.
func (s *TileStore) read(ctx context.Context, name string) ([]byte, error) {
	if s.objects != nil {
		data, err := s.objects.ReadObject(ctx, name, s.max)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, ctxErr
			}
			return nil, fmt.Errorf("read object %s: %w", name, err)
		}
		return data, nil
	}
	if s.dirs != nil {
		data, size, err := s.dirs.read(name, s.max)
		switch {
		case errors.Is(err, errNotRegular):
			return nil, s.notRegular(name)
		case errors.Is(err, errTileTooLarge):
			return nil, s.tooLarge(name, size)
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("open %s: %w", s.display(name), err)
		case err == nil:
			return data, nil
		case !errors.Is(err, errSlowPath):
			return nil, fmt.Errorf("read %s: %w", s.display(name), err)
		}
	}
	f, err := s.fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.display(name), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", s.display(name), err)
	}
	if !st.Mode().IsRegular() {
		return nil, s.notRegular(name)
	}
	if st.Size() > s.max {
		return nil, s.tooLarge(name, st.Size())
	}
	var buf bytes.Buffer
	buf.Grow(int(st.Size()) + bytes.MinRead)
	if _, err := buf.ReadFrom(io.LimitReader(f, s.max+1)); err != nil {
		return nil, fmt.Errorf("read %s: %w", s.display(name), err)
	}
	return buf.Bytes(), nil
}

// check validates data read from name and wraps it in a Tile.
func (s *TileStore) check(data []byte, name string) (Tile, error) {
	if int64(len(data)) > s.max {
		return Tile{}, s.tooLarge(name, int64(len(data)))
	}
	f, ok := gpkg.DetectFormat(data)
	if !ok {
		return Tile{}, fmt.Errorf("%w: %s is not a PNG or JPEG image", ErrInvalidData, s.display(name))
	}
	_, size, err := gpkg.DecodeTileHeader(data)
	if err != nil {
		return Tile{}, fmt.Errorf("%w: %s: %w", ErrInvalidData, s.display(name), err)
	}
	if size.X != grid.TileSize || size.Y != grid.TileSize {
		return Tile{}, fmt.Errorf("%w: %s is %d × %d pixels, want %d × %d",
			ErrInvalidData, s.display(name), size.X, size.Y, grid.TileSize, grid.TileSize)
	}
	return Tile{Data: data, Format: f, Opaque: f == JPEG || pngOpaque(data)}, nil
}

func (s *TileStore) notRegular(name string) error {
	return fmt.Errorf("%w: %s is not a regular file", ErrInvalidData, s.display(name))
}

func (s *TileStore) tooLarge(name string, size int64) error {
	what := "bytes"
	if s.objects != nil {
		what = "bytes or more" // the reader stops at the limit
	}
	return fmt.Errorf("%w: %s has %d %s, over the %d-byte limit", ErrInvalidData, s.display(name), size, what, s.max)
}

// display names a file for errors: the full path for a store over Dir.
func (s *TileStore) display(name string) string {
	if s.where != "" {
		return filepath.Join(s.where, filepath.FromSlash(name))
	}
	return name
}

// pngOpaque reports whether a PNG header says every pixel is opaque:
// greyscale or truecolour without a tRNS chunk before the image data.
// False means "not known", not "transparent".
func pngOpaque(data []byte) bool {
	// Signature, then IHDR: length, type, width, height, depth, colour type.
	const ihdrEnd = 8 + 8 + 13 + 4
	if len(data) < ihdrEnd || string(data[12:16]) != "IHDR" {
		return false
	}
	if ct := data[25]; ct != 0 && ct != 2 {
		return false
	}
	for p := 8; p+8 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[p:]))
		switch string(data[p+4 : p+8]) {
		case "tRNS":
			return false
		case "IDAT":
			return true
		}
		if n > len(data)-p-12 {
			return false
		}
		p += 12 + n
	}
	return false
}
