package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/testenv"
)

// cuttingProxy is a loopback reverse proxy in front of an exporter, and
// its public URL: it records the Range header of every package download
// and, when armed, cuts the next download's connection halfway.
type cuttingProxy struct {
	url string

	mu     sync.Mutex
	ranges []string // the Range header of each download, "" for none
	cut    bool     // cut the next download
	sent   int64    // bytes the last cut download sent
}

func newCuttingProxy(t *testing.T, target string) *cuttingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasSuffix(resp.Request.URL.Path, ".gpkg") {
			return nil
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.ranges = append(p.ranges, resp.Request.Header.Get("Range"))
		if p.cut && resp.ContentLength > 1 {
			p.cut, p.sent = false, resp.ContentLength/2
			// The reverse proxy aborts the connection when the body
			// fails, after the bytes read before.
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(io.LimitReader(resp.Body, p.sent), failingReader{}), resp.Body}
		}
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) {
	return 0, errors.New("connection cut by the test's proxy")
}

// downloads returns the Range headers of the downloads since the last call.
func (p *cuttingProxy) downloads() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.ranges
	p.ranges = nil
	return r
}

func (p *cuttingProxy) cutNext() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
}

// runCLI runs "exporter export" in this process with the server and token
// given as EXPORTER_* variables, and returns what it printed and its exit
// status.
func runCLI(ctx context.Context, server, token string, stderr io.Writer, args ...string) (string, int, error) {
	env := map[string]string{"EXPORTER_SERVER": server, "EXPORTER_TOKEN": token, "EXPORTER_POLL": "100ms"}
	var out bytes.Buffer
	err := run(ctx, append([]string{"export"}, args...), func(k string) string { return env[k] }, &out, stderr)
	return out.String(), exitCode(err, stderr), err
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// TestExportCommand runs the command-line client against a real
// "exporter all" behind a loopback proxy that is its public address: a
// whole export, a download cut off and resumed in the same run, a rerun
// that resumes the .part a stopped run left, a .part of other bytes, a
// refused request, --no-wait, and a running export that shows its ETA and
// is cancelled.
func TestExportCommand(t *testing.T) {
	skipShort(t)
	t.Parallel()
	addr := testenv.FreeAddr(t)
	px := newCuttingProxy(t, "http://"+addr)
	// One worker slot fetching one tile at a time: the long export below
	// runs long enough to have an ETA.
	p := start(t, t.TempDir(), map[string]string{
		"EXPORTER_HTTP_ADDR": addr, "EXPORTER_HTTP_PUBLIC_URL": px.url, "EXPORTER_HTTP_RATE_LIMIT": "0",
		"EXPORTER_WORKER_CONCURRENCY": "1", "EXPORTER_WORKER_FETCHERS": "1", "EXPORTER_WORKER_ENCODERS": "1",
	})
	_, token := waitURL(t, p)
	waitReady(t, "http://"+addr, p)
	a := api{base: px.url, token: token}
	layer := catalog.Demo().Layers()[0].ID
	dir := t.TempDir()
	// The specification's example at zooms 0–14: 18 tiles.
	seed := []string{"-layer", layer, "-bbox", "34.811938017107494,31.95475033759175,34.82237261707599,31.96426962177354", "-max-zoom", "14", "-out", dir}
	// A larger package, at zooms 9–11.
	larger := []string{"-layer", layer, "-bbox", "34.5,31.0,35.5,32.0", "-min-zoom", "9", "-max-zoom", "11", "-out", filepath.Join(dir, "larger.gpkg")}

	t.Run("export, download and verify", func(t *testing.T) {
		var stderr bytes.Buffer
		out, code, err := runCLI(t.Context(), px.url, token, &stderr, seed...)
		if code != 0 {
			t.Fatalf("exporter export = %d (%v)\n%s", code, err, stderr.String())
		}
		path := strings.TrimSpace(out)
		if filepath.Dir(path) != dir || !strings.HasSuffix(path, ".gpkg") {
			t.Fatalf("exporter export printed %q, want the package's path in %s", out, dir)
		}
		if n, byZoom := tileCount(t, path); n != 18 {
			t.Errorf("package holds %d tiles (%v), want 18", n, byZoom)
		}
		if ranges := px.downloads(); len(ranges) != 1 || ranges[0] != "" {
			t.Errorf("downloads sent Range %q, want one download from the start", ranges)
		}
		if !strings.Contains(stderr.String(), "sha256 verified") {
			t.Errorf("stderr lacks the verification:\n%s", stderr.String())
		}
		// A second run finds the verified package in place.
		stderr.Reset()
		if again, code, err := runCLI(t.Context(), px.url, token, &stderr, seed...); code != 0 || again != out || len(px.downloads()) != 0 {
			t.Errorf("second exporter export = %q, %d (%v), want %q without a download\n%s", again, code, err, out, stderr.String())
		}
	})

	var larger1 string // the larger package's digest
	t.Run("a cut download resumes with Range", func(t *testing.T) {
		px.cutNext()
		var stderr bytes.Buffer
		out, code, err := runCLI(t.Context(), px.url, token, &stderr, larger...)
		if code != 0 {
			t.Fatalf("exporter export = %d (%v)\n%s", code, err, stderr.String())
		}
		path := strings.TrimSpace(out)
		px.mu.Lock()
		wantRange := fmt.Sprintf("bytes=%d-", px.sent)
		px.mu.Unlock()
		if ranges := px.downloads(); len(ranges) != 2 || ranges[0] != "" || ranges[1] != wantRange {
			t.Errorf("downloads sent Range %q, want none, then %q", ranges, wantRange)
		}
		if !strings.Contains(stderr.String(), "interrupted") || !strings.Contains(stderr.String(), "sha256 verified") {
			t.Errorf("stderr lacks the interruption or the verification:\n%s", stderr.String())
		}
		larger1 = sha256File(t, path)
		if id := jobOf(t, stderr.String()); a.getJSON(t, "/jobs/"+id)["sha256"] != larger1 {
			t.Errorf("the package's sha256 %s is not the one GET /jobs/%s reports", larger1, id)
		}
	})

	path := larger[len(larger)-1]
	for _, tc := range []struct {
		name string
		part func([]byte) []byte
		// again: the resumed file fails the digest, and is downloaded
		// again from the start.
		again bool
	}{
		{"a rerun resumes the .part a stopped run left", func(b []byte) []byte { return b[:len(b)/3] }, false},
		{"a .part of other bytes is downloaded again", func(b []byte) []byte { return bytes.Repeat([]byte{'x'}, len(b)/3) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			part := tc.part(data)
			if err := os.WriteFile(path+".part", part, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			out, code, err := runCLI(t.Context(), px.url, token, &stderr, larger...)
			if code != 0 || strings.TrimSpace(out) != path {
				t.Fatalf("exporter export = %q, %d (%v), want %s\n%s", out, code, err, path, stderr.String())
			}
			want := []string{fmt.Sprintf("bytes=%d-", len(part))}
			if tc.again {
				want = append(want, "")
			}
			if ranges := px.downloads(); !slices.Equal(ranges, want) {
				t.Errorf("downloads sent Range %q, want %q", ranges, want)
			}
			if got := sha256File(t, path); got != larger1 {
				t.Errorf("sha256 of the package = %s, want %s", got, larger1)
			}
			if _, err := os.Stat(path + ".part"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the .part is left after a verified download: %v", err)
			}
		})
	}

	t.Run("no-wait prints the job id", func(t *testing.T) {
		var stderr bytes.Buffer
		out, code, err := runCLI(t.Context(), px.url, token, &stderr, append(larger, "-no-wait")...)
		id := strings.TrimSpace(out)
		if _, perr := uuid.Parse(id); code != 0 || perr != nil {
			t.Fatalf("exporter export -no-wait = %q, %d (%v), want a job id", out, code, err)
		}
		if j := a.getJSON(t, "/jobs/"+id); j["id"] != id {
			t.Errorf("GET /jobs/%s = %v", id, j)
		}
	})

	t.Run("a refused export exits with the service's message", func(t *testing.T) {
		var stderr bytes.Buffer
		_, code, err := runCLI(t.Context(), px.url, token, &stderr, "-layer", layer, "-bbox", "34.8,31.9,34.9,32", "-max-zoom", "22")
		if code != 1 || err == nil || !strings.Contains(stderr.String(), "400") || !strings.Contains(stderr.String(), "maxResolutionDeg") {
			t.Errorf("exporter export finer than the layer = %d (%v), want 1 with the service's 400 message\n%s", code, err, stderr.String())
		}
	})

	t.Run("a running export shows its ETA and is cancelled", func(t *testing.T) {
		// The whole demo layer at zooms 12–13, some 24,000 tiles.
		args := []string{"-layer", layer, "-bbox", "34.2,29.4,35.9,33.4", "-min-zoom", "12", "-max-zoom", "13", "-out", dir}
		r, w := io.Pipe()
		type result struct {
			code int
			err  error
		}
		done := make(chan result, 1)
		go func() {
			_, code, err := runCLI(t.Context(), px.url, token, w, args...)
			w.Close()
			done <- result{code, err}
		}()
		// The client's lines; the job id from the first, then a line with
		// an estimate.
		var lines []string
		withETA := regexp.MustCompile(`ETA \d`)
		sc := bufio.NewScanner(r)
		deadline := time.AfterFunc(60*time.Second, func() { r.CloseWithError(errors.New("no ETA within 60s")) })
		defer deadline.Stop()
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if withETA.MatchString(sc.Text()) {
				break
			}
		}
		if err := sc.Err(); err != nil || len(lines) == 0 || !withETA.MatchString(lines[len(lines)-1]) {
			t.Fatalf("the client showed no ETA (%v):\n%s", err, strings.Join(lines, "\n"))
		}
		go func() { _, _ = io.Copy(io.Discard, r) }()
		id := jobOf(t, lines[0])
		// GET /jobs/{id} and the /export status answer the estimate too.
		j := a.getJSON(t, "/jobs/"+id)
		st := a.getJSON(t, "/export/"+id+"/status")
		if eta, ok := j["etaSeconds"].(float64); !ok || eta < 0 || st["etaSeconds"] == nil || j["status"] != "In-Progress" {
			t.Errorf("GET /jobs/%s = %v, /export status %v; want an In-Progress job with etaSeconds", id, j, st)
		}
		if resp := a.do(t, "DELETE", "/jobs/"+id, ""); resp.StatusCode != 200 {
			t.Fatalf("DELETE /jobs/%s = %d", id, resp.StatusCode)
		}
		select {
		case res := <-done:
			if res.code != 1 || res.err == nil || !strings.Contains(res.err.Error(), "Cancelled") || !strings.Contains(res.err.Error(), "cancelled by") {
				t.Errorf("exporter export of a cancelled job = %d (%v), want 1 with the service's reason", res.code, res.err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("exporter export did not end within 30s of the cancel")
		}
	})
}

// jobOf reads the job id from the client's first line, "export <id>: ...".
func jobOf(t *testing.T, stderr string) string {
	t.Helper()
	m := regexp.MustCompile(`export ([0-9a-f-]{36}):`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no job id in the client's output:\n%s", stderr)
	}
	return m[1]
}
