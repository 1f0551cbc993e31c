package worker_test

// The decisions of the worker's steps, run against small in-memory fakes
// of the job store, the storage and the enqueue API, so they run under
// -short. The real-Redis tests in worker_test.go cover the same paths end
// to end.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/job/jobtest"
	"github.com/geoexport/exporter/internal/storage"
	"github.com/geoexport/exporter/internal/storage/storagetest"
	"github.com/geoexport/exporter/worker"
)

var (
	_ worker.Jobs     = (*job.Store)(nil)
	_ worker.Enqueuer = (*job.Enqueuer)(nil)
	_ worker.Jobs     = (*jobtest.Store)(nil)
	_ worker.Files    = (*storagetest.Files)(nil)
	_ worker.Enqueuer = (*jobtest.Enqueuer)(nil)
)

type fakes struct {
	jobs     *jobtest.Store
	files    *storagetest.Files
	enqueuer *jobtest.Enqueuer
}

// setupFake builds a worker over fakes; it runs tasks through Handler
// only, so it needs no Redis.
func setupFake(t *testing.T) (*worker.Worker, *fakes) {
	t.Helper()
	f := &fakes{jobs: jobtest.NewStore(time.Now), files: storagetest.New(), enqueuer: &jobtest.Enqueuer{}}
	w, err := worker.New(worker.Config{
		Concurrency: 1, Fetchers: 1, Encoders: 1, QueueWeights: [3]int{6, 3, 1},
		TempDir: t.TempDir(), ShutdownTimeout: time.Second, PublicURL: "http://exporter.test",
		PackageTTL: time.Hour, CallbackTimeout: time.Second,
	}, worker.Deps{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Jobs: f.jobs, Files: f.files, Enqueuer: f.enqueuer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w, f
}

// fakeJob stores a job of the demo layer over the seed bbox at zoom 14 in
// status st, cut into batches of at most batchTiles tiles (0: one batch).
func (f *fakes) fakeJob(t *testing.T, st job.Status, batchTiles int64) job.Job {
	t.Helper()
	return f.jobs.Add(jobtest.DemoSpec(t, seedBBox, 14, 1000, batchTiles), st, time.Time{})
}

// TestRenderOfJobNoLongerRunning: a render of a job that left In-Progress
// renders nothing and stores nothing; a Completed job only has its
// callers told again, an unknown job is a permanent error.
func TestRenderOfJobNoLongerRunning(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status job.Status
		queued func(job.Job) []string
	}{
		{job.StatusCancelled, func(job.Job) []string { return nil }},
		{job.StatusExpired, func(job.Job) []string { return nil }},
		{job.StatusFailed, func(job.Job) []string { return nil }},
		{job.StatusCompleted, func(j job.Job) []string { return []string{"callbacks " + j.ID + " Completed"} }},
	} {
		t.Run(string(tc.status), func(t *testing.T) {
			t.Parallel()
			w, f := setupFake(t)
			j := f.fakeJob(t, tc.status, 10)
			if err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, 0)); err != nil {
				t.Fatalf("render of a %s job = %v, want nil", tc.status, err)
			}
			f.enqueuer.CheckQueued(t, tc.queued(j)...)
			if keys := f.files.Keys(); len(keys) != 0 {
				t.Errorf("render of a %s job stored %v", tc.status, keys)
			}
			if got, _ := f.jobs.Get(t.Context(), j.ID); got.Status != tc.status {
				t.Errorf("job status = %s, want it left %s", got.Status, tc.status)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		w, f := setupFake(t)
		j := f.fakeJob(t, job.StatusInProgress, 0)
		j.ID = uuid.NewString()
		if err := w.Handler().ProcessTask(t.Context(), renderTask(t, j)); !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, job.ErrNotFound) {
			t.Errorf("render of an unknown job = %v, want SkipRetry and job.ErrNotFound", err)
		}
		f.enqueuer.CheckQueued(t)
	})
}

// TestRenderOfStoredBatch: a batch already in the done-set is not
// rendered again; the one that completes the set queues finalize, one
// that does not queues nothing.
func TestRenderOfStoredBatch(t *testing.T) {
	t.Parallel()
	w, f := setupFake(t)
	j := f.fakeJob(t, job.StatusInProgress, 10)
	if len(j.TaskIDs) < 2 {
		t.Fatalf("job of %d batches, want several", len(j.TaskIDs))
	}
	if _, err := f.jobs.BatchDone(t.Context(), j.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, 0)); err != nil {
		t.Fatal(err)
	}
	f.enqueuer.CheckQueued(t)
	for i := 1; i < len(j.TaskIDs); i++ {
		if _, err := f.jobs.BatchDone(t.Context(), j.ID, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, 0)); err != nil {
		t.Fatal(err)
	}
	f.enqueuer.CheckQueued(t, "finalize "+j.ID)
	if keys := f.files.Keys(); len(keys) != 0 {
		t.Errorf("a stored batch was rendered again: %v", keys)
	}
}

// TestRenderPermanentFailureFailsJob: an error that ends the task for
// good fails the job with its reason, deletes its parts and tells its
// callers; the job is failed once.
func TestRenderPermanentFailureFailsJob(t *testing.T) {
	t.Parallel()
	w, f := setupFake(t)
	j := f.fakeJob(t, job.StatusInProgress, 10)
	part := job.PartKey(j.ID, 0)
	if err := f.files.PutFile(t.Context(), part, "", ""); err != nil {
		t.Fatal(err)
	}
	// A batch the job lacks: permanent.
	err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, len(j.TaskIDs)))
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("render of a missing batch = %v, want SkipRetry", err)
	}
	got, _ := f.jobs.Get(t.Context(), j.ID)
	if got.Status != job.StatusFailed || !strings.Contains(got.Reason, fmt.Sprintf("has no batch %d", len(j.TaskIDs))) ||
		strings.Contains(got.Reason, asynq.SkipRetry.Error()) {
		t.Errorf("job = %s %q, want Failed naming the batch, without asynq's marker", got.Status, got.Reason)
	}
	if keys := f.files.Keys(); len(keys) != 0 {
		t.Errorf("parts of the failed job left: %v", keys)
	}
	f.enqueuer.CheckQueued(t, "callbacks "+j.ID+" Failed")
}

// TestRenderStoppedByShutdown: a task whose context ends while its job
// is still running (a worker shutting down) is handed back to the queue:
// not for good, and the job stays In-Progress.
func TestRenderStoppedByShutdown(t *testing.T) {
	t.Parallel()
	w, f := setupFake(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	j := f.fakeJob(t, job.StatusInProgress, 0)
	err := w.Handler().ProcessTask(ctx, renderTask(t, j))
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("render stopped by shutdown = %v; want an error asynq retries", err)
	}
	if got, _ := f.jobs.Get(t.Context(), j.ID); got.Status != job.StatusInProgress {
		t.Errorf("render stopped by shutdown left the job %s, want In-Progress", got.Status)
	}
	f.enqueuer.CheckQueued(t)
}

// TestRenderRacingCancel: a job cancelled while its batch renders keeps
// nothing the batch made, is not failed, and the task ends without a
// retry; nothing is queued, since the cancel told the callers.
func TestRenderRacingCancel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		batchTiles int64
		// nilOK: the cancel may be found by Complete, which ends the
		// task well, rather than by a status check.
		nilOK bool
	}{
		// The part is stored, then the status check finds the cancel
		// (unless a progress update found it first).
		{"part", 10, false},
		// The package is stored, then Complete finds the job cancelled
		// (unless a progress update found it first).
		{"package", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, f := setupFake(t)
			j := f.fakeJob(t, job.StatusInProgress, tc.batchTiles)
			// The cancel lands once the task has read the job.
			f.jobs.OnGet = func(id string) { _, _, _ = f.jobs.End(id, job.StatusCancelled, nil) }
			err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, 0))
			if err == nil && !tc.nilOK || err != nil && !errors.Is(err, asynq.SkipRetry) {
				t.Errorf("render racing a cancel = %v, want SkipRetry", err)
			}
			if got, _ := f.jobs.Get(t.Context(), j.ID); got.Status != job.StatusCancelled {
				t.Errorf("job = %s, want Cancelled", got.Status)
			}
			if keys := f.files.Keys(); len(keys) != 0 {
				t.Errorf("files of the cancelled job left: %v", keys)
			}
			f.enqueuer.CheckQueued(t)
		})
	}
}

// TestFinalizeOfJobNoLongerRunning: finalize of a job that left
// In-Progress merges nothing and removes its parts; a Completed job also
// has its callers told again.
func TestFinalizeOfJobNoLongerRunning(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status  job.Status
		tellsTo bool
	}{
		{job.StatusCancelled, false},
		{job.StatusExpired, false},
		{job.StatusFailed, false},
		{job.StatusCompleted, true},
	} {
		t.Run(string(tc.status), func(t *testing.T) {
			t.Parallel()
			w, f := setupFake(t)
			j := f.fakeJob(t, tc.status, 10)
			for i := range j.TaskIDs {
				if err := f.files.PutFile(t.Context(), job.PartKey(j.ID, i), "", ""); err != nil {
					t.Fatal(err)
				}
			}
			other := job.PartKey(uuid.NewString(), 0)
			if err := f.files.PutFile(t.Context(), other, "", ""); err != nil {
				t.Fatal(err)
			}
			if err := w.Handler().ProcessTask(t.Context(), finalizeTask(t, j)); err != nil {
				t.Fatalf("finalize of a %s job = %v", tc.status, err)
			}
			if diff := cmp.Diff([]string{other}, f.files.Keys()); diff != "" {
				t.Errorf("files left (-want +got):\n%s", diff)
			}
			var want []string
			if tc.tellsTo {
				want = []string{"callbacks " + j.ID + " " + string(tc.status)}
			}
			f.enqueuer.CheckQueued(t, want...)
		})
	}
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		w, f := setupFake(t)
		j := f.fakeJob(t, job.StatusInProgress, 10)
		j.ID = uuid.NewString()
		if err := w.Handler().ProcessTask(t.Context(), finalizeTask(t, j)); !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("finalize of an unknown job = %v, want SkipRetry", err)
		}
	})
}

// TestFinalizeMissingPartIsRetried: a part that is not stored (yet) is a
// transient error: the job stays In-Progress for the retry.
func TestFinalizeMissingPartIsRetried(t *testing.T) {
	t.Parallel()
	w, f := setupFake(t)
	j := f.fakeJob(t, job.StatusInProgress, 10)
	err := w.Handler().ProcessTask(t.Context(), finalizeTask(t, j))
	if err == nil || errors.Is(err, asynq.SkipRetry) || !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("finalize with a part missing = %v, want a retried storage.ErrNotFound", err)
	}
	if got, _ := f.jobs.Get(t.Context(), j.ID); got.Status != job.StatusInProgress {
		t.Errorf("job = %s, want In-Progress", got.Status)
	}
	f.enqueuer.CheckQueued(t)
}
