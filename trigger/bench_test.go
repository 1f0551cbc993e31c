package trigger_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/geoexport/exporter/internal/job"
)

// BenchmarkCacheHit answers a cache-hit POST /create and GET /jobs/{id} of
// the completed job, in process against a real Redis: the two routes
// `make bench-api` loads over the network.
func BenchmarkCacheHit(b *testing.B) {
	if testing.Short() {
		b.Skip("needs redis-server; skipped under -short")
	}
	srv, bun := setup(b)
	token := mint(b, "alice", "client")
	call := func(b *testing.B, method, path, body string) []byte {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.App().Test(req, -1)
		if err != nil {
			b.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("%s %s = %d %s (%v)", method, path, resp.StatusCode, got, err)
		}
		return got
	}
	first := call(b, "POST", "/create", seedBody)
	id := decode[created](b, first).ID
	if _, _, err := bun.jobs.Complete(b.Context(), id, job.Result{FileKey: "packages/" + id + "/x.gpkg", FileSize: 4096, SHA256: "00", TilesStored: 18}, time.Hour); err != nil {
		b.Fatal(err)
	}
	for _, r := range []struct{ name, method, path, body, want string }{
		{"create", "POST", "/create", seedBody, `"status":"Completed"`},
		{"job", "GET", "/jobs/" + id, "", `"fromCache":true`},
	} {
		b.Run(r.name, func(b *testing.B) {
			if got := call(b, r.method, r.path, r.body); !strings.Contains(string(got), r.want) {
				b.Fatalf("%s %s = %s, want %s in it", r.method, r.path, got, r.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				call(b, r.method, r.path, r.body)
			}
		})
	}
}
