package worker

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
)

// RescueInterval is how often a worker looks for render tasks whose
// worker died. asynq (v0.26) gives a dead worker's task back only when
// its recoverer, which runs once a minute, finds the task's lease (30 s,
// not configurable) expired for 30 s more: 60 to 120 s after the death.
// A rescuer finds the task as soon as its lease has expired (asynq's
// Inspector calls it orphaned): at most 30 s after the last heartbeat,
// plus this interval, plus a poll.
const RescueInterval = 5 * time.Second

// ActiveTasks lists the tasks being run in a queue; *asynq.Inspector is
// one. A task whose lease has expired (its worker stopped extending it:
// died, or cut off from Redis) is IsOrphaned.
type ActiveTasks interface {
	ListActiveTasks(queue string, opts ...asynq.ListOption) ([]*asynq.TaskInfo, error)
}

// rescuer queues again the render tasks that dead workers left running
// (Enqueuer.RenderAgain), so that another worker renders the batch within
// RescueInterval of the task's lease expiring. Every worker runs one;
// they agree on the copy's task id, so a dead task is queued again once.
// The dead task itself is still retried by asynq later and then finds its
// batch stored (or re-renders it, which is idempotent). A batch is queued
// again at most as many times as its task may be retried, so a batch that
// kills every worker that renders it ends in asynq's own retries and their
// limit.
type rescuer struct {
	active   ActiveTasks
	jobs     Jobs
	enqueuer Enqueuer
	log      *slog.Logger
	metrics  *metrics
}

// run scans every interval until ctx is done.
func (r *rescuer) run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := r.scan(ctx); err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "look for dead workers' tasks", logattr.Error, err)
			}
		}
	}
}

// scan queues again every orphaned render task of the export queues whose
// batch is not stored yet and whose job is In-Progress.
func (r *rescuer) scan(ctx context.Context) error {
	var errs []error
	for _, q := range []string{job.QueueUrgent, job.QueueDefault, job.QueueLow} {
		for page := 1; ; page++ {
			const size = 500
			tasks, err := r.active.ListActiveTasks(q, asynq.PageSize(size), asynq.Page(page))
			if errors.Is(err, asynq.ErrQueueNotFound) {
				break // no task was ever queued there
			}
			if err != nil {
				errs = append(errs, err)
				break
			}
			for _, t := range tasks {
				if t.IsOrphaned && t.Type == job.TypeRender {
					errs = append(errs, r.rescue(ctx, t))
				}
			}
			if len(tasks) < size {
				break
			}
		}
	}
	return errors.Join(errs...)
}

func (r *rescuer) rescue(ctx context.Context, t *asynq.TaskInfo) error {
	if strings.Count(t.ID, job.RescueSuffix) >= max(t.MaxRetry, 1) {
		return nil
	}
	var p job.RenderPayload
	if err := job.Decode(t.Payload, &p); err != nil {
		return nil // the task fails on its own when it runs again
	}
	j, err := r.jobs.Get(ctx, p.JobID)
	if errors.Is(err, job.ErrNotFound) {
		return nil
	}
	if err != nil || j.Status != job.StatusInProgress {
		return err
	}
	if done, err := r.jobs.IsBatchDone(ctx, j.ID, p.Batch); err != nil || done {
		return err
	}
	added, err := r.enqueuer.RenderAgain(ctx, j, p.Batch, t.ID)
	if err != nil || !added {
		return err
	}
	r.metrics.rescued.Inc()
	r.log.WarnContext(ctx, "batch of a dead worker queued again", logattr.JobID, j.ID, logattr.Batch, p.Batch,
		logattr.TaskID, t.ID, "last_failed", t.LastFailedAt)
	return r.jobs.SetRetrying(ctx, j.ID, p.Batch, true)
}
