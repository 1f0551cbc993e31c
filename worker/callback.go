package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/internal/job"
)

// callbackRetention keeps a delivered callback's task id reserved, so a
// re-run render within that time does not deliver it twice.
const callbackRetention = 24 * time.Hour

// enqueueCallbacks queues one delivery per callback of an ended job. Task
// ids derive from the job, its status and the callback, so repeating this
// adds nothing.
func (w *Worker) enqueueCallbacks(ctx context.Context, j job.Job) error {
	cbs, err := w.deps.Jobs.Callbacks(ctx, j.ID)
	if err != nil {
		return err
	}
	queue := job.QueueFor(j.Spec.Priority, w.cfg.UrgentFrom, w.cfg.DefaultFrom)
	for _, cb := range cbs {
		payload, err := job.Encode(job.CallbackPayload{JobID: j.ID, Callback: cb})
		if err != nil {
			return err
		}
		_, err = w.deps.Queue.EnqueueContext(ctx, asynq.NewTask(job.TypeCallback, payload),
			asynq.TaskID(job.CallbackTaskID(j.ID, j.Status, cb)), asynq.Queue(queue),
			asynq.MaxRetry(w.cfg.CallbackMaxRetry), asynq.Timeout(w.cfg.CallbackTimeout+5*time.Second),
			asynq.Retention(callbackRetention))
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return fmt.Errorf("enqueue callback for job %s: %w", j.ID, err)
		}
	}
	return nil
}

// handleCallback POSTs a job's outcome to one callback URL: the contract's
// Completed payload without status, with that caller's bbox. Network
// errors, 408, 429 and 5xx are retried with backoff; other answers end
// the delivery.
func (w *Worker) handleCallback(ctx context.Context, t *asynq.Task) error {
	var p job.CallbackPayload
	if err := job.Decode(t.Payload(), &p); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	j, err := w.deps.Jobs.Get(ctx, p.JobID)
	if errors.Is(err, job.ErrNotFound) {
		return fmt.Errorf("callback: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	body, err := json.Marshal(j.Completion(w.cfg.PublicURL, p.Callback.BBox))
	if err != nil {
		return fmt.Errorf("encode callback: %w: %w", err, asynq.SkipRetry)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Callback.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("callback %s: %w: %w", p.Callback.URL, err, asynq.SkipRetry)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "exporter-callback")
	resp, err := w.deps.HTTP.Do(req)
	if err != nil {
		w.metrics.callbacks.WithLabelValues("retry").Inc()
		return fmt.Errorf("callback %s: %w", p.Callback.URL, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		w.metrics.callbacks.WithLabelValues("delivered").Inc()
		w.log.InfoContext(ctx, "callback delivered", "job_id", j.ID, "status", code)
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		w.metrics.callbacks.WithLabelValues("retry").Inc()
		return fmt.Errorf("callback %s answered %d", p.Callback.URL, code)
	default:
		w.metrics.callbacks.WithLabelValues("rejected").Inc()
		return fmt.Errorf("callback %s answered %d: %w", p.Callback.URL, code, asynq.SkipRetry)
	}
}
