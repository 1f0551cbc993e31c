package job_test

import (
	"strings"
	"testing"
	"time"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/job/jobtest"
)

var taskOptions = job.TaskOptions{
	UrgentFrom: 100_000_000, DefaultFrom: 1000,
	RenderTimeout: 2 * time.Hour, RenderMaxRetry: 5,
	FinalizeTimeout: 3 * time.Hour, FinalizeMaxRetry: 7,
	CallbackTimeout: 10 * time.Second, CallbackMaxRetry: 9,
}

// TestEnqueuer queues each kind of task into a real Redis and reads back
// the options asynq stored: queue, retries, timeout, retention; queueing
// any of them again adds nothing.
func TestEnqueuer(t *testing.T) {
	t.Parallel()
	store, b := setup(t)
	e, err := job.NewEnqueuer(b.Queue, store, taskOptions)
	if err != nil {
		t.Fatal(err)
	}
	cb := job.Callback{URL: "http://example.com/cb", BBox: []float64{1, 2, 3, 4}}
	j, _, err := store.GetOrCreate(t.Context(), jobtest.NewJob(b.spec), job.Request{Subject: "alice", Callbacks: []job.Callback{cb}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	slot := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	failed, _, err := store.Fail(ctx, j.ID, "broken")
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		queue     string
		maxRetry  int
		timeout   time.Duration
		retention time.Duration
	}
	for _, tc := range []struct {
		name    string
		enqueue func() (bool, error)
		id      string
		want    want
	}{
		{"render", func() (bool, error) { return e.Render(ctx, j, 0) }, j.TaskIDs[0],
			want{job.QueueDefault, 5, 2 * time.Hour, 0}},
		{"finalize", func() (bool, error) { return e.Finalize(ctx, j) }, job.FinalizeTaskID(j.ID),
			want{job.QueueDefault, 7, 3 * time.Hour, 0}},
		{"callback", func() (bool, error) { return true, e.Callbacks(ctx, failed) }, job.CallbackTaskID(j.ID, job.StatusFailed, cb),
			want{job.QueueDefault, 9, 10*time.Second + job.CallbackSlack, job.DefaultRetention}},
		{"maintenance", func() (bool, error) { return e.Maintenance(ctx, "maintenance:expire", slot, time.Minute) },
			"maintenance:expire@1793534400", want{job.QueueMaintenance, 0, time.Minute, job.DefaultRetention}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if added, err := tc.enqueue(); err != nil || !added {
				t.Fatalf("enqueue = %v, %v; want added", added, err)
			}
			info, err := b.Inspector.GetTaskInfo(tc.want.queue, tc.id)
			if err != nil {
				t.Fatalf("GetTaskInfo(%s, %s): %v", tc.want.queue, tc.id, err)
			}
			got := want{info.Queue, info.MaxRetry, info.Timeout, info.Retention}
			if got != tc.want {
				t.Errorf("task %s = %+v, want %+v", tc.id, got, tc.want)
			}
			if tc.name == "callback" {
				if err := e.Callbacks(ctx, failed); err != nil {
					t.Errorf("Callbacks again = %v", err)
				}
				if tasks, _ := b.Inspector.ListPendingTasks(tc.want.queue); len(tasks) != 3 {
					t.Errorf("%d tasks pending after callbacks twice, want render, finalize and one callback", len(tasks))
				}
				return
			}
			if added, err := tc.enqueue(); err != nil || added {
				t.Errorf("enqueue again = %v, %v; want nothing added", added, err)
			}
		})
	}
	if _, err := e.Render(ctx, j, 1); err == nil || !strings.Contains(err.Error(), "no batch 1") {
		t.Errorf("Render of a batch the job lacks = %v, want an error naming it", err)
	}

	// Retentions that are set are the tasks' retentions.
	set := taskOptions
	set.CallbackRetention, set.MaintenanceRetention = 2*time.Hour, 3*time.Hour
	e2, err := job.NewEnqueuer(b.Queue, store, set)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Maintenance(ctx, "maintenance:orphans", slot, time.Minute); err != nil {
		t.Fatal(err)
	}
	if info, err := b.Inspector.GetTaskInfo(job.QueueMaintenance, job.MaintenanceTaskID("maintenance:orphans", slot)); err != nil || info.Retention != 3*time.Hour {
		t.Errorf("maintenance task with MaintenanceRetention 3h = %+v, %v; want retention 3h", info, err)
	}
	j2, _, err := store.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "bob", Callbacks: []job.Callback{cb}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	failed2, _, err := store.Fail(ctx, j2.ID, "broken")
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Callbacks(ctx, failed2); err != nil {
		t.Fatal(err)
	}
	if info, err := b.Inspector.GetTaskInfo(job.QueueDefault, job.CallbackTaskID(j2.ID, job.StatusFailed, cb)); err != nil || info.Retention != 2*time.Hour {
		t.Errorf("callback task with CallbackRetention 2h = %+v, %v; want retention 2h", info, err)
	}
}

// TestFinalizeGoesToTheAssembler: a job's finalize goes to the queue of
// the machine that claimed its assembly while that machine's heartbeat
// lasts (in real time, here a second), and to the job's queue once it has
// lapsed or when nobody claimed it; FinalizeElsewhere copies a dead
// machine's finalize into the job's queue once.
func TestFinalizeGoesToTheAssembler(t *testing.T) {
	t.Parallel()
	store, b := setup(t)
	e, err := job.NewEnqueuer(b.Queue, store, taskOptions)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	newJob := func(sub string) job.Job {
		j, _, err := store.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: sub, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		// A job of its own: the spec's cache key would join the first.
		if _, _, err := store.Fail(ctx, j.ID, "done with"); err != nil {
			t.Fatal(err)
		}
		return j
	}
	queueOf := func(tid string) string {
		for _, q := range []string{job.QueueDefault, job.MachineQueue("a")} {
			if info, err := b.Inspector.GetTaskInfo(q, tid); err == nil {
				return info.Queue
			}
		}
		return "none"
	}
	machine := job.MachineQueue("a")
	if err := store.Heartbeat(ctx, machine, time.Second); err != nil {
		t.Fatal(err)
	}
	claimed := newJob("alice")
	if ok, err := store.ClaimAssembly(ctx, claimed.ID, machine); err != nil || !ok {
		t.Fatalf("ClaimAssembly = %v, %v", ok, err)
	}
	unclaimed := newJob("bob")
	for _, j := range []job.Job{claimed, unclaimed} {
		if _, err := e.Finalize(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if got := queueOf(job.FinalizeTaskID(claimed.ID)); got != machine {
		t.Errorf("finalize of the claimed job went to %s, want the live machine's %s", got, machine)
	}
	if got := queueOf(job.FinalizeTaskID(unclaimed.ID)); got != job.QueueDefault {
		t.Errorf("finalize of the unclaimed job went to %s, want %s", got, job.QueueDefault)
	}
	if added, err := e.FinalizeElsewhere(ctx, claimed, job.FinalizeTaskID(claimed.ID)); err != nil || !added {
		t.Fatalf("FinalizeElsewhere = %v, %v; want added", added, err)
	}
	if added, err := e.FinalizeElsewhere(ctx, claimed, job.FinalizeTaskID(claimed.ID)); err != nil || added {
		t.Errorf("FinalizeElsewhere again = %v, %v; want nothing added", added, err)
	}
	if got := queueOf(job.FinalizeTaskID(claimed.ID) + job.RescueSuffix); got != job.QueueDefault {
		t.Errorf("finalize moved from the dead machine went to %s, want %s", got, job.QueueDefault)
	}

	// Once the heartbeat has lapsed, the machine is no one's assembler.
	deadline := time.Now().Add(5 * time.Second)
	for {
		alive, err := store.MachineAlive(ctx, machine)
		if err != nil {
			t.Fatal(err)
		}
		if !alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the machine's heartbeat of 1 s still lasts after 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if q, err := store.AssemblerQueue(ctx, claimed.ID); err != nil || q != "" {
		t.Errorf("AssemblerQueue after the heartbeat lapsed = %q, %v; want none", q, err)
	}
}

func TestTaskOptionsValidate(t *testing.T) {
	t.Parallel()
	if err := taskOptions.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	bad := taskOptions
	bad.FinalizeTimeout, bad.CallbackMaxRetry, bad.UrgentFrom = 0, -1, 10
	bad.MaintenanceRetention = -time.Second
	err := bad.Validate()
	for _, want := range []string{"timeouts must be positive", "retries must not be negative", "urgent-from 10 must be above default-from 1000", "retention must not be negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a problem saying %q", err, want)
		}
	}
}
