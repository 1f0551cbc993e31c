package worker_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/egress"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/job/jobtest"
	"github.com/geoexport/exporter/internal/storage"
	"github.com/geoexport/exporter/internal/testenv"
	"github.com/geoexport/exporter/source"
	"github.com/geoexport/exporter/worker"
)

func TestMain(m *testing.M) {
	if parent := os.Getenv(holdTaskDirEnv); parent != "" {
		os.Exit(holdTaskDir(parent))
	}
	// testenv.Run stops the shared MinIO before goroutines are checked.
	code := testenv.Run(m)
	if code == 0 {
		if err := goleak.Find(
			// go-redis clients closed in t.Cleanup may leave their pool
			// reapers winding down.
			goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

var _ worker.Files = (*storage.Local)(nil)
var _ worker.Files = (*storage.S3)(nil)
var _ source.Objects = (*storage.S3)(nil)

type bundle struct {
	rdb       *redis.Client
	jobs      *job.Store
	files     *storage.Local
	inspector *asynq.Inspector
	queue     *asynq.Client
	registry  *prometheus.Registry
}

// taskOptions are the options of the tasks queued in these tests;
// finalize's differ from render's, so a test can tell them apart.
var taskOptions = job.TaskOptions{
	UrgentFrom: 100_000_000, DefaultFrom: 1000,
	RenderTimeout: time.Minute, RenderMaxRetry: 1,
	FinalizeTimeout: 3 * time.Minute, FinalizeMaxRetry: 2,
	CallbackTimeout: 2 * time.Second, CallbackMaxRetry: 3,
}

func setup(t *testing.T, opts ...func(*worker.Config, *worker.Deps)) (*worker.Worker, *bundle) {
	t.Helper()
	rc := testenv.NewRedisClients(t)
	files, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	jobs := job.NewStore(rc.RDB, "test", nil)
	// Callbacks in these tests go to loopback servers.
	policy, err := egress.New(egress.Config{Allow: "127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	enqueuer, err := job.NewEnqueuer(rc.Queue, jobs, taskOptions)
	if err != nil {
		t.Fatal(err)
	}
	deps := worker.Deps{Logger: slog.New(slog.DiscardHandler), Registry: reg, Redis: rc.Opt, Jobs: jobs, Files: files, Enqueuer: enqueuer,
		HTTP: policy.Client(2 * time.Second)}
	cfg := worker.Config{
		Concurrency: 2, Fetchers: 4, Encoders: 2,
		QueueWeights: [3]int{6, 3, 1},
		TempDir:      t.TempDir(), ShutdownTimeout: 5 * time.Second, PublicURL: "http://exporter.test",
		PackageTTL: time.Hour, CallbackTimeout: 2 * time.Second,
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	w, err := worker.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w, &bundle{rdb: rc.RDB, jobs: jobs, files: files, inspector: rc.Inspector, queue: rc.Queue, registry: reg}
}

// createJob stores a job for layer over bbox at z, as the trigger would.
func createJob(t *testing.T, b *bundle, layer catalog.Layer, bbox grid.BBox, z grid.Zoom, callbacks ...string) job.Job {
	t.Helper()
	var cbs []job.Callback
	for _, u := range callbacks {
		cbs = append(cbs, job.Callback{URL: u, BBox: bbox.Slice()})
	}
	j, _, err := b.jobs.GetOrCreate(t.Context(), jobtest.NewJob(jobtest.Spec(t, layer, bbox, z, 1000)), job.Request{Subject: "alice", Callbacks: cbs, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// task is a task of type typ with payload.
func task(t *testing.T, typ string, payload any) *asynq.Task {
	t.Helper()
	p, err := job.Encode(payload)
	if err != nil {
		t.Fatal(err)
	}
	return asynq.NewTask(typ, p)
}

func renderTask(t *testing.T, j job.Job) *asynq.Task {
	t.Helper()
	return task(t, job.TypeRender, job.RenderPayload{JobID: j.ID, Priority: j.Spec.Priority})
}

// download fetches a stored package into a temp file and opens it.
func download(t *testing.T, b *bundle, key string) *gpkg.Reader {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.gpkg")
	if err := b.files.GetFile(t.Context(), key, path); err != nil {
		t.Fatal(err)
	}
	r, err := gpkg.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

var seedBBox = grid.BBox{MinX: 34.811938017107494, MinY: 31.95475033759175, MaxX: 34.82237261707599, MaxY: 31.96426962177354}

func TestRenderDemo(t *testing.T) {
	t.Parallel()
	w, b := setup(t)
	j := createJob(t, b, catalog.Demo().Layers()[0], seedBBox, 14, "http://a.test/cb", "http://b.test/cb")
	if err := w.Handler().ProcessTask(t.Context(), renderTask(t, j)); err != nil {
		t.Fatalf("render: %v", err)
	}
	done, err := b.jobs.Get(t.Context(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != job.StatusCompleted || done.TilesDone != 18 || done.TilesStored != 18 || done.FileSize == 0 || len(done.SHA256) != 64 {
		t.Fatalf("job after render = %+v, want Completed with 18 tiles", done)
	}
	r := download(t, b, done.FileKey)
	tables, err := r.Tables(t.Context())
	if err != nil || len(tables) != 1 {
		t.Fatalf("Tables = %v, %v", tables, err)
	}
	n, err := r.Count(t.Context(), tables[0])
	if err != nil || n != 18 {
		t.Errorf("package holds %d tiles (%v), want 18: every zoom 0..14 over the sanitised bbox", n, err)
	}
	// One callback task per callback, in the job's queue.
	tasks, err := b.inspector.ListPendingTasks(job.QueueDefault)
	if err != nil || len(tasks) != 2 {
		t.Fatalf("pending callbacks = %d, %v; want 2", len(tasks), err)
	}

	// A re-delivered render is idempotent: nothing changes, nothing doubles.
	if err := w.Handler().ProcessTask(t.Context(), renderTask(t, j)); err != nil {
		t.Fatalf("render again: %v", err)
	}
	again, _ := b.jobs.Get(t.Context(), j.ID)
	if again.TilesDone != 18 || !again.CompletedAt.Equal(done.CompletedAt) {
		t.Errorf("re-run changed the job: %+v", again)
	}
	if tasks, _ := b.inspector.ListPendingTasks(job.QueueDefault); len(tasks) != 2 {
		t.Errorf("re-run enqueued callbacks again: %d pending", len(tasks))
	}
	// The export's time from creation to completion is observed once, in
	// its priority's queue; the other queues have empty series.
	want := map[string]uint64{job.QueueUrgent: 0, job.QueueDefault: 1, job.QueueLow: 0}
	if got := histogramCounts(t, b.registry, "exporter_jobs_export_duration_seconds"); !maps.Equal(got, want) {
		t.Errorf("exporter_jobs_export_duration_seconds counts by queue = %v, want %v", got, want)
	}
}

// histogramCounts reads the observation counts of a histogram of reg by
// the value of its one label.
func histogramCounts(t *testing.T, reg *prometheus.Registry, name string) map[string]uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	return out
}

// writeTiles lays out a {z}/{x}/{y}.png tree with rows counted from the
// south, and returns the PNG bytes of each tile by GeoPackage address.
func writeTiles(t *testing.T, dir string, tiles []grid.Tile) map[grid.Tile][]byte {
	t.Helper()
	out := map[grid.Tile][]byte{}
	for i, tl := range tiles {
		img := image.NewNRGBA(image.Rect(0, 0, 256, 256))
		for p := 0; p < len(img.Pix); p += 4 {
			img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = byte(i*40), 100, 200, 255
		}
		img.Set(0, 0, color.NRGBA{R: 1, A: 255})
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, strconv.Itoa(int(tl.Zoom)), strconv.FormatInt(tl.Col, 10), strconv.FormatInt(tl.Zoom.FlipRow(tl.Row), 10)+".png")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		out[tl] = buf.Bytes()
	}
	return out
}

func tl(z grid.Zoom, col, row int64) grid.Tile { return grid.Tile{Zoom: z, Col: col, Row: row} }

func tileStoreLayer(dir string) catalog.Layer {
	c, err := catalog.New([]catalog.Layer{{
		ID: "5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a11", ProductID: "store", ProductType: "Orthophoto", Version: "2",
		Footprint: grid.BBox{MinX: 0, MinY: 0, MaxX: 45, MaxY: 45}, MaxResolution: grid.Zoom(3).Resolution(),
		Source: catalog.Source{Kind: catalog.SourceTileStore, Path: dir, RowOrigin: "bottom"}, TileFormat: "png",
	}})
	if err != nil {
		panic(err)
	}
	return c.Layers()[0]
}

func TestRenderTileStore(t *testing.T) {
	t.Parallel()
	w, b := setup(t)
	dir := t.TempDir()
	// The footprint's pyramid at zoom 3 is 1+1+1+4 tiles; one zoom-3 tile is
	// missing from the store and must simply be absent.
	want := writeTiles(t, dir, []grid.Tile{tl(0, 1, 0), tl(1, 2, 0), tl(2, 4, 1), tl(3, 8, 2), tl(3, 9, 2), tl(3, 8, 3)})
	j := createJob(t, b, tileStoreLayer(dir), grid.BBox{MinX: 0, MinY: 0, MaxX: 45, MaxY: 45}, 3)
	if j.Spec.TilesTotal != 7 {
		t.Fatalf("job plans %d tiles, want 7", j.Spec.TilesTotal)
	}
	if err := w.Handler().ProcessTask(t.Context(), renderTask(t, j)); err != nil {
		t.Fatalf("render: %v", err)
	}
	done, _ := b.jobs.Get(t.Context(), j.ID)
	if done.Status != job.StatusCompleted || done.TilesStored != 6 || done.Percentage() != 100 {
		t.Fatalf("job = %+v, want Completed with 6 tiles stored", done)
	}
	r := download(t, b, done.FileKey)
	for tl, data := range want {
		got, err := r.ReadTile(t.Context(), "store", tl)
		if err != nil {
			t.Errorf("ReadTile(%s): %v", tl, err)
			continue
		}
		if !bytes.Equal(got, data) {
			t.Errorf("tile %s was re-encoded or misplaced: %d bytes, want the stored %d", tl, len(got), len(data))
		}
	}
	if _, err := r.ReadTile(t.Context(), "store", grid.Tile{Zoom: 3, Col: 9, Row: 3}); !errors.Is(err, gpkg.ErrTileNotFound) {
		t.Errorf("missing source tile: ReadTile = %v, want ErrTileNotFound", err)
	}
}

// TestDeadMachineFinalizeMoves: the finalize a dead machine's queue holds
// (no heartbeat) is queued again in its job's queue by a live worker's
// rescuer, once, and the dead queue goes; a live machine's queue and a
// dead one's task of an ended job are left alone or only deleted.
func TestDeadMachineFinalizeMoves(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := t.Context()
	enqueuer, err := job.NewEnqueuer(b.queue, b.jobs, taskOptions)
	if err != nil {
		t.Fatal(err)
	}
	running := createJob(t, b, catalog.Demo().Layers()[0], seedBBox, 12)
	dead, live, own := job.MachineQueue("dead"), job.MachineQueue("live"), job.MachineQueue("own")
	if err := b.jobs.Heartbeat(ctx, live, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{dead, live, own} {
		if ok, err := b.jobs.ClaimAssembly(ctx, running.ID, q); err != nil || (q == dead) != ok {
			t.Fatalf("ClaimAssembly(%s) = %v, %v", q, ok, err)
		}
		payload, _ := job.Encode(job.FinalizePayload{JobID: running.ID})
		if _, err := b.queue.Enqueue(asynq.NewTask(job.TypeFinalize, payload), asynq.Queue(q), asynq.TaskID(job.FinalizeTaskID(running.ID))); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // the second scan finds nothing more to do
		if err := worker.ScanMachines(ctx, b.inspector, b.jobs, enqueuer, own); err != nil {
			t.Fatal(err)
		}
	}
	moved := job.FinalizeTaskID(running.ID) + job.RescueSuffix
	if info, err := b.inspector.GetTaskInfo(job.QueueDefault, moved); err != nil || info.Type != job.TypeFinalize {
		t.Errorf("the dead machine's finalize in the job's queue: %v, %v; want it there", info, err)
	}
	queues, err := b.inspector.Queues()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(queues, dead) || !slices.Contains(queues, live) || !slices.Contains(queues, own) {
		t.Errorf("queues after the scans = %v; want the dead machine's gone, the live one's and this one's kept", queues)
	}
	for _, q := range []string{live, own} {
		if _, err := b.inspector.GetTaskInfo(q, job.FinalizeTaskID(running.ID)); err != nil {
			t.Errorf("finalize in %s: %v; want it left alone", q, err)
		}
	}
}

// TestRenderTileStoreByThePolicy: a jpeg layer over a store of PNG tiles
// holds JPEG tiles of the same pixels, not the stored PNGs.
func TestRenderTileStoreByThePolicy(t *testing.T) {
	t.Parallel()
	w, b := setup(t)
	dir := t.TempDir()
	stored := writeTiles(t, dir, []grid.Tile{tl(0, 1, 0), tl(1, 2, 0)})
	layer := tileStoreLayer(dir)
	layer.TileFormat = "jpeg"
	j := createJob(t, b, layer, grid.BBox{MinX: 0, MinY: 0, MaxX: 45, MaxY: 45}, 1)
	if err := w.Handler().ProcessTask(t.Context(), renderTask(t, j)); err != nil {
		t.Fatalf("render: %v", err)
	}
	done, _ := b.jobs.Get(t.Context(), j.ID)
	r := download(t, b, done.FileKey)
	for tile, png := range stored {
		got, err := r.ReadTile(t.Context(), "store", tile)
		if err != nil {
			t.Fatalf("ReadTile(%s): %v", tile, err)
		}
		if !bytes.HasPrefix(got, []byte{0xff, 0xd8, 0xff}) {
			t.Errorf("tile %s starts % x, want a JPEG", tile, got[:min(8, len(got))])
			continue
		}
		want, _ := source.DecodeTile(png)
		img, err := source.DecodeTile(got)
		if err != nil {
			t.Fatal(err)
		}
		// The pixel at (100, 100) of the flat tile, within JPEG's error.
		w, g := want.At(100, 100), img.At(100, 100)
		wr, wg, wb, _ := w.RGBA()
		gr, gg, gb, _ := g.RGBA()
		for _, d := range []int{int(wr>>8) - int(gr>>8), int(wg>>8) - int(gg>>8), int(wb>>8) - int(gb>>8)} {
			if d < -4 || d > 4 {
				t.Errorf("tile %s pixel (100, 100) = %v, want about the stored %v", tile, g, w)
				break
			}
		}
	}
}

func TestRenderTileStoreInS3(t *testing.T) {
	t.Parallel()
	s3 := newS3(t)
	w, b := setup(t, func(_ *worker.Config, d *worker.Deps) { d.Tiles = s3 })
	// Lay the tiles out locally, then upload them under a prefix.
	dir := t.TempDir()
	want := writeTiles(t, dir, []grid.Tile{tl(0, 1, 0), tl(1, 2, 0), tl(2, 4, 1), tl(3, 9, 3)})
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		return s3.PutFile(t.Context(), "tiles/ortho/"+filepath.ToSlash(rel), path, "image/png")
	})
	if err != nil {
		t.Fatal(err)
	}
	layer := tileStoreLayer(dir)
	layer.Source.Path, layer.Source.S3Prefix = "", "tiles/ortho"
	j := createJob(t, b, layer, grid.BBox{MinX: 0, MinY: 0, MaxX: 45, MaxY: 45}, 3)
	if err := w.Handler().ProcessTask(t.Context(), renderTask(t, j)); err != nil {
		t.Fatalf("render: %v", err)
	}
	done, _ := b.jobs.Get(t.Context(), j.ID)
	if done.Status != job.StatusCompleted || done.TilesStored != 4 {
		t.Fatalf("job = %s with %d tiles, want Completed with 4", done.Status, done.TilesStored)
	}
	r := download(t, b, done.FileKey)
	for tile, data := range want {
		if got, err := r.ReadTile(t.Context(), "store", tile); err != nil || !bytes.Equal(got, data) {
			t.Errorf("ReadTile(%s) = %d bytes, %v; want the stored %d bytes", tile, len(got), err, len(data))
		}
	}
}

func TestRenderBadSourceFailsJob(t *testing.T) {
	t.Parallel()
	w, b := setup(t)
	dir := t.TempDir()
	writeTiles(t, dir, []grid.Tile{tl(0, 1, 0)})
	bad := filepath.Join(dir, "1", "2", "1.png") // zoom 1, col 2, row 0 from the north
	if err := os.MkdirAll(filepath.Dir(bad), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("<html>not an image</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	j := createJob(t, b, tileStoreLayer(dir), grid.BBox{MinX: 0, MinY: 0, MaxX: 45, MaxY: 45}, 3, "http://a.test/cb")
	err := w.Handler().ProcessTask(t.Context(), renderTask(t, j))
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("render with a corrupt tile = %v, want a permanent failure", err)
	}
	failed, _ := b.jobs.Get(t.Context(), j.ID)
	if failed.Status != job.StatusFailed || !bytes.Contains([]byte(failed.Reason), []byte("tile 1/2/0")) {
		t.Fatalf("job = %s %q, want Failed naming the tile", failed.Status, failed.Reason)
	}
	tasks, _ := b.inspector.ListPendingTasks(job.QueueDefault)
	if len(tasks) != 1 {
		t.Fatalf("pending callbacks = %d, want 1", len(tasks))
	}
	if _, err := b.files.Stat(t.Context(), job.PackageKey(j.ID, j.Spec.PackageName)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a failed job left a package: %v", err)
	}
}

func TestRenderUnknownJob(t *testing.T) {
	t.Parallel()
	w, _ := setup(t)
	if err := w.Handler().ProcessTask(t.Context(), task(t, job.TypeRender, job.RenderPayload{JobID: uuid.NewString()})); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("render of an unknown job = %v, want SkipRetry", err)
	}
	if err := w.Handler().ProcessTask(t.Context(), asynq.NewTask(job.TypeRender, []byte("{"))); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("render of a bad payload = %v, want SkipRetry", err)
	}
}

func TestRenderCancelled(t *testing.T) {
	t.Parallel()
	w, b := setup(t)
	j := createJob(t, b, catalog.Demo().Layers()[0], catalog.Demo().Layers()[0].Footprint, 10)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := w.Handler().ProcessTask(ctx, renderTask(t, j))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("render with a cancelled context = %v, want context.Canceled", err)
	}
	if got, _ := b.jobs.Get(t.Context(), j.ID); got.Status != job.StatusInProgress {
		t.Errorf("cancelled render changed the job to %s; it must be handed back", got.Status)
	}
}

type received struct {
	body   map[string]any
	raw    []byte
	header http.Header
}

func callbackServer(t *testing.T, status int) (string, <-chan received) {
	t.Helper()
	ch := make(chan received, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		ch <- received{body: m, raw: b, header: r.Header}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, ch
}

func callbackTask(t *testing.T, j job.Job, url string) *asynq.Task {
	t.Helper()
	return task(t, job.TypeCallback, job.CallbackPayload{JobID: j.ID, Callback: job.Callback{URL: url, BBox: []float64{1, 2, 3, 4}}})
}

func TestCallback(t *testing.T) {
	t.Parallel()
	w, b := setup(t)
	j := createJob(t, b, catalog.Demo().Layers()[0], seedBBox, 14)
	j, _, err := b.jobs.Complete(t.Context(), j.ID, job.Result{FileKey: job.PackageKey(j.ID, j.Spec.PackageName), FileSize: 77}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	url, got := callbackServer(t, http.StatusNoContent)
	if err := w.Handler().ProcessTask(t.Context(), callbackTask(t, j, url)); err != nil {
		t.Fatalf("callback: %v", err)
	}
	r := <-got
	want := map[string]any{
		"fileUri": "http://exporter.test/downloads/" + j.ID + "/" + j.Spec.PackageName + ".gpkg", "expirationTime": j.ExpiresAt.Format("2006-01-02"),
		"fileSize": 77.0, "dbId": catalog.DemoLayerID, "packageName": j.Spec.PackageName, "bbox": []any{1.0, 2.0, 3.0, 4.0},
		"targetResolution": grid.Zoom(14).Resolution(), "requestId": j.ID, "success": true,
	}
	if diff := cmp.Diff(want, r.body); diff != "" {
		t.Errorf("callback body mismatch (-want +got):\n%s", diff)
	}
	if r.header.Get("Content-Type") != "application/json" {
		t.Errorf("callback Content-Type = %q", r.header.Get("Content-Type"))
	}
}

func TestCallbackFailures(t *testing.T) {
	t.Parallel()
	w, b := setup(t)
	j := createJob(t, b, catalog.Demo().Layers()[0], seedBBox, 14)
	j, _, err := b.jobs.Fail(t.Context(), j.ID, "tile 3/1/1: source: no answer")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		status    int
		permanent bool
	}{
		{"server error is retried", 503, false},
		{"rate limit is retried", 429, false},
		{"client error is final", 404, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, got := callbackServer(t, tc.status)
			err := w.Handler().ProcessTask(t.Context(), callbackTask(t, j, url))
			if err == nil || errors.Is(err, asynq.SkipRetry) != tc.permanent {
				t.Errorf("callback answered %d: err = %v, want permanent=%v", tc.status, err, tc.permanent)
			}
			r := <-got
			if r.body["success"] != false || r.body["errorReason"] != "tile 3/1/1: source: no answer" || r.body["fileUri"] != "" {
				t.Errorf("failure callback body = %v", r.body)
			}
		})
	}
	t.Run("unreachable is retried", func(t *testing.T) {
		t.Parallel()
		err := w.Handler().ProcessTask(t.Context(), callbackTask(t, j, "http://"+testenv.FreeAddr(t)+"/cb"))
		if err == nil || errors.Is(err, asynq.SkipRetry) {
			t.Errorf("unreachable callback: err = %v, want a retryable error", err)
		}
	})
}

func TestRunServesQueue(t *testing.T) {
	t.Parallel()
	w, b := setup(t)
	j := createJob(t, b, catalog.Demo().Layers()[0], seedBBox, 12)
	if _, err := b.queue.Enqueue(renderTask(t, j), asynq.Queue(job.QueueLow), asynq.TaskID(j.TaskIDs[0])); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = w.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got, err := b.jobs.Get(t.Context(), j.ID)
		if err == nil && got.Status == job.StatusCompleted {
			return
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-t.Context().Done():
		}
	}
	t.Fatal("job not completed by the running worker within 20s")
}

// finishOrder runs w until every job is Completed and returns the job ids
// in the order they completed; once ready reports true, late is called.
func finishOrder(t *testing.T, w *worker.Worker, b *bundle, jobs []job.Job, ready func() bool, late func()) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = w.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	var order []string
	done := map[string]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for len(order) < len(jobs) && time.Now().Before(deadline) {
		for _, j := range jobs {
			if done[j.ID] {
				continue
			}
			if got, err := b.jobs.Get(t.Context(), j.ID); err == nil && got.Status == job.StatusCompleted {
				done[j.ID] = true
				order = append(order, j.ID)
			}
		}
		if late != nil && ready() {
			late()
			late = nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(order) < len(jobs) {
		t.Fatalf("%d of %d jobs completed within 60s", len(order), len(jobs))
	}
	return order
}

func enqueueRender(t *testing.T, b *bundle, j job.Job, queue string) {
	t.Helper()
	if _, err := b.queue.Enqueue(renderTask(t, j), asynq.Queue(queue), asynq.TaskID(j.TaskIDs[0])); err != nil {
		t.Fatal(err)
	}
}

// backlog makes n distinct low-priority jobs of a dozen tiles or so each.
func backlog(t *testing.T, b *bundle, n int) []job.Job {
	t.Helper()
	layer := catalog.Demo().Layers()[0]
	var jobs []job.Job
	for i := range n {
		bbox := grid.BBox{MinX: 34.3 + float64(i)*0.2, MinY: 30, MaxX: 34.45 + float64(i)*0.2, MaxY: 30.4}
		jobs = append(jobs, createJob(t, b, layer, bbox, 10))
	}
	return jobs
}

func TestUrgentOvertakesBacklog(t *testing.T) {
	t.Parallel()
	w, b := setup(t, func(c *worker.Config, _ *worker.Deps) { c.Concurrency = 1 })
	low := backlog(t, b, 6)
	for _, j := range low {
		enqueueRender(t, b, j, job.QueueLow)
	}
	urgent := createJob(t, b, catalog.Demo().Layers()[0], seedBBox, 12)
	enqueueRender(t, b, urgent, job.QueueUrgent)
	order := finishOrder(t, w, b, append(low, urgent), nil, nil)
	// Served 6:1 by weight, the urgent job is picked within the first few
	// slots (missing 5 picks in a row has odds of (1/7)^5) while the low
	// backlog still drains.
	if rank := slices.Index(order, urgent.ID); rank > 4 {
		t.Errorf("urgent job finished %d of %d, after %d low jobs queued before it: want it to overtake", rank+1, len(order), rank)
	}
}

func TestReservedPoolTakesUrgentAtOnce(t *testing.T) {
	t.Parallel()
	w, b := setup(t, func(c *worker.Config, _ *worker.Deps) { c.Concurrency, c.ReservedConcurrency, c.Fetchers = 1, 1, 1 })
	long := createJob(t, b, catalog.Demo().Layers()[0], grid.BBox{MinX: 34.5, MinY: 30.5, MaxX: 35.1, MaxY: 31.1}, 12)
	enqueueRender(t, b, long, job.QueueLow)
	urgent := createJob(t, b, catalog.Demo().Layers()[0], seedBBox, 12)
	started := func() bool {
		active, _ := b.inspector.ListActiveTasks(job.QueueLow)
		return len(active) > 0
	}
	order := finishOrder(t, w, b, []job.Job{long, urgent}, started, func() { enqueueRender(t, b, urgent, job.QueueUrgent) })
	// Enqueued while the only shared slot renders the long job, the urgent
	// job runs in the reserved slot and finishes first.
	if order[0] != urgent.ID {
		t.Errorf("the long low job finished before the urgent one: the reserved pool did not take it at once")
	}
}

func TestCallbackToPrivateAddressRefused(t *testing.T) {
	t.Parallel()
	w, b := setup(t, func(_ *worker.Config, d *worker.Deps) {
		policy, err := egress.New(egress.Config{}) // public addresses only
		if err != nil {
			t.Fatal(err)
		}
		d.HTTP = policy.Client(time.Second)
	})
	j := createJob(t, b, catalog.Demo().Layers()[0], seedBBox, 14)
	url, got := callbackServer(t, http.StatusOK)
	err := w.Handler().ProcessTask(t.Context(), callbackTask(t, j, url+"/cb?secret=s3cr3t"))
	if !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, egress.ErrForbidden) {
		t.Fatalf("callback to loopback = %v, want a permanent egress refusal", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %q shows the callback's query", err)
	}
	select {
	case <-got:
		t.Error("the refused callback reached the server")
	default:
	}
}

// createBatched stores a job split into batches of at most maxTiles.
func createBatched(t *testing.T, b *bundle, bbox grid.BBox, z grid.Zoom, maxTiles int64) job.Job {
	t.Helper()
	j, _, err := b.jobs.GetOrCreate(t.Context(), jobtest.NewJob(jobtest.DemoSpec(t, bbox, z, 1000, maxTiles)),
		job.Request{Subject: "alice", TTL: time.Hour, Callbacks: []job.Callback{{URL: "http://a.test/cb", BBox: bbox.Slice()}}})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func batchTask(t *testing.T, j job.Job, batch int) *asynq.Task {
	t.Helper()
	return task(t, job.TypeRender, job.RenderPayload{JobID: j.ID, Batch: batch})
}

func finalizeTask(t *testing.T, j job.Job) *asynq.Task {
	t.Helper()
	return task(t, job.TypeFinalize, job.FinalizePayload{JobID: j.ID})
}

func TestRenderBatchesAndMerge(t *testing.T) {
	t.Parallel()
	w, b := setup(t)
	j := createBatched(t, b, seedBBox, 14, 10)
	plan := j.Spec.Plan()
	if len(plan) < 2 || len(j.TaskIDs) != len(plan) {
		t.Fatalf("plan of %d batches, %d task ids; want a split", len(plan), len(j.TaskIDs))
	}
	for i := range plan {
		if err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, i)); err != nil {
			t.Fatalf("render batch %d: %v", i, err)
		}
		got, _ := b.jobs.Get(t.Context(), j.ID)
		if got.Status != job.StatusInProgress || got.Percentage() == 100 {
			t.Fatalf("after batch %d the job is %s at %d%%: it must wait for the merge", i, got.Status, got.Percentage())
		}
	}
	// A re-run batch counts once and queues the same merge.
	if err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, 0)); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.jobs.Get(t.Context(), j.ID); got.TilesDone != 18 {
		t.Errorf("tiles done = %d after every batch and a re-run, want 18", got.TilesDone)
	}
	info, err := b.inspector.GetTaskInfo(job.QueueDefault, job.FinalizeTaskID(j.ID))
	if err != nil || info.Type != job.TypeFinalize {
		t.Fatalf("finalize not queued by the last batch: %v", err)
	}
	if err := w.Handler().ProcessTask(t.Context(), finalizeTask(t, j)); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	done, _ := b.jobs.Get(t.Context(), j.ID)
	if done.Status != job.StatusCompleted || done.TilesStored != 18 || done.Percentage() != 100 {
		t.Fatalf("job after merge = %s, %d tiles, %d%%", done.Status, done.TilesStored, done.Percentage())
	}
	r := download(t, b, done.FileKey)
	byZoom, err := r.CountByZoom(t.Context(), "demo_terrain")
	if err != nil || byZoom[14] != 4 || byZoom[0] != 1 {
		t.Errorf("merged package by zoom = %v, %v", byZoom, err)
	}
	mds, err := r.Metadata(t.Context())
	if err != nil || len(mds) != 1 || !strings.Contains(string(mds[0].Document), `"tiles":18`) || !strings.Contains(string(mds[0].Document), j.ID) {
		t.Errorf("package metadata = %+v, %v", mds, err)
	}
	for info, err := range b.files.List(t.Context(), job.PartsPrefix(j.ID)) {
		t.Errorf("part %s left after the merge (%v)", info.Key, err)
	}
	// A repeated merge is a no-op.
	if err := w.Handler().ProcessTask(t.Context(), finalizeTask(t, j)); err != nil {
		t.Errorf("finalize again: %v", err)
	}
}

// TestLastBatchQueuesFinalizeWithItsOptions: the merge the last stored
// batch queues has finalize's retries and timeout, not render's.
func TestLastBatchQueuesFinalizeWithItsOptions(t *testing.T) {
	t.Parallel()
	w, b := setup(t)
	j := createBatched(t, b, seedBBox, 14, 10)
	for i := range j.TaskIDs {
		if _, err := b.jobs.BatchDone(t.Context(), j.ID, i); err != nil {
			t.Fatal(err)
		}
	}
	// A re-delivered batch that finds every part stored queues the merge.
	if err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, 0)); err != nil {
		t.Fatal(err)
	}
	jobtest.CheckFinalizeTask(t, b.inspector, job.QueueDefault, j.ID, taskOptions)
}

func TestCallbackSignedAndRecorded(t *testing.T) {
	t.Parallel()
	secret := []byte("callback-secret")
	w, b := setup(t, func(c *worker.Config, _ *worker.Deps) { c.CallbackSecret = secret })
	j := createJob(t, b, catalog.Demo().Layers()[0], seedBBox, 14)
	j, _, err := b.jobs.Complete(t.Context(), j.ID, job.Result{FileKey: "packages/x.gpkg", FileSize: 77}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	url, got := callbackServer(t, http.StatusOK)
	if err := w.Handler().ProcessTask(t.Context(), callbackTask(t, j, url)); err != nil {
		t.Fatal(err)
	}
	r := <-got
	mac := hmac.New(sha256.New, secret)
	mac.Write(r.raw)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); r.header.Get(worker.SignatureHeader) != want {
		t.Errorf("%s = %q, want %q", worker.SignatureHeader, r.header.Get(worker.SignatureHeader), want)
	}
	ds, err := b.jobs.Deliveries(t.Context(), j.ID)
	if err != nil || len(ds) != 1 || ds[0].Outcome != job.DeliveryDelivered || ds[0].Code != 200 || ds[0].Attempts != 1 {
		t.Errorf("Deliveries = %+v, %v; want one delivered", ds, err)
	}
	url404, _ := callbackServer(t, http.StatusNotFound)
	_ = w.Handler().ProcessTask(t.Context(), callbackTask(t, j, url404))
	ds, _ = b.jobs.Deliveries(t.Context(), j.ID)
	if len(ds) != 2 {
		t.Fatalf("Deliveries = %+v, want two", ds)
	}
	for _, d := range ds {
		if d.Callback.URL == url404 && (d.Outcome != job.DeliveryFailed || d.Code != 404) {
			t.Errorf("404 delivery recorded as %+v, want failed", d)
		}
	}
}

// newS3 is a store in a bucket of the shared MinIO server.
func newS3(t *testing.T) *storage.S3 {
	t.Helper()
	env := testenv.MinIO(t)
	s3, err := storage.NewS3(t.Context(), storage.S3Config{Endpoint: env.Endpoint, Bucket: env.Bucket, AccessKey: env.AccessKey, SecretKey: env.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s3.Close() })
	return s3
}

// countingObjects counts the opens of each object of a real store.
type countingObjects struct {
	source.Objects
	mu    sync.Mutex
	opens map[string]int
}

func (c *countingObjects) Open(ctx context.Context, key string) (storage.Object, error) {
	c.mu.Lock()
	c.opens[key]++
	c.mu.Unlock()
	return c.Objects.Open(ctx, key)
}

// TestGeoPackageSourceSharedByBatches: the render tasks of an export split
// into batches share the worker's source of the layer, so a GeoPackage
// source in object storage is downloaded once, not once per batch.
func TestGeoPackageSourceSharedByBatches(t *testing.T) {
	t.Parallel()
	s3 := newS3(t)
	objects := &countingObjects{Objects: s3, opens: map[string]int{}}
	w, b := setup(t, func(_ *worker.Config, d *worker.Deps) { d.Tiles = objects })

	// The source: every tile of the footprint's pyramid to zoom 3, in a
	// GeoPackage uploaded to the object store.
	footprint := grid.BBox{MinX: 0, MinY: 0, MaxX: 45, MaxY: 45}
	var tiles []grid.Tile
	for _, r := range grid.Pyramid(footprint, 3) {
		for tile := range r.Tiles {
			tiles = append(tiles, tile)
		}
	}
	want := writeTiles(t, t.TempDir(), tiles)
	src := filepath.Join(t.TempDir(), "ortho.gpkg")
	gw, err := gpkg.Create(t.Context(), src, gpkg.Options{Table: "ortho", Identifier: "ortho", Extent: footprint})
	if err != nil {
		t.Fatal(err)
	}
	for tile, data := range want {
		if err := gw.Put(t.Context(), tile, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s3.PutFile(t.Context(), "sources/ortho.gpkg", src, worker.ContentTypeGeoPackage); err != nil {
		t.Fatal(err)
	}
	c, err := catalog.New([]catalog.Layer{{
		ID: "5b1f0d1e-8c4a-4f4e-9a57-2f8d3c0e6a12", ProductID: "ortho", ProductType: "Orthophoto", Version: "1",
		Footprint: footprint, MaxResolution: grid.Zoom(3).Resolution(), TileFormat: "png",
		Source: catalog.Source{Kind: catalog.SourceGeoPackage, S3Key: "sources/ortho.gpkg", Table: "ortho"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	layer := c.Layers()[0]

	spec := job.NewSpec(layer, 3, footprint, 1000)
	spec.BatchTiles = 2 // every pivot tile a batch of its own
	j, _, err := b.jobs.GetOrCreate(t.Context(), jobtest.NewJob(spec),
		job.Request{Subject: "alice", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	plan := spec.Plan()
	if len(plan) < 3 {
		t.Fatalf("plan of %d batches, want several", len(plan))
	}
	for i := range plan {
		if err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, i)); err != nil {
			t.Fatalf("render batch %d: %v", i, err)
		}
	}
	if err := w.Handler().ProcessTask(t.Context(), finalizeTask(t, j)); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	done, _ := b.jobs.Get(t.Context(), j.ID)
	if done.Status != job.StatusCompleted || done.TilesStored != int64(len(want)) {
		t.Fatalf("job = %s with %d tiles, want Completed with %d", done.Status, done.TilesStored, len(want))
	}
	objects.mu.Lock()
	opens := objects.opens["sources/ortho.gpkg"]
	objects.mu.Unlock()
	if opens != 1 {
		t.Errorf("the source GeoPackage was downloaded %d times for %d batches, want once", opens, len(plan))
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := worker.Config{
		Concurrency: 2, Fetchers: 4, Encoders: 2,
		QueueWeights:    [3]int{6, 3, 1},
		ShutdownTimeout: 5 * time.Second, PublicURL: "http://exporter.test",
		PackageTTL: time.Hour, CallbackTimeout: 2 * time.Second,
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	bad := good
	bad.PollInterval = -time.Second
	bad.ShutdownTimeout = 0
	bad.SweepInterval = 100 * time.Millisecond
	err := bad.Validate()
	for _, want := range []string{"poll interval -1s is negative", "shutdown timeout must be positive", "sweep interval 100ms must be at least 1s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a problem saying %q", err, want)
		}
	}
}
