package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geoexport/exporter/internal/job/jobtest"
	"github.com/geoexport/exporter/internal/testenv"
)

// TestSentinelFailoverMidExport runs the trigger, two workers and the
// scheduler against a Sentinel set (a primary, a replica, three
// sentinels), kills the primary with SIGKILL while an export runs, and
// checks that the export completes with exactly its tiles once the
// replica is promoted, and that the trigger answered 503 with Retry-After,
// never 500, while there was no primary.
func TestSentinelFailoverMidExport(t *testing.T) {
	t.Parallel()
	rs := testenv.Sentinel(t)
	c := newCluster(t, 150, map[string]string{
		"EXPORTER_REDIS_URL":                    rs.URL(),
		"EXPORTER_SCHEDULER_RECONCILE_SCHEDULE": "@every 1s",
		"EXPORTER_SCHEDULER_STUCK_AFTER":        "20s",
	})
	c.worker(nil)
	c.worker(nil)
	c.start("scheduler", nil)
	id := c.export(crashBBox, crashZoom)
	c.waitProgress(id)

	// Poll the trigger through the failover: the job's status, and the
	// identical request, which joins the running job.
	p := &poller{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/jobs/" + id, ""},
		{"POST", "/create", exportBody(c, crashBBox, crashZoom)},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				p.poll(c.api, r.method, r.path, r.body)
			}
		}()
	}
	stopPolling := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopPolling)

	killed := time.Now()
	before := p.answers()
	rs.KillPrimary()
	rs.WaitPromoted(30 * time.Second)
	t.Logf("replica promoted %v after the primary was killed", time.Since(killed).Round(10*time.Millisecond))
	j := p.waitCompleted(t, c.api, id, 60*time.Second)
	stopPolling()

	c.checkPackage(j)
	if j["tilesDone"] != j["tilesTotal"] {
		t.Errorf("tiles done %v of %v after the failover", j["tilesDone"], j["tilesTotal"])
	}
	c.expectCallback(true)

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unavailable == 0 {
		t.Errorf("no request was answered 503 while there was no primary (%d answers since the kill)", p.total-before)
	}
	for _, bad := range p.bad {
		t.Errorf("during the failover: %s", bad)
	}
	t.Logf("%d answers after the kill: %d were 503 with Retry-After", p.total-before, p.unavailable)
}

// poller records the trigger's answers during a failover.
type poller struct {
	mu          sync.Mutex
	total       int
	unavailable int      // 503 with Retry-After and a JSON message
	bad         []string // anything but 200 and such a 503
}

func (p *poller) answers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// poll sends one request and records its answer; it returns the decoded
// body of a 200.
func (p *poller) poll(a api, method, path, body string) map[string]any {
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	var resp *http.Response
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+a.token)
		resp, err = http.DefaultClient.Do(req)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total++
	if err != nil {
		p.bad = append(p.bad, fmt.Sprintf("%s %s: %v", method, path, err))
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	jsonErr := json.Unmarshal(b, &m)
	switch {
	case resp.StatusCode == http.StatusOK && jsonErr == nil:
		return m
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" && jsonErr == nil && m["message"] != nil:
		p.unavailable++
	default:
		p.bad = append(p.bad, fmt.Sprintf("%s %s = %d (Retry-After %q) %.200s", method, path, resp.StatusCode, resp.Header.Get("Retry-After"), b))
	}
	return nil
}

// waitCompleted polls GET /jobs/{id}, recording each answer, until the job
// is Completed; a 503 is waited out, any other end fails the test.
func (p *poller) waitCompleted(t *testing.T, a api, id string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		j := p.poll(a, "GET", "/jobs/"+id, "")
		switch st := j["status"]; st {
		case "Completed":
			return j
		case nil, "In-Progress":
		default:
			t.Fatalf("job %s ended %v: %v", id, st, j["reason"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("job %s not Completed within %v of the failover", id, timeout)
	return nil
}

// TestLostWritesRepaired drops, in the real Redis of a running cluster,
// writes that a failover can lose (the promoted replica lacks the
// primary's last writes), and shows the service repair each: a lost
// done-set entry renders its batch again, and a lost Completed write is
// redone by the finalize that reconcile queues, with the package already
// stored. docs/architecture.md lists every such write.
func TestLostWritesRepaired(t *testing.T) {
	t.Parallel()
	c := newClusterOn(t, storeLocal, 150, map[string]string{
		"EXPORTER_SCHEDULER_RECONCILE_SCHEDULE": "@every 1s",
		"EXPORTER_SCHEDULER_STUCK_AFTER":        "2s",
	})
	w := c.worker(nil)
	c.start("scheduler", nil)
	rdb := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(c.env["EXPORTER_REDIS_URL"], "redis://")})
	t.Cleanup(func() { rdb.Close() })
	ctx := t.Context()

	// A batch's done-set entry is lost once its task has ended: nothing
	// would run it again, so the job could never complete.
	id := c.export(crashBBox, crashZoom)
	batch := -1
	waitUntil(t, "a batch stored", 60*time.Second, func() bool {
		m, err := rdb.SRandMember(ctx, "exporter:job:"+id+":done").Result()
		if err != nil {
			return false
		}
		batch, err = strconv.Atoi(m)
		return err == nil
	})
	jobtest.LoseBatchDone(t, rdb, "exporter", id, batch)
	j := waitCompleted(t, c.api, id)
	c.checkPackage(j)
	if batches, rendered := len(j["taskIds"].([]any)), batchesBy(w); rendered != batches+1 {
		t.Errorf("%d batches rendered for a job of %d whose batch %d lost its done-set entry, want %d: that batch once more",
			rendered, batches, batch, batches+1)
	}
	if j["tilesDone"] != j["tilesTotal"] {
		t.Errorf("tiles done %v of %v: the batch rendered again counted twice or not at all", j["tilesDone"], j["tilesTotal"])
	}
	c.expectCallback(true)

	// The Completed write is lost after the package was stored and the
	// parts deleted.
	jobtest.LoseComplete(t, rdb, "exporter", id)
	if st := c.api.getJSON(t, "/jobs/"+id)["status"]; st != "In-Progress" {
		t.Fatalf("job after its Completed write was lost = %v, want In-Progress", st)
	}
	again := waitCompletedWithin(t, c.api, id, 30*time.Second)
	first, second := j["result"].(map[string]any), again["result"].(map[string]any)
	for _, k := range []string{"fileUri", "fileSize", "packageName"} {
		if first[k] != second[k] {
			t.Errorf("result %s = %v after the repair, want the stored package's %v", k, second[k], first[k])
		}
	}
	c.checkPackage(again)
	if stored, err := rdb.Get(ctx, "exporter:quota:stored").Int64(); err != nil || float64(stored) != first["fileSize"] {
		t.Errorf("quota's stored bytes after the repair = %d (%v), want the package's %v", stored, err, first["fileSize"])
	}
	if reserved, err := rdb.Get(ctx, "exporter:quota:reserved").Int64(); err != nil || reserved != 0 {
		t.Errorf("quota's reserved bytes after the repair = %d (%v), want 0", reserved, err)
	}
	if !strings.Contains(w.logs.String(), "stored package adopted") {
		t.Error("the worker did not log the adopted package")
	}
	// Callers were told once, before the loss: the callback's task id is
	// kept after delivery, so the repair does not deliver it again.
	select {
	case body := <-c.cb.got:
		t.Errorf("callback delivered again after the repair: %v", body)
	case <-time.After(3 * time.Second):
	}
}
