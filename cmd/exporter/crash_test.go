package main

import (
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/testenv"
)

// cluster is a trigger and workers started as separate processes against
// real Redis and MinIO.
type cluster struct {
	t    *testing.T
	env  map[string]string
	dir  string
	api  api
	cb   *callbacks
	s3   testenv.MinIOEnv
	trig *proc
}

// newCluster starts a trigger that keeps packages in MinIO; workers are
// started by the test. Batches hold at most batchTiles tiles; extra sets
// more variables.
func newCluster(t *testing.T, batchTiles int, extra map[string]string) *cluster {
	t.Helper()
	return newClusterOn(t, storeMinIO, batchTiles, extra)
}

// Package storage of a cluster.
const (
	storeMinIO = "minio"
	storeLocal = "local"
)

// newClusterOn starts a trigger like newCluster, with packages in MinIO or
// (storeLocal) in a data directory every process of the cluster shares.
// Its Redis is a fresh redis-server, unless extra names one.
func newClusterOn(t *testing.T, store string, batchTiles int, extra map[string]string) *cluster {
	t.Helper()
	skipShort(t)
	var s3 testenv.MinIOEnv
	env := map[string]string{"EXPORTER_DATA_DIR": t.TempDir()}
	if store == storeMinIO {
		s3 = testenv.MinIO(t)
		env = map[string]string{
			"EXPORTER_S3_ENDPOINT":   s3.Endpoint,
			"EXPORTER_S3_BUCKET":     s3.Bucket,
			"EXPORTER_S3_ACCESS_KEY": s3.AccessKey,
			"EXPORTER_S3_SECRET_KEY": s3.SecretKey,
		}
	}
	addr := testenv.FreeAddr(t)
	base := "http://" + addr
	redisURL := extra["EXPORTER_REDIS_URL"] // a Sentinel set, say
	if redisURL == "" {
		redisURL = "redis://" + testenv.RedisAddr(t)
	}
	maps.Copy(env, map[string]string{
		"EXPORTER_REDIS_URL":             redisURL,
		"EXPORTER_HTTP_ADDR":             addr,
		"EXPORTER_HTTP_PUBLIC_URL":       base,
		"EXPORTER_LOG_FORMAT":            "json",
		"EXPORTER_AUTH_HS256_SECRET":     string(e2eSecret),
		"EXPORTER_HTTP_CALLBACK_ALLOW":   "127.0.0.1/32",
		"EXPORTER_JOBS_BATCH_TILES":      fmt.Sprint(batchTiles),
		"EXPORTER_JOBS_RENDER_MAX_RETRY": "3",
		// The tests poll job status often; rate limits have tests of their own.
		"EXPORTER_HTTP_RATE_LIMIT": "0",
		// One tile at a time: slow enough to interrupt mid-batch.
		"EXPORTER_WORKER_CONCURRENCY": "1",
		"EXPORTER_WORKER_FETCHERS":    "1",
		"EXPORTER_WORKER_ENCODERS":    "1",
	})
	maps.Copy(env, extra)
	c := &cluster{t: t, env: env, dir: t.TempDir(), s3: s3, cb: newCallbacks(t),
		api: api{base: base, token: joseToken(t, e2eSecret, "e2e-client", "client")}}
	c.trig = start(t, c.dir, env, "trigger")
	waitReady(t, base, c.trig)
	return c
}

// worker starts a worker process with extra variables. Each worker has
// its own address for health and metrics.
func (c *cluster) worker(extra map[string]string) *proc {
	p, _ := c.start("worker", extra)
	return p
}

// start starts a process of role with the cluster's variables and extra
// ones, on an address of its own for health and metrics, which it returns.
func (c *cluster) start(role string, extra map[string]string) (*proc, string) {
	env := maps.Clone(c.env)
	env["EXPORTER_HTTP_ADDR"] = testenv.FreeAddr(c.t)
	maps.Copy(env, extra)
	return start(c.t, c.dir, env, role), "http://" + env["EXPORTER_HTTP_ADDR"]
}

// export posts an export of the demo layer and returns its job id.
func (c *cluster) export(bbox grid.BBox, z grid.Zoom) string {
	c.t.Helper()
	created := c.api.postJSON(c.t, "/create", exportBody(c, bbox, z))
	return created["id"].(string)
}

// exportBody is the POST /create body of an export of the demo layer with
// the cluster's callback.
func exportBody(c *cluster, bbox grid.BBox, z grid.Zoom) string {
	return fmt.Sprintf(`{"dbId":%q,"bbox":[%v,%v,%v,%v],"targetResolution":%v,"callbackURLs":[%q]}`,
		catalog.DemoLayerID, bbox.MinX, bbox.MinY, bbox.MaxX, bbox.MaxY, z.Resolution(), c.cb.url)
}

// waitProgress waits until the job has written some tiles.
func (c *cluster) waitProgress(id string) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if j := c.api.getJSON(c.t, "/jobs/"+id); j["tilesDone"].(float64) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no progress within 60s")
}

// waitRetaken waits until the job's status says a batch waits to be run
// again (batchesRetrying) and then that it runs again (no batch waiting,
// the job In-Progress or Completed), and returns when each was first seen;
// it fails the test if that has not happened within of since.
func (c *cluster) waitRetaken(id string, since time.Time, within time.Duration) (retrying, taken time.Time) {
	c.t.Helper()
	for time.Since(since) < within {
		j := c.api.getJSON(c.t, "/jobs/"+id)
		n, _ := j["batchesRetrying"].(float64)
		switch {
		case retrying.IsZero() && n > 0:
			retrying = time.Now()
		case !retrying.IsZero() && n == 0:
			if st := j["status"]; st != "In-Progress" && st != "Completed" {
				c.t.Fatalf("job %s after its batch was queued again, want In-Progress or Completed", st)
			}
			return retrying, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if retrying.IsZero() {
		c.t.Fatal("the job's status never said a batch waits to be run again")
	}
	c.t.Fatalf("the batch queued again %.1f s after the kill was not taken again within %v", retrying.Sub(since).Seconds(), within)
	return retrying, taken
}

// checkPackage downloads the finished job's package and checks it holds
// exactly the tiles of the grid over the job's extent (the crash tests
// export a region well inside the demo layer's footprint, so every tile has
// data), and that GDAL accepts it.
func (c *cluster) checkPackage(j map[string]any) {
	c.t.Helper()
	checkFullPackage(c.t, c.api, j)
}

// checkFullPackage downloads the finished job j's package and checks it
// holds exactly the tiles of the grid over the job's extent, zoom by zoom,
// and that GDAL accepts it.
func checkFullPackage(t *testing.T, a api, j map[string]any) {
	t.Helper()
	checkFullPackageFile(t, downloadPackage(t, a, j["result"].(map[string]any)["fileUri"].(string)), j)
}

// checkFullPackageFile is checkFullPackage of the package at path,
// downloaded already.
func checkFullPackageFile(t *testing.T, path string, j map[string]any) {
	t.Helper()
	bb := j["bbox"].([]any)
	extent := grid.BBox{MinX: bb[0].(float64), MinY: bb[1].(float64), MaxX: bb[2].(float64), MaxY: bb[3].(float64)}
	z := grid.Zoom(j["zoom"].(float64))
	want := map[grid.Zoom]int64{}
	for _, r := range grid.Pyramid(extent, z) {
		want[r.Zoom] = r.Count()
	}
	if _, byZoom := tileCount(t, path); !maps.Equal(byZoom, want) {
		t.Errorf("package tiles by zoom = %v, want exactly the grid's %v", byZoom, want)
	}
	checkWithGDAL(t, path, extent, z)
}

// batchesBy counts the "batch rendered" lines in a worker's log.
func batchesBy(p *proc) int { return strings.Count(p.logs.String(), `"msg":"batch rendered"`) }

// A region of the demo layer of 1,100 tiles at zoom 12: some seconds of
// work for a worker that renders one tile at a time.
var (
	crashBBox = grid.BBox{MinX: 34.4, MinY: 30.2, MaxX: 35.4, MaxY: 31.6}
	crashZoom = grid.Zoom(12)
)

// TestTwoWorkersShareOneExport runs the two workers as if on two machines,
// each with a temp dir of its own: the first to take a merge assembles the
// package while batches render, the other's merges leave their parts to
// it; one finalizes, and if that is not the assembler, the assembler's
// sweep removes its package once the job has ended.
func TestTwoWorkersShareOneExport(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 150, nil)
	temp := []string{t.TempDir(), t.TempDir()}
	machine := func(dir string) map[string]string {
		return map[string]string{"EXPORTER_WORKER_TEMP_DIR": dir, "EXPORTER_WORKER_SWEEP_INTERVAL": "1s"}
	}
	a, b := c.worker(machine(temp[0])), c.worker(machine(temp[1]))
	id := c.export(crashBBox, crashZoom)
	j := waitCompleted(t, c.api, id)
	left := assemblies(t, temp...)
	if len(j["taskIds"].([]any)) < 4 {
		t.Fatalf("job has %d batches, want several", len(j["taskIds"].([]any)))
	}
	if na, nb := batchesBy(a), batchesBy(b); na == 0 || nb == 0 {
		t.Errorf("batches rendered by the two workers: %d and %d; want both to work", na, nb)
	}
	c.checkPackage(j)
	c.expectCallback(true)

	merges := func(p *proc) int { return strings.Count(p.logs.String(), `"msg":"parts merged ahead"`) }
	t.Logf("merges ahead by the two workers: %d and %d; packages being assembled when the job completed: %v",
		merges(a), merges(b), left)
	if merges(a) > 0 && merges(b) > 0 {
		t.Errorf("both workers merged parts ahead (%d and %d): one machine assembles a package", merges(a), merges(b))
	}
	// The finalize went to the machine that merged ahead, which had its
	// package nearly whole.
	finalized := func(p *proc) bool { return strings.Contains(p.logs.String(), `"msg":"parts merged"`) }
	if assembler := map[bool]*proc{true: a, false: b}[merges(a) > 0]; merges(a)+merges(b) > 0 && !finalized(assembler) {
		t.Error("the finalize ran on the worker that merged nothing ahead")
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(left) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("packages of the completed job still on the workers 15 s later: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
		left = assemblies(t, temp...)
	}
}

// TestAssemblerDiesWithItsFinalize: the worker machine that merged a
// job's parts ahead is sent the job's finalize, and freezes (SIGSTOP)
// with it queued or running; once its heartbeat has lapsed, the other
// worker's rescuer queues the finalize again in the job's own queue and
// completes the package from the parts, with every tile.
func TestAssemblerDiesWithItsFinalize(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 150, nil)
	// The assembler looks for tasks every 2 s, so that the finalize waits
	// in its queue for a while; it starts alone, so it claims the job.
	a := c.worker(map[string]string{"EXPORTER_WORKER_TEMP_DIR": t.TempDir(), "EXPORTER_WORKER_POLL_INTERVAL": "2s"})
	id := c.export(crashBBox, crashZoom)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(a.logs.String(), `"msg":"parts merged ahead"`) {
		if time.Now().After(deadline) {
			t.Fatal("the first worker merged no part ahead within 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	b := c.worker(map[string]string{"EXPORTER_WORKER_TEMP_DIR": t.TempDir()})

	opt, err := asynq.ParseRedisURI(c.env["EXPORTER_REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	in := asynq.NewInspector(opt)
	defer in.Close()
	deadline = time.Now().Add(90 * time.Second)
	for !finalizeInMachineQueue(t, in, id) {
		if time.Now().After(deadline) {
			t.Fatal("no finalize reached a machine's queue within 90 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	t.Cleanup(func() { _ = a.cmd.Process.Signal(syscall.SIGCONT) })
	j := waitCompletedWithin(t, c.api, id, 90*time.Second)
	t.Logf("completed %.1f s after the assembler froze", time.Since(stopped).Seconds())
	if !strings.Contains(b.logs.String(), `"msg":"finalize of a dead machine queued again"`) {
		t.Error("the live worker did not log queueing the frozen machine's finalize again")
	}
	c.checkPackage(j)
	if j["tilesDone"] != j["tilesTotal"] {
		t.Errorf("tiles done %v of %v", j["tilesDone"], j["tilesTotal"])
	}
}

// finalizeInMachineQueue reports whether job id's finalize is pending or
// running in a machine's queue.
func finalizeInMachineQueue(t *testing.T, in *asynq.Inspector, id string) bool {
	t.Helper()
	queues, err := in.Queues()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queues {
		if !job.IsMachineQueue(q) {
			continue
		}
		if info, err := in.GetTaskInfo(q, job.FinalizeTaskID(id)); err == nil &&
			(info.State == asynq.TaskStatePending || info.State == asynq.TaskStateActive) {
			return true
		}
	}
	return false
}

// assemblies lists the packages being assembled (merge-<job id>) in the
// worker temp dirs.
func assemblies(t *testing.T, dirs ...string) []string {
	t.Helper()
	var found []string
	for _, dir := range dirs {
		m, err := filepath.Glob(filepath.Join(dir, "merge-*"))
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, m...)
	}
	return found
}

func TestWorkerKilledMidBatch(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 100_000, nil) // one batch: the kill lands inside it
	a := c.worker(nil)
	id := c.export(crashBBox, crashZoom)
	c.waitProgress(id)
	a.signal(t, syscall.SIGKILL)
	killed := time.Now()
	// The task's lease (30 s) expires, a worker's rescuer finds it within
	// worker.RescueInterval and queues the batch again; the job's status
	// says so until the batch runs again. The live worker looks for tasks
	// every 2 s, not every 50 ms, so that the test's polling sees that
	// window whatever the machine's load.
	b := c.worker(map[string]string{"EXPORTER_WORKER_POLL_INTERVAL": "2s"})
	retrying, taken := c.waitRetaken(id, killed, 45*time.Second)
	t.Logf("batch queued again %.1f s and taken again %.1f s after its worker was killed",
		retrying.Sub(killed).Seconds(), taken.Sub(killed).Seconds())
	if !strings.Contains(b.logs.String(), `"msg":"batch of a dead worker queued again"`) {
		t.Error("the live worker did not log queueing the dead worker's batch again")
	}
	j := waitCompleted(t, c.api, id)
	c.checkPackage(j)
	if j["tilesDone"] != j["tilesTotal"] {
		t.Errorf("tiles done %v of %v: the rerun counted twice or not at all", j["tilesDone"], j["tilesTotal"])
	}
	c.expectCallback(true)
}

func TestWorkerStoppedHandsBatchBack(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 100_000, map[string]string{"EXPORTER_WORKER_SHUTDOWN_TIMEOUT": "1s"})
	a := c.worker(nil)
	id := c.export(crashBBox, crashZoom)
	c.waitProgress(id)
	a.signal(t, syscall.SIGTERM)
	if code := a.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("worker stopped by SIGTERM exited %d, want 0", code)
	}
	if st := c.api.getJSON(t, "/jobs/"+id)["status"]; st != "In-Progress" {
		t.Fatalf("job after the worker stopped = %v, want In-Progress", st)
	}
	b := c.worker(nil)
	j := waitCompleted(t, c.api, id)
	if batchesBy(b) == 0 {
		t.Error("the second worker did not render the handed-back batch")
	}
	c.checkPackage(j)
}

func TestStorageOutageMidExport(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 300, nil)
	// The worker reaches MinIO through a proxy the test can cut.
	proxy := newCutProxy(t, c.s3.Endpoint)
	w := c.worker(map[string]string{"EXPORTER_S3_ENDPOINT": proxy.addr})
	id := c.export(crashBBox, crashZoom)
	c.waitProgress(id)
	// MinIO stays unreachable until a batch has failed to store its part.
	proxy.cut(true)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(w.logs.String(), `"msg":"task failed"`) {
		if time.Now().After(deadline) {
			t.Fatal("no task failed within 60s of the storage outage")
		}
		time.Sleep(50 * time.Millisecond)
	}
	proxy.cut(false)
	j := waitCompleted(t, c.api, id)
	c.checkPackage(j)
}

func TestPermanentSourceFailure(t *testing.T) {
	t.Parallel()
	tiles := t.TempDir()
	bad := filepath.Join(tiles, "1", "2", "0.png") // zoom 1, column 2, row 0 (rows from the north)
	if err := os.MkdirAll(filepath.Dir(bad), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("<html>503 from an upstream</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	cat := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(cat, []byte(fmt.Sprintf(`{"layers":[{"id":"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a11","productId":"broken",
	  "productType":"Orthophoto","version":"1","footprint":[0,0,45,45],"maxResolution":0.087890625,
	  "source":{"kind":"tilestore","path":%q}}]}`, tiles)), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, 100_000, map[string]string{"EXPORTER_CATALOG_FILE": cat})
	c.worker(nil)
	created := c.api.postJSON(t, "/create", fmt.Sprintf(`{"dbId":"5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a11","bbox":[0,0,45,45],
	  "targetResolution":0.087890625,"callbackURLs":[%q]}`, c.cb.url))
	id := created["id"].(string)
	deadline := time.Now().Add(60 * time.Second)
	var j map[string]any
	for time.Now().Before(deadline) {
		if j = c.api.getJSON(t, "/jobs/"+id); j["status"] != "In-Progress" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	reason, _ := j["reason"].(string)
	if j["status"] != "Failed" || !strings.Contains(reason, "tile 1/2/0") || !strings.Contains(reason, "0.png") {
		t.Fatalf("job = %v %q, want Failed naming the tile and the source file", j["status"], reason)
	}
	body := c.expectCallback(false)
	if body["errorReason"] != reason {
		t.Errorf("callback errorReason = %v, want %q", body["errorReason"], reason)
	}
}

// expectCallback waits for the job's callback and checks its success.
func (c *cluster) expectCallback(success bool) map[string]any {
	c.t.Helper()
	select {
	case body := <-c.cb.got:
		if body["success"] != success {
			c.t.Errorf("callback success = %v, want %v: %v", body["success"], success, body)
		}
		return body
	case <-time.After(60 * time.Second):
		c.t.Fatal("no callback within 60s")
		return nil
	}
}

// cutProxy forwards TCP to target until cut, when it refuses new
// connections and drops open ones: a storage outage without touching the
// storage server.
type cutProxy struct {
	addr   string
	target string
	down   atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{addr: ln.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut(true) })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			if p.down.Load() {
				in.Close()
				continue
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			p.track(in, out)
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = true
	}
}

// cut takes the link down (dropping open connections) or brings it back.
func (p *cutProxy) cut(down bool) {
	p.down.Store(down)
	if !down {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}
