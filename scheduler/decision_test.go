package scheduler_test

// The decisions of maintenance, run against small in-memory fakes of the
// job store, the storage, the task inspector and the enqueue API, so they
// run under -short. The real-Redis tests in scheduler_test.go cover the
// same runs end to end.

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/job/jobtest"
	"github.com/geoexport/exporter/internal/storage/storagetest"
	"github.com/geoexport/exporter/scheduler"
)

var (
	_ scheduler.Jobs     = (*job.Store)(nil)
	_ scheduler.Enqueuer = (*job.Enqueuer)(nil)
	_ scheduler.Jobs     = (*jobtest.Store)(nil)
	_ scheduler.Files    = (*storagetest.Files)(nil)
	_ scheduler.Tasks    = (*fakeTasks)(nil)
	_ scheduler.Enqueuer = (*jobtest.Enqueuer)(nil)
)

// fakeTasks answers GetTaskInfo from the tasks it holds by id.
type fakeTasks struct {
	mu    sync.Mutex
	tasks map[string]*asynq.TaskInfo
}

func (f *fakeTasks) GetTaskInfo(_, id string) (*asynq.TaskInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.tasks[id]
	if !ok {
		return nil, asynq.ErrTaskNotFound
	}
	return info, nil
}

type fakes struct {
	clock    *clock
	jobs     *jobtest.Store
	files    *storagetest.Files
	tasks    *fakeTasks
	enqueuer *jobtest.Enqueuer
}

// setupFake builds a scheduler over fakes; it runs maintenance through
// Handler only, so it needs no Redis.
func setupFake(t *testing.T) (*scheduler.Scheduler, *fakes, *prometheus.Registry) {
	t.Helper()
	c := &clock{}
	c.ms.Store(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	f := &fakes{
		clock:    c,
		jobs:     jobtest.NewStore(c.now),
		files:    storagetest.New(),
		tasks:    &fakeTasks{tasks: map[string]*asynq.TaskInfo{}},
		enqueuer: &jobtest.Enqueuer{},
	}
	s, reg := newSchedulerOn(t, scheduler.Deps{Jobs: f.jobs, Files: f.files, Enqueuer: f.enqueuer, Tasks: f.tasks, Now: c.now})
	return s, f, reg
}

// fakeJob stores a job of the demo layer created an hour ago, in status
// st, cut into batches of at most batchTiles tiles (0: one batch).
func (f *fakes) fakeJob(t *testing.T, st job.Status, batchTiles int64) job.Job {
	t.Helper()
	bbox := grid.BBox{MinX: 34.81, MinY: 31.95, MaxX: 34.82, MaxY: 31.96}
	spec := jobtest.DemoSpec(t, bbox, 14, 0, batchTiles)
	// The cases are written for the two batches the balanced planner
	// cuts these 18 tiles into (the aligned one adds a small last batch).
	spec.PlanScheme = job.PlanBalanced
	return f.jobs.Add(spec, st, f.clock.now().Add(-time.Hour))
}

// TestReconcileDecisions: what reconcile does with each state a job of
// more than StuckAfter may be in.
func TestReconcileDecisions(t *testing.T) {
	t.Parallel()
	archived := func(typ string) *asynq.TaskInfo {
		return &asynq.TaskInfo{Type: typ, State: asynq.TaskStateArchived, Retried: 5, LastErr: "boom"}
	}
	for _, tc := range []struct {
		name       string
		status     job.Status
		batchTiles int64
		// done are the batches stored; tasks the tasks that exist, by
		// "render <batch>" or "finalize".
		done  []int
		tasks map[string]*asynq.TaskInfo
		// queued are the tasks reconcile queues, with "%s" for the job id.
		queued     []string
		wantStatus job.Status
		reconciled float64
	}{
		{name: "render running", status: job.StatusInProgress,
			tasks:      map[string]*asynq.TaskInfo{"render 0": {State: asynq.TaskStateActive}},
			wantStatus: job.StatusInProgress},
		{name: "render lost", status: job.StatusInProgress,
			queued: []string{"render %s 0"}, wantStatus: job.StatusInProgress, reconciled: 1},
		{name: "render archived", status: job.StatusInProgress,
			tasks:  map[string]*asynq.TaskInfo{"render 0": archived(job.TypeRender)},
			queued: []string{"callbacks %s Failed"}, wantStatus: job.StatusFailed, reconciled: 1},
		{name: "stored batches' renders not queued again", status: job.StatusInProgress, batchTiles: 10, done: []int{0},
			queued: []string{"render %s 1"}, wantStatus: job.StatusInProgress, reconciled: 1},
		{name: "every batch stored, no merge", status: job.StatusInProgress, batchTiles: 10, done: []int{0, 1},
			queued: []string{"finalize %s"}, wantStatus: job.StatusInProgress, reconciled: 1},
		{name: "every batch stored, merge pending", status: job.StatusInProgress, batchTiles: 10, done: []int{0, 1},
			tasks:      map[string]*asynq.TaskInfo{"finalize": {State: asynq.TaskStatePending}},
			wantStatus: job.StatusInProgress},
		{name: "merge archived", status: job.StatusInProgress, batchTiles: 10, done: []int{0, 1},
			tasks:  map[string]*asynq.TaskInfo{"finalize": archived(job.TypeFinalize)},
			queued: []string{"callbacks %s Failed"}, wantStatus: job.StatusFailed, reconciled: 1},
		{name: "completed", status: job.StatusCompleted, wantStatus: job.StatusCompleted},
		{name: "failed", status: job.StatusFailed, wantStatus: job.StatusFailed},
		{name: "cancelled", status: job.StatusCancelled, wantStatus: job.StatusCancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, f, reg := setupFake(t)
			j := f.fakeJob(t, tc.status, tc.batchTiles)
			if tc.batchTiles > 0 && len(j.TaskIDs) != 2 {
				t.Fatalf("job of %d batches, want 2", len(j.TaskIDs))
			}
			f.jobs.MarkDone(j.ID, tc.done...)
			for name, info := range tc.tasks {
				id := job.FinalizeTaskID(j.ID)
				if b, ok := strings.CutPrefix(name, "render "); ok {
					id = j.TaskIDs[int(b[0]-'0')]
				}
				f.tasks.tasks[id] = info
			}
			runTask(t, s, scheduler.TypeReconcile)
			var want []string
			for _, q := range tc.queued {
				want = append(want, fmt.Sprintf(q, j.ID))
			}
			f.enqueuer.CheckQueued(t, want...)
			got, _ := f.jobs.Get(t.Context(), j.ID)
			if got.Status != tc.wantStatus {
				t.Errorf("job = %s, want %s", got.Status, tc.wantStatus)
			}
			if tc.wantStatus == job.StatusFailed && tc.status != job.StatusFailed && !strings.Contains(got.Reason, "gave up after 5 retries: boom") {
				t.Errorf("reason = %q, want it to say the task gave up", got.Reason)
			}
			if n := counter(t, reg, "exporter_scheduler_jobs_reconciled_total"); n != tc.reconciled {
				t.Errorf("reconciled = %v, want %v", n, tc.reconciled)
			}
		})
	}
}

// TestReconcileLeavesYoungAndGoneJobs: a job younger than StuckAfter is
// not looked at, and an id whose record is gone is skipped.
func TestReconcileLeavesYoungAndGoneJobs(t *testing.T) {
	t.Parallel()
	s, f, reg := setupFake(t)
	young := f.fakeJob(t, job.StatusInProgress, 0)
	young.CreatedAt = f.clock.now()
	f.jobs.Put(young)
	gone := f.fakeJob(t, job.StatusInProgress, 0)
	f.jobs.Remove(gone.ID)
	runTask(t, s, scheduler.TypeReconcile)
	f.enqueuer.CheckQueued(t)
	if n := counter(t, reg, "exporter_scheduler_jobs_reconciled_total"); n != 0 {
		t.Errorf("reconciled = %v, want 0", n)
	}
}

// TestExpireDecisions: a due job's package is deleted before the job
// leaves the expiry index; a job a cache hit extended keeps its package;
// a package that could not be deleted keeps its job in the index, for the
// next run to finish.
func TestExpireDecisions(t *testing.T) {
	t.Parallel()
	s, f, reg := setupFake(t)
	expired := f.fakeJob(t, job.StatusCompleted, 0)
	extended := f.fakeJob(t, job.StatusCompleted, 0)
	stuck := f.fakeJob(t, job.StatusCompleted, 0)
	for _, j := range []job.Job{expired, extended, stuck} {
		key := job.PackageKey(j.ID, j.Spec.PackageName)
		f.files.Add(key, f.clock.now())
		if j.ID == extended.ID {
			key = "" // a cache hit extended it meanwhile
		}
		f.jobs.MarkDue(j.ID, key)
	}
	f.files.FailDelete(job.PackageKey(stuck.ID, stuck.Spec.PackageName))
	err := s.Handler().ProcessTask(t.Context(), asynq.NewTask(scheduler.TypeExpire, nil))
	if err == nil || !strings.Contains(err.Error(), stuck.ID) {
		t.Errorf("expire with a package that cannot be deleted = %v, want an error naming its job", err)
	}
	want := []string{job.PackageKey(extended.ID, extended.Spec.PackageName), job.PackageKey(stuck.ID, stuck.Spec.PackageName)}
	slices.Sort(want)
	if diff := cmp.Diff(want, f.files.Keys()); diff != "" {
		t.Errorf("packages left (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{extended.ID, stuck.ID}, f.jobs.Due()); diff != "" {
		t.Errorf("jobs still due (-want +got):\n%s", diff)
	}
	if n := counter(t, reg, "exporter_scheduler_packages_expired_total"); n != 1 {
		t.Errorf("expired = %v, want 1", n)
	}
}

// TestOrphanDecisions: which old files orphans deletes, by the status of
// the job they belong to; young files and files of no job are kept.
func TestOrphanDecisions(t *testing.T) {
	t.Parallel()
	s, f, _ := setupFake(t)
	old, young := f.clock.now().Add(-2*time.Hour), f.clock.now()
	var kept, deleted []string
	for _, tc := range []struct {
		status             job.Status
		keepPart, keepFile bool
	}{
		{job.StatusInProgress, true, true},
		{job.StatusCompleted, false, true},
		{job.StatusExpired, false, true},
		{job.StatusFailed, false, false},
		{job.StatusCancelled, false, false},
		{"", false, false}, // a job whose record is gone
	} {
		j := f.fakeJob(t, tc.status, 0)
		if tc.status == "" {
			f.jobs.Remove(j.ID)
		}
		for key, keep := range map[string]bool{job.PartKey(j.ID, 0): tc.keepPart, job.PackageKey(j.ID, "p"): tc.keepFile} {
			f.files.Add(key, old)
			if keep {
				kept = append(kept, key)
			} else {
				deleted = append(deleted, key)
			}
		}
	}
	legacy := job.PackageFileKey("", "legacy.gpkg")
	f.files.Add(legacy, old)
	fresh := job.PartKey(uuid.NewString(), 0)
	f.files.Add(fresh, young)
	kept = append(kept, legacy, fresh)
	// The batch size (3) bounds a run: three runs delete all eight.
	for range 3 {
		runTask(t, s, scheduler.TypeOrphans)
	}
	slices.Sort(kept)
	if diff := cmp.Diff(kept, f.files.Keys()); diff != "" {
		t.Errorf("files left (-want +got):\n%s\ndeleted should have been %v", diff, deleted)
	}
}

// TestEnqueueDueQueuesEachSlot: EnqueueDue queues the latest slot of each
// schedule that fell due, named by its task type and slot.
func TestEnqueueDueQueuesEachSlot(t *testing.T) {
	t.Parallel()
	s, f, _ := setupFake(t)
	since := time.Date(2026, 11, 1, 12, 0, 30, 0, time.UTC)
	if err := s.EnqueueDue(t.Context(), since, since.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Expire every minute and reconcile every two fell due; only the
	// latest slot of each runs.
	want := []string{
		job.MaintenanceTaskID(scheduler.TypeExpire, time.Date(2026, 11, 1, 12, 2, 0, 0, time.UTC)),
		job.MaintenanceTaskID(scheduler.TypeReconcile, time.Date(2026, 11, 1, 12, 2, 0, 0, time.UTC)),
	}
	got := f.enqueuer.Queued()
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("slots queued (-want +got):\n%s", diff)
	}
}
