package worker

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/geoexport/exporter/internal/catalog"
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
	switch l.Source.Kind {
	case catalog.SourceDemo:
		return source.NewDemo(source.DemoConfig{Footprint: l.Footprint})
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
		return source.NewTileStore(cfg)
	}
	return nil, fmt.Errorf("unknown source kind %q", l.Source.Kind)
}
