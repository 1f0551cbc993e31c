package worker_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/job/jobtest"
)

// TestFinalizeAdoptsStoredPackage: the Completed write of a finalize is
// lost after its package was stored and its parts deleted; the finalize
// that reconcile queues again completes the job with the stored package.
func TestFinalizeAdoptsStoredPackage(t *testing.T) {
	t.Parallel()
	w, b := setup(t)
	j := createBatched(t, b, seedBBox, 14, 10)
	for i := range j.Spec.Plan() {
		if err := w.Handler().ProcessTask(t.Context(), batchTask(t, j, i)); err != nil {
			t.Fatalf("render batch %d: %v", i, err)
		}
	}
	if err := w.Handler().ProcessTask(t.Context(), finalizeTask(t, j)); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	done, err := b.jobs.Get(t.Context(), j.ID)
	if err != nil || done.Status != job.StatusCompleted {
		t.Fatalf("job after finalize = %+v, %v", done, err)
	}
	stored, _, err := b.jobs.Usage(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	jobtest.LoseComplete(t, b.rdb, "test", done.ID)
	if got, _ := b.jobs.Get(t.Context(), j.ID); got.Status != job.StatusInProgress {
		t.Fatalf("job after the lost write = %s, want In-Progress", got.Status)
	}
	for info, err := range b.files.List(t.Context(), job.PartsPrefix(j.ID)) {
		t.Fatalf("part %s still stored (%v): the test needs them gone", info.Key, err)
	}

	if err := w.Handler().ProcessTask(t.Context(), finalizeTask(t, j)); err != nil {
		t.Fatalf("finalize after the lost write: %v", err)
	}
	again, err := b.jobs.Get(t.Context(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(done, again, cmpopts.IgnoreFields(job.Job{}, "UpdatedAt", "CompletedAt", "ExpiresAt")); diff != "" {
		t.Errorf("job completed again with the stored package (-first +again):\n%s", diff)
	}
	if s, r, err := b.jobs.Usage(t.Context()); err != nil || s != stored || r != 0 {
		t.Errorf("quota after the repair = %d stored, %d reserved (%v); want %d and 0", s, r, err, stored)
	}
	if got := download(t, b, again.FileKey); got == nil {
		t.Error("stored package gone")
	}
}
