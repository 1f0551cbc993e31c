package worker

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/geoexport/exporter/internal/logattr"
)

// SignatureHeader carries the HMAC-SHA256 of a callback's body, as
// "sha256=<hex>", when a callback secret is configured.
const SignatureHeader = "X-Exporter-Signature"

// handleCallback POSTs a job's outcome to one callback URL: the contract's
// Completed payload without status, with that caller's bbox. Network
// errors, timeouts, 408, 429 and 5xx are retried with backoff; other
// answers and refused destinations end the delivery. A redirect is never
// followed: a 3xx ends the delivery as failed, naming its Location, since
// it would be the same on every retry. Each attempt's outcome is recorded
// on the job.
func (w *Worker) handleCallback(ctx context.Context, t *asynq.Task) error {
	p, err := decode[job.CallbackPayload](t)
	if err != nil {
		return err
	}
	j, err := getJob(ctx, w.deps.Jobs, "callback", p.JobID)
	if err != nil {
		return err
	}
	code, err := w.deliver(ctx, j, p.Callback)
	d := job.Delivery{Callback: p.Callback, Outcome: job.DeliveryDelivered, Code: code, Attempts: attempt(ctx), At: time.Now().UTC()}
	switch {
	case err == nil:
		w.metrics.callbacks.WithLabelValues("delivered").Inc()
		w.log.InfoContext(ctx, "callback delivered", logattr.JobID, j.ID, "callback", redactURL(p.Callback.URL), logattr.Status, code)
	case lastAttempt(ctx, err):
		d.Outcome, d.Error = job.DeliveryFailed, failureReason(err)
		w.metrics.callbacks.WithLabelValues("failed").Inc()
	default:
		d.Outcome, d.Error = job.DeliveryRetrying, err.Error()
		w.metrics.callbacks.WithLabelValues("retry").Inc()
	}
	if rerr := w.deps.Jobs.RecordDelivery(context.WithoutCancel(ctx), j.ID, d); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// attempt is the number of this delivery attempt, from 1.
func attempt(ctx context.Context) int {
	n, _ := asynq.GetRetryCount(ctx)
	return n + 1
}

// deliver POSTs the payload and returns the HTTP status answered.
func (w *Worker) deliver(ctx context.Context, j job.Job, cb job.Callback) (int, error) {
	// A callback of an /export request is told in the /export shape.
	var payload any = j.Completion(w.cfg.PublicURL, cb.BBox)
	if len(cb.ROI) > 0 {
		payload = j.ExportCompletion(w.cfg.PublicURL, cb.ROI)
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return 0, fmt.Errorf("encode callback: %w: %w", err, asynq.SkipRetry)
	}
	// Callback URLs may carry credentials in their query: errors and logs
	// name only the scheme, host and path.
	target := redactURL(cb.URL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cb.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("callback %s: bad URL: %w", target, asynq.SkipRetry)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "exporter-callback")
	if len(w.cfg.CallbackSecret) > 0 {
		mac := hmac.New(sha256.New, w.cfg.CallbackSecret)
		mac.Write(body)
		req.Header.Set(SignatureHeader, "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := w.deps.HTTP.Do(req)
	// A refused destination (it matches egress.ErrForbidden) stays refused.
	var ferr *egress.URLError
	if errors.As(err, &ferr) {
		return 0, fmt.Errorf("callback %s: %w: %w", target, ferr, asynq.SkipRetry)
	}
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its text repeats the whole URL
		}
		return 0, fmt.Errorf("callback %s: %w", target, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return code, nil
	case code >= 300 && code < 400:
		return code, fmt.Errorf("callback %s: %s: %w", target, redirectReason(resp), asynq.SkipRetry)
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return code, fmt.Errorf("callback %s answered %d", target, code)
	default:
		return code, fmt.Errorf("callback %s answered %d: %w", target, code, asynq.SkipRetry)
	}
}

// withoutRedirects returns a copy of c that hands a redirect back as the
// answer instead of following it. Followed, a 301, 302 or 303 turns the
// POST into a GET without the body, which the target may well answer
// 2xx: the callback would be recorded delivered though nobody received it.
func withoutRedirects(c *http.Client) *http.Client {
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &nc
}

// redirectReason says why a 3xx answer ends a delivery and where it
// pointed, without the query.
func redirectReason(resp *http.Response) string {
	to := ""
	switch loc, err := resp.Location(); {
	case err == nil:
		to = " to " + redactURL(loc.String())
	case !errors.Is(err, http.ErrNoLocation):
		to = " to (unparsable URL)"
	}
	return fmt.Sprintf("redirect %d%s refused: callbacks never follow redirects", resp.StatusCode, to)
}

// redactURL drops the user info, query and fragment of a URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
