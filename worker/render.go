package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/sync/errgroup"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/worker/source"
)

// ContentTypeGeoPackage is the media type packages are stored with.
const ContentTypeGeoPackage = "application/geopackage+sqlite3"

// Files is the package storage the worker writes.
type Files interface {
	// PutFile uploads the local file at path under key, replacing any
	// object there; readers never see a partial object.
	PutFile(ctx context.Context, key, path, contentType string) error
	// Delete removes the object at key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// errCancelled stops a render whose job was cancelled: for good, so asynq
// does not retry it.
var errCancelled = fmt.Errorf("job cancelled: %w", asynq.SkipRetry)

// progressEvery is how many tiles pass between progress updates.
const progressEvery = 256

// handleRender renders one batch of a job into a GeoPackage and stores it.
// It is idempotent: a job that is no longer In-Progress is left alone, the
// package key is derived from the job, and a re-run overwrites its own
// output.
func (w *Worker) handleRender(ctx context.Context, t *asynq.Task) error {
	var p job.RenderPayload
	if err := job.Decode(t.Payload(), &p); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	log := w.log.With("job_id", p.JobID, "task_type", t.Type())
	err := w.render(ctx, p)
	if errors.Is(err, errCancelled) || (err != nil && ctx.Err() != nil && w.cancelled(ctx, p.JobID)) {
		log.InfoContext(ctx, "render stopped: job cancelled")
		return errCancelled
	}
	if err == nil || ctx.Err() != nil || !lastAttempt(ctx, err) {
		return err
	}
	// The job cannot be made: record why and tell its callers.
	reason := failureReason(err)
	j, changed, ferr := w.deps.Jobs.Fail(context.WithoutCancel(ctx), p.JobID, reason)
	if ferr != nil {
		return errors.Join(err, ferr)
	}
	if changed {
		w.metrics.jobsFinished.WithLabelValues(string(job.StatusFailed)).Inc()
		log.ErrorContext(ctx, "export failed", "error", err)
	}
	if j.Status == job.StatusFailed {
		if cerr := w.notify(context.WithoutCancel(ctx), j); cerr != nil {
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
	src, err := w.sourceFor(j.Spec)
	if err != nil {
		return fmt.Errorf("layer %s source: %w: %w", j.Spec.Layer.ID, err, asynq.SkipRetry)
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	dir, err := os.MkdirTemp(w.cfg.TempDir, "render-")
	if err != nil {
		return fmt.Errorf("render temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, j.Spec.PackageName+".gpkg")
	stored, err := w.build(ctx, j, p, src, path)
	if err != nil {
		return err
	}
	sum, size, err := fileDigest(path)
	if err != nil {
		return err
	}
	key := job.PackageKey(j.Spec.PackageName)
	if err := w.deps.Files.PutFile(ctx, key, path, ContentTypeGeoPackage); err != nil {
		return fmt.Errorf("store package %s: %w", key, err)
	}
	j, changed, err := w.deps.Jobs.Complete(ctx, j.ID, job.Result{FileKey: key, FileSize: size, SHA256: sum, TilesStored: stored}, w.cfg.PackageTTL)
	if err != nil {
		return err
	}
	if changed {
		w.metrics.jobsFinished.WithLabelValues(string(job.StatusCompleted)).Inc()
		w.log.InfoContext(ctx, "export completed", "job_id", j.ID, "package_id", j.Spec.PackageName,
			"tiles", stored, "bytes", size)
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

// encoded is a tile ready for the writer.
type encoded struct {
	tile   grid.Tile
	data   []byte
	format source.Format
}

// build renders every tile of the job into a new GeoPackage at path and
// returns how many tiles it holds. Tiles flow from one planner through
// Fetchers fetch-and-encode goroutines to the single SQLite writer, over
// bounded channels, so memory stays flat whatever the export's size and
// the slowest stage sets the pace.
func (w *Worker) build(ctx context.Context, j job.Job, p job.RenderPayload, src source.Source, path string) (int64, error) {
	spec := j.Spec
	gw, err := gpkg.Create(ctx, path, gpkg.Options{
		Table:       tableName(spec.Layer.ProductID),
		Identifier:  spec.PackageName,
		Description: fmt.Sprintf("%s %s version %s, zoom 0-%d", spec.Layer.ProductType, spec.Layer.ProductID, spec.Layer.Version, spec.Zoom),
		Extent:      spec.BBox,
	})
	if err != nil {
		return 0, fmt.Errorf("create package: %w", err)
	}
	policy, err := source.ParseFormatPolicy(spec.Layer.TileFormat)
	if err != nil {
		return 0, errors.Join(fmt.Errorf("%w: %w", err, asynq.SkipRetry), gw.Abort())
	}
	g, gctx := errgroup.WithContext(ctx)
	tiles := make(chan grid.Tile, 4*w.cfg.Fetchers)
	out := make(chan encoded, 4*w.cfg.Fetchers)
	g.Go(func() error {
		defer close(tiles)
		for _, r := range grid.Pyramid(spec.BBox, spec.Zoom) {
			for t := range r.Tiles {
				select {
				case tiles <- t:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
		}
		return nil
	})
	fetchers, fctx := errgroup.WithContext(gctx)
	for range w.cfg.Fetchers {
		fetchers.Go(func() error {
			for t := range tiles {
				e, ok, err := fetch(fctx, src, t, policy, spec.Layer.JPEGQuality)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				select {
				case out <- e:
				case <-fctx.Done():
					return fctx.Err()
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(out)
		return fetchers.Wait()
	})
	var written int64
	g.Go(func() error {
		batch := fmt.Sprint(p.Batch)
		last := time.Now()
		for e := range out {
			if err := gw.Put(gctx, e.tile, e.data); err != nil {
				return fmt.Errorf("write tile %s: %w", e.tile, err)
			}
			written++
			w.metrics.tiles.WithLabelValues(string(e.format)).Inc()
			w.metrics.tileBytes.WithLabelValues(string(e.format)).Add(float64(len(e.data)))
			if written%progressEvery == 0 || time.Since(last) > time.Second {
				last = time.Now()
				if err := w.deps.Jobs.SetProgress(gctx, j.ID, batch, written); err != nil {
					return err
				}
				if st, err := w.deps.Jobs.Status(gctx, j.ID); err != nil {
					return err
				} else if st != job.StatusInProgress {
					return errCancelled
				}
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		// Drain so the fetchers blocked on out can see the cancellation.
		for range out {
		}
		return 0, errors.Join(err, gw.Abort())
	}
	if err := gw.Close(); err != nil {
		return 0, fmt.Errorf("finish package: %w", err)
	}
	// Tiles with no data were skipped: count them as done too.
	if err := w.deps.Jobs.SetProgress(ctx, j.ID, fmt.Sprint(p.Batch), spec.TilesTotal); err != nil {
		return 0, err
	}
	return written, nil
}

// fetch reads one tile and encodes it by the layer's policy. ok is false
// for a tile with no data, which is not written.
func fetch(ctx context.Context, src source.Source, t grid.Tile, policy source.FormatPolicy, quality int) (encoded, bool, error) {
	st, err := src.Tile(ctx, t)
	if errors.Is(err, source.ErrNoData) {
		return encoded{}, false, nil
	}
	if err != nil {
		if errors.Is(err, source.ErrInvalidData) || errors.Is(err, source.ErrInvalidTile) {
			err = fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		return encoded{}, false, fmt.Errorf("tile %s: %w", t, err)
	}
	if st.Image == nil {
		return encoded{tile: t, data: st.Data, format: st.Format}, true, nil
	}
	if source.IsEmpty(st.Image) {
		return encoded{}, false, nil
	}
	data, f, err := source.Encode(st.Image, policy, quality)
	if err != nil {
		return encoded{}, false, fmt.Errorf("encode tile %s: %w", t, err)
	}
	return encoded{tile: t, data: data, format: f}, true, nil
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
