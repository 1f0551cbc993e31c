package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
			return fmt.Errorf("enqueue callback for job %s: %w", j.ID, Unavailable(err))
		}
	}
	return nil
}

// Delivery is the latest outcome of one callback of a job.
type Delivery struct {
	Callback Callback `json:"callback"`
	// Outcome is delivered, retrying or failed.
	Outcome string `json:"outcome"`
	// Code is the HTTP status answered, 0 when none was.
	Code int `json:"code,omitempty"`
	// Error says why a delivery did not succeed.
	Error    string    `json:"error,omitempty"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
}

// Delivery outcomes.
const (
	DeliveryDelivered = "delivered"
	DeliveryRetrying  = "retrying"
	DeliveryFailed    = "failed"
)

// RecordDelivery stores the outcome of a callback attempt on the job,
// replacing the previous one of the same callback.
func (s *Store) RecordDelivery(ctx context.Context, jobID string, d Delivery) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	field := CallbackTaskID(jobID, "", d.Callback)
	if err := s.rdb.HSet(ctx, s.jobKey(jobID)+":deliveries", field, b).Err(); err != nil {
		return fmt.Errorf("record delivery of job %s: %w", jobID, Unavailable(err))
	}
	return nil
}

// Deliveries returns the recorded callback outcomes of a job.
func (s *Store) Deliveries(ctx context.Context, jobID string) ([]Delivery, error) {
	m, err := s.rdb.HGetAll(ctx, s.jobKey(jobID)+":deliveries").Result()
	if err != nil {
		return nil, fmt.Errorf("get deliveries of job %s: %w", jobID, Unavailable(err))
	}
	out := make([]Delivery, 0, len(m))
	for _, v := range m {
		var d Delivery
		if err := json.Unmarshal([]byte(v), &d); err != nil {
			return nil, fmt.Errorf("decode delivery of job %s: %w", jobID, err)
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Delivery) int { return strings.Compare(a.Callback.URL, b.Callback.URL) })
	return out, nil
}

// AsynqLogger routes asynq's own log lines into l, marked as asynq's.
func AsynqLogger(l *slog.Logger) asynq.Logger { return asynqLogger{l.With("component", "asynq")} }

type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...), "fatal", true) }
