package job

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Enqueuer puts tasks on the queue; *asynq.Client is one.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// CallbackRetention keeps a delivered callback's task id reserved, so a
// repeated notification within that time does not deliver it twice.
const CallbackRetention = 24 * time.Hour

// CallbackOptions are the asynq options of callback tasks.
type CallbackOptions struct {
	// UrgentFrom and DefaultFrom pick the job's queue (QueueFor).
	UrgentFrom, DefaultFrom int
	// MaxRetry and Timeout are set on every callback task.
	MaxRetry int
	Timeout  time.Duration
}

// Notify queues one export:callback task per callback of an ended job, on
// the job's queue. Task ids derive from the job, its status and the
// callback, so calling it again adds nothing.
func (s *Store) Notify(ctx context.Context, q Enqueuer, j Job, opt CallbackOptions) error {
	cbs, err := s.Callbacks(ctx, j.ID)
	if err != nil {
		return err
	}
	queue := QueueFor(j.Spec.Priority, opt.UrgentFrom, opt.DefaultFrom)
	for _, cb := range cbs {
		payload, err := Encode(CallbackPayload{JobID: j.ID, Callback: cb})
		if err != nil {
			return err
		}
		_, err = q.EnqueueContext(ctx, asynq.NewTask(TypeCallback, payload),
			asynq.TaskID(CallbackTaskID(j.ID, j.Status, cb)), asynq.Queue(queue),
			asynq.MaxRetry(opt.MaxRetry), asynq.Timeout(opt.Timeout), asynq.Retention(CallbackRetention))
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return fmt.Errorf("enqueue callback for job %s: %w", j.ID, err)
		}
	}
	return nil
}
