package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/testenv"
)

// The embedded Redis of `exporter all` is a redis-server child process
// with an append-only file under the data directory: these tests kill the
// exporter and its Redis and check what survives.

// embeddedRedisPid reads the pid file of the embedded redis-server of the
// exporter running in dir.
func embeddedRedisPid(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "data", "redis", "redis.pid"))
	if err != nil {
		t.Fatalf("embedded redis pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("embedded redis pid file: %v", err)
	}
	return pid
}

// taskDirs lists the render and finalize temp dirs under dir.
func taskDirs(t *testing.T, dir string) []string {
	t.Helper()
	var dirs []string
	for _, pattern := range []string{"render-*", "finalize-*"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, m...)
	}
	return dirs
}

// checkQuota checks that POST /estimate reports the quota less the stored
// packages and the estimates of running jobs among ids; it retries while a
// job changes status under it.
func checkQuota(t *testing.T, a api, quota int64, ids ...string) {
	t.Helper()
	snapshot := func() (string, int64) {
		var states []string
		var used int64
		for _, id := range ids {
			j := a.getJSON(t, "/jobs/"+id)
			states = append(states, j["status"].(string))
			switch j["status"] {
			case "Completed":
				used += int64(j["result"].(map[string]any)["fileSize"].(float64))
			case "In-Progress":
				used += int64(j["estimatedBytes"].(float64))
			}
		}
		return strings.Join(states, ","), used
	}
	for range 3 {
		before, used := snapshot()
		est := a.postJSON(t, "/estimate", fmt.Sprintf(seedRequest, "http://127.0.0.1:1/unused"))
		if after, _ := snapshot(); after != before {
			continue
		}
		if got, want := int64(est["quotaAvailableBytes"].(float64)), quota-used; got != want {
			t.Errorf("quota available with jobs %s = %d, want %d (quota %d less %d used)", before, got, want, quota, used)
		}
		return
	}
	t.Error("jobs kept changing status while the quota was read")
}

func TestRestartAfterKillKeepsJobsAndResumes(t *testing.T) {
	skipShort(t)
	t.Parallel()
	began := time.Now()
	phase := func(name string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), name) }
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	const quota = 1_000_000_000
	// Packages live 30 s, and the scheduler looks for expired ones every
	// 5 s: A is still there after the restart and expires well before B
	// has resumed.
	const ttl = 30 * time.Second
	const expireEvery = 5 * time.Second
	// No Redis URL: the embedded Redis, over ./data/redis.
	env := map[string]string{
		"EXPORTER_HTTP_ADDR":                 testenv.FreeAddr(t),
		"EXPORTER_HTTP_CALLBACK_ALLOW":       "127.0.0.1/32",
		"EXPORTER_HTTP_RATE_LIMIT":           "0",
		"EXPORTER_LOG_FORMAT":                "json",
		"EXPORTER_WORKER_TEMP_DIR":           tmp,
		"EXPORTER_JOBS_PACKAGE_TTL":          ttl.String(),
		"EXPORTER_SCHEDULER_EXPIRE_SCHEDULE": "@every " + expireEvery.String(),
		"EXPORTER_JOBS_QUOTA_BYTES":          strconv.Itoa(quota),
		// Several batches, one tile at a time: the kill lands mid-export
		// with some parts stored.
		"EXPORTER_JOBS_BATCH_TILES":   "300",
		"EXPORTER_WORKER_CONCURRENCY": "1",
		"EXPORTER_WORKER_FETCHERS":    "1",
		"EXPORTER_WORKER_ENCODERS":    "1",
	}
	first := start(t, dir, env, "all")
	base, token := waitURL(t, first)
	waitReady(t, base, first)
	a := api{base: base, token: token}

	// Export A completes before the kill.
	exportSeed(t, a)
	listed := a.getJSON(t, "/jobs?status=Completed")["jobs"].([]any)
	if len(listed) != 1 {
		t.Fatalf("GET /jobs?status=Completed lists %d jobs, want export A", len(listed))
	}
	jobA := listed[0].(map[string]any)
	idA, uriA := jobA["id"].(string), jobA["result"].(map[string]any)["fileUri"].(string)
	phase("export A completed")

	// Export B is killed mid-way, with its parts and temp dirs on disk.
	cb := newCallbacks(t)
	// 4,400 tiles at zoom 13: long enough for the kill to land mid-way.
	idB := a.postJSON(t, "/create", fmt.Sprintf(`{"dbId":%q,"bbox":[%v,%v,%v,%v],"targetResolution":%v,"callbackURLs":[%q]}`,
		catalog.DemoLayerID, crashBBox.MinX, crashBBox.MinY, crashBBox.MaxX, crashBBox.MaxY, (crashZoom+1).Resolution(), cb.url))["id"].(string)
	parts := filepath.Join(dir, "data", "parts", idB)
	deadline := time.Now().Add(60 * time.Second)
	for {
		stored, _ := os.ReadDir(parts)
		if len(stored) > 0 && len(taskDirs(t, tmp)) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("export B stored no part, or has no temp dir, within 60s: %v", a.getJSON(t, "/jobs/"+idB))
		}
		time.Sleep(10 * time.Millisecond)
	}
	redisPid := embeddedRedisPid(t, dir)
	first.signal(t, syscall.SIGKILL)
	phase("exporter all killed mid-export")
	if runtime.GOOS == "linux" && !testenv.WaitGone(redisPid, 10*time.Second) {
		t.Errorf("embedded redis-server (pid %d) still runs 10s after exporter all was killed", redisPid)
	}
	stale := taskDirs(t, tmp)
	if len(stale) == 0 {
		t.Fatal("the killed exporter left no temp dir: the kill fell between two batches")
	}

	second := start(t, dir, env, "all")
	base, _ = waitURL(t, second)
	waitReady(t, base, second)
	a.base = base // the same secret in ./data: the old token still works
	phase("restarted")

	for _, d := range stale {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("temp dir %s of the killed exporter after the restart: %v, want it removed", d, err)
		}
	}
	if j := a.getJSON(t, "/jobs/"+idA); j["status"] != "Completed" || j["result"].(map[string]any)["fileUri"] != uriA {
		t.Errorf("GET /jobs/%s after the restart = %v, want Completed with %s", idA, j, uriA)
	}
	ids := map[string]string{}
	for _, j := range a.getJSON(t, "/jobs")["jobs"].([]any) {
		ids[j.(map[string]any)["id"].(string)] = j.(map[string]any)["status"].(string)
	}
	if ids[idA] != "Completed" || ids[idB] != "In-Progress" {
		t.Errorf("GET /jobs after the restart = %v, want A (%s) Completed and B (%s) In-Progress", ids, idA, idB)
	}
	// Requests of A call back elsewhere than B's.
	cbA := newCallbacks(t)
	again := a.postJSON(t, "/create", fmt.Sprintf(seedRequest, cbA.url))
	if again["status"] != "Completed" || again["requestId"] != idA || again["fileUri"] != uriA {
		t.Errorf("export A requested again after the restart = %v, want the cached package of %s", again, idA)
	}
	expiresAt, err := time.Parse(time.RFC3339Nano, a.getJSON(t, "/jobs/"+idA)["expiresAt"].(string))
	if err != nil {
		t.Fatal(err)
	}
	checkQuota(t, a, quota, idA, idB)

	// Export A expires on time: at the first expire slot after its expiry.
	for {
		j := a.getJSON(t, "/jobs/"+idA)
		if j["status"] == "Expired" {
			if now := time.Now(); now.Before(expiresAt) {
				t.Errorf("export A expired at %v, before its expiry %v", now, expiresAt)
			}
			break
		}
		if j["status"] != "Completed" {
			t.Fatalf("export A became %v, want Expired", j["status"])
		}
		if late := expiresAt.Add(expireEvery + 10*time.Second); time.Now().After(late) {
			t.Fatalf("export A not Expired at %v, %v after its expiry %v", time.Now(), late.Sub(expiresAt), expiresAt)
		}
		time.Sleep(250 * time.Millisecond)
	}
	phase("export A expired")
	if _, err := os.Stat(filepath.Join(dir, "data", "packages", jobA["packageName"].(string)+".gpkg")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("package of the expired export A: %v, want it deleted", err)
	}
	checkQuota(t, a, quota, idA, idB)
	fresh := a.postJSON(t, "/create", fmt.Sprintf(seedRequest, cbA.url))
	if fresh["status"] != "In-Progress" || fresh["id"] == idA {
		t.Fatalf("export A requested after it expired = %v, want a new job", fresh)
	}

	// Export B resumes once the restarted worker's rescuer finds the
	// killed task's 30 s lease expired (it looks every 5 s), so within
	// about 35 s of the kill; asynq's recoverer would take 60 to 70 s.
	jobB := waitCompletedWithin(t, a, idB, 150*time.Second)
	phase("export B completed")
	if jobB["tilesDone"] != jobB["tilesTotal"] {
		t.Errorf("export B: tiles done %v of %v", jobB["tilesDone"], jobB["tilesTotal"])
	}
	checkFullPackage(t, a, jobB)
	select {
	case body := <-cb.got:
		if body["success"] != true || body["requestId"] != idB {
			t.Errorf("callback of B = %v", body)
		}
	case <-time.After(30 * time.Second):
		t.Error("no callback of B within 30s")
	}
	if left, _ := os.ReadDir(parts); len(left) != 0 {
		t.Errorf("parts of B after it completed: %v, want none", left)
	}
	if strings.Count(second.logs.String(), `"msg":"batch rendered"`) == 0 {
		t.Error("the restarted exporter rendered no batch of B")
	}
	for _, line := range strings.Split(second.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"batch rendered"`) && strings.Contains(line, idA) {
			t.Errorf("export A rendered again after the restart: %s", line)
		}
	}
	checkQuota(t, a, quota, idA, idB, fresh["id"].(string))
}

func TestEmbeddedRedisDeathEndsAll(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	p := start(t, dir, map[string]string{"EXPORTER_HTTP_ADDR": testenv.FreeAddr(t), "EXPORTER_LOG_FORMAT": "json"})
	base, _ := waitURL(t, p)
	waitReady(t, base, p)
	pid := embeddedRedisPid(t, dir)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.killed = true // it exits on its own, not 0
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatal("exporter all still runs 60s after its redis-server was killed")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exporter all exited %d after its redis-server died, want 1", code)
	}
	if want := fmt.Sprintf("exporter: redis-server (pid %d", pid); !strings.Contains(p.logs.String(), want) || !strings.Contains(p.logs.String(), "ended unexpectedly") {
		t.Errorf("exporter all's last words lack %q ... ended unexpectedly:\n%s", want, lastLines(p.logs.String(), 10))
	}
}
