package scheduler_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/testenv"
	"github.com/geoexport/exporter/scheduler"
)

// gauges reads every gauge of reg whose name is in names, keyed by name
// and the value of its one label, if any ("name" or "name/value").
func gauges(t *testing.T, reg *prometheus.Registry, names ...string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "/" + l.GetValue()
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestOverviewMetrics: the scheduler reports the running exports, the
// quota's counts and the last successful maintenance runs from Redis, so
// they are right whichever process created, ended or ran them.
func TestOverviewMetrics(t *testing.T) {
	t.Parallel()
	_, b, _ := setup(t)
	enqueuer, err := job.NewEnqueuer(b.queue, b.jobs, taskOptions)
	if err != nil {
		t.Fatal(err)
	}
	s, reg := newSchedulerOn(t, scheduler.Deps{Jobs: b.jobs, Files: b.files, Enqueuer: enqueuer, Tasks: b.inspector, Now: b.clock.now, QuotaBytes: 1 << 30})
	names := []string{"exporter_jobs_running", "exporter_storage_stored_bytes", "exporter_storage_reserved_bytes",
		"exporter_storage_quota_bytes", "exporter_scheduler_last_success_timestamp_seconds", "exporter_scheduler_overview_up"}
	intervals := map[string]float64{
		"exporter_scheduler_interval_seconds/" + scheduler.TypeExpire:    60,
		"exporter_scheduler_interval_seconds/" + scheduler.TypeOrphans:   900,
		"exporter_scheduler_interval_seconds/" + scheduler.TypeClean:     3600,
		"exporter_scheduler_interval_seconds/" + scheduler.TypeReconcile: 120,
	}
	if diff := cmp.Diff(intervals, gauges(t, reg, "exporter_scheduler_interval_seconds")); diff != "" {
		t.Errorf("intervals of the default schedules (-want +got):\n%s", diff)
	}

	// Jobs made through another store on the same Redis, as another
	// process would; no maintenance has run yet.
	other := job.NewStore(b.rdb, "test", b.clock.now)
	a := newJob(t, &bundle{rdb: b.rdb, jobs: other, clock: b.clock}, 0, 0)
	c := newJob(t, b, 1, 0)
	d := newJob(t, b, 2, 0)
	want := map[string]float64{
		"exporter_jobs_running": 3, "exporter_storage_stored_bytes": 0,
		"exporter_storage_reserved_bytes": float64(a.Spec.EstimatedBytes + c.Spec.EstimatedBytes + d.Spec.EstimatedBytes),
		"exporter_storage_quota_bytes":    1 << 30, "exporter_scheduler_overview_up": 1,
	}
	if diff := cmp.Diff(want, gauges(t, reg, names...)); diff != "" {
		t.Errorf("three running (-want +got):\n%s", diff)
	}

	complete(t, b, a, time.Hour)
	if _, _, err := other.Fail(t.Context(), c.ID, "source broke"); err != nil {
		t.Fatal(err)
	}
	runTask(t, s, scheduler.TypeExpire)
	want["exporter_jobs_running"] = 1
	want["exporter_storage_stored_bytes"], want["exporter_storage_reserved_bytes"] = 4, float64(d.Spec.EstimatedBytes)
	want["exporter_scheduler_last_success_timestamp_seconds/"+scheduler.TypeExpire] = float64(b.clock.now().UnixMilli()) / 1000
	if diff := cmp.Diff(want, gauges(t, reg, names...)); diff != "" {
		t.Errorf("one completed, one failed, expiry ran (-want +got):\n%s", diff)
	}

	// Redis unreachable: the scrape still answers, without the gauges read
	// from it.
	dead := redis.NewClient(&redis.Options{Addr: testenv.RefusingAddr(t), MaxRetries: -1})
	t.Cleanup(func() { dead.Close() })
	_, reg = newSchedulerOn(t, scheduler.Deps{Jobs: job.NewStore(dead, "test", b.clock.now), Files: b.files, Enqueuer: enqueuer, Tasks: b.inspector, Now: b.clock.now, QuotaBytes: 1 << 30})
	got := gauges(t, reg, names...)
	if got["exporter_scheduler_overview_up"] != 0 || got["exporter_storage_quota_bytes"] != 1<<30 || len(got) != 2 {
		t.Errorf("gauges without Redis = %v, want only overview_up 0 and the quota", got)
	}
}
