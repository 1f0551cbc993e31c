package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/job/jobtest"
	"github.com/geoexport/exporter/internal/storage"
	"github.com/geoexport/exporter/scheduler"
)

// maintenanceTTL is the package TTL of the maintenance test: long enough
// for the steps that must happen before a package expires, short enough
// to wait for.
const maintenanceTTL = 20 * time.Second

// TestMaintenanceInRealTime runs the real binaries with short maintenance
// settings and no injected clock, and sees what an operator would: expired
// packages deleted, their jobs Expired and their bytes released from the
// quota, never a newer job's package of the same name; orphaned parts and
// packages deleted, a running job's parts kept; jobs stored but never
// queued (a trigger that died mid-request) completed by reconcile; and two
// scheduler replicas running each slot once.
func TestMaintenanceInRealTime(t *testing.T) {
	t.Parallel()
	for _, store := range []string{storeLocal, storeMinIO} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			testMaintenance(t, store)
		})
	}
}

func testMaintenance(t *testing.T, store string) {
	c := newClusterOn(t, store, 150, map[string]string{
		"EXPORTER_JOBS_PACKAGE_TTL":             maintenanceTTL.String(),
		"EXPORTER_JOBS_QUOTA_BYTES":             "1000000000",
		"EXPORTER_SCHEDULER_EXPIRE_SCHEDULE":    "@every 1s",
		"EXPORTER_SCHEDULER_ORPHANS_SCHEDULE":   "@every 1s",
		"EXPORTER_SCHEDULER_RECONCILE_SCHEDULE": "@every 1s",
		"EXPORTER_SCHEDULER_ORPHAN_AGE":         "2s",
		"EXPORTER_SCHEDULER_STUCK_AFTER":        "2s",
		"EXPORTER_WORKER_CONCURRENCY":           "2",
	})
	c.worker(nil)
	rdb := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(c.env["EXPORTER_REDIS_URL"], "redis://")})
	t.Cleanup(func() { rdb.Close() })
	files := c.files()

	// Job X completes and outlives its expiry while no scheduler runs;
	// the same request then makes job Y, of the same package name.
	x := waitCompleted(t, c.api, c.export(seedBBox, 14))
	waitUntil(t, "job X's expiry", time.Until(expiresAt(t, x))+time.Second, func() bool { return !time.Now().Before(expiresAt(t, x)) })
	yID := c.export(seedBBox, 14)
	if yID == x["id"] {
		t.Fatalf("a request after job X expired joined it (%s), want a new job", yID)
	}
	y := waitCompleted(t, c.api, yID)
	if y["packageName"] != x["packageName"] {
		t.Fatalf("job Y's package is named %v, job X's %v; want the same name", y["packageName"], x["packageName"])
	}
	yDone := time.Now()

	// Two scheduler replicas start; garbage is left for orphans, jobs
	// for reconcile, and a long export runs while orphans looks at its
	// parts.
	var schedulers []string
	for range 2 {
		_, addr := c.start("scheduler", nil)
		schedulers = append(schedulers, addr)
	}
	started := time.Now()
	orphans := []string{job.PartKey(uuid.NewString(), 0), job.PackageKey(uuid.NewString(), "left-behind")}
	for _, key := range orphans {
		if err := files.Put(t.Context(), key, strings.NewReader("orphan"), 6, ""); err != nil {
			t.Fatal(err)
		}
	}
	stuck := storeUnqueued(t, rdb, 4)
	long := c.export(crashBBox, crashZoom)

	// X expires, and only X's package goes: Y's stays while Y is due later.
	xj := waitStatus(t, c.api, x["id"].(string), "Expired", 15*time.Second)
	if time.Since(yDone) >= maintenanceTTL {
		t.Fatalf("job X expired %v after job Y completed, too late to tell whether Y's package survives", time.Since(yDone))
	}
	checkGone(t, c.api, files, x)
	if got := c.api.getJSON(t, "/jobs/"+yID); got["status"] != "Completed" {
		t.Errorf("job Y after job X expired = %v, want Completed", got["status"])
	}
	downloadPackage(t, c.api, fileURI(y))
	if u := fileURI(xj); u != "" {
		t.Errorf("expired job X still offers a fileUri: %s", u)
	}

	// Orphans: the garbage goes.
	waitUntil(t, "orphans deleted", 15*time.Second, func() bool {
		for _, key := range orphans {
			if _, err := files.Stat(t.Context(), key); !errors.Is(err, storage.ErrNotFound) {
				return false
			}
		}
		return true
	})

	// A cache hit halfway through Y's life pushes its expiry out.
	first := expiresAt(t, y)
	time.Sleep(time.Until(first.Add(-maintenanceTTL / 2)))
	if hit := c.api.postJSON(t, "/create", exportBody(c, seedBBox, 14)); hit["status"] != "Completed" || hit["requestId"] != yID {
		t.Fatalf("identical request of completed job Y = %v, want its cached package", hit)
	}
	extended := expiresAt(t, c.api.getJSON(t, "/jobs/"+yID))
	if !extended.After(first) {
		t.Fatalf("a cache hit left job Y's expiry at %v, want it later than %v", extended, first)
	}

	// The long export completes with every tile although orphans looked
	// at its parts every second, and reconcile queued the jobs nobody
	// had: each completes with every tile.
	c.checkEachCompleted(append([]string{long}, stuck...))

	// Y outlives its first expiry, and goes at the extended one.
	time.Sleep(time.Until(first.Add(2 * time.Second)))
	if got := c.api.getJSON(t, "/jobs/"+yID); got["status"] != "Completed" {
		t.Errorf("job Y 2s past its first expiry, after a cache hit = %v, want Completed until %v", got["status"], extended)
	}
	downloadPackage(t, c.api, fileURI(y))

	// Every job expires in turn, and the quota is free again.
	for _, id := range append([]string{yID, long}, stuck...) {
		j := waitStatus(t, c.api, id, "Expired", maintenanceTTL+15*time.Second)
		checkGone(t, c.api, files, j)
	}
	if stored, err := rdb.Get(t.Context(), "exporter:quota:stored").Int64(); err != nil || stored != 0 {
		t.Errorf("quota's stored bytes after every package expired = %d (%v), want 0", stored, err)
	}

	// Each slot ran once although two replicas enqueue it: the runs the
	// replicas count are the distinct slot tasks asynq completed, at most
	// one a second. A run may end between two reads, so the counts are
	// read until asynq's count is the same before and after the metrics.
	elapsed := time.Since(started).Seconds()
	for _, typ := range []string{scheduler.TypeExpire, scheduler.TypeOrphans, scheduler.TypeReconcile} {
		var runs float64
		var before, after int
		for range 50 {
			before, runs = completedSlots(t, c, typ), 0
			for _, addr := range schedulers {
				runs += metric(t, addr, "exporter_scheduler_runs_total", `outcome="success"`, `task_type="`+typ+`"`)
			}
			if after = completedSlots(t, c, typ); before == after && runs == float64(after) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if runs == 0 || before != after || runs != float64(after) || runs > elapsed+1 {
			t.Errorf("%s ran %v times on two replicas, asynq completed %d slot tasks, in %.0fs: want one run per slot, at most one a second",
				typ, runs, after, elapsed)
		}
	}
}

// seedBBox is the specification's example area.
var seedBBox = grid.BBox{MinX: 34.811938017107494, MinY: 31.95475033759175, MaxX: 34.82237261707599, MaxY: 31.96426962177354}

// packageFiles is what the test reads and writes of package storage.
type packageFiles interface {
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	Stat(ctx context.Context, key string) (storage.Info, error)
}

// files opens the cluster's package storage as its processes do.
func (c *cluster) files() packageFiles {
	c.t.Helper()
	if c.env["EXPORTER_S3_ENDPOINT"] == "" {
		l, err := storage.NewLocal(c.env["EXPORTER_DATA_DIR"])
		if err != nil {
			c.t.Fatal(err)
		}
		return l
	}
	s3, err := storage.NewS3(c.t.Context(), storage.S3Config{
		Endpoint: c.s3.Endpoint, Bucket: c.s3.Bucket, AccessKey: c.s3.AccessKey, SecretKey: c.s3.SecretKey,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return s3
}

// checkEachCompleted waits for every job of ids to complete, downloads
// each package as soon as its job completes, before it can expire, and
// then checks them all.
func (c *cluster) checkEachCompleted(ids []string) {
	c.t.Helper()
	left := map[string]bool{}
	for _, id := range ids {
		left[id] = true
	}
	// Packages live for maintenanceTTL only, and checking one (GDAL) takes
	// seconds on a loaded machine.
	type done struct {
		path string
		job  map[string]any
	}
	var got []done
	deadline := time.Now().Add(90 * time.Second)
	for len(left) > 0 {
		if time.Now().After(deadline) {
			c.t.Fatalf("jobs %v not Completed within 90s", left)
		}
		for id := range left {
			switch j := c.api.getJSON(c.t, "/jobs/"+id); j["status"] {
			case "Completed":
				got = append(got, done{downloadPackage(c.t, c.api, fileURI(j)), j})
				delete(left, id)
			case "In-Progress":
			default:
				c.t.Fatalf("job %s ended %v: %v", id, j["status"], j["reason"])
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, d := range got {
		checkFullPackageFile(c.t, d.path, d.job)
	}
}

// waitUntil polls ok until it holds, failing the test after timeout.
func waitUntil(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStatus polls GET /jobs/{id} until the job has status.
func waitStatus(t *testing.T, a api, id, status string, timeout time.Duration) map[string]any {
	t.Helper()
	var j map[string]any
	waitUntil(t, "job "+id+" "+status, timeout, func() bool {
		j = a.getJSON(t, "/jobs/"+id)
		return j["status"] == status
	})
	return j
}

// expiresAt reads a job's exact expiry.
func expiresAt(t *testing.T, j map[string]any) time.Time {
	t.Helper()
	s, _ := j["expiresAt"].(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("job %v expiresAt %q: %v", j["id"], s, err)
	}
	return at
}

// fileURI is a Completed job's download link.
func fileURI(j map[string]any) string {
	res, _ := j["result"].(map[string]any)
	u, _ := res["fileUri"].(string)
	return u
}

// packageKey is the storage key of a job's package, as the worker stores it.
func packageKey(j map[string]any) string {
	return job.PackageKey(j["id"].(string), j["packageName"].(string))
}

// checkGone checks that an expired job's package is deleted from storage
// and no longer downloads.
func checkGone(t *testing.T, a api, files packageFiles, j map[string]any) {
	t.Helper()
	// Expiry marks the job Expired, then deletes its files: on a loaded
	// machine the deletion may trail the status by a moment.
	waitUntil(t, "the package of expired job "+j["id"].(string)+" deleted", 10*time.Second, func() bool {
		_, err := files.Stat(t.Context(), packageKey(j))
		return errors.Is(err, storage.ErrNotFound)
	})
	uri := a.base + "/downloads/" + j["id"].(string) + "/" + j["packageName"].(string) + ".gpkg"
	resp, err := http.Get(uri + "?token=" + a.token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET %s of an expired job = %d, want 404", uri, resp.StatusCode)
	}
}

// storeUnqueued stores n jobs of the demo layer as the trigger does, but
// queues none of their tasks: what a trigger killed between the two steps
// leaves. The last one is planned in several batches.
func storeUnqueued(t *testing.T, rdb *redis.Client, n int) []string {
	t.Helper()
	layer := catalog.Demo().Layers()[0]
	store := job.NewStore(rdb, "exporter", nil)
	var ids []string
	for i := range n {
		z, area := grid.Zoom(14), grid.BBox{MinX: 34.70 + float64(i)*0.03, MinY: 31.5, MaxX: 34.71 + float64(i)*0.03, MaxY: 31.51}
		if i == n-1 {
			z, area = 11, grid.BBox{MinX: 34.5, MinY: 30.5, MaxX: 35, MaxY: 31}
		}
		spec := jobtest.Spec(t, layer, area, z, 0)
		spec.BatchTiles, spec.BatchSpread, spec.BatchMinTiles = 150, 16, 50
		j, outcome, err := store.GetOrCreate(t.Context(), jobtest.NewJob(spec),
			job.Request{Subject: "e2e-client", TTL: maintenanceTTL})
		if err != nil || outcome != job.OutcomeCreated {
			t.Fatalf("store job %d: %v %v", i, outcome, err)
		}
		ids = append(ids, j.ID)
	}
	return ids
}

// metric sums the samples of a metric at addr/metrics whose labels include
// every one of labels (name="value").
func metric(t *testing.T, addr, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		matched := true
		for _, l := range labels {
			matched = matched && strings.Contains(line, l)
		}
		if !matched {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", addr, line, err)
		}
		sum += v
	}
	return sum
}

// completedSlots counts the maintenance tasks of typ that asynq completed.
func completedSlots(t *testing.T, c *cluster, typ string) int {
	t.Helper()
	opt, err := asynq.ParseRedisURI(c.env["EXPORTER_REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	in := asynq.NewInspector(opt)
	defer in.Close()
	n := 0
	for page := 1; ; page++ {
		tasks, err := in.ListCompletedTasks(scheduler.Queue, asynq.Page(page), asynq.PageSize(500))
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			if task.Type == typ {
				n++
			}
		}
		if len(tasks) < 500 {
			return n
		}
	}
}
