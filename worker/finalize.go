package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
	"github.com/geoexport/exporter/internal/tempdir"
)

// finalizer is the export:finalize step: it completes the package of a
// job whose batches are all stored, merging the parts that the merge
// tasks have not merged on this machine, and hands it to publish; the
// task's error goes to failure handling.
type finalizer struct {
	jobs     Jobs
	files    Files
	enqueuer Enqueuer
	log      *slog.Logger
	tempDir  string
	publish  *publisher
	fail     *failures
	metrics  *metrics
}

// handle completes the package of a job whose batches are all stored,
// records what it holds, stores it, completes the job and deletes the
// parts. Idempotent: a Completed job only has its callers told and its
// parts removed again, and an In-Progress job whose package is already
// stored completes with that package (publisher.adopt).
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
		return f.cleanUp(ctx, j)
	default:
		return f.cleanUp(ctx, j)
	}
	dir, release, err := tempdir.Make(f.tempDir, "finalize-")
	if err != nil {
		return fmt.Errorf("finalize temp dir: %w", err)
	}
	defer release()
	if adopted, err := f.publish.adopt(ctx, j, dir); adopted || err != nil {
		if err != nil {
			return err
		}
		return f.cleanUp(ctx, j)
	}
	start := time.Now()
	// Waits while a merge task of this machine is merging.
	a, err := openAssembly(ctx, f.tempDir, j, true)
	if err != nil {
		return err
	}
	opened := time.Now()
	ahead := a.Parts()
	all := func(int) (bool, error) { return true, nil }
	if _, err := mergeParts(ctx, f.files, a, j, dir, all); err != nil {
		return errors.Join(err, a.close())
	}
	if err := f.overviews(ctx, a, j, dir); err != nil {
		return errors.Join(err, a.close())
	}
	merged := time.Now()
	res, err := a.Finish(ctx, func(r gpkg.AssemblyResult) (gpkg.Metadata, error) {
		doc, err := metadataDocument(j, r.Tiles, r.ContentDigest)
		return gpkg.Metadata{Document: doc}, err
	})
	if err != nil {
		return errors.Join(fmt.Errorf("finish package: %w", err), a.close())
	}
	finished := time.Now()
	// res.Sizes, tiles and bytes per zoom kept as parts were merged, are
	// the layer's learned sizes: the package is not read for them.
	if err := f.publish.store(ctx, j, a.path, res.Tiles, res.Sizes); err != nil {
		// The finished package is no assembly: the next attempt merges
		// the parts again.
		return errors.Join(err, a.close())
	}
	if err := a.remove(); err != nil {
		f.log.WarnContext(ctx, "remove assembled package", logattr.JobID, j.ID, logattr.Error, err)
	}
	f.log.InfoContext(ctx, "parts merged", logattr.JobID, j.ID, "parts", res.Parts, "merged_ahead", ahead, logattr.Tiles, res.Tiles,
		"wait_seconds", opened.Sub(start).Seconds(), "merge_seconds", merged.Sub(opened).Seconds(),
		"finish_seconds", finished.Sub(merged).Seconds(), "store_seconds", time.Since(finished).Seconds())
	return deleteParts(ctx, f.files, j)
}

// overviews builds the deferred overviews of a job whose layer builds
// them, now that every part is in the package.
func (f *finalizer) overviews(ctx context.Context, a *assembly, j job.Job, dir string) error {
	if !j.Spec.Layer.Downsample() {
		return nil
	}
	enc, err := newEncoder(j.Spec, f.metrics)
	if err != nil {
		return err
	}
	return buildDeferred(ctx, a, j, dir, enc)
}

// cleanUp deletes the parts of a job that no longer runs and its package
// being assembled on this machine.
func (f *finalizer) cleanUp(ctx context.Context, j job.Job) error {
	return errors.Join(deleteParts(ctx, f.files, j), removeAssembly(f.tempDir, j.ID))
}
