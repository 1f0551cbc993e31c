package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/tempdir"
)

var _ TileReader = (*gpkg.Reader)(nil)

// OpenGPKG opens a GeoPackage file with the project's reader: the Open of
// every GeoPackage source unless its config names another.
func OpenGPKG(ctx context.Context, path string) (TileReader, error) {
	r, err := gpkg.Open(ctx, path)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return r, nil
}

// ClassifyGPKG maps gpkg's errors onto ErrNoData (a missing tile) and
// ErrInvalidData (a file or tile that retrying will not cure); other
// errors have no class.
func ClassifyGPKG(err error) error {
	switch {
	case errors.Is(err, gpkg.ErrTileNotFound):
		return ErrNoData
	case errors.Is(err, gpkg.ErrNotGeoPackage), errors.Is(err, gpkg.ErrNotTiles), errors.Is(err, gpkg.ErrCorrupt),
		errors.Is(err, gpkg.ErrTileFormat), errors.Is(err, gpkg.ErrTooLarge), errors.Is(err, gpkg.ErrNotGrid),
		errors.Is(err, gpkg.ErrTableNotFound), errors.Is(err, gpkg.ErrInvalidTile):
		return ErrInvalidData
	}
	return nil
}

// TileReader reads tiles from an open GeoPackage: what a GeoPackage
// source uses of *gpkg.Reader, small so that tests can break it.
type TileReader interface {
	// Tables lists the tile tables of the package.
	Tables(ctx context.Context) ([]string, error)
	// ReadTile returns the data of tile t (rows from the north) in table;
	// the caller owns the slice. A missing tile is an error for which
	// GeoPackageConfig.Classify returns ErrNoData. It must be safe for
	// concurrent use and honour ctx.
	ReadTile(ctx context.Context, table string, t grid.Tile) ([]byte, error)
	// Close releases the file.
	Close() error
}

// ObjectOpener opens objects of an object store for streaming, for files
// too large to read into memory. The worker adapts its storage to it.
type ObjectOpener interface {
	// OpenObject returns the object at key; the caller closes it. A
	// missing object is an error satisfying errors.Is(err,
	// fs.ErrNotExist) or errors.Is(err, ErrNoData). Reads must honour the
	// ctx given here.
	OpenObject(ctx context.Context, key string) (io.ReadCloser, error)
}

// ObjectOpenerFunc is an ObjectOpener made of a function.
type ObjectOpenerFunc func(ctx context.Context, key string) (io.ReadCloser, error)

// OpenObject calls f.
func (f ObjectOpenerFunc) OpenObject(ctx context.Context, key string) (io.ReadCloser, error) {
	return f(ctx, key)
}

// GeoPackageConfig configures a GeoPackage source. Exactly one of Path and
// Key is set.
type GeoPackageConfig struct {
	// Name names the source in errors, such as the catalog layer id.
	// Empty means the file's path or key.
	Name string
	// Path is a GeoPackage file every worker can read.
	Path string
	// Key is a GeoPackage object read through Objects: it is downloaded
	// into TempDir before the first tile is read, and removed by Close.
	Key string
	// Objects opens Key; required with Key.
	Objects ObjectOpener
	// TempDir holds the downloaded file. Empty means os.TempDir().
	TempDir string
	// Table is the tile table to read. Empty means the package's only
	// tile table; a package with several needs it set.
	Table string
	// Open opens a GeoPackage file for reading. Nil means OpenGPKG, the
	// project's gpkg reader; tests set it to see or break the opening.
	Open func(ctx context.Context, path string) (TileReader, error)
	// Classify maps an error of Open or ReadTile to ErrNoData (the tile
	// is missing), ErrInvalidData (the file or tile is unusable, which
	// retrying does not cure) or nil (anything else). Nil means
	// ClassifyGPKG, the classes of gpkg's errors.
	Classify func(error) error
	// NoData is the colour the package holds where it has no data; tiles
	// entirely of it are ErrNoData. Nil means none: only fully
	// transparent tiles are no data.
	NoData *NoData
}

// Validate reports every problem with c at once.
func (c GeoPackageConfig) Validate() error {
	var errs []error
	if (c.Path == "") == (c.Key == "") {
		errs = append(errs, errors.New("source: geopackage needs exactly one of path and key"))
	}
	if c.Key != "" && c.Objects == nil {
		errs = append(errs, fmt.Errorf("source: geopackage key %q needs an object store", c.Key))
	}
	return errors.Join(errs...)
}

// GeoPackage is a Source over the tiles of a GeoPackage in the project
// grid. Tiles are passed through as stored (Tile.Data). The file is opened,
// and downloaded first if it is an object, when the first tile is asked
// for: a failure there is the error of every tile until it succeeds, or
// for good when the failure is ErrInvalidData.
//
// GeoPackage is safe for concurrent use. Close it when done: it holds the
// file open, and removes a downloaded copy.
type GeoPackage struct {
	cfg  GeoPackageConfig
	name string

	// open is a lock that waiting callers can give up on: a token in the
	// channel is the right to open.
	open   chan struct{}
	mu     sync.Mutex // guards the fields below
	reader TileReader
	table  string
	temp   func() // removes the downloaded file; called by Close
	err    error  // permanent failure to open
	closed bool
}

var _ Source = (*GeoPackage)(nil)

// NewGeoPackage returns a GeoPackage source, or an error if cfg is
// invalid. It does not touch the file: that happens on the first Tile.
func NewGeoPackage(cfg GeoPackageConfig) (*GeoPackage, error) {
	if cfg.Open == nil {
		cfg.Open = OpenGPKG
	}
	if cfg.Classify == nil {
		cfg.Classify = ClassifyGPKG
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	name := cfg.Name
	if name == "" {
		name = cfg.Path + cfg.Key
	}
	g := &GeoPackage{cfg: cfg, name: name, open: make(chan struct{}, 1)}
	g.open <- struct{}{}
	return g, nil
}

// Tile returns the stored bytes of the tile at t. Errors name the source
// and the tile, and wrap ErrNoData (the tile is missing, fully transparent
// or all no-data colour), ErrInvalidTile, ErrInvalidData (the file cannot
// be used, or the tile is not a 256 × 256 PNG or JPEG), ctx.Err(), or a
// failure to download, open or read, which may be transient.
func (g *GeoPackage) Tile(ctx context.Context, t grid.Tile) (Tile, error) {
	if err := checkRequest(ctx, t); err != nil {
		return Tile{}, err
	}
	r, table, err := g.openReader(ctx)
	if err != nil {
		return Tile{}, fmt.Errorf("geopackage %q: tile %s: %w", g.name, t, err)
	}
	data, err := r.ReadTile(ctx, table, t)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Tile{}, ctxErr
		}
		return Tile{}, fmt.Errorf("geopackage %q: tile %s: %w", g.name, t, g.classify(err))
	}
	tile, err := storedTile(data, false, g.cfg.NoData)
	if err != nil {
		return Tile{}, fmt.Errorf("geopackage %q: tile %s in table %q: %w", g.name, t, table, err)
	}
	return tile, nil
}

// classify wraps err in its class, when it has one.
func (g *GeoPackage) classify(err error) error {
	if g.cfg.Classify == nil {
		return err
	}
	if class := g.cfg.Classify(err); class != nil && !errors.Is(err, class) {
		return fmt.Errorf("%w: %w", class, err)
	}
	return err
}

// opened reports the reader and table if the package is open, or the
// error that ends every use (closed, or invalid data); done is false when
// it still has to be opened.
func (g *GeoPackage) opened() (r TileReader, table string, err error, done bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return nil, "", errors.New("source: geopackage is closed"), true
	case g.err != nil:
		return nil, "", g.err, true
	case g.reader != nil:
		return g.reader, g.table, nil, true
	}
	return nil, "", nil, false
}

// openReader returns the open reader and the table, opening them first if
// needed. Only one caller opens at a time; the others wait, or give up
// when their ctx ends.
func (g *GeoPackage) openReader(ctx context.Context) (TileReader, string, error) {
	if r, table, err, done := g.opened(); done {
		return r, table, err
	}
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	defer func() { g.open <- struct{}{} }()
	if r, table, err, done := g.opened(); done {
		return r, table, err // opened (or closed) while this caller waited
	}

	r, table, temp, err := g.openFile(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, "", ctxErr
		}
		if errors.Is(err, ErrInvalidData) {
			g.err = err
		}
		return nil, "", err
	}
	if g.closed { // closed while opening
		r.Close()
		removeTemp(temp)
		return nil, "", errors.New("source: geopackage is closed")
	}
	g.reader, g.table, g.temp = r, table, temp
	return r, table, nil
}

// openFile downloads the file if it is an object, opens it and resolves
// the table; temp removes a downloaded file.
func (g *GeoPackage) openFile(ctx context.Context) (r TileReader, table string, temp func(), err error) {
	path := g.cfg.Path
	if g.cfg.Key != "" {
		if path, temp, err = g.download(ctx); err != nil {
			return nil, "", nil, err
		}
		defer func() {
			if err != nil {
				removeTemp(temp)
			}
		}()
	}
	r, err = g.cfg.Open(ctx, path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w: %w", ErrInvalidData, err)
		}
		return nil, "", nil, fmt.Errorf("open %s: %w", g.display(), g.classify(err))
	}
	table, err = g.resolveTable(ctx, r)
	if err != nil {
		r.Close()
		return nil, "", nil, fmt.Errorf("open %s: %w", g.display(), err)
	}
	return r, table, temp, nil
}

func (g *GeoPackage) display() string {
	if g.cfg.Key != "" {
		return "object " + g.cfg.Key
	}
	return g.cfg.Path
}

// resolveTable returns the configured table if the package has it, or the
// package's only table.
func (g *GeoPackage) resolveTable(ctx context.Context, r TileReader) (string, error) {
	tables, err := r.Tables(ctx)
	if err != nil {
		return "", g.classify(err)
	}
	if g.cfg.Table != "" {
		for _, t := range tables {
			if t == g.cfg.Table {
				return t, nil
			}
		}
		return "", fmt.Errorf("%w: no tile table %q (tables: %s)", ErrInvalidData, g.cfg.Table, strings.Join(tables, ", "))
	}
	switch len(tables) {
	case 1:
		return tables[0], nil
	case 0:
		return "", fmt.Errorf("%w: no tile table", ErrInvalidData)
	}
	return "", fmt.Errorf("%w: %d tile tables (%s): the layer must name one", ErrInvalidData, len(tables), strings.Join(tables, ", "))
}

// download copies the object into a new temporary file and returns its
// path and the function that removes it. The file lies in a directory of
// its own that this process holds locked (internal/tempdir), so that a
// worker's sweep removes it if the process dies.
func (g *GeoPackage) download(ctx context.Context) (path string, remove func(), err error) {
	obj, err := g.cfg.Objects.OpenObject(ctx, g.cfg.Key)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNoData) {
			// A layer's package that is missing is a broken catalog
			// entry, not a place without tiles.
			return "", nil, fmt.Errorf("%w: object %s does not exist: %w", ErrInvalidData, g.cfg.Key, err)
		}
		return "", nil, fmt.Errorf("download object %s: %w", g.cfg.Key, err)
	}
	defer obj.Close()
	dir, remove, err := tempdir.Make(g.cfg.TempDir, "source-")
	if err != nil {
		return "", nil, fmt.Errorf("download object %s: %w", g.cfg.Key, err)
	}
	path = filepath.Join(dir, "layer.gpkg")
	f, err := os.Create(path)
	if err == nil {
		err = copyContext(ctx, f, obj)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		remove()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", nil, ctxErr
		}
		return "", nil, fmt.Errorf("download object %s: %w", g.cfg.Key, err)
	}
	return path, remove, nil
}

// copyContext copies src to dst and stops once ctx ends, for readers that
// do not watch it themselves.
func copyContext(ctx context.Context, dst io.Writer, src io.Reader) error {
	buf := make([]byte, 256<<10)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// removeTemp calls remove, a download's, if there is one.
func removeTemp(remove func()) {
	if remove != nil {
		remove()
	}
}

// Close closes the file and removes a downloaded copy. Tile fails after
// Close. Close is safe to call more than once.
func (g *GeoPackage) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	var err error
	if g.reader != nil {
		err = g.reader.Close()
		g.reader = nil
	}
	removeTemp(g.temp)
	g.temp = nil
	return err
}
