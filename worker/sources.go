package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/geoexport/exporter/gpkg"
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

// sourceFor returns the tile source of a job's layer from the worker's
// pool, and the function that hands it back.
func (w *Worker) sourceFor(spec job.Spec) (source.Source, func(), error) {
	return w.sources.Acquire(spec.Layer)
}

// SourceDeps adapts the object store that holds tile-store layers and
// GeoPackage objects (nil when there is none) and the gpkg package to what
// source.ForLayer needs. The worker opens its sources with it; cmd hands
// the same to the trigger, whose preview tiles read layers as exports do.
func SourceDeps(tiles Objects, tempDir string) source.LayerDeps {
	deps := source.LayerDeps{
		TempDir: tempDir,
		OpenGeoPackage: func(ctx context.Context, path string) (source.TileReader, error) {
			r, err := gpkg.Open(ctx, path)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return r, nil
		},
		ClassifyGeoPackage: func(err error) error {
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
	if tiles != nil {
		deps.Objects = objectReader{tiles}
		deps.Opener = source.ObjectOpenerFunc(func(ctx context.Context, key string) (io.ReadCloser, error) {
			obj, err := tiles.Open(ctx, key)
			if errors.Is(err, storage.ErrNotFound) {
				return nil, fmt.Errorf("%w: %s", source.ErrNoData, key)
			}
			return obj, err
		})
	}
	return deps
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
