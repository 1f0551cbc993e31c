package trigger_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/go-redis/redis_rate/v10"
	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/redisconn"
	"github.com/geoexport/exporter/internal/testenv"
	"github.com/geoexport/exporter/trigger"
)

// TestRedisDownAnswers503 runs the trigger against a real redis-server as
// cmd wires it, and takes that server through what a failover looks like
// from a client: a primary demoted to a replica (READONLY), then gone.
// Every request that needs Redis answers 503 with Retry-After and a JSON
// message, never 500.
func TestRedisDownAnswers503(t *testing.T) {
	t.Parallel()
	srvRedis := testenv.StartRedis(t)
	opt := asynq.RedisClientOpt{Addr: srvRedis.Addr}
	rdb, err := redisconn.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	queue, inspector := asynq.NewClient(opt), asynq.NewInspector(opt)
	t.Cleanup(func() { rdb.Close(); queue.Close(); inspector.Close() })
	jobs := job.NewStore(rdb, "test", nil)
	srv, _ := setup(t, func(_ *trigger.Config, d *trigger.Deps) {
		d.Jobs, d.Enqueuer, d.Tasks, d.Limiter = jobs, newEnqueuer(t, queue, jobs), inspector, redis_rate.NewLimiter(rdb)
	})
	resp, body := do(t, srv, "POST", "/create", seedBody)
	if resp.StatusCode != 200 {
		t.Fatalf("POST /create = %d %s, want 200", resp.StatusCode, body)
	}
	id := decode[created](t, body).ID

	check := func(when string, method, path, body string) {
		t.Helper()
		resp, b := do(t, srv, method, path, body)
		msg := ""
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			msg = decode[map[string]string](t, b)["message"]
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || msg == "" {
			t.Errorf("%s: %s %s = %d (Retry-After %q) %s, want 503 with Retry-After and a JSON message",
				when, method, path, resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
		if strings.Contains(string(b), srvRedis.Addr) {
			t.Errorf("%s: %s %s leaks the Redis address: %s", when, method, path, b)
		}
	}

	// Demoted: a replica of a server that is not there refuses writes.
	gone := testenv.FreeAddr(t)
	host, port, _ := net.SplitHostPort(gone)
	if err := rdb.SlaveOf(t.Context(), host, port).Err(); err != nil {
		t.Fatal(err)
	}
	check("READONLY", "POST", "/create", strings.Replace(seedBody, `"priority": 0`, `"priority": 5`, 1))
	check("READONLY", "DELETE", "/jobs/"+id, "")
	if resp, b := do(t, srv, "GET", "/jobs/"+id, ""); resp.StatusCode != 200 {
		t.Errorf("GET /jobs/%s from a replica = %d %s, want 200: reads are served while writes wait", id, resp.StatusCode, b)
	}

	// Gone.
	if err := srvRedis.Kill(); err != nil {
		t.Fatal(err)
	}
	check("killed", "POST", "/create", seedBody)
	check("killed", "GET", "/jobs/"+id, "")
	check("killed", "GET", "/taskStatus/"+id, "")
	check("killed", "GET", "/jobs", "")
	check("killed", "DELETE", "/jobs/"+id, "")
}
