package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
)

// errCancelled stops a task whose job is no longer running: for good, so
// asynq does not retry it.
var errCancelled = fmt.Errorf("job no longer running: %w", asynq.SkipRetry)

// failures is the last step of every render and finalize task: it decides
// what the task's error means for its job. It calls no other step.
type failures struct {
	jobs     Jobs
	files    Files
	enqueuer Enqueuer
	log      *slog.Logger
	metrics  *metrics
}

// end fails the job when err ends its task for good, deletes the job's
// parts and tells the job's callers. A task stopped because its job left
// In-Progress (cancelled, or failed by another batch) ends with
// errCancelled and fails nothing; an error with retries left is returned
// as it is, for asynq to retry.
func (f *failures) end(ctx context.Context, jobID string, err error) error {
	log := f.log.With(logattr.JobID, jobID)
	if errors.Is(err, errCancelled) || (err != nil && ctx.Err() != nil && f.cancelled(ctx, jobID)) {
		log.InfoContext(ctx, "task stopped: job no longer running")
		return errCancelled
	}
	if err == nil || ctx.Err() != nil || !lastAttempt(ctx, err) {
		return err
	}
	wctx := context.WithoutCancel(ctx)
	j, changed, ferr := f.jobs.Fail(wctx, jobID, failureReason(err))
	if ferr != nil {
		return errors.Join(err, ferr)
	}
	if changed {
		f.metrics.jobsFinished.WithLabelValues(string(job.StatusFailed)).Inc()
		log.ErrorContext(ctx, "export failed", logattr.Error, err)
		if cerr := deleteParts(wctx, f.files, j); cerr != nil {
			log.WarnContext(ctx, "delete parts of failed job", logattr.Error, cerr)
		}
	}
	if j.Status == job.StatusFailed {
		if cerr := f.enqueuer.Callbacks(wctx, j); cerr != nil {
			return errors.Join(err, cerr)
		}
	}
	return err
}

// cancelled reports whether a job was cancelled; a task whose context was
// cancelled by DELETE /jobs/{id} must not be retried.
func (f *failures) cancelled(ctx context.Context, id string) bool {
	st, err := f.jobs.Status(context.WithoutCancel(ctx), id)
	return err == nil && st == job.StatusCancelled
}

// lastAttempt reports whether err ends the task for good: it skips
// retries, or no retry is left. Redis being unavailable never does.
func lastAttempt(ctx context.Context, err error) bool {
	if errors.Is(err, asynq.SkipRetry) {
		return true
	}
	if errors.Is(err, job.ErrUnavailable) {
		return false // not counted as an attempt: see IsFailure in server
	}
	retried, ok1 := asynq.GetRetryCount(ctx)
	maxRetry, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && retried >= maxRetry
}

// failureReason is the text callers see: the error without the asynq
// marker.
func failureReason(err error) string {
	return strings.TrimSuffix(err.Error(), ": "+asynq.SkipRetry.Error())
}
