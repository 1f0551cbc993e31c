package job_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/job/jobtest"
)

func TestOverview(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := t.Context()
	want := job.Overview{MaintenanceSucceeded: map[string]time.Time{}}
	check := func(step string) {
		t.Helper()
		got, err := s.Overview(ctx)
		if err != nil {
			t.Fatalf("%s: Overview() error %v", step, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: Overview() (-want +got):\n%s", step, diff)
		}
	}
	check("empty store")

	// Four exports of distinct areas, each estimated at 1000 bytes.
	var jobs []job.Job
	for i := range 4 {
		x := 34.81 + float64(i)*0.1
		spec := jobtest.DemoSpec(t, grid.BBox{MinX: x, MinY: 31.95, MaxX: x + 0.01, MaxY: 31.96}, 14, 1000, 0)
		j, outcome, err := s.GetOrCreate(ctx, jobtest.NewJob(spec), job.Request{Subject: "alice", TTL: time.Hour})
		if err != nil || outcome != job.OutcomeCreated {
			t.Fatalf("GetOrCreate(%d) = %v, %v; want created", i, outcome, err)
		}
		jobs = append(jobs, j)
	}
	// Joining a running export adds no job.
	if _, outcome, err := s.GetOrCreate(ctx, jobtest.NewJob(jobs[0].Spec), job.Request{Subject: "bob", TTL: time.Hour}); err != nil || outcome != job.OutcomeJoined {
		t.Fatalf("GetOrCreate(same area) = %v, %v; want joined", outcome, err)
	}
	want.Running, want.Reserved = 4, 4*jobs[0].Spec.EstimatedBytes
	check("four created")

	if _, _, err := s.Complete(ctx, jobs[0].ID, job.Result{FileKey: "k", FileSize: 700}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Fail(ctx, jobs[1].ID, "source broke"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Cancel(ctx, jobs[2].ID, "no longer needed"); err != nil {
		t.Fatal(err)
	}
	// Ending an ended job again changes nothing.
	if _, _, err := s.Cancel(ctx, jobs[0].ID, "too late"); err != nil {
		t.Fatal(err)
	}
	want.Running, want.Stored, want.Reserved = 1, 700, jobs[3].Spec.EstimatedBytes
	check("one completed, one failed, one cancelled")

	at := b.clock.now()
	if err := s.MaintenanceSucceeded(ctx, "maintenance:expire", at); err != nil {
		t.Fatal(err)
	}
	// A slow run that ends after a newer one does not move the time back.
	if err := s.MaintenanceSucceeded(ctx, "maintenance:expire", at.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.MaintenanceSucceeded(ctx, "maintenance:clean", at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	want.MaintenanceSucceeded = map[string]time.Time{"maintenance:expire": at, "maintenance:clean": at.Add(time.Second)}
	check("maintenance ran")
}
