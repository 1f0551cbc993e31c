package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/storage"
)

// handleFinalize merges the parts of a job whose batches are all stored
// into its package, records what it holds, stores it, completes the job
// and deletes the parts. Idempotent: a Completed job only has its callers
// told and its parts removed again, and an In-Progress job whose package
// is already stored completes with that package (adopt).
func (w *Worker) handleFinalize(ctx context.Context, t *asynq.Task) error {
	var p job.FinalizePayload
	if err := job.Decode(t.Payload(), &p); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return w.endOnFailure(ctx, p.JobID, w.finalize(ctx, p.JobID))
}

func (w *Worker) finalize(ctx context.Context, id string) error {
	j, err := w.deps.Jobs.Get(ctx, id)
	if errors.Is(err, job.ErrNotFound) {
		return fmt.Errorf("finalize: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	switch j.Status {
	case job.StatusInProgress:
	case job.StatusCompleted:
		if err := w.notify(ctx, j); err != nil {
			return err
		}
		return w.deleteParts(ctx, j)
	default:
		return w.deleteParts(ctx, j)
	}
	plan := j.Spec.Plan()
	dir, release, err := makeTaskDir(w.cfg.TempDir, "finalize-")
	if err != nil {
		return fmt.Errorf("finalize temp dir: %w", err)
	}
	defer release()
	if adopted, err := w.adopt(ctx, j, dir); adopted || err != nil {
		return err
	}
	start := time.Now()
	parts := make([]string, len(plan))
	for i := range plan {
		if parts[i], err = w.fetchPart(ctx, j.ID, i, dir); err != nil {
			return fmt.Errorf("fetch part %d: %w", i, err)
		}
	}
	fetched := time.Now()
	path := filepath.Join(dir, j.Spec.PackageName+".gpkg")
	res, err := gpkg.Merge(ctx, path, parts, packageOptions(j.Spec))
	if err != nil {
		return fmt.Errorf("merge %d parts: %w", len(parts), err)
	}
	merged := time.Now()
	if err := w.writeMetadata(ctx, j, path, res.Tiles); err != nil {
		return err
	}
	described := time.Now()
	if err := w.store(ctx, j, path, res.Tiles); err != nil {
		return err
	}
	w.log.InfoContext(ctx, "parts merged", "job_id", j.ID, "parts", len(parts), "tiles", res.Tiles,
		"fetch_seconds", fetched.Sub(start).Seconds(), "merge_seconds", merged.Sub(fetched).Seconds(),
		"metadata_seconds", described.Sub(merged).Seconds(), "store_seconds", time.Since(described).Seconds())
	return w.deleteParts(ctx, j)
}

// adopt completes an In-Progress job whose package an earlier run stored
// without the job being marked Completed: a worker died between the two
// steps, or a Redis failover lost the Completed write (replication is
// asynchronous) after the parts had been deleted. The stored package is
// whole (objects appear whole), so its digest, size and tiles are read
// from it and the job completes as the earlier run would have. adopted is
// false when no package is stored.
func (w *Worker) adopt(ctx context.Context, j job.Job, dir string) (adopted bool, err error) {
	key := job.PackageKey(j.ID, j.Spec.PackageName)
	for info, err := range w.deps.Files.List(ctx, job.PackagePrefix(j.ID)) {
		if err != nil {
			return false, fmt.Errorf("look for stored package: %w", err)
		}
		adopted = adopted || info.Key == key
	}
	if !adopted {
		return false, nil
	}
	path := filepath.Join(dir, j.Spec.PackageName+".gpkg")
	if err := w.deps.Files.GetFile(ctx, key, path); errors.Is(err, storage.ErrNotFound) {
		return false, nil // deleted meanwhile
	} else if err != nil {
		return false, fmt.Errorf("fetch stored package %s: %w", key, err)
	}
	sum, size, err := fileDigest(path)
	if err != nil {
		return false, err
	}
	tiles, err := countTiles(ctx, path, tableName(j.Spec.Layer.ProductID))
	if err != nil {
		return false, err
	}
	w.log.WarnContext(ctx, "stored package adopted: the job was not marked Completed when it was stored",
		"job_id", j.ID, "package_id", j.Spec.PackageName, "tiles", tiles)
	return true, w.complete(ctx, j, job.Result{FileKey: key, FileSize: size, SHA256: sum, TilesStored: tiles})
}

// countTiles counts the tiles of a package's table.
func countTiles(ctx context.Context, path, table string) (int64, error) {
	r, err := gpkg.Open(ctx, path)
	if err != nil {
		return 0, fmt.Errorf("open stored package: %w", err)
	}
	defer r.Close()
	n, err := r.Count(ctx, table)
	if err != nil {
		return 0, fmt.Errorf("count tiles of stored package: %w", err)
	}
	return n, nil
}

// localFiles is implemented by a storage that keeps objects as local files
// (storage.Local): finalize attaches its parts where they lie.
type localFiles interface {
	Path(key string) (string, error)
}

// fetchPart returns a local file holding batch i's part: the stored file
// itself when the storage is local, else a download into dir.
func (w *Worker) fetchPart(ctx context.Context, id string, i int, dir string) (string, error) {
	key := job.PartKey(id, i)
	if local, ok := w.deps.Files.(localFiles); ok {
		return local.Path(key)
	}
	name := filepath.Join(dir, fmt.Sprintf("part-%05d.gpkg", i))
	return name, w.deps.Files.GetFile(ctx, key, name)
}

// metadata is the JSON document stored in every package.
type metadata struct {
	JobID         string          `json:"jobId"`
	Layer         json.RawMessage `json:"layer"`
	BBox          []float64       `json:"bbox"`
	CRS           string          `json:"crs"`
	Zooms         [2]int          `json:"zooms"`
	Tiles         int64           `json:"tiles"`
	ContentSHA256 string          `json:"contentSha256"`
	CreatedAt     string          `json:"createdAt"`
	Generator     string          `json:"generator"`
}

// writeMetadata records the request, layer, zooms, tile count and a digest
// of the tiles inside the package.
func (w *Worker) writeMetadata(ctx context.Context, j job.Job, path string, tiles int64) error {
	table := tableName(j.Spec.Layer.ProductID)
	digest, err := gpkg.ContentDigest(ctx, path, table)
	if err != nil {
		return fmt.Errorf("digest package: %w", err)
	}
	layer, err := json.Marshal(j.Spec.Layer)
	if err != nil {
		return fmt.Errorf("encode layer: %w", err)
	}
	md, err := json.Marshal(metadata{
		JobID: j.ID, Layer: layer, BBox: j.Spec.BBox.Slice(), CRS: j.Spec.CRS, Zooms: [2]int{0, int(j.Spec.Zoom)},
		Tiles: tiles, ContentSHA256: digest, CreatedAt: j.CreatedAt.Format("2006-01-02T15:04:05Z07:00"), Generator: "exporter",
	})
	if err != nil {
		return fmt.Errorf("encode metadata: %w", err)
	}
	if err := gpkg.WriteMetadata(ctx, path, gpkg.Metadata{Document: md}); err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	return nil
}

// deleteParts removes a job's part packages.
func (w *Worker) deleteParts(ctx context.Context, j job.Job) error {
	var errs []error
	for info, err := range w.deps.Files.List(ctx, job.PartsPrefix(j.ID)) {
		if err != nil {
			return err
		}
		if err := w.deps.Files.Delete(ctx, info.Key); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
