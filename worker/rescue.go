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

// MachineTTL is how long a worker machine's heartbeat lasts: a machine
// silent for that long is dead, and the finalizes its queue holds go to
// their jobs' own queues. A worker beats every RescueInterval.
const MachineTTL = 3 * RescueInterval

// ActiveTasks lists and removes the tasks of queues; *asynq.Inspector is
// one. A task whose lease has expired (its worker stopped extending it:
// died, or cut off from Redis) is IsOrphaned.
type ActiveTasks interface {
	Queues() ([]string, error)
	ListActiveTasks(queue string, opts ...asynq.ListOption) ([]*asynq.TaskInfo, error)
	ListPendingTasks(queue string, opts ...asynq.ListOption) ([]*asynq.TaskInfo, error)
	ListRetryTasks(queue string, opts ...asynq.ListOption) ([]*asynq.TaskInfo, error)
	ListScheduledTasks(queue string, opts ...asynq.ListOption) ([]*asynq.TaskInfo, error)
	DeleteTask(queue, id string) error
	DeleteQueue(queue string, force bool) error
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
//
// It also sends the worker machine's heartbeat (beat), and moves the
// finalizes that dead machines' queues hold to their jobs' own queues.
type rescuer struct {
	active   ActiveTasks
	jobs     Jobs
	enqueuer Enqueuer
	log      *slog.Logger
	metrics  *metrics
	// own is this machine's queue; beat sends its heartbeat.
	own  string
	beat func()
}

// run beats and scans every interval until ctx is done.
func (r *rescuer) run(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() {
		if r.beat != nil {
			r.beat()
		}
		if err := errors.Join(r.scan(ctx), r.scanMachines(ctx)); err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "look for dead workers' tasks", logattr.Error, err)
		}
	})
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

// scanMachines moves the finalizes that the queues of dead machines (no
// heartbeat for MachineTTL) hold to their jobs' own queues, where any
// worker takes them, and removes such a queue once it is empty.
func (r *rescuer) scanMachines(ctx context.Context) error {
	queues, err := r.active.Queues()
	if err != nil {
		return err
	}
	var errs []error
	for _, q := range queues {
		if !job.IsMachineQueue(q) || q == r.own {
			continue
		}
		alive, err := r.jobs.MachineAlive(ctx, q)
		if err != nil || alive {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, r.drainMachine(ctx, q))
	}
	return errors.Join(errs...)
}

// drainMachine moves every finalize of the dead machine's queue q that no
// live process runs, and removes q when nothing is left in it.
func (r *rescuer) drainMachine(ctx context.Context, q string) error {
	lists := []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		r.active.ListPendingTasks, r.active.ListRetryTasks, r.active.ListScheduledTasks, r.active.ListActiveTasks,
	}
	var errs []error
	left := 0
	for i, list := range lists {
		active := i == len(lists)-1
		// A machine queue holds a finalize per job the machine assembled:
		// a page is plenty, and the next scan takes any rest.
		tasks, err := list(q, asynq.PageSize(500))
		if err != nil {
			errs = append(errs, err)
			left++
			continue
		}
		for _, t := range tasks {
			if active && !t.IsOrphaned {
				left++ // a live process runs it after all
				continue
			}
			if err := r.moveFinalize(ctx, q, t, active); err != nil {
				errs = append(errs, err)
				left++
			} else if active {
				left++ // asynq moves it to retry later; the next scan deletes it
			}
		}
	}
	if left == 0 {
		if err := r.active.DeleteQueue(q, false); err != nil && !errors.Is(err, asynq.ErrQueueNotEmpty) && !errors.Is(err, asynq.ErrQueueNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// moveFinalize queues in its job's own queue a copy of the finalize t of
// the dead machine's queue q (once: the copy's id derives from t's), and
// deletes t unless it is active; a task of an ended or unknown job is only
// deleted.
func (r *rescuer) moveFinalize(ctx context.Context, q string, t *asynq.TaskInfo, active bool) error {
	if t.Type == job.TypeFinalize {
		var p job.FinalizePayload
		if err := job.Decode(t.Payload, &p); err == nil {
			j, err := r.jobs.Get(ctx, p.JobID)
			switch {
			case errors.Is(err, job.ErrNotFound):
			case err != nil:
				return err
			case j.Status == job.StatusInProgress:
				added, err := r.enqueuer.FinalizeElsewhere(ctx, j, t.ID)
				if err != nil {
					return err
				}
				if added {
					r.log.WarnContext(ctx, "finalize of a dead machine queued again", logattr.JobID, j.ID,
						logattr.TaskID, t.ID, "queue", q)
				}
			}
		}
	}
	if active {
		return nil
	}
	if err := r.active.DeleteTask(q, t.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		return err
	}
	return nil
}
