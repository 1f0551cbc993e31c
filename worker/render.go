package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
	"github.com/geoexport/exporter/internal/tempdir"
	"github.com/geoexport/exporter/source"
)

// renderer is the export:render step: it renders one batch of a job. A
// one-batch job's package goes straight to publish; a larger job's batch
// is stored as a part, which queues a merge, and the batch that completes
// the set queues finalize. The task's error goes to failure handling.
type renderer struct {
	jobs     Jobs
	files    Files
	enqueuer Enqueuer
	log      *slog.Logger
	metrics  *metrics
	// tempDir, fetchers and encoders are the Config's.
	tempDir            string
	fetchers, encoders int
	// sources keeps layers' sources open across render tasks: the batches
	// of one export share connections, metatile cache and a downloaded
	// GeoPackage.
	sources *source.Pool
	publish *publisher
	fail    *failures
}

// handle renders one batch of a job. It is idempotent: a job that is no
// longer In-Progress is left alone, a batch already stored is not
// rendered again, and every key is derived from the job.
func (r *renderer) handle(ctx context.Context, t *asynq.Task) error {
	p, err := decode[job.RenderPayload](t)
	if err != nil {
		return err
	}
	return r.fail.end(ctx, p.JobID, r.render(ctx, p))
}

func (r *renderer) render(ctx context.Context, p job.RenderPayload) error {
	j, err := getJob(ctx, r.jobs, "render", p.JobID)
	if err != nil {
		return err
	}
	switch j.Status {
	case job.StatusInProgress:
	case job.StatusCompleted:
		// A re-delivery after the job was finished: make sure its callers
		// were told, which is idempotent.
		return r.enqueuer.Callbacks(ctx, j)
	default:
		return nil
	}
	plan := j.Spec.Plan()
	if p.Batch < 0 || p.Batch >= len(plan) {
		return fmt.Errorf("render: job %s has no batch %d: %w", j.ID, p.Batch, asynq.SkipRetry)
	}
	batch := plan[p.Batch]
	log := r.log.With(logattr.JobID, j.ID, logattr.Batch, p.Batch)
	if len(plan) > 1 {
		done, err := r.jobs.IsBatchDone(ctx, j.ID, p.Batch)
		if err != nil {
			return err
		}
		if done {
			log.InfoContext(ctx, "batch already stored")
			return r.batchStored(ctx, j, p.Batch, len(plan), false)
		}
	}
	// The batch runs: it no longer waits for a retry (job status).
	if err := r.jobs.SetRetrying(ctx, j.ID, p.Batch, false); err != nil {
		return err
	}
	dir, release, err := tempdir.Make(r.tempDir, "render-")
	if err != nil {
		return fmt.Errorf("render temp dir: %w", err)
	}
	defer release()
	path := filepath.Join(dir, j.Spec.PackageName+".gpkg")
	written, err := r.build(ctx, j, batch, path, len(plan) > 1)
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "batch rendered", logattr.Tiles, written, "of", batch.Tiles)
	if len(plan) == 1 {
		_, err := r.publish.publish(ctx, j, path, written)
		return err
	}
	part := job.PartKey(j.ID, p.Batch)
	if err := r.files.PutFile(ctx, part, path, ContentTypeGeoPackage); err != nil {
		return fmt.Errorf("store part %d: %w", p.Batch, err)
	}
	// A job cancelled or failed meanwhile has had its parts cleaned up
	// already, or will; this part must not outlive it.
	if err := r.checkRunning(ctx, j.ID); err != nil {
		return errors.Join(err, r.files.Delete(ctx, part))
	}
	return r.batchStored(ctx, j, p.Batch, len(plan), true)
}

// batchStored records a stored part and, if it was the last one, queues
// finalize; a part stored just now (fresh) that was not the last queues a
// merge of the stored parts, which finalize then need not do. The steps
// are idempotent, so a re-run after a crash between them finishes the
// job (a merge it does not queue is left to finalize).
func (r *renderer) batchStored(ctx context.Context, j job.Job, batch, batches int, fresh bool) error {
	n, err := r.jobs.BatchDone(ctx, j.ID, batch)
	if err != nil {
		return err
	}
	if int(n) < batches {
		if fresh {
			_, err = r.enqueuer.Merge(ctx, j, batch)
		}
		return err
	}
	_, err = r.enqueuer.Finalize(ctx, j)
	return err
}

// build renders one batch of the job into a new GeoPackage at path and
// returns how many tiles it holds. A part (of a job of several batches)
// carries its record (gpkg.Options.Record), for the merge.
func (r *renderer) build(ctx context.Context, j job.Job, batch job.Batch, path string, part bool) (int64, error) {
	spec := j.Spec
	src, release, err := r.sources.Acquire(spec.Layer)
	if err != nil {
		return 0, fmt.Errorf("layer %s source: %w: %w", spec.Layer.ID, err, asynq.SkipRetry)
	}
	defer release()
	var metatile [2]int
	if m, ok := src.(interface{ Metatile() (int, int) }); ok {
		metatile[0], metatile[1] = m.Metatile()
	}
	src = measured{Source: src, kind: spec.Layer.Source.Kind, metrics: r.metrics}
	p, err := newEncoder(spec, r.metrics)
	if err != nil {
		return 0, err
	}
	opt := packageOptions(spec)
	opt.Record = part
	gw, err := gpkg.Create(ctx, path, opt)
	if err != nil {
		return 0, fmt.Errorf("create package: %w", err)
	}
	defer func() { _ = gw.Abort() }() // a no-op once Close succeeded
	key := fmt.Sprint(batch.Index)
	ranges := spec.Ranges(batch)
	if p.ov, err = newOverviews(spec, batch, ranges); err != nil {
		return 0, fmt.Errorf("overviews: %w: %w", err, asynq.SkipRetry)
	}
	p.fetchers, p.encoders, p.layer, p.src, p.metatile = r.fetchers, r.encoders, spec.Layer.ProductID, src, metatile
	p.ranges, p.gw = ranges, gw
	p.progress = func(ctx context.Context, done int64) error {
		if err := r.jobs.SetProgress(ctx, j.ID, key, done); err != nil {
			return err
		}
		return r.checkRunning(ctx, j.ID)
	}
	written, err := p.run(ctx)
	if err != nil {
		return 0, err
	}
	if err := gw.Close(); err != nil {
		return 0, fmt.Errorf("finish package: %w", err)
	}
	// Tiles with no data were skipped: count them as done too.
	if err := r.jobs.SetProgress(ctx, j.ID, key, batch.Tiles); err != nil {
		return 0, err
	}
	return written, nil
}

// newEncoder is a pipeline with what its encode stage needs for spec's
// tiles: the layer's format policy and the area's cutline. Settings that
// cannot work are permanent errors.
func newEncoder(spec job.Spec, m *metrics) (*pipeline, error) {
	policy, err := source.ParseFormatPolicy(spec.Layer.TileFormat)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	p := &pipeline{metrics: m, policy: policy, quality: spec.Layer.JPEGQuality}
	if spec.Cutline && len(spec.ROI) > 0 {
		fp, err := spec.Layer.AreaFootprint()
		if err == nil {
			p.cut, err = area.NewCutter(spec.ROI, fp)
		}
		if err != nil {
			return nil, fmt.Errorf("cutline: %w: %w", err, asynq.SkipRetry)
		}
	}
	return p, nil
}

// checkRunning is the progress hook's second half: it stops the pipeline
// for good once the job is no longer In-Progress (cancelled or failed by
// another batch).
func (r *renderer) checkRunning(ctx context.Context, id string) error {
	st, err := r.jobs.Status(ctx, id)
	if err != nil {
		return err
	}
	if st != job.StatusInProgress {
		return errCancelled
	}
	return nil
}
