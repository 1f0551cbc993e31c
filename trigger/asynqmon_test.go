package trigger_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/testenv"
	"github.com/geoexport/exporter/trigger"
)

// monitoringCookie is the cookie the trigger keeps an operator's token in
// for asynqmon's own requests.
const monitoringCookie = "exporter_monitoring_token"

// setupMonitoring is setup with asynqmon at /monitoring, over a Redis of
// its own that holds one render task in each of the project's queues.
func setupMonitoring(t *testing.T, writable bool) (*trigger.Server, *asynq.Inspector) {
	t.Helper()
	rc := testenv.NewRedisClients(t)
	srv, _ := setup(t, func(c *trigger.Config, d *trigger.Deps) {
		c.MonitoringWritable = writable
		d.Redis = rc.Opt
	})
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	for i, q := range job.Queues {
		payload, err := json.Marshal(job.RenderPayload{JobID: "0c7e6d5a-1b0f-4c8e-9a51-3f6f2d9e8b71", Batch: i})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Queue.EnqueueContext(t.Context(), asynq.NewTask(job.TypeRender, payload), asynq.Queue(q)); err != nil {
			t.Fatalf("enqueue on %s: %v", q, err)
		}
	}
	return srv, rc.Inspector
}

// queueSnapshot is the part of asynqmon's GET /api/queues entries the
// tests read.
type queueSnapshot struct {
	Queue   string `json:"queue"`
	Pending int    `json:"pending"`
	Paused  bool   `json:"paused"`
}

func TestMonitoringAuth(t *testing.T) {
	t.Parallel()
	srv, _ := setupMonitoring(t, false)
	operator := mint(t, "ops", "operator")
	tests := []struct {
		name   string
		path   string
		header []string
		status int
		media  string
	}{
		{"operator page", "/monitoring", []string{"Authorization", "Bearer " + operator}, 200, "text/html"},
		{"operator page, trailing slash", "/monitoring/", []string{"Authorization", "Bearer " + operator}, 200, "text/html"},
		{"operator deep link", "/monitoring/queues/export-default", []string{"Authorization", "Bearer " + operator}, 200, "text/html"},
		{"operator asset", "/monitoring/favicon-32x32.png", []string{"Authorization", "Bearer " + operator}, 200, "image/png"},
		// asynqmon writes its JSON without a Content-Type, which net/http
		// then sniffs as text/plain.
		{"operator api", "/monitoring/api/queues", []string{"Authorization", "Bearer " + operator}, 200, "text/plain"},
		{"operator with x-api-key", "/monitoring/api/queues", []string{"Authorization", "", "X-Api-Key", operator}, 200, "text/plain"},
		{"client page", "/monitoring", nil, 403, "application/json"},
		{"client api", "/monitoring/api/queues", nil, 403, "application/json"},
		{"no token page", "/monitoring", []string{"Authorization", ""}, 401, "application/json"},
		{"no token api", "/monitoring/api/queues", []string{"Authorization", ""}, 401, "application/json"},
		{"no token asset", "/monitoring/favicon-32x32.png", []string{"Authorization", ""}, 401, "application/json"},
		{"garbage token", "/monitoring", []string{"Authorization", "Bearer garbage"}, 401, "application/json"},
		{"a path that only starts alike", "/monitoringx", []string{"Authorization", "Bearer " + operator}, 404, "application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, srv, "GET", tc.path, "", tc.header...)
			if resp.StatusCode != tc.status {
				t.Fatalf("GET %s = %d %.200s, want %d", tc.path, resp.StatusCode, body, tc.status)
			}
			if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, tc.media) {
				t.Errorf("GET %s Content-Type = %q, want %s", tc.path, got, tc.media)
			}
			if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("GET %s = 401 without a Bearer challenge: %v", tc.path, resp.Header)
			}
			if tc.status >= 400 && decode[map[string]string](t, body)["message"] == "" {
				t.Errorf("GET %s = %d %s, want a message", tc.path, tc.status, body)
			}
			if c := resp.Header.Get("Set-Cookie"); c != "" {
				t.Errorf("GET %s set a cookie without the token parameter: %s", tc.path, c)
			}
		})
	}
}

func TestMonitoringShowsQueues(t *testing.T) {
	t.Parallel()
	srv, _ := setupMonitoring(t, false)
	operator := []string{"Authorization", "Bearer " + mint(t, "ops", "operator")}

	resp, body := do(t, srv, "GET", "/monitoring", "", operator...)
	for _, want := range []string{`window.FLAG_ROOT_PATH="\/monitoring"`, `window.FLAG_READ_ONLY="true"`, `src="/monitoring/static/js/`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /monitoring = %d, page lacks %s", resp.StatusCode, want)
		}
	}

	resp, body = do(t, srv, "GET", "/monitoring/api/queues", "", operator...)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /monitoring/api/queues = %d %s, want 200", resp.StatusCode, body)
	}
	got := decode[struct{ Queues []queueSnapshot }](t, body).Queues
	slices.SortFunc(got, func(a, b queueSnapshot) int { return strings.Compare(a.Queue, b.Queue) })
	want := []queueSnapshot{{Queue: job.QueueDefault, Pending: 1}, {Queue: job.QueueLow, Pending: 1}, {Queue: job.QueueUrgent, Pending: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /monitoring/api/queues mismatch (-want +got):\n%s", diff)
	}
}

// cookieOf returns the monitoring cookie resp sets, or nil.
func cookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == monitoringCookie {
			return c
		}
	}
	return nil
}

func TestMonitoringCookie(t *testing.T) {
	t.Parallel()
	srv, _ := setupMonitoring(t, false)
	operator := mint(t, "ops", "operator")
	client := mint(t, "alice", "client")
	noAuth := []string{"Authorization", ""}

	t.Run("token parameter sets the cookie", func(t *testing.T) {
		t.Parallel()
		resp, body := do(t, srv, "GET", "/monitoring?token="+operator, "", noAuth...)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /monitoring?token= = %d %s, want 200", resp.StatusCode, body)
		}
		c := cookieOf(resp)
		if c == nil {
			t.Fatalf("GET /monitoring?token= set no %s cookie: %v", monitoringCookie, resp.Header.Values("Set-Cookie"))
		}
		if c.Value != operator || c.Path != "/monitoring" || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure {
			t.Errorf("cookie = %s, want the token, Path=/monitoring, HttpOnly, SameSite=Strict, not Secure over http", resp.Header.Get("Set-Cookie"))
		}
		// The page's own request, as the browser sends it.
		resp, body = do(t, srv, "GET", "/monitoring/api/queues", "", "Authorization", "", "Cookie", c.Name+"="+c.Value)
		if resp.StatusCode != 200 || len(decode[struct{ Queues []queueSnapshot }](t, body).Queues) != 3 {
			t.Errorf("GET /monitoring/api/queues with the cookie = %d %s, want 200 and three queues", resp.StatusCode, body)
		}
	})
	t.Run("secure behind https", func(t *testing.T) {
		t.Parallel()
		resp, _ := do(t, srv, "GET", "/monitoring?token="+operator, "", "Authorization", "", "X-Forwarded-Proto", "https")
		if c := cookieOf(resp); c == nil || !c.Secure {
			t.Errorf("GET /monitoring?token= over https: cookie %q, want Secure", resp.Header.Get("Set-Cookie"))
		}
	})

	tests := []struct {
		name   string
		method string
		path   string
		header []string
		status int
	}{
		{"client token parameter", "GET", "/monitoring?token=" + client, noAuth, 403},
		{"garbage token parameter", "GET", "/monitoring?token=garbage", noAuth, 401},
		{"header wins over the parameter", "GET", "/monitoring?token=" + operator, []string{"Authorization", "Bearer " + client}, 403},
		{"operator header, client parameter", "GET", "/monitoring?token=" + client, []string{"Authorization", "Bearer " + operator}, 200},
		{"api by token parameter", "GET", "/monitoring/api/queues?token=" + operator, noAuth, 200},
		{"client cookie", "GET", "/monitoring/api/queues", []string{"Authorization", "", "Cookie", monitoringCookie + "=" + client}, 403},
		{"expired cookie", "GET", "/monitoring/api/queues", []string{"Authorization", "", "Cookie", monitoringCookie + "=" + expiredToken(t)}, 401},
		{"header wins over the cookie", "GET", "/monitoring/api/queues", []string{"Cookie", monitoringCookie + "=" + operator}, 403},
		{"parameter wins over the cookie", "GET", "/monitoring?token=" + operator, []string{"Authorization", "", "Cookie", monitoringCookie + "=garbage"}, 200},
		{"cookie only for /monitoring", "GET", "/layers", []string{"Authorization", "", "Cookie", monitoringCookie + "=" + operator}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, srv, tc.method, tc.path, "", tc.header...)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s = %d %.200s, want %d", tc.method, tc.path, resp.StatusCode, body, tc.status)
			}
			// Only a token parameter that was itself accepted is kept.
			c := cookieOf(resp)
			want := tc.status == 200 && strings.Contains(tc.path, "token="+operator) && tc.header[0] == "Authorization" && tc.header[1] == ""
			if (c != nil) != want {
				t.Errorf("%s %s set cookie %v, want a cookie: %v", tc.method, tc.path, c, want)
			}
			if c != nil && c.Value != operator {
				t.Errorf("%s %s kept a token that is not the accepted one", tc.method, tc.path)
			}
		})
	}
}

func TestMonitoringReadOnly(t *testing.T) {
	t.Parallel()
	srv, inspector := setupMonitoring(t, false)
	operator := mint(t, "ops", "operator")
	changes := []struct{ method, path string }{
		{"DELETE", "/monitoring/api/queues/" + job.QueueLow},
		{"POST", "/monitoring/api/queues/" + job.QueueLow + ":pause"},
		{"DELETE", "/monitoring/api/queues/" + job.QueueLow + "/pending_tasks:delete_all"},
	}
	for _, ch := range changes {
		for _, auth := range [][]string{
			{"Authorization", "Bearer " + operator},
			{"Authorization", "", "Cookie", monitoringCookie + "=" + operator, "Sec-Fetch-Site", "same-origin"},
		} {
			// asynqmon refuses every method but GET under /api in read-only
			// mode, with a plain-text 405.
			resp, body := do(t, srv, ch.method, ch.path, "", auth...)
			if resp.StatusCode != 405 || !strings.Contains(string(body), "read-only mode") {
				t.Errorf("%s %s read-only = %d %s, want 405 read-only mode", ch.method, ch.path, resp.StatusCode, body)
			}
		}
	}
	info, err := inspector.GetQueueInfo(job.QueueLow)
	if err != nil || info.Paused || info.Pending != 1 {
		t.Errorf("queue %s after refused changes = %+v, %v; want one pending task, not paused", job.QueueLow, info, err)
	}
}

func TestMonitoringWritable(t *testing.T) {
	t.Parallel()
	srv, inspector := setupMonitoring(t, true)
	operator := mint(t, "ops", "operator")
	pause := "/monitoring/api/queues/" + job.QueueLow + ":pause"
	cookie := []string{"Authorization", "", "Cookie", monitoringCookie + "=" + operator}

	if resp, body := do(t, srv, "POST", pause, ""); resp.StatusCode != 403 {
		t.Errorf("client POST %s = %d %s, want 403", pause, resp.StatusCode, body)
	}
	// A change by cookie from another origin of the same site.
	if resp, body := do(t, srv, "POST", pause, "", append(cookie, "Sec-Fetch-Site", "same-site")...); resp.StatusCode != 403 {
		t.Errorf("POST %s by cookie from the same site = %d %s, want 403", pause, resp.StatusCode, body)
	}
	if info, err := inspector.GetQueueInfo(job.QueueLow); err != nil || info.Paused {
		t.Fatalf("queue %s after refused pauses = %+v, %v; want it running", job.QueueLow, info, err)
	}
	if resp, body := do(t, srv, "POST", pause, "", append(cookie, "Sec-Fetch-Site", "same-origin")...); resp.StatusCode != 204 {
		t.Errorf("POST %s by cookie from the page = %d %s, want 204", pause, resp.StatusCode, body)
	}
	if info, err := inspector.GetQueueInfo(job.QueueLow); err != nil || !info.Paused {
		t.Errorf("queue %s after the operator paused it = %+v, %v; want paused", job.QueueLow, info, err)
	}
}

func TestMonitoringClosedWithServer(t *testing.T) {
	t.Parallel()
	srv, _ := setupMonitoring(t, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	operator := "Bearer " + mint(t, "ops", "operator")
	// Serve one request first: a server told to stop before it listens
	// keeps listening.
	req, err := http.NewRequestWithContext(t.Context(), "GET", "http://"+ln.Addr().String()+"/monitoring/api/queues", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", operator)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /monitoring/api/queues over TCP = %d, want 200", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	// asynqmon's Redis clients went with the server.
	resp, body := do(t, srv, "GET", "/monitoring/api/queues", "", "Authorization", operator)
	if resp.StatusCode != 500 || !strings.Contains(string(body), "closed") {
		t.Errorf("GET /monitoring/api/queues after Run = %d %s, want 500 client is closed", resp.StatusCode, body)
	}
}
