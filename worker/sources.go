package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/storage"
	"github.com/geoexport/exporter/worker/source"
)

// Objects is the object storage that holds tile-store layers kept under
// an S3 prefix.
type Objects interface {
	// Open returns the object at key; storage.ErrNotFound when it does not
	// exist. The caller closes it.
	Open(ctx context.Context, key string) (storage.Object, error)
}

// objectReader adapts Objects to the tile store's source.ObjectReader.
type objectReader struct{ objects Objects }

func (r objectReader) ReadObject(ctx context.Context, key string, limit int64) ([]byte, error) {
	obj, err := r.objects.Open(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", source.ErrNoData, key)
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

// sourceFor opens the tile source of a job's layer.
func (w *Worker) sourceFor(spec job.Spec) (source.Source, error) {
	l := spec.Layer
	var noData *source.NoData
	if c := l.Source.NoData; c != nil {
		noData = &source.NoData{R: c.R, G: c.G, B: c.B, Tolerance: uint8(l.Source.NoDataTolerance)}
	}
	switch l.Source.Kind {
	case catalog.SourceDemo:
		d, err := source.NewDemo(source.DemoConfig{Footprint: l.Footprint})
		if err != nil || noData == nil {
			return d, err
		}
		return source.FilterNoData(d, *noData), nil
	case catalog.SourceTileStore:
		origin, err := source.ParseRowOrigin(l.Source.RowOrigin)
		if err != nil {
			return nil, err
		}
		cfg := source.TileStoreConfig{Dir: l.Source.Path, Extensions: l.Source.Extensions, RowOrigin: origin}
		if l.Source.S3Prefix != "" {
			if w.deps.Tiles == nil {
				return nil, fmt.Errorf("layer %s reads s3 prefix %q but no S3 storage is configured", l.ID, l.Source.S3Prefix)
			}
			cfg.Dir, cfg.Objects, cfg.Prefix = "", objectReader{w.deps.Tiles}, l.Source.S3Prefix
		}
		ts, err := source.NewTileStore(cfg)
		if err != nil {
			return nil, err
		}
		if noData != nil {
			return source.FilterNoData(ts, *noData), nil
		}
		return ts, nil
	case catalog.SourceWMS, catalog.SourceWMTS, catalog.SourceXYZ:
		s := l.Source
		hc := source.HTTPConfig{
			Name:           l.ID,
			ConnectTimeout: time.Duration(s.ConnectTimeout),
			HeaderTimeout:  time.Duration(s.HeaderTimeout),
			Timeout:        time.Duration(s.Timeout),
			MaxAttempts:    s.MaxAttempts,
			Concurrency:    s.Concurrency,
			NotFound:       source.NotFound(s.NotFound),
			Resample:       s.Resample,
			NoData:         noData,
		}
		switch s.Kind {
		case catalog.SourceWMS:
			cfg := source.WMSConfig{
				HTTP: hc, URL: s.URL, Version: source.WMSVersion(s.Version), Layers: s.Layers, Styles: s.Styles,
				Format: s.Format, Transparent: s.Transparent != nil && *s.Transparent, Params: s.Params, Footprint: l.Footprint,
			}
			if len(s.Metatile) == 2 {
				cfg.MetatileCols, cfg.MetatileRows = s.Metatile[0], s.Metatile[1]
			}
			return source.NewWMS(cfg)
		case catalog.SourceWMTS:
			return source.NewWMTS(source.WMTSConfig{
				HTTP: hc, URL: s.URL, Layer: s.Layer, Style: s.Style, TileMatrixSet: s.TileMatrixSet,
				TileMatrixFormat: s.TileMatrixFormat, Format: s.Format, Params: s.Params, ZoomOffset: s.ZoomOffset,
			})
		default:
			origin, err := source.ParseRowOrigin(cmp.Or(s.RowOrigin, string(source.RowOriginTop)))
			if err != nil {
				return nil, err
			}
			return source.NewXYZ(source.XYZConfig{HTTP: hc, URL: s.URL, RowOrigin: origin, ZoomOffset: s.ZoomOffset})
		}
	case catalog.SourceGeoPackage:
		cfg := source.GeoPackageConfig{
			Name: l.ID, Path: l.Source.Path, Key: l.Source.S3Key, TempDir: w.cfg.TempDir, Table: l.Source.Table, NoData: noData,
			Open: func(ctx context.Context, path string) (source.TileReader, error) {
				r, err := gpkg.Open(ctx, path)
				if err != nil {
					return nil, err // not a typed nil in the interface
				}
				return r, nil
			},
			Classify: func(err error) error {
				switch {
				case errors.Is(err, gpkg.ErrTileNotFound):
					return source.ErrNoData
				case errors.Is(err, gpkg.ErrNotGeoPackage), errors.Is(err, gpkg.ErrNotTiles), errors.Is(err, gpkg.ErrCorrupt),
					errors.Is(err, gpkg.ErrTileFormat), errors.Is(err, gpkg.ErrTooLarge), errors.Is(err, gpkg.ErrNotGrid),
					errors.Is(err, gpkg.ErrTableNotFound), errors.Is(err, gpkg.ErrInvalidTile):
					return source.ErrInvalidData
				}
				return nil
			},
		}
		if l.Source.S3Key != "" {
			if w.deps.Tiles == nil {
				return nil, fmt.Errorf("layer %s reads s3 key %q but no S3 storage is configured", l.ID, l.Source.S3Key)
			}
			cfg.Objects = source.ObjectOpenerFunc(func(ctx context.Context, key string) (io.ReadCloser, error) {
				obj, err := w.deps.Tiles.Open(ctx, key)
				if errors.Is(err, storage.ErrNotFound) {
					return nil, fmt.Errorf("%w: %s", source.ErrNoData, key)
				}
				return obj, err
			})
		}
		return source.NewGeoPackage(cfg)
	}
	return nil, fmt.Errorf("unknown source kind %q", l.Source.Kind)
}

// measured times a source's tiles and counts its failures by source kind.
type measured struct {
	source.Source
	kind    string
	metrics *metrics
}

func (m measured) Tile(ctx context.Context, t grid.Tile) (source.Tile, error) {
	start := time.Now()
	tile, err := m.Source.Tile(ctx, t)
	m.metrics.sourceDuration.WithLabelValues(m.kind).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, source.ErrNoData) && ctx.Err() == nil {
		m.metrics.sourceErrors.WithLabelValues(m.kind).Inc()
	}
	return tile, err
}

// Close closes the measured source when it holds resources.
func (m measured) Close() error {
	if c, ok := m.Source.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
