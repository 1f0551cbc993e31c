package worker_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/job"
)

// TestCallbackRedirectNotFollowed: a callback endpoint that answers 3xx
// has not received the outcome. Followed, a 302 would turn the POST into a
// GET without the body, and the target's 2xx would count as delivered.
// The delivery fails for good instead, naming the Location without its
// query, and the target receives nothing.
func TestCallbackRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	w, b := setup(t)
	j := createJob(t, b, catalog.Demo().Layers()[0], seedBBox, 14)
	j, _, err := b.jobs.Complete(t.Context(), j.ID, job.Result{FileKey: "packages/x.gpkg", FileSize: 77}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		status   int
		location func(target string) string // "" sends no Location
		wantTo   func(target, self string) string
	}{
		{
			name: "302 found", status: http.StatusFound,
			location: func(target string) string { return target + "/y?sig=s3cr3t#frag" },
			wantTo:   func(target, _ string) string { return " to " + target + "/y" },
		},
		{
			name: "301 moved permanently", status: http.StatusMovedPermanently,
			location: func(target string) string { return target + "/y" },
			wantTo:   func(target, _ string) string { return " to " + target + "/y" },
		},
		{
			name: "303 see other", status: http.StatusSeeOther,
			location: func(target string) string { return target + "/y" },
			wantTo:   func(target, _ string) string { return " to " + target + "/y" },
		},
		{
			name: "307 temporary redirect", status: http.StatusTemporaryRedirect,
			location: func(target string) string { return target + "/y" },
			wantTo:   func(target, _ string) string { return " to " + target + "/y" },
		},
		{
			name: "308 permanent redirect", status: http.StatusPermanentRedirect,
			location: func(target string) string { return target + "/y" },
			wantTo:   func(target, _ string) string { return " to " + target + "/y" },
		},
		{
			name: "relative location", status: http.StatusFound,
			location: func(string) string { return "/moved?sig=s3cr3t" },
			wantTo:   func(_, self string) string { return " to " + self + "/moved" },
		},
		{
			name: "no location", status: http.StatusMultipleChoices,
			location: func(string) string { return "" },
			wantTo:   func(string, string) string { return "" },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var targetHits atomic.Int64
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				targetHits.Add(1)
				w.WriteHeader(http.StatusNoContent)
			}))
			t.Cleanup(target.Close)
			type hit struct {
				method string
				body   []byte
			}
			hits := make(chan hit, 8)
			redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				hits <- hit{method: r.Method, body: body}
				if loc := tc.location(target.URL); loc != "" {
					w.Header().Set("Location", loc)
				}
				w.WriteHeader(tc.status)
			}))
			t.Cleanup(redirector.Close)

			url := redirector.URL + "/cb?token=t0k3n"
			err := w.Handler().ProcessTask(t.Context(), callbackTask(t, j, url))
			if !errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("callback answered %d: err = %v, want a permanent failure", tc.status, err)
			}
			want := "callback " + redirector.URL + "/cb: redirect " + strconv.Itoa(tc.status) + tc.wantTo(target.URL, redirector.URL) +
				" refused: callbacks never follow redirects"
			if got := strings.TrimSuffix(err.Error(), ": "+asynq.SkipRetry.Error()); got != want {
				t.Errorf("callback answered %d: err = %q, want %q", tc.status, got, want)
			}
			ds, derr := b.jobs.Deliveries(t.Context(), j.ID)
			if derr != nil {
				t.Fatal(derr)
			}
			var got *job.Delivery
			for i := range ds {
				if ds[i].Callback.URL == url {
					got = &ds[i]
				}
			}
			if got == nil {
				t.Fatalf("Deliveries = %+v, want one for %s", ds, url)
			}
			wantD := job.Delivery{Callback: got.Callback, Outcome: job.DeliveryFailed, Code: tc.status, Error: want, Attempts: 1, At: got.At}
			if diff := cmp.Diff(wantD, *got); diff != "" {
				t.Errorf("delivery mismatch (-want +got):\n%s", diff)
			}
			for _, secret := range []string{"s3cr3t", "t0k3n", "frag"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a query or fragment (%s)", err, secret)
				}
			}
			if n := targetHits.Load(); n != 0 {
				t.Errorf("the redirect target got %d requests, want 0", n)
			}
			if n := len(hits); n != 1 {
				t.Fatalf("the callback endpoint got %d requests, want 1", n)
			}
			if h := <-hits; h.method != http.MethodPost || len(h.body) == 0 {
				t.Errorf("the callback endpoint got %s with %d bytes, want a POST with the payload", h.method, len(h.body))
			}
		})
	}
}
