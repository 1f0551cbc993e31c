package scheduler_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/storage"
	"github.com/geoexport/exporter/internal/testenv"
	"github.com/geoexport/exporter/scheduler"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"))
}

var _ scheduler.Files = (*storage.Local)(nil)
var _ scheduler.Files = (*storage.S3)(nil)

type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time { return time.UnixMilli(c.ms.Load()) }

type bundle struct {
	rdb   *redis.Client
	jobs  *job.Store
	files *storage.Local
	clock *clock
}

func setup(t *testing.T) *bundle {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	t.Cleanup(func() { rdb.Close() })
	files, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	c.ms.Store(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	return &bundle{rdb: rdb, jobs: job.NewStore(rdb, "test", c.now), files: files, clock: c}
}

func newScheduler(t *testing.T, b *bundle) (*scheduler.Scheduler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := scheduler.New(scheduler.Config{LeaseKey: "test:lease", BatchSize: 3}, slog.New(slog.DiscardHandler), reg, b.rdb, b.jobs, b.files)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

// completed stores a Completed job with a package file, expiring after ttl.
func completed(t *testing.T, b *bundle, i int, ttl time.Duration) job.Job {
	t.Helper()
	layer := catalog.Demo().Layers()[0]
	z := grid.Zoom(10 + i%8)
	extent, err := grid.Sanitize(grid.BBox{MinX: 34.5 + float64(i)*0.01, MinY: 31, MaxX: 34.51 + float64(i)*0.01, MaxY: 31.01}, layer.Footprint, z)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	j, _, err := b.jobs.GetOrCreate(t.Context(), job.Job{ID: id, Spec: job.NewSpec(layer, z, extent, 0), TaskIDs: job.TaskIDs(id, 1)}, job.Request{Subject: "alice", TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	key := job.PackageKey(j.Spec.PackageName)
	if err := b.files.Put(t.Context(), key, strings.NewReader("gpkg"), 4, ""); err != nil {
		t.Fatal(err)
	}
	j, _, err = b.jobs.Complete(t.Context(), j.ID, job.Result{FileKey: key, FileSize: 4}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestExpire(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s, reg := newScheduler(t, b)
	var due []job.Job
	for i := range 5 {
		due = append(due, completed(t, b, i, time.Hour))
	}
	kept := completed(t, b, 9, 3*time.Hour)
	b.clock.ms.Add((2 * time.Hour).Milliseconds())

	// Batches of three: two runs expire all five.
	for range 2 {
		if err := s.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for _, j := range due {
		got, _ := b.jobs.Get(t.Context(), j.ID)
		if got.Status != job.StatusExpired {
			t.Errorf("job %s is %s, want Expired", j.ID, got.Status)
		}
		if _, err := b.files.Stat(t.Context(), j.FileKey); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("package %s still stored: %v", j.FileKey, err)
		}
	}
	if got, _ := b.jobs.Get(t.Context(), kept.ID); got.Status != job.StatusCompleted {
		t.Errorf("unexpired job is %s, want Completed", got.Status)
	}
	if _, err := b.files.Stat(t.Context(), kept.FileKey); err != nil {
		t.Errorf("unexpired package gone: %v", err)
	}
	if n := expired(t, reg); n != 5 {
		t.Errorf("expired counter = %v, want 5", n)
	}
	// The next identical request builds a new package.
	fresh := job.Job{ID: uuid.NewString(), Spec: due[0].Spec}
	fresh.TaskIDs = job.TaskIDs(fresh.ID, 1)
	if _, outcome, err := b.jobs.GetOrCreate(t.Context(), fresh, job.Request{Subject: "alice", TTL: time.Hour}); err != nil || outcome != job.OutcomeCreated {
		t.Errorf("request after expiry = %v, %v; want a new job", outcome, err)
	}
}

// expired reads exporter_scheduler_packages_expired_total from reg.
func expired(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "exporter_scheduler_packages_expired_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("exporter_scheduler_packages_expired_total not registered")
	return 0
}

func TestExpireRespectsCacheHitExtension(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s, _ := newScheduler(t, b)
	j := completed(t, b, 0, time.Hour)
	b.clock.ms.Add((50 * time.Minute).Milliseconds())
	// A cache hit pushes the expiry out by another hour.
	again := job.Job{ID: uuid.NewString(), Spec: j.Spec}
	again.TaskIDs = job.TaskIDs(again.ID, 1)
	if _, outcome, err := b.jobs.GetOrCreate(t.Context(), again, job.Request{Subject: "alice", TTL: time.Hour}); err != nil || outcome != job.OutcomeCacheHit {
		t.Fatalf("cache hit = %v, %v", outcome, err)
	}
	b.clock.ms.Add((30 * time.Minute).Milliseconds())
	if err := s.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.jobs.Get(t.Context(), j.ID); got.Status != job.StatusCompleted {
		t.Errorf("extended job is %s, want Completed", got.Status)
	}
}

func TestTwoSchedulersRunOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s1, reg1 := newScheduler(t, b)
	s2, reg2 := newScheduler(t, b)
	for i := range 3 {
		completed(t, b, i, time.Hour)
	}
	b.clock.ms.Add((2 * time.Hour).Milliseconds())
	var wg sync.WaitGroup
	for _, s := range []*scheduler.Scheduler{s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.RunOnce(t.Context()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	total := expired(t, reg1) + expired(t, reg2)
	if total != 3 {
		t.Errorf("two schedulers expired %v packages in all, want exactly 3", total)
	}
	if n, _ := b.rdb.Exists(t.Context(), "test:lease").Result(); n != 0 {
		t.Error("lease not released after the run")
	}
}

func TestRunStopsWithContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s, _ := newScheduler(t, b)
	rctx, rcancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	rcancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
