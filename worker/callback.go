package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/internal/egress"
	"github.com/geoexport/exporter/internal/job"
)

// notify queues the callbacks of an ended job.
func (w *Worker) notify(ctx context.Context, j job.Job) error {
	return w.deps.Jobs.Notify(ctx, w.deps.Queue, j, job.CallbackOptions{
		UrgentFrom: w.cfg.UrgentFrom, DefaultFrom: w.cfg.DefaultFrom,
		MaxRetry: w.cfg.CallbackMaxRetry, Timeout: w.cfg.CallbackTimeout + 5*time.Second,
	})
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
	// Callback URLs may carry credentials in their query: errors and logs
	// name only the scheme, host and path.
	target := redactURL(p.Callback.URL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Callback.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("callback %s: bad URL: %w", target, asynq.SkipRetry)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "exporter-callback")
	resp, err := w.deps.HTTP.Do(req)
	if errors.Is(err, egress.ErrForbidden) || errors.Is(err, egress.ErrTooManyRedirects) {
		w.metrics.callbacks.WithLabelValues("rejected").Inc()
		var uerr *egress.URLError
		if errors.As(err, &uerr) {
			return fmt.Errorf("callback %s: %w: %w", target, uerr, asynq.SkipRetry)
		}
		return fmt.Errorf("callback %s: %w: %w", target, egress.ErrTooManyRedirects, asynq.SkipRetry)
	}
	if err != nil {
		w.metrics.callbacks.WithLabelValues("retry").Inc()
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its text repeats the whole URL
		}
		return fmt.Errorf("callback %s: %w", target, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		w.metrics.callbacks.WithLabelValues("delivered").Inc()
		w.log.InfoContext(ctx, "callback delivered", "job_id", j.ID, "callback", target, "status", code)
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		w.metrics.callbacks.WithLabelValues("retry").Inc()
		return fmt.Errorf("callback %s answered %d", target, code)
	default:
		w.metrics.callbacks.WithLabelValues("rejected").Inc()
		return fmt.Errorf("callback %s answered %d: %w", target, code, asynq.SkipRetry)
	}
}

// redactURL drops the user info, query and fragment of a URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
