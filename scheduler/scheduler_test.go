package scheduler_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/job/jobtest"
	"github.com/geoexport/exporter/internal/storage"
	"github.com/geoexport/exporter/internal/testenv"
	"github.com/geoexport/exporter/scheduler"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	_ scheduler.Files = (*storage.Local)(nil)
	_ scheduler.Files = (*storage.S3)(nil)
	_ scheduler.Tasks = (*asynq.Inspector)(nil)
)

type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

type bundle struct {
	rdb       *redis.Client
	jobs      *job.Store
	files     *storage.Local
	clock     *clock
	queue     *asynq.Client
	inspector *asynq.Inspector
}

func setup(t *testing.T) (*scheduler.Scheduler, *bundle, *prometheus.Registry) {
	t.Helper()
	rc := testenv.NewRedisClients(t)
	files, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	c.ms.Store(time.Now().UnixMilli())
	b := &bundle{rdb: rc.RDB, jobs: job.NewStore(rc.RDB, "test", c.now), files: files, clock: c, queue: rc.Queue, inspector: rc.Inspector}
	s, reg := newScheduler(t, b)
	return s, b, reg
}

// taskOptions are the options of the tasks queued in these tests;
// finalize's differ from render's, so a test can tell them apart.
var taskOptions = job.TaskOptions{
	UrgentFrom: 100_000_000, DefaultFrom: 1000,
	RenderTimeout: 2 * time.Hour, RenderMaxRetry: 5,
	FinalizeTimeout: 3 * time.Hour, FinalizeMaxRetry: 7,
	CallbackTimeout: 10 * time.Second, CallbackMaxRetry: 10,
}

func newScheduler(t *testing.T, b *bundle) (*scheduler.Scheduler, *prometheus.Registry) {
	t.Helper()
	enqueuer, err := job.NewEnqueuer(b.queue, b.jobs, taskOptions)
	if err != nil {
		t.Fatal(err)
	}
	return newSchedulerOn(t, scheduler.Deps{Jobs: b.jobs, Files: b.files, Enqueuer: enqueuer, Tasks: b.inspector, Now: b.clock.now})
}

// newSchedulerOn builds the scheduler of these tests (batches of three)
// on deps, logging nowhere and counting on a registry of its own.
func newSchedulerOn(t *testing.T, deps scheduler.Deps) (*scheduler.Scheduler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	deps.Logger, deps.Registry = slog.New(slog.DiscardHandler), reg
	s, err := scheduler.New(scheduler.Config{BatchSize: 3}, deps)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

// counter reads a counter from reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("%s not registered", name)
	return 0
}

// runTask runs one maintenance task through the scheduler's handler.
func runTask(t *testing.T, s *scheduler.Scheduler, typ string) {
	t.Helper()
	if err := s.Handler().ProcessTask(t.Context(), asynq.NewTask(typ, nil)); err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
}

// newJob stores an In-Progress job of the demo layer; i varies the bbox.
func newJob(t *testing.T, b *bundle, i int, batchTiles int64) job.Job {
	t.Helper()
	bbox := grid.BBox{MinX: 34.5 + float64(i)*0.01, MinY: 31, MaxX: 34.51 + float64(i)*0.01, MaxY: 31.01}
	j, _, err := b.jobs.GetOrCreate(t.Context(), jobtest.NewJob(jobtest.DemoSpec(t, bbox, grid.Zoom(10+i%8), 0, batchTiles)), job.Request{Subject: "alice", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// storeEveryBatch adds every batch of j to its done-set, as if each had
// stored its part.
func storeEveryBatch(t *testing.T, b *bundle, j job.Job) {
	t.Helper()
	for i := range j.TaskIDs {
		if _, err := b.jobs.BatchDone(t.Context(), j.ID, i); err != nil {
			t.Fatal(err)
		}
	}
}

// completed stores a Completed job with a package file, expiring after ttl.
func completed(t *testing.T, b *bundle, i int, ttl time.Duration) job.Job {
	t.Helper()
	return complete(t, b, newJob(t, b, i, 0), ttl)
}

// put stores body under key.
func put(t *testing.T, b *bundle, key, body, contentType string) {
	t.Helper()
	if err := b.files.Put(t.Context(), key, strings.NewReader(body), int64(len(body)), contentType); err != nil {
		t.Fatal(err)
	}
}

// complete stores j's package and marks j Completed, expiring after ttl.
func complete(t *testing.T, b *bundle, j job.Job, ttl time.Duration) job.Job {
	t.Helper()
	key := job.PackageKey(j.ID, j.Spec.PackageName)
	put(t, b, key, "gpkg", "")
	// The metadata JSON beside it.
	put(t, b, job.MetadataFileKey(key), "{}", "application/json")
	j, _, err := b.jobs.Complete(t.Context(), j.ID, job.Result{FileKey: key, FileSize: 4, MetadataSize: 2}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestExpireLeavesTheNextJobsPackage: once a package's expiry has passed,
// an identical request makes a new job with the same package name, which
// may complete before the expire run of the old one. That run deletes the
// old job's package only.
func TestExpireLeavesTheNextJobsPackage(t *testing.T) {
	t.Parallel()
	s, b, _ := setup(t)
	old := completed(t, b, 1, time.Hour)
	b.clock.advance(2 * time.Hour)
	next := complete(t, b, newJob(t, b, 1, 0), time.Hour)
	if next.ID == old.ID || next.Spec.PackageName != old.Spec.PackageName {
		t.Fatalf("second request: job %s named %s, want a new job of the name %s", next.ID, next.Spec.PackageName, old.Spec.PackageName)
	}
	runTask(t, s, scheduler.TypeExpire)
	if got, _ := b.jobs.Get(t.Context(), old.ID); got.Status != job.StatusExpired {
		t.Errorf("old job is %s, want Expired", got.Status)
	}
	for _, key := range []string{old.FileKey, job.MetadataFileKey(old.FileKey)} {
		if _, err := b.files.Stat(t.Context(), key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("old package file %s still stored: %v", key, err)
		}
	}
	if got, _ := b.jobs.Get(t.Context(), next.ID); got.Status != job.StatusCompleted {
		t.Errorf("new job is %s, want Completed", got.Status)
	}
	for _, key := range []string{next.FileKey, job.MetadataFileKey(next.FileKey)} {
		if _, err := b.files.Stat(t.Context(), key); err != nil {
			t.Errorf("new job's package file %s: %v", key, err)
		}
	}
	if stored, _, _ := b.jobs.Usage(t.Context()); stored != next.FileSize {
		t.Errorf("stored bytes = %d, want the new package's %d", stored, next.FileSize)
	}
	again := newJob(t, b, 1, 0)
	if again.ID != next.ID || again.Status != job.StatusCompleted {
		t.Errorf("third request answered job %s (%s), want the new job %s from the cache", again.ID, again.Status, next.ID)
	}
}

func TestExpire(t *testing.T) {
	t.Parallel()
	s, b, reg := setup(t)
	var due []job.Job
	for i := range 5 {
		due = append(due, completed(t, b, i, time.Hour))
	}
	kept := completed(t, b, 9, 3*time.Hour)
	b.clock.advance(2 * time.Hour)
	// Batches of three: two runs expire all five.
	runTask(t, s, scheduler.TypeExpire)
	runTask(t, s, scheduler.TypeExpire)
	for _, j := range due {
		if got, _ := b.jobs.Get(t.Context(), j.ID); got.Status != job.StatusExpired {
			t.Errorf("job %s is %s, want Expired", j.ID, got.Status)
		}
		if _, err := b.files.Stat(t.Context(), j.FileKey); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("package %s still stored: %v", j.FileKey, err)
		}
	}
	if got, _ := b.jobs.Get(t.Context(), kept.ID); got.Status != job.StatusCompleted {
		t.Errorf("unexpired job is %s, want Completed", got.Status)
	}
	if n := counter(t, reg, "exporter_scheduler_packages_expired_total"); n != 5 {
		t.Errorf("expired = %v, want 5", n)
	}
	if n := counter(t, reg, "exporter_scheduler_bytes_freed_total"); n != 20 {
		t.Errorf("bytes freed = %v, want 20", n)
	}
	// The next identical request builds a new package.
	if _, outcome, err := b.jobs.GetOrCreate(t.Context(), jobtest.NewJob(due[0].Spec), job.Request{Subject: "alice", TTL: time.Hour}); err != nil || outcome != job.OutcomeCreated {
		t.Errorf("request after expiry = %v, %v; want a new job", outcome, err)
	}
}

// TestExpireAfterLostWrite: a failover loses the Expired write of a run
// that had deleted the package; the next run marks the job again, and the
// quota counts the bytes once.
func TestExpireAfterLostWrite(t *testing.T) {
	t.Parallel()
	s, b, reg := setup(t)
	j := completed(t, b, 1, time.Hour)
	b.clock.advance(2 * time.Hour)
	runTask(t, s, scheduler.TypeExpire)
	jobtest.LoseExpire(t, b.rdb, "test", j.ID)
	if got, _ := b.jobs.Get(t.Context(), j.ID); got.Status != job.StatusCompleted {
		t.Fatalf("job after the lost write = %s, want Completed", got.Status)
	}
	runTask(t, s, scheduler.TypeExpire)
	if got, _ := b.jobs.Get(t.Context(), j.ID); got.Status != job.StatusExpired {
		t.Errorf("job after the next run = %s, want Expired", got.Status)
	}
	if due, err := b.jobs.DueForExpiry(t.Context(), 10); err != nil || len(due) != 0 {
		t.Errorf("due for expiry after the next run = %v, %v; want none", due, err)
	}
	if stored, _, err := b.jobs.Usage(t.Context()); err != nil || stored != 0 {
		t.Errorf("stored bytes after the repair = %d, %v; want 0", stored, err)
	}
	if n := counter(t, reg, "exporter_scheduler_packages_expired_total"); n != 2 {
		t.Errorf("expired = %v, want 2: the run before the loss and the repair", n)
	}
}

func TestExpireRespectsCacheHitExtension(t *testing.T) {
	t.Parallel()
	s, b, _ := setup(t)
	j := completed(t, b, 0, time.Hour)
	b.clock.advance(50 * time.Minute)
	if _, outcome, err := b.jobs.GetOrCreate(t.Context(), jobtest.NewJob(j.Spec), job.Request{Subject: "bob", TTL: time.Hour}); err != nil || outcome != job.OutcomeCacheHit {
		t.Fatalf("cache hit = %v, %v", outcome, err)
	}
	b.clock.advance(30 * time.Minute)
	runTask(t, s, scheduler.TypeExpire)
	if got, _ := b.jobs.Get(t.Context(), j.ID); got.Status != job.StatusCompleted {
		t.Errorf("extended job is %s, want Completed", got.Status)
	}
}

func TestTwoReplicasEnqueueEachSlotOnce(t *testing.T) {
	t.Parallel()
	s1, b, _ := setup(t)
	s2, _ := newScheduler(t, b)
	since := time.Date(2026, 11, 1, 10, 0, 30, 0, time.UTC)
	now := since.Add(3 * time.Minute)
	for _, s := range []*scheduler.Scheduler{s1, s2, s1} {
		if err := s.EnqueueDue(t.Context(), since, now); err != nil {
			t.Fatal(err)
		}
	}
	tasks, err := b.inspector.ListPendingTasks(scheduler.Queue)
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]int{}
	for _, task := range tasks {
		byType[task.Type]++
	}
	// Within three minutes: expire (every minute) and reconcile (every two)
	// are due, once each however many replicas ask; clean and orphans not.
	if byType[scheduler.TypeExpire] != 1 || byType[scheduler.TypeReconcile] != 1 || len(tasks) != 2 {
		t.Errorf("maintenance tasks queued = %v, want one expire and one reconcile", byType)
	}
}

func TestOrphans(t *testing.T) {
	t.Parallel()
	s, b, reg := setup(t)
	running := newJob(t, b, 1, 10)
	failed := newJob(t, b, 2, 10)
	if _, _, err := b.jobs.Fail(t.Context(), failed.ID, "broken"); err != nil {
		t.Fatal(err)
	}
	put(t, b, job.PartKey(running.ID, 0), "part", "")
	put(t, b, job.PartKey(failed.ID, 0), "part", "")
	put(t, b, job.PartKey(failed.ID, 1), "part", "")
	put(t, b, job.PartKey(uuid.NewString(), 0), "part", "") // a job whose record is gone
	runTask(t, s, scheduler.TypeOrphans)
	if n := counter(t, reg, "exporter_scheduler_orphaned_parts_deleted_total"); n != 0 {
		t.Fatalf("young parts deleted: %v", n)
	}
	b.clock.advance(2 * time.Hour)
	runTask(t, s, scheduler.TypeOrphans)
	if n := counter(t, reg, "exporter_scheduler_orphaned_parts_deleted_total"); n != 3 {
		t.Errorf("orphaned parts deleted = %v, want 3", n)
	}
	if _, err := b.files.Stat(t.Context(), job.PartKey(running.ID, 0)); err != nil {
		t.Errorf("a running job's part was deleted: %v", err)
	}
}

// TestOrphanPackages: packages of jobs that are gone, failed or were
// cancelled are deleted once old; those of running, Completed and Expired
// jobs (expire's to delete) and of no job at all are kept.
func TestOrphanPackages(t *testing.T) {
	t.Parallel()
	s, b, reg := setup(t)
	running := newJob(t, b, 1, 0)
	done := completed(t, b, 2, 24*time.Hour)
	expired := completed(t, b, 3, time.Minute)
	failed, cancelled := newJob(t, b, 4, 0), newJob(t, b, 5, 0)
	if _, _, err := b.jobs.Fail(t.Context(), failed.ID, "broken"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.jobs.Cancel(t.Context(), cancelled.ID, "by alice"); err != nil {
		t.Fatal(err)
	}
	key := func(j job.Job) string { return job.PackageKey(j.ID, j.Spec.PackageName) }
	gone := job.PackageKey(uuid.NewString(), "p")
	for _, k := range []string{key(running), key(failed), key(cancelled), gone, "packages/legacy.gpkg"} {
		put(t, b, k, "gpkg", "")
	}
	b.clock.advance(2 * time.Hour)
	if _, err := b.jobs.Expire(t.Context(), expired.ID); err != nil {
		t.Fatal(err)
	}
	runTask(t, s, scheduler.TypeOrphans)
	for _, k := range []string{key(failed), key(cancelled), gone} {
		if _, err := b.files.Stat(t.Context(), k); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("orphaned package %s still stored: %v", k, err)
		}
	}
	for _, k := range []string{key(running), done.FileKey, expired.FileKey, "packages/legacy.gpkg"} {
		if _, err := b.files.Stat(t.Context(), k); err != nil {
			t.Errorf("package %s was deleted: %v", k, err)
		}
	}
	if n := counter(t, reg, "exporter_scheduler_orphaned_packages_deleted_total"); n != 3 {
		t.Errorf("orphaned packages deleted = %v, want 3", n)
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	s, b, reg := setup(t)
	failed := newJob(t, b, 1, 0)
	if _, _, err := b.jobs.Fail(t.Context(), failed.ID, "broken"); err != nil {
		t.Fatal(err)
	}
	done := completed(t, b, 2, 30*24*time.Hour)
	b.clock.advance(8 * 24 * time.Hour)
	runTask(t, s, scheduler.TypeClean)
	if _, err := b.jobs.Get(t.Context(), failed.ID); !errors.Is(err, job.ErrNotFound) {
		t.Errorf("a failed job past the grace period is still stored: %v", err)
	}
	if got, err := b.jobs.Get(t.Context(), done.ID); err != nil || got.Status != job.StatusCompleted {
		t.Errorf("a completed job was cleaned: %v", err)
	}
	if jobs, _, _ := b.jobs.List(t.Context(), "alice", "", 0, 10); len(jobs) != 1 {
		t.Errorf("alice's list has %d jobs after cleaning, want 1", len(jobs))
	}
	if n := counter(t, reg, "exporter_scheduler_jobs_cleaned_total"); n != 1 {
		t.Errorf("cleaned = %v, want 1", n)
	}
}

func TestReconcile(t *testing.T) {
	t.Parallel()
	s, b, reg := setup(t)
	// A split job whose batches are all stored, but whose merge was never
	// queued (the last worker died in between).
	merged := newJob(t, b, 1, 10)
	storeEveryBatch(t, b, merged)
	// A job whose render task was lost.
	lost := newJob(t, b, 2, 0)
	// A job whose render task asynq archived after its retries.
	archived := newJob(t, b, 3, 0)
	p, _ := job.Encode(job.RenderPayload{JobID: archived.ID})
	if _, err := b.queue.Enqueue(asynq.NewTask(job.TypeRender, p), asynq.TaskID(archived.TaskIDs[0]), asynq.Queue(job.QueueLow)); err != nil {
		t.Fatal(err)
	}
	if err := b.inspector.ArchiveTask(job.QueueLow, archived.TaskIDs[0]); err != nil {
		t.Fatal(err)
	}
	// A split job whose finalize, sent to the machine that merged its
	// parts ahead, asynq archived there after its retries.
	machine := job.MachineQueue("assembler")
	archivedFinalize := newJob(t, b, 4, 10)
	storeEveryBatch(t, b, archivedFinalize)
	if ok, err := b.jobs.ClaimAssembly(t.Context(), archivedFinalize.ID, machine); err != nil || !ok {
		t.Fatalf("ClaimAssembly = %v, %v", ok, err)
	}
	p, _ = job.Encode(job.FinalizePayload{JobID: archivedFinalize.ID})
	if _, err := b.queue.Enqueue(asynq.NewTask(job.TypeFinalize, p), asynq.TaskID(job.FinalizeTaskID(archivedFinalize.ID)), asynq.Queue(machine)); err != nil {
		t.Fatal(err)
	}
	if err := b.inspector.ArchiveTask(machine, job.FinalizeTaskID(archivedFinalize.ID)); err != nil {
		t.Fatal(err)
	}
	// Young jobs are left alone.
	runTask(t, s, scheduler.TypeReconcile)
	if n := counter(t, reg, "exporter_scheduler_jobs_reconciled_total"); n != 0 {
		t.Fatalf("reconciled young jobs: %v", n)
	}
	b.clock.advance(time.Hour)
	runTask(t, s, scheduler.TypeReconcile)
	if info, err := b.inspector.GetTaskInfo(job.QueueLow, job.FinalizeTaskID(merged.ID)); err != nil || info.Type != job.TypeFinalize {
		t.Errorf("merge of a job with every batch stored not queued: %v", err)
	}
	if info, err := b.inspector.GetTaskInfo(job.QueueLow, lost.TaskIDs[0]); err != nil || info.Type != job.TypeRender {
		t.Errorf("lost render task not queued again: %v", err)
	}
	if got, _ := b.jobs.Get(t.Context(), archived.ID); got.Status != job.StatusFailed || !strings.Contains(got.Reason, "gave up") {
		t.Errorf("job with an archived task = %s %q, want Failed", got.Status, got.Reason)
	}
	if got, _ := b.jobs.Get(t.Context(), archivedFinalize.ID); got.Status != job.StatusFailed || !strings.Contains(got.Reason, "gave up") {
		t.Errorf("job whose finalize was archived in its assembler's queue = %s %q, want Failed", got.Status, got.Reason)
	}
	if n := counter(t, reg, "exporter_scheduler_jobs_reconciled_total"); n != 4 {
		t.Errorf("reconciled = %v, want 4", n)
	}
	// Running it again changes nothing.
	runTask(t, s, scheduler.TypeReconcile)
	if n := counter(t, reg, "exporter_scheduler_jobs_reconciled_total"); n != 4 {
		t.Errorf("second reconcile changed %v jobs, want none", n-4)
	}
}

// TestReconcileQueuesFinalizeWithItsOptions: the merge reconcile queues
// for a job whose batches are all stored has finalize's retries and
// timeout, not render's.
func TestReconcileQueuesFinalizeWithItsOptions(t *testing.T) {
	t.Parallel()
	s, b, _ := setup(t)
	j := newJob(t, b, 1, 10)
	storeEveryBatch(t, b, j)
	b.clock.advance(time.Hour)
	runTask(t, s, scheduler.TypeReconcile)
	jobtest.CheckFinalizeTask(t, b.inspector, job.QueueLow, j.ID, taskOptions)
}

// TestEnqueueDueAskedEverySecond drives EnqueueDue as Run does, a second
// at a time, from two replicas that started at different moments: every
// slot of every schedule is enqueued, and once.
func TestEnqueueDueAskedEverySecond(t *testing.T) {
	t.Parallel()
	s1, b, _ := setup(t)
	s2, _ := newScheduler(t, b)
	start := time.Date(2026, 11, 1, 10, 0, 30, 0, time.UTC)
	phase := map[*scheduler.Scheduler]time.Duration{s1: 0, s2: 700 * time.Millisecond}
	last := map[*scheduler.Scheduler]time.Time{s1: start, s2: start.Add(phase[s2])}
	for now := start.Add(time.Second); now.Before(start.Add(212 * time.Second)); now = now.Add(time.Second) {
		for _, s := range []*scheduler.Scheduler{s1, s2} {
			at := now.Add(phase[s]) // each replica ticks at its own phase
			if err := s.EnqueueDue(t.Context(), last[s], at); err != nil {
				t.Fatal(err)
			}
			last[s] = at
		}
	}
	tasks, err := b.inspector.ListPendingTasks(scheduler.Queue)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, task := range tasks {
		ids = append(ids, task.ID)
	}
	slices.Sort(ids)
	// 10:00:30 to 10:04:01: expire at 10:01 … 10:04, reconcile at the even
	// minutes since the epoch, 10:02 and 10:04; clean and orphans not.
	slot := func(typ string, hh, mm int) string {
		return fmt.Sprintf("%s@%d", typ, time.Date(2026, 11, 1, hh, mm, 0, 0, time.UTC).Unix())
	}
	want := []string{
		slot(scheduler.TypeExpire, 10, 1), slot(scheduler.TypeExpire, 10, 2), slot(scheduler.TypeExpire, 10, 3), slot(scheduler.TypeExpire, 10, 4),
		slot(scheduler.TypeReconcile, 10, 2), slot(scheduler.TypeReconcile, 10, 4),
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("maintenance tasks queued (-want +got):\n%s", diff)
	}
}
