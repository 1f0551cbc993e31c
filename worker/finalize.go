package worker

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
)

// finalizer is the export:finalize step: it merges the parts of a job
// whose batches are all stored into its package and hands it to publish;
// the task's error goes to failure handling.
type finalizer struct {
	jobs     Jobs
	files    Files
	enqueuer Enqueuer
	log      *slog.Logger
	tempDir  string
	publish  *publisher
	fail     *failures
}

// handle merges the parts of a job whose batches are all stored into its
// package, records what it holds, stores it, completes the job and
// deletes the parts. Idempotent: a Completed job only has its callers
// told and its parts removed again, and an In-Progress job whose package
// is already stored completes with that package (publisher.adopt).
func (f *finalizer) handle(ctx context.Context, t *asynq.Task) error {
	p, err := decode[job.FinalizePayload](t)
	if err != nil {
		return err
	}
	return f.fail.end(ctx, p.JobID, f.finalize(ctx, p.JobID))
}

func (f *finalizer) finalize(ctx context.Context, id string) error {
	j, err := getJob(ctx, f.jobs, "finalize", id)
	if err != nil {
		return err
	}
	switch j.Status {
	case job.StatusInProgress:
	case job.StatusCompleted:
		if err := f.enqueuer.Callbacks(ctx, j); err != nil {
			return err
		}
		return deleteParts(ctx, f.files, j)
	default:
		return deleteParts(ctx, f.files, j)
	}
	plan := j.Spec.Plan()
	dir, release, err := makeTaskDir(f.tempDir, "finalize-")
	if err != nil {
		return fmt.Errorf("finalize temp dir: %w", err)
	}
	defer release()
	if adopted, err := f.publish.adopt(ctx, j, dir); adopted || err != nil {
		if err != nil {
			return err
		}
		return deleteParts(ctx, f.files, j)
	}
	start := time.Now()
	parts := make([]string, len(plan))
	for i := range plan {
		if parts[i], err = f.fetchPart(ctx, j.ID, i, dir); err != nil {
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
	took, err := f.publish.publish(ctx, j, path, res.Tiles)
	if err != nil {
		return err
	}
	f.log.InfoContext(ctx, "parts merged", logattr.JobID, j.ID, "parts", len(parts), logattr.Tiles, res.Tiles,
		"fetch_seconds", fetched.Sub(start).Seconds(), "merge_seconds", merged.Sub(fetched).Seconds(),
		"metadata_seconds", took.metadata.Seconds(), "store_seconds", took.store.Seconds())
	return deleteParts(ctx, f.files, j)
}

// localFiles is implemented by a storage that keeps objects as local files
// (storage.Local): finalize attaches its parts where they lie.
type localFiles interface {
	Path(key string) (string, error)
}

// fetchPart returns a local file holding batch i's part: the stored file
// itself when the storage is local, else a download into dir.
func (f *finalizer) fetchPart(ctx context.Context, id string, i int, dir string) (string, error) {
	key := job.PartKey(id, i)
	if local, ok := f.files.(localFiles); ok {
		return local.Path(key)
	}
	name := filepath.Join(dir, fmt.Sprintf("part-%05d.gpkg", i))
	return name, f.files.GetFile(ctx, key, name)
}
