package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/storage"
	"github.com/geoexport/exporter/source"
)

// ContentTypeGeoPackage is the media type packages are stored with.
const ContentTypeGeoPackage = "application/geopackage+sqlite3"

// Files is the package storage the worker writes.
type Files interface {
	// PutFile uploads the local file at path under key, replacing any
	// object there; readers never see a partial object.
	PutFile(ctx context.Context, key, path, contentType string) error
	// GetFile downloads the object at key to path; storage.ErrNotFound
	// when it does not exist.
	GetFile(ctx context.Context, key, path string) error
	// Delete removes the object at key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List yields the objects under prefix.
	List(ctx context.Context, prefix string) iter.Seq2[storage.Info, error]
}

// errCancelled stops a render whose job was cancelled: for good, so asynq
// does not retry it.
var errCancelled = fmt.Errorf("job no longer running: %w", asynq.SkipRetry)

// handleRender renders one batch of a job. A job of one batch is written
// straight into its package; a larger job's batches write parts, and the
// batch that completes the set enqueues the merge. It is idempotent: a job
// that is no longer In-Progress is left alone, a batch already stored is
// not rendered again, and every key is derived from the job.
func (w *Worker) handleRender(ctx context.Context, t *asynq.Task) error {
	var p job.RenderPayload
	if err := job.Decode(t.Payload(), &p); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return w.endOnFailure(ctx, p.JobID, w.render(ctx, p))
}

// endOnFailure fails the job when err ends its task for good, and tells
// the job's callers.
func (w *Worker) endOnFailure(ctx context.Context, jobID string, err error) error {
	log := w.log.With("job_id", jobID)
	if errors.Is(err, errCancelled) || (err != nil && ctx.Err() != nil && w.cancelled(ctx, jobID)) {
		log.InfoContext(ctx, "task stopped: job no longer running")
		return errCancelled
	}
	if err == nil || ctx.Err() != nil || !lastAttempt(ctx, err) {
		return err
	}
	wctx := context.WithoutCancel(ctx)
	j, changed, ferr := w.deps.Jobs.Fail(wctx, jobID, failureReason(err))
	if ferr != nil {
		return errors.Join(err, ferr)
	}
	if changed {
		w.metrics.jobsFinished.WithLabelValues(string(job.StatusFailed)).Inc()
		log.ErrorContext(ctx, "export failed", "error", err)
		if cerr := w.deleteParts(wctx, j); cerr != nil {
			log.WarnContext(ctx, "delete parts of failed job", "error", cerr)
		}
	}
	if j.Status == job.StatusFailed {
		if cerr := w.notify(wctx, j); cerr != nil {
			return errors.Join(err, cerr)
		}
	}
	return err
}

// cancelled reports whether a job was cancelled; a task whose context was
// cancelled by DELETE /jobs/{id} must not be retried.
func (w *Worker) cancelled(ctx context.Context, id string) bool {
	st, err := w.deps.Jobs.Status(context.WithoutCancel(ctx), id)
	return err == nil && st == job.StatusCancelled
}

// failureReason is the text callers see: the error without the asynq
// marker.
func failureReason(err error) string {
	return strings.TrimSuffix(err.Error(), ": "+asynq.SkipRetry.Error())
}

func (w *Worker) render(ctx context.Context, p job.RenderPayload) error {
	j, err := w.deps.Jobs.Get(ctx, p.JobID)
	if errors.Is(err, job.ErrNotFound) {
		return fmt.Errorf("render: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	switch j.Status {
	case job.StatusInProgress:
	case job.StatusCompleted:
		// A re-delivery after the job was finished: make sure its callers
		// were told, which is idempotent.
		return w.notify(ctx, j)
	default:
		return nil
	}
	plan := j.Spec.Plan()
	if p.Batch < 0 || p.Batch >= len(plan) {
		return fmt.Errorf("render: job %s has no batch %d: %w", j.ID, p.Batch, asynq.SkipRetry)
	}
	batch := plan[p.Batch]
	log := w.log.With("job_id", j.ID, "batch", p.Batch)
	if len(plan) > 1 {
		done, err := w.deps.Jobs.IsBatchDone(ctx, j.ID, p.Batch)
		if err != nil {
			return err
		}
		if done {
			log.InfoContext(ctx, "batch already stored")
			return w.batchStored(ctx, j, p.Batch, len(plan))
		}
	}
	dir, release, err := makeTaskDir(w.cfg.TempDir, "render-")
	if err != nil {
		return fmt.Errorf("render temp dir: %w", err)
	}
	defer release()
	path := filepath.Join(dir, j.Spec.PackageName+".gpkg")
	written, err := w.build(ctx, j, batch, path)
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "batch rendered", "tiles", written, "of", batch.Tiles)
	if len(plan) == 1 {
		if err := w.writeMetadata(ctx, j, path, written); err != nil {
			return err
		}
		return w.store(ctx, j, path, written)
	}
	part := job.PartKey(j.ID, p.Batch)
	if err := w.deps.Files.PutFile(ctx, part, path, ContentTypeGeoPackage); err != nil {
		return fmt.Errorf("store part %d: %w", p.Batch, err)
	}
	// A job cancelled or failed meanwhile has had its parts cleaned up
	// already, or will; this part must not outlive it.
	if err := w.checkRunning(ctx, j.ID); err != nil {
		return errors.Join(err, w.deps.Files.Delete(ctx, part))
	}
	return w.batchStored(ctx, j, p.Batch, len(plan))
}

// batchStored records a stored part and, if it was the last one, queues
// the merge. Both steps are idempotent, so a re-run after a crash between
// them finishes the job.
func (w *Worker) batchStored(ctx context.Context, j job.Job, batch, batches int) error {
	n, err := w.deps.Jobs.BatchDone(ctx, j.ID, batch)
	if err != nil {
		return err
	}
	if int(n) < batches {
		return nil
	}
	payload, err := job.Encode(job.FinalizePayload{JobID: j.ID})
	if err != nil {
		return err
	}
	_, err = w.deps.Queue.EnqueueContext(ctx, asynq.NewTask(job.TypeFinalize, payload),
		asynq.TaskID(job.FinalizeTaskID(j.ID)), asynq.Queue(job.QueueFor(j.Spec.Priority, w.cfg.UrgentFrom, w.cfg.DefaultFrom)),
		asynq.MaxRetry(w.cfg.FinalizeMaxRetry), asynq.Timeout(w.cfg.FinalizeTimeout))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue finalize of job %s: %w", j.ID, job.Unavailable(err))
	}
	return nil
}

// build renders one batch of the job into a new GeoPackage at path and
// returns how many tiles it holds.
func (w *Worker) build(ctx context.Context, j job.Job, batch job.Batch, path string) (int64, error) {
	spec := j.Spec
	src, release, err := w.sourceFor(spec)
	if err != nil {
		return 0, fmt.Errorf("layer %s source: %w: %w", spec.Layer.ID, err, asynq.SkipRetry)
	}
	defer release()
	var metatile [2]int
	if m, ok := src.(interface{ Metatile() (int, int) }); ok {
		metatile[0], metatile[1] = m.Metatile()
	}
	src = measured{Source: src, kind: spec.Layer.Source.Kind, metrics: w.metrics}
	policy, err := source.ParseFormatPolicy(spec.Layer.TileFormat)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	gw, err := gpkg.Create(ctx, path, packageOptions(spec))
	if err != nil {
		return 0, fmt.Errorf("create package: %w", err)
	}
	defer func() { _ = gw.Abort() }() // a no-op once Close succeeded
	key := fmt.Sprint(batch.Index)
	p := &pipeline{
		w: w, layer: spec.Layer.ProductID, src: src, metatile: metatile, policy: policy, quality: spec.Layer.JPEGQuality,
		ranges: batch.Ranges(spec.BBox, spec.Zoom), gw: gw,
		progress: func(ctx context.Context, done int64) error {
			if err := w.deps.Jobs.SetProgress(ctx, j.ID, key, done); err != nil {
				return err
			}
			return w.checkRunning(ctx, j.ID)
		},
	}
	written, err := p.run(ctx)
	if err != nil {
		return 0, err
	}
	if err := gw.Close(); err != nil {
		return 0, fmt.Errorf("finish package: %w", err)
	}
	// Tiles with no data were skipped: count them as done too.
	if err := w.deps.Jobs.SetProgress(ctx, j.ID, key, batch.Tiles); err != nil {
		return 0, err
	}
	return written, nil
}

// packageOptions are the GeoPackage settings of a job's package and parts.
func packageOptions(spec job.Spec) gpkg.Options {
	return gpkg.Options{
		Table:       tableName(spec.Layer.ProductID),
		Identifier:  spec.PackageName,
		Description: fmt.Sprintf("%s %s version %s, zoom 0-%d", spec.Layer.ProductType, spec.Layer.ProductID, spec.Layer.Version, spec.Zoom),
		Extent:      spec.BBox,
	}
}

// store uploads a finished package and completes the job.
func (w *Worker) store(ctx context.Context, j job.Job, path string, tiles int64) error {
	sum, size, err := fileDigest(path)
	if err != nil {
		return err
	}
	key := job.PackageKey(j.ID, j.Spec.PackageName)
	if err := w.deps.Files.PutFile(ctx, key, path, ContentTypeGeoPackage); err != nil {
		return fmt.Errorf("store package %s: %w", key, err)
	}
	return w.complete(ctx, j, job.Result{FileKey: key, FileSize: size, SHA256: sum, TilesStored: tiles})
}

// complete marks the job Completed with its stored package and tells its
// callers; a job cancelled meanwhile has the package deleted instead.
func (w *Worker) complete(ctx context.Context, j job.Job, r job.Result) error {
	key, tiles, size := r.FileKey, r.TilesStored, r.FileSize
	j, changed, err := w.deps.Jobs.Complete(ctx, j.ID, r, w.cfg.PackageTTL)
	if err != nil {
		return err
	}
	if changed {
		w.metrics.jobsFinished.WithLabelValues(string(job.StatusCompleted)).Inc()
		w.log.InfoContext(ctx, "export completed", "job_id", j.ID, "package_id", j.Spec.PackageName, "tiles", tiles, "bytes", size)
	}
	if j.Status != job.StatusCompleted {
		// Cancelled while the package was stored: it is nobody's.
		if err := w.deps.Files.Delete(ctx, key); err != nil {
			return fmt.Errorf("delete package of cancelled job %s: %w", j.ID, err)
		}
		return nil
	}
	return w.notify(ctx, j)
}

var notIdent = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// tableName derives the tile table's name from the product id.
func tableName(productID string) string {
	name := strings.Trim(notIdent.ReplaceAllString(productID, "_"), "_")
	if name == "" || name[0] >= '0' && name[0] <= '9' || strings.HasPrefix(strings.ToLower(name), "gpkg_") {
		name = "tiles_" + name
	}
	return strings.TrimSuffix(name, "_")
}

// fileDigest returns the sha256 and size of a file.
func fileDigest(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("digest package: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("digest package: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
