package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/internal/job"
)

// decode reads a task's payload. A payload that does not decode never
// will: it ends the task for good.
func decode[P any](t *asynq.Task) (P, error) {
	var p P
	if err := job.Decode(t.Payload(), &p); err != nil {
		return p, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return p, nil
}

// getJob returns the job that a task of kind op (render, finalize,
// callback) works for. A job that no longer exists ends the task for
// good; any other error of the store is returned as it is, for asynq to
// retry.
func getJob(ctx context.Context, jobs Jobs, op, id string) (job.Job, error) {
	j, err := jobs.Get(ctx, id)
	if errors.Is(err, job.ErrNotFound) {
		return j, fmt.Errorf("%s: %w: %w", op, err, asynq.SkipRetry)
	}
	return j, err
}
