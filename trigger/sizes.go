package trigger

import (
	"context"
	"sync"
	"time"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
)

// learnedSizes keeps each layer's learned sizes for Config.LearnedMaxAge:
// estimates follow new packages within it, and a burst of requests for one
// layer reads Redis once.
type learnedSizes struct {
	mu sync.Mutex
	m  map[string]learnedEntry
}

type learnedEntry struct {
	read  time.Time
	sizes job.LearnedSizes
}

// sizes is what estimates of layer's packages are made from: its learned
// sizes, and the configured averages where nothing is learned. When Redis
// does not answer, the configured averages alone: an estimate is still an
// estimate, and creating the job will tell the caller about Redis.
func (s *Server) sizes(ctx context.Context, layer catalog.Layer) job.Sizes {
	key := layer.ID + "@" + layer.Version
	now := s.deps.Now()
	s.learned.mu.Lock()
	e, ok := s.learned.m[key]
	s.learned.mu.Unlock()
	if ok && now.Sub(e.read) < s.cfg.LearnedMaxAge {
		return job.Sizes{Avg: s.cfg.TileSizes, Learned: e.sizes}
	}
	l, err := s.deps.Jobs.LearnedSizes(ctx, layer)
	if err != nil {
		s.deps.Logger.DebugContext(ctx, "learned tile sizes unavailable; estimating from the configured averages",
			logattr.LayerID, layer.ID, logattr.Error, err)
		return job.Sizes{Avg: s.cfg.TileSizes}
	}
	s.learned.mu.Lock()
	if s.learned.m == nil {
		s.learned.m = map[string]learnedEntry{}
	}
	s.learned.m[key] = learnedEntry{read: now, sizes: l}
	s.learned.mu.Unlock()
	return job.Sizes{Avg: s.cfg.TileSizes, Learned: l}
}

// estimateSpec sets spec's estimated size from the layer's sizes.
func (s *Server) estimateSpec(ctx context.Context, spec *job.Spec) error {
	est, _, err := spec.Estimate(s.sizes(ctx, spec.Layer))
	if err != nil {
		return roiError(err)
	}
	spec.EstimatedBytes = est
	return nil
}
