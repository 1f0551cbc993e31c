package trigger_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/go-redis/redis_rate/v10"
	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/geoexport/exporter/internal/auth"
	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/egress"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/job/jobtest"
	"github.com/geoexport/exporter/internal/storage"
	"github.com/geoexport/exporter/internal/testenv"
	"github.com/geoexport/exporter/trigger"
)

// seedBody is the example request of the specification.
const seedBody = trigger.SeedBody

// testSecret signs the tests' HS256 tokens.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

// mint makes a token with go-jose, a JWT library the service does not use,
// so the tests check interoperability, not a round trip through our code.
func mint(t testing.TB, sub, role string) string {
	t.Helper()
	return mintPadded(t, sub, role, "")
}

// mintPadded is mint with a claim "pad" holding pad, to make large tokens
// such as identity providers issue with many groups.
func mintPadded(t testing.TB, sub, role, pad string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: testSecret}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := map[string]any{"sub": sub, "role": role, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if pad != "" {
		claims["pad"] = pad
	}
	tok, err := josejwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type bundle struct {
	rdb       *redis.Client
	jobs      *job.Store
	inspector *asynq.Inspector
	files     *storage.Local
	registry  *prometheus.Registry
}

// faultyFiles fails every Open that is not a missing key, like a storage
// backend that answers with errors.
type faultyFiles struct{ err error }

func (f faultyFiles) Open(context.Context, string) (storage.Object, error) { return nil, f.err }

type option func(*trigger.Config, *trigger.Deps)

func setup(t testing.TB, opts ...option) (*trigger.Server, *bundle) {
	t.Helper()
	rc := testenv.NewRedisClients(t)
	rdb, client, inspector := rc.RDB, rc.Queue, rc.Inspector
	files, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	jobs := job.NewStore(rdb, "test", nil)
	verifier, err := auth.New(auth.Config{
		HS256Secret: testSecret, RoleClaim: "role", ClientRole: "client", OperatorRole: "operator", Leeway: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := trigger.Config{
		PublicURL: "http://exporter.test", BodyLimit: 1 << 20, ShutdownTimeout: time.Second,
		PackageTTL: 24 * time.Hour, MaxTiles: 1000,
		TileSizes: job.TileSizes{PNG: 40_000, JPEG: 12_000},
	}
	deps := trigger.Deps{
		Logger: slog.New(slog.DiscardHandler), Registry: reg, Gatherer: reg, Catalog: demoCatalog(t),
		Jobs: jobs, Enqueuer: newEnqueuer(t, client, jobs), Tasks: inspector, Files: files, Auth: trigger.NewAuthenticator(verifier),
		Limiter: redis_rate.NewLimiter(rdb),
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	srv, err := trigger.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return srv, &bundle{rdb: rdb, jobs: jobs, inspector: inspector, files: files, registry: reg}
}

var _ trigger.Enqueuer = (*job.Enqueuer)(nil)

// taskOptions are the options of the tasks the trigger queues in these
// tests; finalize's differ from render's, so a test can tell them apart.
var taskOptions = job.TaskOptions{
	UrgentFrom: 100_000_000, DefaultFrom: 1000,
	RenderTimeout: time.Minute, RenderMaxRetry: 2,
	FinalizeTimeout: 3 * time.Minute, FinalizeMaxRetry: 4,
	CallbackTimeout: time.Second, CallbackMaxRetry: 1,
}

func newEnqueuer(t testing.TB, q job.TaskQueue, jobs *job.Store) *job.Enqueuer {
	t.Helper()
	e, err := job.NewEnqueuer(q, jobs, taskOptions)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// do sends a request as the client alice; headers given replace hers
// ("Authorization", "" sends none).
func do(t *testing.T, srv *trigger.Server, method, path, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+mint(t, "alice", "client"))
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.App().Test(req, 10_000)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

type created struct {
	Status  string   `json:"status"`
	ID      string   `json:"id"`
	TaskIDs []string `json:"taskIds"`
}

func TestCreateNewJob(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	resp, body := do(t, srv, "POST", "/create", seedBody)
	if resp.StatusCode != 200 {
		t.Fatalf("POST /create = %d %s, want 200", resp.StatusCode, body)
	}
	// Exactly the contract's three members.
	members := decode[map[string]json.RawMessage](t, body)
	if len(members) != 3 {
		t.Errorf("createGpkgJobResponse has members %v, want status, id, taskIds", members)
	}
	got := decode[created](t, body)
	if got.Status != "In-Progress" || got.ID == "" || len(got.TaskIDs) != 1 {
		t.Fatalf("POST /create = %+v, want In-Progress with id and one task", got)
	}
	// Priority 0 is below the default threshold: the low queue.
	info, err := b.inspector.GetTaskInfo(job.QueueLow, got.TaskIDs[0])
	if err != nil {
		t.Fatalf("render task %s not in %s: %v", got.TaskIDs[0], job.QueueLow, err)
	}
	var p job.RenderPayload
	if err := json.Unmarshal(info.Payload, &p); err != nil || p.JobID != got.ID || info.Type != job.TypeRender || info.MaxRetry != 2 {
		t.Errorf("task %+v payload %+v, want render of %s with max retry 2", info, p, got.ID)
	}
	j, err := b.jobs.Get(t.Context(), got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Spec.Zoom != 14 || j.Spec.TilesTotal != 18 || j.Spec.BBox.String() != "34.8046875,31.9482421875,34.82666015625,31.97021484375" {
		t.Errorf("job spec = zoom %d, %d tiles, bbox %s; want the worked example", j.Spec.Zoom, j.Spec.TilesTotal, j.Spec.BBox)
	}
}

func TestCreateJoinsRunningJob(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	_, body := do(t, srv, "POST", "/create", seedBody)
	first := decode[created](t, body)
	// A different bbox that snaps to the same tiles, another callback.
	other := strings.Replace(seedBody, "34.811938017107494", "34.8119", 1)
	other = strings.Replace(other, `"http://example.getmap.com/callback2"`, `"http://other.test/cb"`, 1)
	resp, body := do(t, srv, "POST", "/create", other)
	second := decode[created](t, body)
	if resp.StatusCode != 200 || second.ID != first.ID || !cmp.Equal(second.TaskIDs, first.TaskIDs) || second.Status != "In-Progress" {
		t.Fatalf("second POST = %d %+v, want the running job %+v", resp.StatusCode, second, first)
	}
	cbs, err := b.jobs.Callbacks(t.Context(), first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(cbs) != 4 { // two of the first request, two of the second (own bbox)
		t.Errorf("job has %d callbacks, want 4: %+v", len(cbs), cbs)
	}
	queued, _ := b.inspector.ListPendingTasks(job.QueueLow)
	if len(queued) != 1 {
		t.Errorf("%d render tasks queued, want 1", len(queued))
	}
}

func TestCreateCacheHit(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	_, body := do(t, srv, "POST", "/create", seedBody)
	first := decode[created](t, body)
	running, err := b.jobs.Get(t.Context(), first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.jobs.Complete(t.Context(), first.ID, job.Result{FileKey: job.PackageKey(first.ID, running.Spec.PackageName), FileSize: 4096, SHA256: "00", TilesStored: 18}, time.Hour); err != nil {
		t.Fatal(err)
	}
	req := strings.Replace(seedBody, "34.811938017107494", "34.8119", 1)
	resp, body := do(t, srv, "POST", "/create", req)
	if resp.StatusCode != 200 {
		t.Fatalf("POST /create = %d %s", resp.StatusCode, body)
	}
	got := decode[map[string]any](t, body)
	j, _ := b.jobs.Get(t.Context(), first.ID)
	name := j.Spec.PackageName
	want := map[string]any{
		"status":           "Completed",
		"fileUri":          "http://exporter.test/downloads/" + first.ID + "/" + name + ".gpkg",
		"expirationTime":   j.ExpiresAt.Format("2006-01-02"),
		"fileSize":         4096.0,
		"dbId":             "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8",
		"packageName":      name,
		"bbox":             []any{34.8119, 31.95475033759175, 34.82237261707599, 31.96426962177354},
		"targetResolution": 0.703125 / 16384,
		"requestId":        first.ID,
		"success":          true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("naiveCacheJobResponse mismatch (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(name, "Orthophoto_demo-terrain_1.0_z14_") {
		t.Errorf("packageName %q does not name product, version and zoom", name)
	}
}

func TestCreateLayerErrors(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	tests := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"unknown layer", strings.Replace(seedBody, "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8", "00000000-0000-4000-8000-000000000000", 1), 404, "dbId: no layer with id 00000000-0000-4000-8000-000000000000"},
		{"finer than the layer", strings.Replace(seedBody, "0.0000429153442382812", "0.0000001", 1), 400, "targetResolution: 1e-07 (zoom 22) is finer than the layer's maximum resolution 2.682209014892578e-06 (zoom 18)"},
		{"outside the footprint", strings.Replace(strings.Replace(seedBody, "34.811938017107494", "10", 1), "34.82237261707599", "11", 1), 400, "bbox: [10, 31.95475033759175, 11, 31.96426962177354] does not intersect the layer footprint [34.2, 29.4, 35.9, 33.4]"},
		{"too many tiles", strings.Replace(seedBody, "[34.811938017107494, 31.95475033759175, 34.82237261707599, 31.96426962177354]", "[34.2, 29.4, 35.9, 33.4]", 1), 400, "more than the limit of 1000"},
		{"bad request", `{"dbId":1}`, 400, "dbId: must be a string"},
		// These once reached the grid: a subnormal resolution panicked,
		// and a null bbox member was read as 0.
		{"subnormal resolution", strings.Replace(seedBody, "0.0000429153442382812", "5e-324", 1), 400, "targetResolution: 5e-324 is finer than zoom 22"},
		{"tiny resolution", strings.Replace(seedBody, "0.0000429153442382812", "1e-309", 1), 400, "targetResolution: 1e-309 is finer than zoom 22"},
		{"null bbox member", strings.Replace(seedBody, "34.811938017107494", "null", 1), 400, "bbox[0]: must be a number, got null"},
		{"null priority", strings.Replace(seedBody, `"priority": 0`, `"priority": null`, 1), 400, "priority: must be a number, got null"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, srv, "POST", "/create", tc.body)
			msg := decode[map[string]string](t, body)
			if resp.StatusCode != tc.status || !strings.Contains(msg["message"], tc.want) || len(msg) != 1 {
				t.Errorf("POST /create = %d %s, want %d with message containing %q", resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}
}

func TestServeOverTCP(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t, func(c *trigger.Config, _ *trigger.Deps) { c.BodyLimit, c.AreaBodyLimit = 2048, 8192 })
	base := serveTCP(t, srv)

	postTo := func(path, body string) (*http.Response, error) {
		req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+mint(t, "alice", "client"))
		return http.DefaultClient.Do(req)
	}
	post := func(body string) (*http.Response, error) { return postTo("/create", body) }
	resp, err := post(`{"dbId":"` + strings.Repeat("x", 4096) + `"}`)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !strings.Contains(string(body), "larger than 2048 bytes") {
		t.Errorf("POST /create with a large body = %d %s, want 413", resp.StatusCode, body)
	}
	// An area may be larger: /export and /estimate take up to 8192 bytes.
	for _, path := range []string{"/export", "/estimate"} {
		resp, err := postTo(path, `{"dbId":"`+strings.Repeat("x", 4096)+`"}`)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), "dbId") {
			t.Errorf("POST %s with a 4 KiB body = %d %s, want 400 about dbId", path, resp.StatusCode, body)
		}
		if resp, err = postTo(path, `{"dbId":"`+strings.Repeat("x", 9000)+`"}`); err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(body), "larger than 8192 bytes") {
			t.Errorf("POST %s with a 9 KB body = %d %s, want 413", path, resp.StatusCode, body)
		}
	}
	resp, err = post(seedBody)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST /create over TCP = %d", resp.StatusCode)
	}
}

// serveTCP runs srv on a loopback port until the test ends, then checks
// that it stopped cleanly, and returns its base URL.
func serveTCP(t *testing.T, srv *trigger.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// tokenOfSize mints a client token of size bytes or up to 3 more.
func tokenOfSize(t *testing.T, size int) string {
	t.Helper()
	base := len(mint(t, "alice", "client"))
	// The padding grows the base64 payload by 4 bytes per 3.
	for n := max(0, (size-base-16)*3/4); ; n++ {
		if tok := mintPadded(t, "alice", "client", strings.Repeat("x", n)); len(tok) >= size {
			return tok
		}
	}
}

// TestServeTokenSizes sends large tokens over a real connection, through
// the server's read buffer: tokens up to the 8 KiB limit are accepted
// wherever they are sent, a longer one is refused by the authenticator,
// and only headers beyond the buffer are refused by the server itself.
func TestServeTokenSizes(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	base := serveTCP(t, srv)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)

	tok7k := tokenOfSize(t, 7<<10)
	tests := []struct {
		name       string
		query      string
		header     http.Header
		wantStatus int
		want       string // in the message, for errors
	}{
		{name: "7 KiB bearer token", header: http.Header{"Authorization": {"Bearer " + tok7k}}, wantStatus: 200},
		{name: "7 KiB api key", header: http.Header{"X-Api-Key": {tok7k}}, wantStatus: 200},
		{name: "7 KiB token parameter", query: "?token=" + tok7k, wantStatus: 200},
		{
			name: "7 KiB token and other headers",
			header: http.Header{
				"Authorization": {"Bearer " + tok7k}, "Cookie": {"session=" + strings.Repeat("c", 4<<10)},
				"User-Agent": {strings.Repeat("u", 512)}, "Accept-Language": {"en-GB,en;q=0.9,he;q=0.8"},
			},
			wantStatus: 200,
		},
		{
			name:       "token over the limit",
			header:     http.Header{"Authorization": {"Bearer " + tokenOfSize(t, 9<<10)}},
			wantStatus: 401, want: "token too large",
		},
		{
			name:       "headers beyond the read buffer",
			header:     http.Header{"Authorization": {"Bearer " + tokenOfSize(t, 17<<10)}},
			wantStatus: 431, want: "request line and headers larger than 16384 bytes",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/layers"+tc.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("GET /layers: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("GET /layers = %d %.200s, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.want != "" {
				if msg := decode[map[string]string](t, body)["message"]; !strings.Contains(msg, tc.want) {
					t.Errorf("GET /layers message = %q, want it to contain %q", msg, tc.want)
				}
			}
		})
	}
}

func TestCreateBrokerDown(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t, func(_ *trigger.Config, d *trigger.Deps) {
		dead := redis.NewClient(&redis.Options{Addr: testenv.RefusingAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { dead.Close() })
		d.Jobs = job.NewStore(dead, "test", nil)
	})
	resp, body := do(t, srv, "POST", "/create", seedBody)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "retry later") {
		t.Errorf("POST /create with Redis down = %d %s, want 503 with Retry-After", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "dial") || strings.Contains(string(body), "127.0.0.1") {
		t.Errorf("503 body leaks internals: %s", body)
	}
}

// failingQueue refuses every enqueue.
type failingQueue struct{}

func (failingQueue) EnqueueContext(context.Context, *asynq.Task, ...asynq.Option) (*asynq.TaskInfo, error) {
	return nil, errors.New("queue refused")
}

func TestCreateEnqueueFailureEndsJob(t *testing.T) {
	t.Parallel()
	srv, b := setup(t, func(_ *trigger.Config, d *trigger.Deps) { d.Enqueuer = newEnqueuer(t, failingQueue{}, d.Jobs) })
	resp, body := do(t, srv, "POST", "/create", seedBody)
	if resp.StatusCode != 503 {
		t.Fatalf("POST /create with the queue down = %d %s, want 503", resp.StatusCode, body)
	}
	// The job that could not be queued is Failed, so a retry of the request
	// starts afresh instead of joining a job nothing will render.
	keys, err := b.rdb.Keys(t.Context(), "test:job:????????-????-????-????-????????????").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("job keys = %v, %v; want one job", keys, err)
	}
	j, err := b.jobs.Get(t.Context(), strings.TrimPrefix(keys[0], "test:job:"))
	if err != nil || j.Status != job.StatusFailed || j.Reason != "could not be queued" {
		t.Fatalf("job after enqueue failure = %+v, %v; want Failed", j, err)
	}
	next := job.Job{ID: "0c7e6d5a-1b0f-4c8e-9a51-3f6f2d9e8b71", Spec: j.Spec, TaskIDs: job.TaskIDs("0c7e6d5a-1b0f-4c8e-9a51-3f6f2d9e8b71", 1)}
	if _, outcome, err := b.jobs.GetOrCreate(t.Context(), next, job.Request{Subject: "alice", TTL: time.Hour}); err != nil || outcome != job.OutcomeCreated {
		t.Errorf("retry after enqueue failure = %v, %v; want a new job", outcome, err)
	}
}

func TestInternalErrorHidesDetail(t *testing.T) {
	t.Parallel()
	for _, debug := range []bool{false, true} {
		srv, _ := setup(t, func(c *trigger.Config, d *trigger.Deps) {
			c.Debug = debug
			d.Files = faultyFiles{err: errors.New("disk on fire at /secret/path")}
		})
		resp, body := do(t, srv, "GET", "/downloads/x.gpkg", "")
		got := decode[map[string]string](t, body)
		if resp.StatusCode != 500 || got["message"] != "internal server error" {
			t.Fatalf("debug=%v: GET with a storage fault = %d %s, want 500 internal server error", debug, resp.StatusCode, body)
		}
		if _, ok := got["stacktrace"]; !ok {
			t.Errorf("debug=%v: 500 body %s lacks stacktrace", debug, body)
		}
		if leaked := strings.Contains(string(body), "/secret/path"); leaked != debug {
			t.Errorf("debug=%v: body %s shows the internal error: %v", debug, body, leaked)
		}
	}
}

func TestGetJob(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	_, body := do(t, srv, "POST", "/create", seedBody)
	c := decode[created](t, body)
	if err := b.jobs.SetProgress(t.Context(), c.ID, "0", 9); err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, srv, "GET", "/jobs/"+c.ID, "")
	got := decode[map[string]any](t, body)
	if resp.StatusCode != 200 || got["status"] != "In-Progress" || got["percentage"] != 50.0 || got["tilesDone"] != 9.0 || got["tilesTotal"] != 18.0 {
		t.Errorf("GET /jobs/%s = %d %s, want In-Progress 50%% 9/18", c.ID, resp.StatusCode, body)
	}
	if _, ok := got["result"]; ok {
		t.Errorf("running job has a result: %s", body)
	}
	if _, _, err := b.jobs.Complete(t.Context(), c.ID, job.Result{FileKey: "packages/x.gpkg", FileSize: 10}, time.Hour); err != nil {
		t.Fatal(err)
	}
	_, body = do(t, srv, "GET", "/jobs/"+c.ID, "")
	got = decode[map[string]any](t, body)
	res, _ := got["result"].(map[string]any)
	if got["percentage"] != 100.0 || res["fileUri"] == nil || got["completedAt"] == nil || got["expiresAt"] == nil {
		t.Errorf("completed job = %s, want 100%% with result and timestamps", body)
	}

	resp, body = do(t, srv, "GET", "/jobs/00000000-0000-4000-8000-000000000000", "")
	if resp.StatusCode != 404 || !strings.Contains(string(body), "no job with id") {
		t.Errorf("GET unknown job = %d %s, want 404", resp.StatusCode, body)
	}
	resp, body = do(t, srv, "GET", "/jobs/nope", "")
	if resp.StatusCode != 400 || !strings.Contains(string(body), "id: \\\"nope\\\" is not a uuid") {
		t.Errorf("GET /jobs/nope = %d %s, want 400", resp.StatusCode, body)
	}
}

func TestLayers(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	resp, body := do(t, srv, "GET", "/layers", "")
	got := decode[[]map[string]any](t, body)
	if resp.StatusCode != 200 || len(got) != 1 {
		t.Fatalf("GET /layers = %d %s", resp.StatusCode, body)
	}
	l := got[0]
	if l["id"] != catalog.DemoLayerID || l["productId"] != "demo-terrain" || l["sourceKind"] != "demo" || l["maxZoom"] != 18.0 ||
		!cmp.Equal(l["footprint"], []any{34.2, 29.4, 35.9, 33.4}) {
		t.Errorf("GET /layers = %v", l)
	}
}

func TestDownload(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	content := []byte(strings.Repeat("0123456789", 100))
	src := filepath.Join(t.TempDir(), "p.gpkg")
	if err := os.WriteFile(src, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.files.PutFile(t.Context(), "packages/p.gpkg", src, trigger.ContentTypeGeoPackage); err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, srv, "GET", "/downloads/p.gpkg", "")
	if resp.StatusCode != 200 || string(body) != string(content) || resp.Header.Get("Content-Type") != "application/geopackage+sqlite3" ||
		resp.Header.Get("Content-Length") != "1000" || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("GET = %d, %d bytes, headers %v", resp.StatusCode, len(body), resp.Header)
	}
	resp, body = do(t, srv, "GET", "/downloads/p.gpkg", "", "Range", "bytes=10-19")
	if resp.StatusCode != 206 || string(body) != "0123456789" || resp.Header.Get("Content-Range") != "bytes 10-19/1000" {
		t.Errorf("GET Range 10-19 = %d %q %v", resp.StatusCode, body, resp.Header.Get("Content-Range"))
	}
	resp, body = do(t, srv, "GET", "/downloads/p.gpkg", "", "Range", "bytes=995-")
	if resp.StatusCode != 206 || string(body) != "56789" {
		t.Errorf("GET Range 995- = %d %q", resp.StatusCode, body)
	}
	resp, _ = do(t, srv, "GET", "/downloads/p.gpkg", "", "Range", "bytes=5000-6000")
	if resp.StatusCode != 416 || resp.Header.Get("Content-Range") != "bytes */1000" {
		t.Errorf("GET Range past the end = %d %v, want 416", resp.StatusCode, resp.Header)
	}
	etag := resp.Header.Get("ETag")
	resp, body = do(t, srv, "GET", "/downloads/p.gpkg", "", "Range", "bytes=0-0", "If-Range", `"stale"`)
	if resp.StatusCode != 200 || len(body) != 1000 {
		t.Errorf("GET with a stale If-Range = %d, %d bytes, want the whole file (etag %s)", resp.StatusCode, len(body), etag)
	}
	resp, body = do(t, srv, "HEAD", "/downloads/p.gpkg", "")
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != "1000" {
		t.Errorf("HEAD = %d, %d bytes, length %s", resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
	}
	for _, name := range []string{"missing.gpkg", "..%2Fsecret.gpkg", "p.txt", ".hidden.gpkg"} {
		resp, _ = do(t, srv, "GET", "/downloads/"+name, "")
		if resp.StatusCode != 404 {
			t.Errorf("GET /downloads/%s = %d, want 404", name, resp.StatusCode)
		}
	}
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t, func(_ *trigger.Config, d *trigger.Deps) {
		d.Ready = func(context.Context) error { return errors.New("redis down") }
	})
	if resp, _ := do(t, srv, "GET", "/healthz", ""); resp.StatusCode != 200 {
		t.Errorf("GET /healthz = %d", resp.StatusCode)
	}
	if resp, body := do(t, srv, "GET", "/readyz", ""); resp.StatusCode != 503 || strings.Contains(string(body), "redis down") {
		t.Errorf("GET /readyz with a dependency down = %d %s, want 503 without detail", resp.StatusCode, body)
	}
	do(t, srv, "POST", "/create", `{}`)
	if resp, _ := do(t, srv, "GET", "/metrics", ""); resp.StatusCode != 403 {
		t.Errorf("GET /metrics as a client = %d, want 403", resp.StatusCode)
	}
	_, body := do(t, srv, "GET", "/metrics", "", "Authorization", "Bearer "+mint(t, "ops", "operator"))
	for _, want := range []string{
		`exporter_http_requests_total{code="400",method="POST",route="/create"} 1`,
		`exporter_jobs_created_total{outcome="rejected"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestCreateJoinRevivesUnqueuedJob(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	_, body := do(t, srv, "POST", "/create", seedBody)
	first := decode[created](t, body)
	// The creator died between storing the job and queueing its task.
	if err := b.inspector.DeleteTask(job.QueueLow, first.TaskIDs[0]); err != nil {
		t.Fatal(err)
	}
	do(t, srv, "POST", "/create", seedBody)
	if _, err := b.inspector.GetTaskInfo(job.QueueLow, first.TaskIDs[0]); err != nil {
		t.Errorf("joining did not queue the lost render task again: %v", err)
	}
}

func TestAuthOnRoutes(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	tok := mint(t, "alice", "client")
	tests := []struct {
		name   string
		method string
		path   string
		header []string
		status int
	}{
		{"no token", "GET", "/layers", []string{"Authorization", ""}, 401},
		{"garbage token", "GET", "/layers", []string{"Authorization", "Bearer nope"}, 401},
		{"x-api-key", "GET", "/layers", []string{"Authorization", "", "x-api-key", tok}, 200},
		{"token query", "GET", "/layers?token=" + tok, []string{"Authorization", ""}, 200},
		{"no role", "GET", "/layers", []string{"Authorization", "Bearer " + mint(t, "eve", "guest")}, 403},
		{"operator is a client too", "GET", "/layers", []string{"Authorization", "Bearer " + mint(t, "ops", "operator")}, 200},
		{"healthz is public", "GET", "/healthz", []string{"Authorization", ""}, 200},
		{"openapi is public", "GET", "/openapi.json", []string{"Authorization", ""}, 200},
		{"docs are public", "GET", "/docs", []string{"Authorization", ""}, 200},
		{"metrics need an operator", "GET", "/metrics", nil, 403},
		{"create needs a token", "POST", "/create", []string{"Authorization", ""}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, srv, tc.method, tc.path, seedBody, tc.header...)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.path, resp.StatusCode, body, tc.status)
			}
			if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %v", resp.Header)
			}
			if tc.status >= 400 && decode[map[string]string](t, body)["message"] == "" {
				t.Errorf("%d body %s has no message", tc.status, body)
			}
		})
	}
}

// as sends a request with a token for sub and role.
func as(t *testing.T, srv *trigger.Server, sub, role, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	return do(t, srv, method, path, body, "Authorization", "Bearer "+mint(t, sub, role))
}

func TestJobsAreTheirRequesters(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	_, body := as(t, srv, "alice", "client", "POST", "/create", seedBody)
	id := decode[created](t, body).ID
	if resp, _ := as(t, srv, "bob", "client", "GET", "/jobs/"+id, ""); resp.StatusCode != 404 {
		t.Errorf("bob GET alice's job = %d, want 404", resp.StatusCode)
	}
	if resp, _ := as(t, srv, "bob", "client", "GET", "/taskStatus/"+id, ""); resp.StatusCode != 404 {
		t.Errorf("bob GET taskStatus of alice's job = %d, want 404", resp.StatusCode)
	}
	if resp, _ := as(t, srv, "ops", "operator", "GET", "/jobs/"+id, ""); resp.StatusCode != 200 {
		t.Errorf("operator GET alice's job = %d, want 200", resp.StatusCode)
	}
	// Bob asks for the same export: he joins it and may now see it.
	_, body = as(t, srv, "bob", "client", "POST", "/create", seedBody)
	if decode[created](t, body).ID != id {
		t.Fatalf("bob's identical request did not join alice's job")
	}
	resp, body := as(t, srv, "bob", "client", "GET", "/taskStatus/"+id, "")
	got := decode[map[string]any](t, body)
	if resp.StatusCode != 200 || got["status"] != "In-Progress" || got["percentage"] != 0.0 || len(got) != 2 {
		t.Errorf("bob GET taskStatus = %d %s, want {percentage, status}", resp.StatusCode, body)
	}
}

// TestJobsFromCache checks that GET /jobs and GET /jobs/{id} tell each
// subject whether its own request was answered from a finished package.
func TestJobsFromCache(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	_, body := as(t, srv, "alice", "client", "POST", "/create", seedBody)
	id := decode[created](t, body).ID
	if _, _, err := b.jobs.Complete(t.Context(), id, job.Result{FileKey: "packages/x.gpkg", FileSize: 4096, SHA256: "00", TilesStored: 18}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, body := as(t, srv, "bob", "client", "POST", "/create", seedBody); decode[map[string]any](t, body)["status"] != "Completed" {
		t.Fatalf("bob's request of the completed export = %s, want the cached answer", body)
	}
	type view struct {
		ID        string `json:"id"`
		FromCache *bool  `json:"fromCache"`
	}
	for _, tc := range []struct {
		name, sub, role string
		want            bool
	}{
		{"the creator", "alice", "client", false},
		{"the subject served from the cache", "bob", "client", true},
		{"an operator who asked for nothing", "ops", "operator", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := as(t, srv, tc.sub, tc.role, "GET", "/jobs/"+id, "")
			if got := decode[view](t, body); resp.StatusCode != 200 || got.FromCache == nil || *got.FromCache != tc.want {
				t.Errorf("%s GET /jobs/{id} = %d %s, want fromCache %v", tc.sub, resp.StatusCode, body, tc.want)
			}
			if tc.role == "operator" {
				return // lists only the jobs it requested: none
			}
			_, body = as(t, srv, tc.sub, tc.role, "GET", "/jobs", "")
			list := decode[struct{ Jobs []view }](t, body)
			if len(list.Jobs) != 1 || list.Jobs[0].ID != id || list.Jobs[0].FromCache == nil || *list.Jobs[0].FromCache != tc.want {
				t.Errorf("%s GET /jobs = %s, want job %s with fromCache %v", tc.sub, body, id, tc.want)
			}
		})
	}
}

func TestListJobs(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	var ids []string
	for i := range 5 {
		req := strings.Replace(seedBody, "0.0000429153442382812", strconv.FormatFloat(grid.Zoom(10+i).Resolution(), 'g', -1, 64), 1)
		resp, body := as(t, srv, "carol", "client", "POST", "/create", req)
		if resp.StatusCode != 200 {
			t.Fatalf("create %d: %d %s", i, resp.StatusCode, body)
		}
		ids = append(ids, decode[created](t, body).ID)
		time.Sleep(2 * time.Millisecond) // distinct request times
	}
	as(t, srv, "dave", "client", "POST", "/create", seedBody)
	if _, _, err := b.jobs.Fail(t.Context(), ids[1], "broken"); err != nil {
		t.Fatal(err)
	}
	type page struct {
		Jobs []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"jobs"`
		NextOffset *int `json:"nextOffset"`
	}
	_, body := as(t, srv, "carol", "client", "GET", "/jobs?limit=2", "")
	p := decode[page](t, body)
	if len(p.Jobs) != 2 || p.Jobs[0].ID != ids[4] || p.Jobs[1].ID != ids[3] || p.NextOffset == nil || *p.NextOffset != 2 {
		t.Fatalf("first page = %s, want jobs 4 and 3 newest first and nextOffset 2", body)
	}
	_, body = as(t, srv, "carol", "client", "GET", "/jobs?limit=2&offset=4", "")
	p = decode[page](t, body)
	if len(p.Jobs) != 1 || p.Jobs[0].ID != ids[0] || p.NextOffset != nil {
		t.Errorf("last page = %s, want job 0 and no next", body)
	}
	_, body = as(t, srv, "carol", "client", "GET", "/jobs?status=Failed", "")
	p = decode[page](t, body)
	if len(p.Jobs) != 1 || p.Jobs[0].ID != ids[1] || p.Jobs[0].Status != "Failed" {
		t.Errorf("Failed jobs = %s, want job 1", body)
	}
	for _, q := range []string{"status=Done", "limit=0", "limit=501", "offset=-1", "limit=x"} {
		if resp, body := as(t, srv, "carol", "client", "GET", "/jobs?"+q, ""); resp.StatusCode != 400 {
			t.Errorf("GET /jobs?%s = %d %s, want 400", q, resp.StatusCode, body)
		}
	}
}

func TestCancelJob(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	body := strings.Replace(seedBody, `"http://example.getmap.com/callback2"`, `"http://other.example.com/cb"`, 1)
	_, resp := as(t, srv, "alice", "client", "POST", "/create", body)
	c := decode[created](t, resp)
	as(t, srv, "bob", "client", "POST", "/create", seedBody) // bob joins

	if r, body := as(t, srv, "bob", "client", "DELETE", "/jobs/"+c.ID, ""); r.StatusCode != 403 {
		t.Errorf("bob cancels alice's job = %d %s, want 403", r.StatusCode, body)
	}
	if r, _ := as(t, srv, "eve", "client", "DELETE", "/jobs/"+c.ID, ""); r.StatusCode != 404 {
		t.Errorf("a stranger cancels = %d, want 404", r.StatusCode)
	}
	r, out := as(t, srv, "alice", "client", "DELETE", "/jobs/"+c.ID, "")
	got := decode[map[string]any](t, out)
	if r.StatusCode != 200 || got["status"] != "Cancelled" || got["reason"] != "cancelled by alice" {
		t.Fatalf("alice cancels = %d %s", r.StatusCode, out)
	}
	if res, _ := got["result"].(map[string]any); res["success"] != false || res["errorReason"] != "cancelled by alice" {
		t.Errorf("cancelled job result = %v, want success false with the reason", got["result"])
	}
	if _, err := b.inspector.GetTaskInfo(job.QueueLow, c.TaskIDs[0]); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("render task of a cancelled job still queued: %v", err)
	}
	// One failure callback per distinct (url, bbox): alice's two and bob's
	// callback2; bob's first callback equals alice's.
	if cbs, _ := b.inspector.ListPendingTasks(job.QueueLow); len(cbs) != 3 {
		t.Errorf("%d callback tasks queued, want 3", len(cbs))
	}
	if r, body := as(t, srv, "alice", "client", "DELETE", "/jobs/"+c.ID, ""); r.StatusCode != 409 || !strings.Contains(string(body), "is Cancelled") {
		t.Errorf("cancel twice = %d %s, want 409", r.StatusCode, body)
	}
	// A cancelled job is never reused.
	_, out = as(t, srv, "alice", "client", "POST", "/create", seedBody)
	if decode[created](t, out).ID == c.ID {
		t.Error("a request after cancellation joined the cancelled job")
	}
	// Operators may cancel anyone's job.
	_, out = as(t, srv, "bob", "client", "POST", "/create", strings.Replace(seedBody, "0.0000429153442382812", "0.0001", 1))
	bobs := decode[created](t, out)
	if r, body := as(t, srv, "ops", "operator", "DELETE", "/jobs/"+bobs.ID, ""); r.StatusCode != 200 {
		t.Errorf("operator cancels bob's job = %d %s", r.StatusCode, body)
	}
}

// TestCancelQueuesFinalizeWithItsOptions: the merge that removes a
// cancelled job's parts is a finalize task, with finalize's retries and
// timeout rather than render's.
func TestCancelQueuesFinalizeWithItsOptions(t *testing.T) {
	t.Parallel()
	srv, b := setup(t, func(c *trigger.Config, _ *trigger.Deps) { c.Batching = job.Batching{MaxTiles: 5} })
	_, resp := as(t, srv, "alice", "client", "POST", "/create", seedBody)
	c := decode[created](t, resp)
	if len(c.TaskIDs) < 2 {
		t.Fatalf("job of %d batches, want several", len(c.TaskIDs))
	}
	if r, body := as(t, srv, "alice", "client", "DELETE", "/jobs/"+c.ID, ""); r.StatusCode != 200 {
		t.Fatalf("alice cancels = %d %s", r.StatusCode, body)
	}
	jobtest.CheckFinalizeTask(t, b.inspector, job.QueueLow, c.ID, taskOptions)
}

func TestEstimate(t *testing.T) {
	t.Parallel()
	srv, b := setup(t, func(c *trigger.Config, _ *trigger.Deps) { c.QuotaBytes = 10_000_000 })
	for _, path := range []string{"/estimate", "/create?dryRun=true"} {
		resp, body := do(t, srv, "POST", path, seedBody)
		got := decode[map[string]any](t, body)
		byZoom, _ := got["tilesByZoom"].([]any)
		if resp.StatusCode != 200 || got["tilesTotal"] != 18.0 || got["zoom"] != 14.0 || len(byZoom) != 15 ||
			!cmp.Equal(got["bbox"], []any{34.8046875, 31.9482421875, 34.82666015625, 31.97021484375}) ||
			got["estimatedBytes"] != 18.0*26_000 || got["quotaBytes"] != 10_000_000.0 || got["quotaAvailableBytes"] != 10_000_000.0 {
			t.Errorf("POST %s = %d %s", path, resp.StatusCode, body)
		}
		if last, _ := byZoom[14].(map[string]any); last["tiles"] != 4.0 {
			t.Errorf("zoom 14 tiles = %v, want 4", byZoom[14])
		}
	}
	if n, _ := b.rdb.Keys(t.Context(), "test:job:*").Result(); len(n) != 0 {
		t.Errorf("an estimate created %d job keys", len(n))
	}
	if resp, body := do(t, srv, "POST", "/estimate", `{"dbId":"x"}`); resp.StatusCode != 400 {
		t.Errorf("estimate of a bad request = %d %s", resp.StatusCode, body)
	}
}

func TestQuota(t *testing.T) {
	t.Parallel()
	// 18 tiles × 26,000 bytes = 468,000: the first job fits, the second not.
	srv, b := setup(t, func(c *trigger.Config, _ *trigger.Deps) { c.QuotaBytes = 600_000 })
	if resp, body := do(t, srv, "POST", "/create", seedBody); resp.StatusCode != 200 {
		t.Fatalf("first job = %d %s", resp.StatusCode, body)
	}
	other := strings.Replace(seedBody, "34.82237261707599", "34.83", 1)
	resp, body := do(t, srv, "POST", "/create", other)
	if resp.StatusCode != 507 || !strings.Contains(string(body), "needs an estimated") || !strings.Contains(string(body), "132000 of the 600000 byte") {
		t.Errorf("job over quota = %d %s, want 507 naming the estimate and what is left", resp.StatusCode, body)
	}
	stored, reserved, err := b.jobs.Usage(t.Context())
	if err != nil || stored != 0 || reserved != 468_000 {
		t.Errorf("Usage = %d, %d, %v; want 0 stored and 468000 reserved", stored, reserved, err)
	}
	// The identical request joins; it needs no quota.
	if resp, _ := do(t, srv, "POST", "/create", seedBody); resp.StatusCode != 200 {
		t.Errorf("joining a job under a full quota = %d, want 200", resp.StatusCode)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t, func(c *trigger.Config, _ *trigger.Deps) { c.RateLimit, c.RateBurst = 60, 3 })
	var last *http.Response
	var body []byte
	for range 5 {
		last, body = as(t, srv, "mallory", "client", "GET", "/layers", "")
	}
	if last.StatusCode != 429 || last.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "rate limit") {
		t.Errorf("fifth request in a burst of 3 = %d %s, want 429 with Retry-After", last.StatusCode, body)
	}
	if resp, _ := as(t, srv, "trent", "client", "GET", "/layers", ""); resp.StatusCode != 200 {
		t.Errorf("another subject = %d, want 200: limits are per subject", resp.StatusCode)
	}
}

func TestCallbackPolicy(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t, func(_ *trigger.Config, d *trigger.Deps) {
		policy, err := egress.New(egress.Config{Allow: "hooks.internal"})
		if err != nil {
			t.Fatal(err)
		}
		d.CallbackPolicy = policy
	})
	tests := []struct {
		name string
		url  string
		ok   bool
	}{
		{"loopback", "http://127.0.0.1:8080/cb", false},
		{"metadata", "http://169.254.169.254/latest/meta-data", false},
		{"private", "http://10.1.2.3/cb", false},
		{"localhost", "http://localhost/cb", false},
		{"allowlisted name", "http://hooks.internal/cb", true},
		{"public", "http://93.184.216.34/cb", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := strings.Replace(seedBody, `"http://example.getmap.com/callback2"`, strconv.Quote(tc.url), 1)
			body = strings.Replace(body, `"http://example.getmap.com/callback", `, "", 1)
			resp, out := do(t, srv, "POST", "/estimate", body)
			if (resp.StatusCode == 200) != tc.ok {
				t.Errorf("callback %s = %d %s, want ok=%v", tc.url, resp.StatusCode, out, tc.ok)
			}
			if !tc.ok && !strings.Contains(string(out), "callbackURLs[0]") {
				t.Errorf("refusal %s does not name the field", out)
			}
		})
	}
}

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
		{"job", "GET", "/jobs/" + id, "", `"status":"Completed"`},
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
