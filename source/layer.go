package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/storage"
)

// LayerDeps are what the sources of catalog layers need besides the layer
// record: the object store of layers kept under an S3 prefix or key, and
// where to download GeoPackage objects. StorageDeps makes them from the
// project's package storage.
type LayerDeps struct {
	// Objects reads tile stores kept under an object-store prefix (a
	// layer's s3Prefix). Nil: no object store is configured, and such
	// layers cannot be opened.
	Objects ObjectReader
	// Opener opens GeoPackage objects (a layer's s3Key). Nil: no object
	// store is configured, and such layers cannot be opened.
	Opener ObjectOpener
	// TempDir holds GeoPackage objects downloaded before they are read.
	// Empty means os.TempDir().
	TempDir string
}

// Objects is the object storage that holds layers kept under an S3 prefix
// or key; storage.S3 is one.
type Objects interface {
	// Open returns the object at key; storage.ErrNotFound when it does not
	// exist. The caller closes it.
	Open(ctx context.Context, key string) (storage.Object, error)
}

// StorageDeps returns the LayerDeps over objects (nil when packages are
// kept on local disk, and layers cannot live in an object store) with
// GeoPackage objects downloaded into tempDir. The worker opens its sources
// with them, and the trigger its preview tiles, so both read layers alike.
func StorageDeps(objects Objects, tempDir string) LayerDeps {
	deps := LayerDeps{TempDir: tempDir}
	if objects != nil {
		deps.Objects = objectReader{objects}
		deps.Opener = ObjectOpenerFunc(func(ctx context.Context, key string) (io.ReadCloser, error) {
			obj, err := objects.Open(ctx, key)
			if errors.Is(err, storage.ErrNotFound) {
				return nil, fmt.Errorf("%w: %s", ErrNoData, key)
			}
			return obj, err
		})
	}
	return deps
}

// objectReader reads whole objects of Objects for the tile store.
type objectReader struct{ objects Objects }

func (r objectReader) ReadObject(ctx context.Context, key string, limit int64) ([]byte, error) {
	obj, err := r.objects.Open(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoData, key)
	}
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	b, err := io.ReadAll(io.LimitReader(obj, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return b, nil
}

// LayerMetatile is the size, in tiles, of the blocks the source of layer l
// fetches at once (WMS.Metatile): the WMS record's metatile or
// DefaultMetatile for a WMS, 1 × 1 for every other kind. The trigger plans
// an export's batches along these blocks, so that no block is fetched by
// two batches.
func LayerMetatile(l catalog.Layer) (cols, rows int) {
	if l.Source.Kind != catalog.SourceWMS {
		return 1, 1
	}
	cols, rows = DefaultMetatile, DefaultMetatile
	if m := l.Source.Metatile; len(m) == 2 {
		cols, rows = cmp.Or(m[0], cols), cmp.Or(m[1], rows)
	}
	return cols, rows
}

// ForLayer opens the tile source of a catalog layer, as its Source record
// says, with the layer's no-data colour filtered out. The worker renders
// exports from it and the trigger serves preview tiles from it, so both
// read a layer the same way. It fails when the record names a kind it does
// not know or needs a dependency deps lacks; it does not touch the source's
// data, which happens on the first Tile.
//
// Close the source when done if it is an io.Closer.
func ForLayer(l catalog.Layer, deps LayerDeps) (Source, error) {
	var noData *NoData
	if c := l.Source.NoData; c != nil {
		noData = &NoData{R: c.R, G: c.G, B: c.B, Tolerance: uint8(l.Source.NoDataTolerance)}
	}
	switch l.Source.Kind {
	case catalog.SourceDemo:
		d, err := NewDemo(DemoConfig{Footprint: l.Footprint})
		if err != nil || noData == nil {
			return d, err
		}
		return FilterNoData(d, *noData), nil
	case catalog.SourceTileStore:
		origin, err := ParseRowOrigin(l.Source.RowOrigin)
		if err != nil {
			return nil, err
		}
		cfg := TileStoreConfig{Dir: l.Source.Path, Extensions: l.Source.Extensions, RowOrigin: origin}
		if l.Source.S3Prefix != "" {
			if deps.Objects == nil {
				return nil, fmt.Errorf("layer %s reads s3 prefix %q but no S3 storage is configured", l.ID, l.Source.S3Prefix)
			}
			cfg.Dir, cfg.Objects, cfg.Prefix = "", deps.Objects, l.Source.S3Prefix
		}
		ts, err := NewTileStore(cfg)
		if err != nil {
			return nil, err
		}
		if noData != nil {
			return FilterNoData(ts, *noData), nil
		}
		return ts, nil
	case catalog.SourceWMS, catalog.SourceWMTS, catalog.SourceXYZ:
		s := l.Source
		hc := HTTPConfig{
			Name:           l.ID,
			ConnectTimeout: time.Duration(s.ConnectTimeout),
			HeaderTimeout:  time.Duration(s.HeaderTimeout),
			Timeout:        time.Duration(s.Timeout),
			MaxAttempts:    s.MaxAttempts,
			Concurrency:    s.Concurrency,
			NotFound:       NotFound(s.NotFound),
			Resample:       s.Resample,
			NoData:         noData,
		}
		switch s.Kind {
		case catalog.SourceWMS:
			cfg := WMSConfig{
				HTTP: hc, URL: s.URL, Version: WMSVersion(s.Version), Layers: s.Layers, Styles: s.Styles,
				Format: s.Format, Transparent: s.Transparent != nil && *s.Transparent, Params: s.Params, Footprint: l.Footprint,
			}
			if len(s.Metatile) == 2 {
				cfg.MetatileCols, cfg.MetatileRows = s.Metatile[0], s.Metatile[1]
			}
			return NewWMS(cfg)
		case catalog.SourceWMTS:
			return NewWMTS(WMTSConfig{
				HTTP: hc, URL: s.URL, Layer: s.Layer, Style: s.Style, TileMatrixSet: s.TileMatrixSet,
				TileMatrixFormat: s.TileMatrixFormat, Format: s.Format, Params: s.Params, ZoomOffset: s.ZoomOffset,
			})
		default:
			origin, err := ParseRowOrigin(cmp.Or(s.RowOrigin, string(RowOriginTop)))
			if err != nil {
				return nil, err
			}
			return NewXYZ(XYZConfig{HTTP: hc, URL: s.URL, RowOrigin: origin, ZoomOffset: s.ZoomOffset})
		}
	case catalog.SourceGeoPackage:
		cfg := GeoPackageConfig{
			Name: l.ID, Path: l.Source.Path, Key: l.Source.S3Key, TempDir: deps.TempDir, Table: l.Source.Table, NoData: noData,
		}
		if l.Source.S3Key != "" {
			if deps.Opener == nil {
				return nil, fmt.Errorf("layer %s reads s3 key %q but no S3 storage is configured", l.ID, l.Source.S3Key)
			}
			cfg.Objects = deps.Opener
		}
		return NewGeoPackage(cfg)
	}
	return nil, fmt.Errorf("unknown source kind %q", l.Source.Kind)
}
