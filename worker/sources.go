package worker

import (
	"context"
	"errors"
	"time"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/source"
)

// sourceFor returns the tile source of a job's layer from the worker's
// pool, and the function that hands it back.
func (w *Worker) sourceFor(spec job.Spec) (source.Source, func(), error) {
	return w.sources.Acquire(spec.Layer)
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
