package worker

import (
	"context"
	"errors"
	"time"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/source"
)

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
