package job

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/internal/setting"
)

// TaskQueue puts tasks on the broker; *asynq.Client is one.
type TaskQueue interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// TaskRecords are what the Enqueuer reads of a job besides the job
// itself; *Store is one.
type TaskRecords interface {
	// Callbacks reads the callbacks of a job.
	Callbacks(ctx context.Context, id string) ([]Callback, error)
	// AssemblerQueue is the queue of the machine that merges the job's
	// parts ahead (ClaimAssembly) while that machine is alive, else "".
	AssemblerQueue(ctx context.Context, id string) (string, error)
}

// TaskOptions are the asynq options of the tasks of an export, fixed when
// the Enqueuer is built so every role that queues a task gives it the
// same ones.
type TaskOptions struct {
	// UrgentFrom and DefaultFrom map a job's priority to its queue
	// (QueueFor): its render, finalize and callback tasks all go there.
	UrgentFrom, DefaultFrom int
	// RenderTimeout and RenderMaxRetry are set on every render task.
	RenderTimeout  time.Duration
	RenderMaxRetry int
	// FinalizeTimeout and FinalizeMaxRetry are set on every finalize task.
	FinalizeTimeout  time.Duration
	FinalizeMaxRetry int
	// CallbackTimeout bounds one callback POST; the task's own timeout is
	// CallbackSlack longer, so that the POST's timeout, which the worker
	// records as the delivery's outcome, is what ends a slow delivery.
	// CallbackMaxRetry is set on every callback task.
	CallbackTimeout  time.Duration
	CallbackMaxRetry int
	// CallbackRetention keeps a delivered callback's task id reserved, so
	// that a repeated notification within that time delivers nothing
	// twice. Zero: DefaultRetention.
	CallbackRetention time.Duration
	// MaintenanceRetention keeps a maintenance slot's task id reserved, so
	// that a replica that asks for the same slot later enqueues nothing;
	// it must be longer than the longest gap between a slot and the last
	// replica asking for it. Zero: DefaultRetention.
	MaintenanceRetention time.Duration
}

// MaxPriority is the highest priority a request may ask for.
const MaxPriority = 999_999_999

// DefaultTaskOptions returns the default of every task option.
func DefaultTaskOptions() TaskOptions {
	return TaskOptions{
		UrgentFrom: 100_000_000, DefaultFrom: 1000,
		RenderTimeout: 2 * time.Hour, RenderMaxRetry: 5, FinalizeTimeout: 2 * time.Hour, FinalizeMaxRetry: 5,
		CallbackTimeout: 10 * time.Second, CallbackMaxRetry: 10,
		CallbackRetention: DefaultRetention, MaintenanceRetention: DefaultRetention,
	}
}

// DefaultRetention is how long callback and maintenance task ids stay
// reserved when TaskOptions does not say.
const DefaultRetention = 24 * time.Hour

// withDefaults fills in the zero retentions.
func (o TaskOptions) withDefaults() TaskOptions {
	o.CallbackRetention = cmp.Or(o.CallbackRetention, DefaultRetention)
	o.MaintenanceRetention = cmp.Or(o.MaintenanceRetention, DefaultRetention)
	return o
}

// Validate reports every problem of o.
func (o TaskOptions) Validate() error {
	var errs []error
	if o.RenderTimeout <= 0 || o.FinalizeTimeout <= 0 || o.CallbackTimeout <= 0 {
		errs = append(errs, setting.Error(errors.New("job: render, finalize and callback timeouts must be positive"), "RenderTimeout", "FinalizeTimeout", "CallbackTimeout"))
	}
	if o.RenderMaxRetry < 0 || o.FinalizeMaxRetry < 0 || o.CallbackMaxRetry < 0 {
		errs = append(errs, setting.Error(errors.New("job: render, finalize and callback retries must not be negative"), "RenderMaxRetry", "FinalizeMaxRetry", "CallbackMaxRetry"))
	}
	if o.CallbackRetention < 0 || o.MaintenanceRetention < 0 {
		errs = append(errs, setting.Error(errors.New("job: callback and maintenance retention must not be negative"), "CallbackRetention", "MaintenanceRetention"))
	}
	if o.UrgentFrom <= o.DefaultFrom {
		errs = append(errs, setting.Error(fmt.Errorf("job: urgent-from %d must be above default-from %d", o.UrgentFrom, o.DefaultFrom), "UrgentFrom", "DefaultFrom"))
	}
	if o.DefaultFrom < 0 || o.UrgentFrom > MaxPriority {
		errs = append(errs, setting.Error(fmt.Errorf("job: default-from %d and urgent-from %d must be priorities, 0..%d", o.DefaultFrom, o.UrgentFrom, MaxPriority), "DefaultFrom", "UrgentFrom"))
	}
	return errors.Join(errs...)
}

// CallbackSlack is how much longer a callback task may run than its POST.
const CallbackSlack = 5 * time.Second

// Enqueuer is the one place tasks are queued: it derives each task's id
// (so that queueing a task again adds nothing while it exists or is
// retained), picks its queue and sets its retries, timeout and retention.
type Enqueuer struct {
	q   TaskQueue
	cbs TaskRecords
	opt TaskOptions
}

// NewEnqueuer builds the enqueue API over q, reading callbacks and
// assemblers from cbs.
func NewEnqueuer(q TaskQueue, cbs TaskRecords, opt TaskOptions) (*Enqueuer, error) {
	if q == nil || cbs == nil {
		return nil, errors.New("job: enqueuer needs a task queue and the job records")
	}
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	return &Enqueuer{q: q, cbs: cbs, opt: opt.withDefaults()}, nil
}

// Queue is the queue of j's render, finalize and callback tasks.
func (e *Enqueuer) Queue(j Job) string {
	return QueueFor(j.Spec.Priority, e.opt.UrgentFrom, e.opt.DefaultFrom)
}

// Render queues the render task of j's batch, with the task id stored in
// j.TaskIDs. added is false when the task already exists.
func (e *Enqueuer) Render(ctx context.Context, j Job, batch int) (added bool, err error) {
	if batch < 0 || batch >= len(j.TaskIDs) {
		return false, fmt.Errorf("enqueue render: job %s has no batch %d", j.ID, batch)
	}
	return e.render(ctx, j, batch, j.TaskIDs[batch])
}

// RescueSuffix ends the task id of a render task queued again for a
// worker that died running it (RenderAgain); a task rescued n times has
// it n times.
const RescueSuffix = "~r"

// RenderAgain queues the render task of j's batch once more, under the
// task id of a task that was running it when its worker died plus
// RescueSuffix, so that every worker that notices the same dead task
// queues one copy. added is false when that copy exists already.
func (e *Enqueuer) RenderAgain(ctx context.Context, j Job, batch int, deadTaskID string) (added bool, err error) {
	if batch < 0 || batch >= len(j.TaskIDs) {
		return false, fmt.Errorf("enqueue render: job %s has no batch %d", j.ID, batch)
	}
	return e.render(ctx, j, batch, deadTaskID+RescueSuffix)
}

func (e *Enqueuer) render(ctx context.Context, j Job, batch int, tid string) (added bool, err error) {
	added, err = e.enqueue(ctx, TypeRender, RenderPayload{JobID: j.ID, Batch: batch, Priority: j.Spec.Priority},
		asynq.TaskID(tid), asynq.Queue(e.Queue(j)), asynq.MaxRetry(e.opt.RenderMaxRetry), asynq.Timeout(e.opt.RenderTimeout))
	if err != nil {
		return false, fmt.Errorf("enqueue render %s: %w", tid, Unavailable(err))
	}
	return added, nil
}

// Finalize queues the merge of j's parts, with the task id derived from
// the job (FinalizeTaskID), so every batch that finds the set complete,
// the cancel and reconcile all queue the same task. It goes to the queue
// of the machine that merged the job's parts ahead while that machine is
// alive (AssemblerQueue), else to the job's queue. added is false when it
// already exists.
func (e *Enqueuer) Finalize(ctx context.Context, j Job) (added bool, err error) {
	queue, err := e.cbs.AssemblerQueue(ctx, j.ID)
	if err != nil {
		return false, fmt.Errorf("enqueue finalize of job %s: %w", j.ID, err)
	}
	return e.finalize(ctx, j, cmp.Or(queue, e.Queue(j)), FinalizeTaskID(j.ID))
}

// FinalizeElsewhere queues again, in j's own queue, the finalize that a
// dead machine's queue holds (deadTaskID), under a derived task id:
// every worker that finds it queues the same copy. added is false when
// that copy exists already.
func (e *Enqueuer) FinalizeElsewhere(ctx context.Context, j Job, deadTaskID string) (added bool, err error) {
	return e.finalize(ctx, j, e.Queue(j), deadTaskID+RescueSuffix)
}

func (e *Enqueuer) finalize(ctx context.Context, j Job, queue, tid string) (added bool, err error) {
	added, err = e.enqueue(ctx, TypeFinalize, FinalizePayload{JobID: j.ID},
		asynq.TaskID(tid), asynq.Queue(queue),
		asynq.MaxRetry(e.opt.FinalizeMaxRetry), asynq.Timeout(e.opt.FinalizeTimeout))
	if err != nil {
		return false, fmt.Errorf("enqueue finalize of job %s: %w", j.ID, Unavailable(err))
	}
	return added, nil
}

// Merge queues a merge of j's stored parts ahead of finalize, after batch
// was stored, on QueueMerge, with a task id derived from both
// (MergeTaskID). It has finalize's timeout and no retries: a merge that fails leaves its parts
// to the next merge or to finalize. added is false when it exists already.
func (e *Enqueuer) Merge(ctx context.Context, j Job, batch int) (added bool, err error) {
	added, err = e.enqueue(ctx, TypeMerge, MergePayload{JobID: j.ID, Batch: batch},
		asynq.TaskID(MergeTaskID(j.ID, batch)), asynq.Queue(QueueMerge),
		asynq.MaxRetry(0), asynq.Timeout(e.opt.FinalizeTimeout))
	if err != nil {
		return false, fmt.Errorf("enqueue merge of job %s: %w", j.ID, Unavailable(err))
	}
	return added, nil
}

// Callbacks queues one callback task per callback of the ended job j, on
// its queue. Task ids derive from the job, its status and the callback
// (CallbackTaskID) and are retained after delivery, so calling it again
// delivers nothing twice.
func (e *Enqueuer) Callbacks(ctx context.Context, j Job) error {
	cbs, err := e.cbs.Callbacks(ctx, j.ID)
	if err != nil {
		return err
	}
	for _, cb := range cbs {
		_, err := e.enqueue(ctx, TypeCallback, CallbackPayload{JobID: j.ID, Callback: cb},
			asynq.TaskID(CallbackTaskID(j.ID, j.Status, cb)), asynq.Queue(e.Queue(j)),
			asynq.MaxRetry(e.opt.CallbackMaxRetry), asynq.Timeout(e.opt.CallbackTimeout+CallbackSlack),
			asynq.Retention(e.opt.CallbackRetention))
		if err != nil {
			return fmt.Errorf("enqueue callback for job %s: %w", j.ID, Unavailable(err))
		}
	}
	return nil
}

// Maintenance queues the maintenance task typ of slot on QueueMaintenance,
// with the task id MaintenanceTaskID(typ, slot), not retried, bounded by
// timeout (the scheduler's run timeout, which also bounds its shutdown).
// Every replica may queue the same slot: only the first adds a task.
func (e *Enqueuer) Maintenance(ctx context.Context, typ string, slot time.Time, timeout time.Duration) (added bool, err error) {
	added, err = e.enqueueTask(ctx, asynq.NewTask(typ, nil),
		asynq.TaskID(MaintenanceTaskID(typ, slot)), asynq.Queue(QueueMaintenance),
		asynq.Timeout(timeout), asynq.MaxRetry(0), asynq.Retention(e.opt.MaintenanceRetention))
	if err != nil {
		return false, fmt.Errorf("enqueue %s: %w", typ, Unavailable(err))
	}
	return added, nil
}

// MaintenanceTaskID is the task id of a maintenance task's slot:
// "<type>@<unix seconds>".
func MaintenanceTaskID(typ string, slot time.Time) string {
	return fmt.Sprintf("%s@%d", typ, slot.Unix())
}

// enqueue queues a task of typ with payload; a task id that exists
// already is not an error (added false).
func (e *Enqueuer) enqueue(ctx context.Context, typ string, payload any, opts ...asynq.Option) (bool, error) {
	b, err := Encode(payload)
	if err != nil {
		return false, err
	}
	return e.enqueueTask(ctx, asynq.NewTask(typ, b), opts...)
}

func (e *Enqueuer) enqueueTask(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (bool, error) {
	_, err := e.q.EnqueueContext(ctx, t, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, nil
	}
	return err == nil, err
}
