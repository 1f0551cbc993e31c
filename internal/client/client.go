package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one exporter's HTTP API with a token.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client of the exporter at server (a base URL) that sends
// token. Requests have no overall time limit (a download may be long);
// connecting and waiting for response headers do.
func New(server, token string) *Client {
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &Client{base: strings.TrimRight(server, "/"), token: token, http: &http.Client{Transport: transport}}
}

// APIError is an answer of the service that is not a success: its status
// and the message it gave.
type APIError struct {
	Method, URL string
	Status      int
	Message     string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.URL, e.Status, http.StatusText(e.Status), e.Message)
}

// Temporary reports whether the request may succeed if repeated: the
// service was busy, rate limited or between replicas.
func (e *APIError) Temporary() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// apiError reads the service's {"message": ...} from a failed response.
func apiError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var m struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &m) == nil && m.Message != "" {
		msg = m.Message
	}
	return &APIError{Method: resp.Request.Method, URL: redactString(resp.Request.URL.String()), Status: resp.StatusCode, Message: msg}
}

// do sends a request with the token and decodes a 200 answer's JSON into
// out.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

// Started is the answer of POST /export.
type Started struct {
	// Status is In-Progress, or Completed when a package of the same
	// tiles exists.
	Status string `json:"status"`
	JobID  string `json:"jobId"`
	// Duplicated is true when the request joined a running job.
	Duplicated bool `json:"isDuplicated"`
}

// Export posts an export request (Config.ExportBody).
func (c *Client) Export(ctx context.Context, body []byte) (Started, error) {
	var s Started
	err := c.do(ctx, http.MethodPost, "/export", body, &s)
	return s, err
}

// Job is what GET /jobs/{id} answers, in the parts the client uses.
type Job struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Percentage  int    `json:"percentage"`
	TilesDone   int64  `json:"tilesDone"`
	TilesTotal  int64  `json:"tilesTotal"`
	PackageName string `json:"packageName"`
	Reason      string `json:"reason"`
	// ETASeconds is the service's estimate of the seconds left, nil
	// while it has none.
	ETASeconds *int64 `json:"etaSeconds"`
	SHA256     string `json:"sha256"`
	Result     *struct {
		FileURI     string `json:"fileUri"`
		FileSize    int64  `json:"fileSize"`
		Success     bool   `json:"success"`
		ErrorReason string `json:"errorReason"`
	} `json:"result"`
}

// ETA is the service's estimate of the time left, and whether it has one.
func (j Job) ETA() (time.Duration, bool) {
	if j.ETASeconds == nil {
		return 0, false
	}
	return time.Duration(*j.ETASeconds) * time.Second, true
}

// Job reads the job with id.
func (c *Client) Job(ctx context.Context, id string) (Job, error) {
	var j Job
	err := c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(id), nil, &j)
	return j, err
}

// EndedError is a job that ended without a package: Failed, Cancelled or
// Expired, with the service's reason.
type EndedError struct {
	ID, Status, Reason string
}

func (e *EndedError) Error() string {
	return fmt.Sprintf("export %s %s: %s", e.ID, e.Status, e.Reason)
}

// maxPollFailures is how many polls in a row may fail for a reason that
// can pass (network, 429, 502–504) before Follow gives up.
const maxPollFailures = 30

// Follow reads job id every poll until it ends, calling seen with each
// reading, and returns the Completed job, or an *EndedError. Failures
// that can pass are retried at the same pace, up to maxPollFailures in a
// row; warn is told of each.
func (c *Client) Follow(ctx context.Context, id string, poll time.Duration, seen func(Job), warn func(error)) (Job, error) {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	failures := 0
	for {
		j, err := c.Job(ctx, id)
		var aerr *APIError
		switch {
		case err == nil:
			failures = 0
			seen(j)
			switch j.Status {
			case "Completed":
				return j, nil
			case "In-Progress":
			default:
				reason := j.Reason
				if j.Result != nil && j.Result.ErrorReason != "" {
					reason = j.Result.ErrorReason
				}
				return j, &EndedError{ID: id, Status: j.Status, Reason: reason}
			}
		case ctx.Err() != nil:
			return j, ctx.Err()
		case errors.As(err, &aerr) && !aerr.Temporary():
			return j, err
		default:
			failures++
			if failures >= maxPollFailures {
				return j, fmt.Errorf("follow export %s: %d readings in a row failed: %w", id, failures, err)
			}
			warn(err)
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-tick.C:
		}
	}
}
