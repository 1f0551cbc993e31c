package source

import (
	"bytes"
	"cmp"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults of HTTPConfig.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultHeaderTimeout  = 60 * time.Second
	DefaultRequestTimeout = 120 * time.Second
	DefaultMaxAttempts    = 4
	DefaultRetryBase      = 500 * time.Millisecond
	DefaultRetryMax       = 30 * time.Second
	DefaultConcurrency    = 8
	DefaultMaxBodyBytes   = 64 << 20
)

// userAgent identifies the exporter to the services it reads.
const userAgent = "geoexport-exporter"

// NotFound says what an HTTP 404 answer means.
type NotFound string

// Meanings of a 404 answer.
const (
	// NotFoundNoData makes a 404 a tile with no data, as tile services
	// answer for tiles they do not have. The default of WMTS and XYZ.
	NotFoundNoData NotFound = "nodata"
	// NotFoundError makes a 404 a failure: for a WMS it usually means a
	// wrong URL. The default of WMS.
	NotFoundError NotFound = "error"
)

// HTTPConfig holds the settings every HTTP source shares. The zero value
// is usable: every field documents its default.
type HTTPConfig struct {
	// Name names the source in errors, such as the catalog layer id.
	// Empty means the URL's host.
	Name string
	// ConnectTimeout bounds dialling and the TLS handshake. Zero means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for the response headers once the
	// request is sent: the server's rendering time. Zero means
	// DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// Timeout bounds one attempt, from dialling to the last byte of the
	// body. Zero means DefaultRequestTimeout.
	Timeout time.Duration
	// MaxAttempts is how many times a request is tried: network errors,
	// timeouts, 408, 429 and 5xx answers are retried with exponential
	// backoff and jitter (429 and 503 after the server's Retry-After).
	// Zero means DefaultMaxAttempts; 1 means no retries.
	MaxAttempts int
	// RetryBase is the backoff before the second attempt; each further
	// attempt doubles it, and a random jitter of up to the same again is
	// added. Zero means DefaultRetryBase.
	RetryBase time.Duration
	// RetryMax caps a backoff, and the Retry-After a server may ask for:
	// a longer Retry-After fails the tile at once, so that the task is
	// retried later as a whole. Zero means DefaultRetryMax.
	RetryMax time.Duration
	// Concurrency caps the requests in flight to the service at once,
	// across all goroutines calling Tile. Zero means DefaultConcurrency.
	Concurrency int
	// MaxBodyBytes caps the size of one answer. Zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// NotFound says what a 404 answer means. Empty means the source
	// kind's default (see NotFound's constants). A 204 is always no data.
	NotFound NotFound
	// Resample scales images of the wrong size to the size asked for
	// (Catmull-Rom). False fails such tiles with ErrInvalidData naming
	// both sizes.
	Resample bool
	// NoData is the colour the service paints where it has no data; tiles
	// entirely of it are ErrNoData. Nil means none: only fully
	// transparent tiles are no data.
	NoData *NoData
	// Header is sent with every request (after the default User-Agent,
	// which it may replace). Nil means none.
	Header http.Header
}

// Validate reports every problem with c at once.
func (c HTTPConfig) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"connect timeout", c.ConnectTimeout}, {"header timeout", c.HeaderTimeout}, {"timeout", c.Timeout},
		{"retry base", c.RetryBase}, {"retry max", c.RetryMax},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("source: http %s %v: want a positive duration, or 0 for the default", d.name, d.v))
		}
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("source: http max attempts %d: want at least 1, or 0 for %d", c.MaxAttempts, DefaultMaxAttempts))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("source: http concurrency %d: want at least 1, or 0 for %d", c.Concurrency, DefaultConcurrency))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("source: http max body bytes %d: want a positive number, or 0 for %d", c.MaxBodyBytes, DefaultMaxBodyBytes))
	}
	switch c.NotFound {
	case "", NotFoundNoData, NotFoundError:
	default:
		errs = append(errs, fmt.Errorf("source: http not found %q: want nodata or error", string(c.NotFound)))
	}
	return errors.Join(errs...)
}

// withDefaults fills in the zero fields; notFound is the kind's default.
func (c HTTPConfig) withDefaults(notFound NotFound) HTTPConfig {
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, DefaultConnectTimeout)
	c.HeaderTimeout = cmp.Or(c.HeaderTimeout, DefaultHeaderTimeout)
	c.Timeout = cmp.Or(c.Timeout, DefaultRequestTimeout)
	c.RetryBase = cmp.Or(c.RetryBase, DefaultRetryBase)
	c.RetryMax = cmp.Or(c.RetryMax, DefaultRetryMax)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, DefaultMaxAttempts)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, DefaultMaxBodyBytes)
	c.NotFound = cmp.Or(c.NotFound, notFound)
	return c
}

// ResponseError is an answer from a service that is not a tile: an error
// status that retries did not cure, an OGC exception report, or a body
// that is not an image, such as an HTML error page sent with 200 OK.
type ResponseError struct {
	// URL is the request without its query, which may hold credentials.
	URL string
	// Status is the HTTP status code.
	Status int
	// ContentType is the answer's media type, without parameters.
	ContentType string
	// Exception is true when the body is an OGC exception report.
	Exception bool
	// Code is the exception code of an OGC exception report, if any.
	Code string
	// Text is the exception text, or the start of the body, on one line
	// and truncated.
	Text string
	// Attempts is how many requests were made.
	Attempts int
}

func (e *ResponseError) Error() string {
	var b strings.Builder
	switch {
	case e.Status != http.StatusOK:
		fmt.Fprintf(&b, "http %d %s", e.Status, http.StatusText(e.Status))
		if e.Exception {
			b.WriteString(", service exception")
		}
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
	case e.Exception || isXML(e.ContentType):
		b.WriteString("service exception")
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
	default:
		b.WriteString("answer is not an image")
	}
	if e.ContentType != "" {
		fmt.Fprintf(&b, " (%s)", e.ContentType)
	}
	fmt.Fprintf(&b, " from %s", e.URL)
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.Text != "" {
		fmt.Fprintf(&b, ": %q", e.Text)
	}
	return b.String()
}

// Temporary reports whether the status is one that retries may cure.
func (e *ResponseError) Temporary() bool { return retryableStatus(e.Status) }

// maxErrorText caps the exception text quoted in errors.
const maxErrorText = 300

// fetcher makes the HTTP requests of one source: its own client, a
// concurrency limit, retries with backoff, and the classification of
// answers into tiles, no data and errors.
type fetcher struct {
	cfg    HTTPConfig
	client *http.Client
	sem    chan struct{}
	// sleep waits for d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
	// now is the clock for Retry-After dates; tests replace it.
	now func() time.Time
}

func newFetcher(cfg HTTPConfig) *fetcher {
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.HeaderTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConnsPerHost:   cfg.Concurrency,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &fetcher{
		cfg:    cfg,
		client: &http.Client{Transport: transport, Timeout: cfg.Timeout},
		sem:    make(chan struct{}, cfg.Concurrency),
		sleep:  sleepContext,
		now:    time.Now,
	}
}

// close drops the idle connections, whose goroutines would otherwise
// outlive the source.
func (f *fetcher) close() { f.client.CloseIdleConnections() }

// get returns the body of a successful answer to u, which is a PNG or
// JPEG image (by its bytes). It retries what may be transient. Errors wrap
// ErrNoData (204, and 404 when so configured), a *ResponseError, or the
// last network error; ctx.Err() when ctx ends. Errors name the URL
// without its query, not the source or tile: the caller adds those.
func (f *fetcher) get(ctx context.Context, u string) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		body, retryAfter, err := f.once(ctx, u)
		if err == nil {
			return body, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		var re *ResponseError
		isResp := errors.As(err, &re)
		if isResp {
			re.Attempts = attempt
		}
		if !retryable(err) || attempt >= f.cfg.MaxAttempts {
			if !isResp && attempt > 1 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return nil, err
		}
		wait := f.backoff(attempt)
		if retryAfter > 0 {
			if retryAfter > f.cfg.RetryMax {
				return nil, fmt.Errorf("%w: the server asks to retry after %v, longer than the %v limit", err, retryAfter, f.cfg.RetryMax)
			}
			wait = retryAfter
		}
		if err := f.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// backoff is the wait after attempt n (1-based): RetryBase·2^(n-1) plus a
// random jitter of up to as much again, capped at RetryMax.
func (f *fetcher) backoff(n int) time.Duration {
	d := f.cfg.RetryBase << min(n-1, 30)
	if d <= 0 || d > f.cfg.RetryMax {
		d = f.cfg.RetryMax
	}
	d += rand.N(d + 1)
	return min(d, f.cfg.RetryMax)
}

// once makes one request. retryAfter is the server's Retry-After, if it
// sent one with a retryable status.
func (f *fetcher) once(ctx context.Context, u string) (body []byte, retryAfter time.Duration, err error) {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	defer func() { <-f.sem }()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("request %s: %w: %w", redact(u), errBadRequest, unwrapURLError(err))
	}
	req.Header.Set("User-Agent", userAgent)
	for k, vs := range f.cfg.Header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, 0, netError(u, err)
	}
	defer resp.Body.Close()
	body, err = readBody(resp.Body, f.cfg.MaxBodyBytes)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, 0, fmt.Errorf("read %s: %w", redact(u), err)
		}
		return nil, 0, netError(u, err)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return nil, 0, fmt.Errorf("%s answered 204: %w", redact(u), ErrNoData)
	case resp.StatusCode == http.StatusNotFound && f.cfg.NotFound == NotFoundNoData:
		return nil, 0, fmt.Errorf("%s answered 404: %w", redact(u), ErrNoData)
	case resp.StatusCode != http.StatusOK:
		re := responseError(u, resp.StatusCode, ct, body)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), f.now())
		}
		return nil, retryAfter, re
	}
	// Some servers send images as text/plain or without a type, so the
	// bytes decide; but an exception report is never a tile.
	if _, img := DetectFormat(body); !img || isXML(ct) {
		return nil, 0, responseError(u, resp.StatusCode, ct, body)
	}
	return body, 0, nil
}

var (
	errTooLarge   = errors.New("answer too large")
	errBadRequest = errors.New("bad request")
)

// readBody reads at most limit bytes of r.
func readBody(r io.Reader, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: over the %d-byte limit", errTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// netError wraps a transport error. A timeout is reported without
// wrapping context.DeadlineExceeded (which http.Client's timeout carries),
// so that callers do not take it for the end of their own context.
func netError(u string, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &timeoutError{msg: fmt.Sprintf("get %s: timeout: %v", redact(u), unwrapURLError(err))}
	}
	return fmt.Errorf("get %s: %w", redact(u), unwrapURLError(err))
}

// unwrapURLError drops the *url.Error layer, whose message repeats the
// full URL, query and all.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// timeoutError is a request that ran out of time.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }

// retryable reports whether another attempt may succeed.
func retryable(err error) bool {
	switch {
	case errors.Is(err, ErrNoData), errors.Is(err, errTooLarge), errors.Is(err, errBadRequest):
		return false
	}
	var re *ResponseError
	if errors.As(err, &re) {
		return re.Temporary()
	}
	return true // network errors and timeouts
}

func retryableStatus(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func isXML(ct string) bool {
	return strings.HasSuffix(ct, "/xml") || strings.HasSuffix(ct, "+xml") || strings.HasSuffix(ct, "_xml")
}

// responseError builds the error for an answer that is not a tile,
// quoting the exception text of an OGC exception report (WMS
// ServiceException, OWS ExceptionText) or the text of any other body.
func responseError(u string, status int, ct string, body []byte) *ResponseError {
	re := &ResponseError{URL: redact(u), Status: status, ContentType: ct}
	if code, text, ok := exceptionText(body); ok {
		re.Exception, re.Code, re.Text = true, code, text
		return re
	}
	re.Text = bodyText(body, ct)
	return re
}

// exceptionText extracts the first exception of an OGC exception report.
func exceptionText(body []byte) (code, text string, ok bool) {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = false
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	var depth, capture int
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch el := tok.(type) {
		case xml.StartElement:
			depth++
			switch el.Name.Local {
			case "ServiceException", "Exception":
				ok = true
				for _, a := range el.Attr {
					if a.Name.Local == "code" || a.Name.Local == "exceptionCode" {
						code = a.Value
					}
				}
				if el.Name.Local == "ServiceException" && capture == 0 {
					capture = depth
				}
			case "ExceptionText":
				if capture == 0 {
					capture = depth
				}
			}
		case xml.EndElement:
			if capture == depth {
				return code, oneLine(b.String(), maxErrorText), true
			}
			depth--
		case xml.CharData:
			if capture > 0 {
				b.Write(el)
			}
		}
	}
	return code, oneLine(b.String(), maxErrorText), ok
}

// bodyText returns the start of a body that is not an image, as text: the
// tags of an HTML page stripped, binary data described by its length.
func bodyText(body []byte, ct string) string {
	if !utf8.Valid(body[:min(len(body), 512)]) && !utf8.Valid(body) {
		return fmt.Sprintf("%d bytes of binary data", len(body))
	}
	s := string(body)
	if strings.Contains(ct, "html") || strings.Contains(strings.ToLower(s[:min(len(s), 512)]), "<html") {
		s = stripTags(s)
	}
	return oneLine(s, maxErrorText)
}

// stripTags removes markup, scripts and styles from an HTML page.
func stripTags(s string) string {
	var b strings.Builder
	lower := strings.ToLower(s)
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(lower[i:], "<script"), strings.HasPrefix(lower[i:], "<style"):
			end := "</script>"
			if strings.HasPrefix(lower[i:], "<style") {
				end = "</style>"
			}
			j := strings.Index(lower[i:], end)
			if j < 0 {
				return b.String()
			}
			i += j + len(end)
		case s[i] == '<':
			j := strings.IndexByte(s[i:], '>')
			if j < 0 {
				return b.String()
			}
			b.WriteByte(' ')
			i += j + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// oneLine collapses white space and truncates s to at most n bytes, on a
// rune boundary, marking the cut with an ellipsis.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// redact returns u without its query and fragment, which may hold keys.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		if i := strings.IndexAny(u, "?#"); i >= 0 {
			return u[:i]
		}
		return u
	}
	p.RawQuery, p.Fragment, p.User = "", "", nil
	return p.String()
}

// sourceName is the default name of an HTTP source: its URL's host.
func sourceName(name, rawURL string) string {
	if name != "" {
		return name
	}
	if p, err := url.Parse(rawURL); err == nil && p.Host != "" {
		return p.Host
	}
	return rawURL
}

// checkURL reports whether s is an absolute http or https URL. Template
// placeholders in braces are allowed.
func checkURL(what, s string) error {
	if s == "" {
		return fmt.Errorf("source: %s url is required", what)
	}
	p, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(s))
	if err != nil {
		return fmt.Errorf("source: %s url %q: %w", what, redact(s), err)
	}
	if p.Scheme != "http" && p.Scheme != "https" || p.Host == "" {
		return fmt.Errorf("source: %s url %q: want an absolute http or https url", what, redact(s))
	}
	return nil
}
