package job_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/job/jobtest"
	"github.com/geoexport/exporter/internal/testenv"
)

func TestUnavailableClassifies(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"not found", job.ErrNotFound, false},
		{"other", errors.New("decode job: bad json"), false},
		{"network", fmt.Errorf("get job: %w", refused), true},
		{"deadline", context.DeadlineExceeded, true},
		{"pool timeout", redis.ErrPoolTimeout, true},
		{"cancelled by the caller", context.Canceled, false},
	} {
		got := job.Unavailable(tc.err)
		if errors.Is(got, job.ErrUnavailable) != tc.want {
			t.Errorf("%s: Unavailable(%v) = %v; want ErrUnavailable: %v", tc.name, tc.err, got, tc.want)
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("%s: Unavailable(%v) = %v, which no longer wraps the error", tc.name, tc.err, got)
		}
	}
}

// TestStoreUnavailable drives the store against real servers in the states
// a failover passes through, and checks which errors are ErrUnavailable.
func TestStoreUnavailable(t *testing.T) {
	t.Parallel()
	_, b := setup(t) // skips under -short
	primary := testenv.StartRedis(t)
	replica := testenv.StartReplica(t, primary)
	// A replica told not to serve stale data answers MASTERDOWN once its
	// primary is gone.
	strict := testenv.StartReplica(t, primary, "--replica-serve-stale-data", "no")
	store := func(addr string) *job.Store {
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
		t.Cleanup(func() { rdb.Close() })
		return job.NewStore(rdb, "test", nil)
	}
	ctx := t.Context()
	create := func(s *job.Store) error {
		_, _, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "alice", TTL: time.Hour})
		return err
	}

	// Healthy: no error; an unknown job is ErrNotFound, not unavailable.
	if err := create(store(primary.Addr)); err != nil {
		t.Fatal(err)
	}
	if _, err := store(primary.Addr).Get(ctx, "nope"); !errors.Is(err, job.ErrNotFound) || errors.Is(err, job.ErrUnavailable) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound only", err)
	}
	// A wrong type is a fault, not an outage.
	rdb := redis.NewClient(&redis.Options{Addr: primary.Addr})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Set(ctx, "test:job:wrongtype", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := store(primary.Addr).Get(ctx, "wrongtype"); err == nil || errors.Is(err, job.ErrUnavailable) {
		t.Errorf("Get(a string key) = %v, want an error that is not ErrUnavailable", err)
	}

	// A replica refuses writes: READONLY.
	if err := create(store(replica.Addr)); !errors.Is(err, job.ErrUnavailable) {
		t.Errorf("GetOrCreate on a replica = %v, want ErrUnavailable (READONLY)", err)
	}

	// The primary dies: refused connections; its strict replica: MASTERDOWN.
	if err := primary.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := create(store(primary.Addr)); !errors.Is(err, job.ErrUnavailable) {
		t.Errorf("GetOrCreate on a dead server = %v, want ErrUnavailable", err)
	}
	if _, err := store(primary.Addr).Get(ctx, "x"); !errors.Is(err, job.ErrUnavailable) {
		t.Errorf("Get on a dead server = %v, want ErrUnavailable", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := store(strict.Addr).Get(ctx, "x")
		if errors.Is(err, job.ErrUnavailable) && redis.IsMasterDownError(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get on a replica without its primary = %v, want ErrUnavailable (MASTERDOWN)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A deadline while Redis does not answer.
	stalled := testenv.StartRedis(t)
	stalledStore := store(stalled.Addr) // closed after the server continues
	if err := syscall.Kill(stalled.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(stalled.Pid(), syscall.SIGCONT) })
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := stalledStore.Get(tctx, "x"); !errors.Is(err, job.ErrUnavailable) {
		t.Errorf("Get on a stalled server = %v, want ErrUnavailable", err)
	}
}

// TestStoreWaitsForReplicas: with WithWait, a job's state changes are on
// the replica when they return, and a change fewer replicas acknowledged
// in time is ErrUnavailable, although the primary has it.
func TestStoreWaitsForReplicas(t *testing.T) {
	t.Parallel()
	_, b := setup(t) // skips under -short
	primary := testenv.StartRedis(t)
	replica := testenv.StartReplica(t, primary)
	client := func(addr string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { c.Close() })
		return c
	}
	onPrimary, onReplica := client(primary.Addr), client(replica.Addr)
	ctx := t.Context()
	stored := func(id string) bool {
		n, err := onReplica.Exists(ctx, "test:job:"+id).Result()
		return err == nil && n == 1
	}

	s := job.NewStore(onPrimary, "test", nil).WithWait(1, time.Second)
	j, outcome, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "alice", TTL: time.Hour})
	if err != nil || outcome != job.OutcomeCreated {
		t.Fatalf("GetOrCreate waiting for 1 replica = %v, %v", outcome, err)
	}
	if !stored(j.ID) {
		t.Error("new job not on the replica when GetOrCreate returned")
	}
	done, _, err := s.Complete(ctx, j.ID, job.Result{FileKey: "packages/x.gpkg", FileSize: 1}, time.Hour)
	if err != nil || done.Status != job.StatusCompleted {
		t.Fatalf("Complete waiting for 1 replica = %+v, %v", done, err)
	}
	if st, err := onReplica.HGet(ctx, "test:job:"+j.ID, "status").Result(); err != nil || st != "Completed" {
		t.Errorf("status on the replica when Complete returned = %q, %v; want Completed", st, err)
	}

	// Two replicas asked for, one there: the change is made, and reported.
	strict := job.NewStore(onPrimary, "test", nil).WithWait(2, 100*time.Millisecond)
	spec := b.spec
	spec.Zoom-- // another export
	other := jobtest.NewJob(spec)
	_, _, err = strict.GetOrCreate(ctx, other, job.Request{Subject: "alice", TTL: time.Hour})
	if !errors.Is(err, job.ErrUnavailable) || !strings.Contains(err.Error(), "1 of 2 replicas") {
		t.Errorf("GetOrCreate waiting for 2 of 1 replicas = %v, want ErrUnavailable naming 1 of 2", err)
	}
	if _, err := strict.Get(ctx, other.ID); err != nil {
		t.Errorf("the job the primary took is missing: %v", err)
	}

	// A cache hit pushes the expiry out: it waits as well.
	if _, outcome, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "bob", TTL: 2 * time.Hour}); err != nil || outcome != job.OutcomeCacheHit {
		t.Errorf("cache hit waiting for 1 replica = %v, %v", outcome, err)
	}
	if _, _, err := strict.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "bob", TTL: 3 * time.Hour}); !errors.Is(err, job.ErrUnavailable) {
		t.Errorf("cache hit waiting for 2 of 1 replicas = %v, want ErrUnavailable", err)
	}
}
