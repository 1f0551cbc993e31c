package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrDigest is a downloaded package whose SHA-256 is not the one the
// service reported.
var ErrDigest = errors.New("client: package digest mismatch")

// Meter is told how a download goes, to show it.
type Meter interface {
	// Begin is called as each response starts: the offset it resumes
	// from, and the package's size (-1 when the answer does not say).
	Begin(offset, size int64)
	// Wrote is called with each piece written.
	Wrote(n int)
	// Retry is told of a failed attempt that will be resumed.
	Retry(err error)
}

// Download is a finished download.
type Download struct {
	Path string
	Size int64
	// ResumedFrom is the size of the .part file an earlier attempt left,
	// which the download continued; 0 for a download from the start.
	ResumedFrom int64
	// Verified is true when the file's SHA-256 is the one the service
	// reported (false when it reported none).
	Verified bool
	// Existing is true when dest already held the verified package, so
	// nothing was downloaded.
	Existing bool
}

// Download settings: attempts that make no progress before giving up,
// and the longest wait between them.
const (
	maxStalledAttempts = 5
	maxRetryWait       = 10 * time.Second
)

// Download fetches the package at uri into dest. It writes dest+".part"
// first and continues a .part an earlier attempt left (in this run, or a
// run that was stopped) with a Range request; a cut connection is resumed
// the same way, up to maxStalledAttempts in a row that add nothing. The
// whole file must have the SHA-256 sum (hex) the service reported: a
// resumed file that does not is downloaded once more from the start (its
// .part may have been another package's), then it is ErrDigest. Only a
// verified file (or any file, when sum is empty) is renamed to dest. If
// dest already holds the verified package, nothing is downloaded.
func (c *Client) Download(ctx context.Context, uri, dest, sum string, m Meter) (Download, error) {
	if sum != "" {
		if got, size, err := fileSHA256(dest); err == nil && got == sum {
			return Download{Path: dest, Size: size, Verified: true, Existing: true}, nil
		}
	}
	part := dest + ".part"
	for fresh := false; ; fresh = true {
		resumed, err := c.fetch(ctx, uri, part, m)
		if err != nil {
			return Download{}, err
		}
		got, size, err := fileSHA256(part)
		if err != nil {
			return Download{}, err
		}
		if sum == "" || got == sum {
			if err := os.Rename(part, dest); err != nil {
				return Download{}, err
			}
			return Download{Path: dest, Size: size, ResumedFrom: resumed, Verified: sum != ""}, nil
		}
		if err := os.Remove(part); err != nil {
			return Download{}, err
		}
		if resumed == 0 || fresh {
			return Download{}, fmt.Errorf("%w: %s has sha256 %s, the service reports %s", ErrDigest, redactString(uri), got, sum)
		}
		m.Retry(fmt.Errorf("%w after resuming at byte %d: downloading again from the start", ErrDigest, resumed))
	}
}

// fetch completes the file part from uri, resuming what it holds, and
// returns the size it held at the start.
func (c *Client) fetch(ctx context.Context, uri, part string, m Meter) (resumed int64, err error) {
	f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if resumed, err = f.Seek(0, io.SeekEnd); err != nil {
		return 0, err
	}
	stalled := 0
	for {
		off, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return resumed, err
		}
		complete, err := c.fetchFrom(ctx, uri, f, off, m)
		if complete {
			return resumed, f.Sync()
		}
		var aerr *APIError
		switch {
		case ctx.Err() != nil:
			return resumed, ctx.Err()
		case errors.As(err, &aerr) && !aerr.Temporary(), errors.Is(err, errPermanent):
			return resumed, err
		}
		if now, _ := f.Seek(0, io.SeekEnd); now > off {
			stalled = 0
		} else {
			stalled++
		}
		if stalled >= maxStalledAttempts {
			return resumed, fmt.Errorf("download %s: %d attempts in a row added nothing: %w", redactString(uri), stalled, err)
		}
		m.Retry(err)
		wait := min(maxRetryWait, time.Duration(1<<stalled)*250*time.Millisecond)
		select {
		case <-ctx.Done():
			return resumed, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// errPermanent marks an answer that repeating the request cannot change.
var errPermanent = errors.New("client: unusable answer")

// fetchFrom requests uri from byte off on and appends the answer to f. It
// reports whether f now holds the whole package.
func (c *Client) fetchFrom(ctx context.Context, uri string, f *os.File, off int64, m Meter) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return false, fmt.Errorf("%w: %w", errPermanent, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var size int64
	switch resp.StatusCode {
	case http.StatusOK: // the whole package: start over
		if err := f.Truncate(0); err != nil {
			return false, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return false, err
		}
		off, size = 0, resp.ContentLength
	case http.StatusPartialContent:
		start, total, ok := contentRange(resp.Header.Get("Content-Range"))
		if !ok || start != off {
			return false, fmt.Errorf("%w: asked for bytes from %d, got Content-Range %q", errPermanent, off, resp.Header.Get("Content-Range"))
		}
		size = total
	case http.StatusRequestedRangeNotSatisfiable:
		// The .part is as long as the package (the digest decides), or
		// longer: another package's. That one starts over.
		if _, total, ok := contentRange(resp.Header.Get("Content-Range")); ok && total == off {
			return true, nil
		}
		if err := f.Truncate(0); err != nil {
			return false, err
		}
		return false, fmt.Errorf("the .part holds %d bytes, more than the package: starting over", off)
	default:
		return false, apiError(resp)
	}
	m.Begin(off, size)
	n, err := io.Copy(meteredWriter{f, m}, resp.Body)
	if err != nil {
		return false, fmt.Errorf("download %s at byte %d: %w", redactString(uri), off+n, err)
	}
	if size >= 0 && off+n != size {
		return false, fmt.Errorf("download %s: the answer ended at byte %d of %d", redactString(uri), off+n, size)
	}
	return true, nil
}

// contentRange reads "bytes start-end/size" (or "bytes */size", start -1).
func contentRange(h string) (start, size int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, total, found := strings.Cut(spec, "/")
	if !found {
		return 0, 0, false
	}
	size, err := strconv.ParseInt(total, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if rng == "*" {
		return -1, size, true
	}
	first, _, found := strings.Cut(rng, "-")
	if start, err = strconv.ParseInt(first, 10, 64); !found || err != nil {
		return 0, 0, false
	}
	return start, size, true
}

type meteredWriter struct {
	w io.Writer
	m Meter
}

func (w meteredWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.m.Wrote(n)
	return n, err
}

// fileSHA256 is the hex SHA-256 and the size of the file at path.
func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// redactString is uri without its query, where a token may be.
func redactString(uri string) string {
	base, _, _ := strings.Cut(uri, "?")
	return base
}
