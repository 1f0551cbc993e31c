package job_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/geoexport/exporter/internal/grid"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/job/jobtest"
	"github.com/geoexport/exporter/internal/testenv"
)

// clock is a settable clock for the store.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

type bundle struct {
	*testenv.RedisClients
	clock *clock
	spec  job.Spec
}

func setup(t *testing.T) (*job.Store, *bundle) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs redis-server; skipped under -short")
	}
	rc := testenv.NewRedisClients(t)
	c := &clock{}
	c.ms.Store(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	spec := jobtest.DemoSpec(t, grid.BBox{MinX: 34.81, MinY: 31.95, MaxX: 34.82, MaxY: 31.96}, 14, 1000, 0)
	return job.NewStore(rc.RDB, "test", c.now), &bundle{RedisClients: rc, clock: c, spec: spec}
}

func TestGetOrCreateConcurrent(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := t.Context()
	const n = 200
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ids     = map[string]int{}
		created atomic.Int32
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every fourth caller repeats a callback, so 150 are distinct.
			cb := job.Callback{URL: fmt.Sprintf("http://client.test/cb/%d", i-(i%4/3)), BBox: []float64{1, 2, 3, 4}}
			j, outcome, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "alice", Callbacks: []job.Callback{cb}, TTL: time.Hour})
			if err != nil {
				t.Error(err)
				return
			}
			if outcome == job.OutcomeCreated {
				created.Add(1)
			}
			mu.Lock()
			ids[j.ID]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if created.Load() != 1 || len(ids) != 1 {
		t.Fatalf("%d concurrent identical requests: %d created, %d distinct jobs, want 1 and 1", n, created.Load(), len(ids))
	}
	for id := range ids {
		cbs, err := s.Callbacks(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		distinct := map[string]bool{}
		for i := range n {
			distinct[fmt.Sprintf("http://client.test/cb/%d", i-(i%4/3))] = true
		}
		if len(cbs) != len(distinct) {
			t.Errorf("Callbacks(%s) holds %d, want %d distinct", id, len(cbs), len(distinct))
		}
	}
}

func TestGetOrCreateLifecycle(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := t.Context()
	cb1 := job.Callback{URL: "http://a.test/cb", BBox: []float64{34.81, 31.95, 34.82, 31.96}}
	cb2 := job.Callback{URL: "http://b.test/cb", BBox: []float64{34.811, 31.951, 34.821, 31.961}}

	first, outcome, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "alice", Callbacks: []job.Callback{cb1}, TTL: time.Hour})
	if err != nil || outcome != job.OutcomeCreated || first.Status != job.StatusInProgress {
		t.Fatalf("GetOrCreate(new) = %v, %v, %v; want created In-Progress", first.Status, outcome, err)
	}
	joined, outcome, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "alice", Callbacks: []job.Callback{cb2, cb1}, TTL: time.Hour})
	if err != nil || outcome != job.OutcomeJoined || joined.ID != first.ID {
		t.Fatalf("GetOrCreate(running) = %s, %v, %v; want joined %s", joined.ID, outcome, err, first.ID)
	}
	if diff := cmp.Diff(first.TaskIDs, joined.TaskIDs); diff != "" {
		t.Errorf("joined task ids differ (-want +got):\n%s", diff)
	}
	cbs, _ := s.Callbacks(ctx, first.ID)
	sortCB := cmpopts.SortSlices(func(a, b job.Callback) bool { return a.URL < b.URL })
	if diff := cmp.Diff([]job.Callback{cb1, cb2}, cbs, sortCB); diff != "" {
		t.Errorf("Callbacks mismatch (-want +got):\n%s", diff)
	}

	done, changed, err := s.Complete(ctx, first.ID, job.Result{FileKey: "packages/x.gpkg", FileSize: 42, SHA256: "ab", TilesStored: 18}, time.Hour)
	if err != nil || !changed || done.Status != job.StatusCompleted {
		t.Fatalf("Complete = %v, %v, %v; want Completed, changed", done.Status, changed, err)
	}
	wantExpiry := b.clock.now().Add(time.Hour).UTC()
	if !done.ExpiresAt.Equal(wantExpiry) || done.Percentage() != 100 {
		t.Errorf("Complete: expires %v, percentage %d; want %v, 100", done.ExpiresAt, done.Percentage(), wantExpiry)
	}
	if _, changed, _ := s.Complete(ctx, first.ID, job.Result{FileKey: "other"}, time.Hour); changed {
		t.Error("Complete on a Completed job changed it")
	}

	b.clock.advance(30 * time.Minute)
	hit, outcome, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "alice", TTL: time.Hour})
	if err != nil || outcome != job.OutcomeCacheHit || hit.ID != first.ID {
		t.Fatalf("GetOrCreate(completed) = %s, %v, %v; want cache hit on %s", hit.ID, outcome, err, first.ID)
	}
	if want := b.clock.now().Add(time.Hour).UTC(); !hit.ExpiresAt.Equal(want) {
		t.Errorf("cache hit expiry = %v, want pushed out to %v", hit.ExpiresAt, want)
	}

	// Not yet due: the hit extended it.
	b.clock.advance(45 * time.Minute)
	due, err := s.DueForExpiry(ctx, 10)
	if err != nil || len(due) != 0 {
		t.Fatalf("DueForExpiry after extension = %v, %v; want none", due, err)
	}
	b.clock.advance(30 * time.Minute)
	due, _ = s.DueForExpiry(ctx, 10)
	if diff := cmp.Diff([]string{first.ID}, due); diff != "" {
		t.Fatalf("DueForExpiry mismatch (-want +got):\n%s", diff)
	}
	key, err := s.Expire(ctx, first.ID)
	if err != nil || key != "packages/x.gpkg" {
		t.Fatalf("Expire = %q, %v; want the package key", key, err)
	}
	if key, _ := s.Expire(ctx, first.ID); key != "packages/x.gpkg" {
		t.Errorf("Expire again = %q, want the key again until forgotten", key)
	}
	if err := s.ForgetExpiry(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	fresh, outcome, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "alice", TTL: time.Hour})
	if err != nil || outcome != job.OutcomeCreated || fresh.ID == first.ID {
		t.Fatalf("GetOrCreate(expired) = %s, %v, %v; want a new job", fresh.ID, outcome, err)
	}
}

func TestFailedIsNotReused(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := t.Context()
	first, _, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "alice", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	failed, changed, err := s.Fail(ctx, first.ID, "source broke")
	if err != nil || !changed || failed.Status != job.StatusFailed || failed.Reason != "source broke" {
		t.Fatalf("Fail = %+v, %v, %v", failed, changed, err)
	}
	if _, changed, _ := s.Fail(ctx, first.ID, "again"); changed {
		t.Error("Fail on a Failed job changed it")
	}
	if _, changed, _ := s.Complete(ctx, first.ID, job.Result{}, time.Hour); changed {
		t.Error("Complete on a Failed job changed it")
	}
	next, outcome, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "alice", TTL: time.Hour})
	if err != nil || outcome != job.OutcomeCreated || next.ID == first.ID {
		t.Fatalf("GetOrCreate after failure = %s, %v, %v; want a new job", next.ID, outcome, err)
	}
}

// createJob stores a new job of alice's.
func createJob(t *testing.T, s *job.Store, b *bundle) job.Job {
	t.Helper()
	j, _, err := s.GetOrCreate(t.Context(), jobtest.NewJob(b.spec), job.Request{Subject: "alice", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestProgressNeverGoesBack(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := t.Context()
	j := createJob(t, s, b)
	steps := []struct {
		batch string
		done  int64
		want  int64
	}{
		{"0", 5, 5},
		{"0", 3, 5}, // a re-run restarts lower: no change
		{"0", 9, 9}, // and counts only past its high mark
		{"1", 4, 13},
	}
	first := b.clock.now()
	for _, st := range steps {
		if err := s.SetProgress(ctx, j.ID, st.batch, st.done); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx, j.ID)
		if got.TilesDone != st.want {
			t.Errorf("after SetProgress(%s, %d): TilesDone = %d, want %d", st.batch, st.done, got.TilesDone, st.want)
		}
		// The first report starts the window of the job's rate.
		if !got.RateSince.Equal(first) || got.RateBase != 5 {
			t.Errorf("after SetProgress(%s, %d): rate since %v from %d tiles, want since %v from 5", st.batch, st.done, got.RateSince, got.RateBase, first)
		}
		b.clock.advance(time.Second)
	}
	got, _ := s.Get(ctx, j.ID)
	if p := got.Percentage(); p != 72 { // 13 of 18, not 100 until Completed
		t.Errorf("Percentage() = %d, want 72", p)
	}
	if err := s.SetProgress(ctx, uuid.NewString(), "0", 1); err != nil {
		t.Errorf("SetProgress on an unknown job: %v, want no error and no record", err)
	}
}

// TestRateWindow: the window of a job's rate starts at its first progress
// and moves to a checkpoint once job.ETAWindow and job.ETAMinTiles have
// passed since that checkpoint.
func TestRateWindow(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := t.Context()
	j := createJob(t, s, b)
	t0 := b.clock.now()
	at := func(secs int) time.Time { return t0.Add(time.Duration(secs) * time.Second) }
	steps := []struct {
		at        int   // seconds after the first report
		done      int64 // the batch's tiles
		sinceAt   int
		sinceBase int64
	}{
		{0, 200, 0, 200},
		{5, 400, 0, 200},    // within the window: no checkpoint yet
		{11, 800, 0, 200},   // a window on: a checkpoint at 11 s, 800
		{22, 1000, 11, 800}, // another: the window starts at the checkpoint
		{25, 1050, 11, 800},
		{40, 1090, 11, 800}, // slow: fewer than ETAMinTiles since 22 s
		{41, 1110, 22, 1000},
	}
	for _, st := range steps {
		b.clock.ms.Store(at(st.at).UnixMilli())
		if err := s.SetProgress(ctx, j.ID, "0", st.done); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.RateSince.Equal(at(st.sinceAt)) || got.RateBase != st.sinceBase {
			t.Errorf("at %ds with %d tiles: rate since %v from %d tiles, want since %ds from %d",
				st.at, st.done, got.RateSince.Sub(t0), got.RateBase, st.sinceAt, st.sinceBase)
		}
	}
}

func TestGetUnknown(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	if _, err := s.Get(context.Background(), uuid.NewString()); err == nil {
		t.Fatal("Get(unknown) succeeded")
	}
}

func TestQuotaAccounting(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := t.Context()
	usage := func(wantStored, wantReserved int64) {
		t.Helper()
		stored, reserved, err := s.Usage(ctx)
		if err != nil || stored != wantStored || reserved != wantReserved {
			t.Errorf("Usage() = %d, %d, %v; want %d, %d", stored, reserved, err, wantStored, wantReserved)
		}
	}
	spec := b.spec
	spec.EstimatedBytes = 1000
	req := job.Request{Subject: "alice", TTL: time.Hour, QuotaBytes: 2500}
	a, _, err := s.GetOrCreate(ctx, jobtest.NewJob(spec), req)
	if err != nil {
		t.Fatal(err)
	}
	usage(0, 1000)
	other := spec
	other.Zoom = 13
	c, _, err := s.GetOrCreate(ctx, jobtest.NewJob(other), req)
	if err != nil {
		t.Fatal(err)
	}
	usage(0, 2000)
	third := spec
	third.Zoom = 12
	_, _, err = s.GetOrCreate(ctx, jobtest.NewJob(third), req)
	var qerr *job.QuotaError
	if !errors.As(err, &qerr) || qerr.Available() != 500 || qerr.Estimate != 1000 {
		t.Fatalf("third job = %v, want *QuotaError with 500 available", err)
	}
	if _, _, err := s.Complete(ctx, a.ID, job.Result{FileKey: "k", FileSize: 700}, time.Hour); err != nil {
		t.Fatal(err)
	}
	usage(700, 1000)
	if _, _, err := s.Cancel(ctx, c.ID, "no longer needed"); err != nil {
		t.Fatal(err)
	}
	usage(700, 0)
	b.clock.advance(2 * time.Hour)
	if _, err := s.Expire(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	usage(0, 0)
	// Repeated transitions change nothing.
	if _, changed, err := s.Cancel(ctx, c.ID, "again"); changed || err != nil {
		t.Errorf("Cancel again = %v, %v; want no change", changed, err)
	}
	if _, err := s.Expire(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	usage(0, 0)
}

// TestFromCache checks that a subject's first request answered by a
// finished package is recorded for that subject alone, in the step that
// answers it, and forgotten with the job; the creator and a joiner asking
// again are not recorded.
func TestFromCache(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := t.Context()
	request := func(subject string) (job.Job, job.Outcome) {
		t.Helper()
		j, outcome, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: subject, TTL: time.Hour})
		if err != nil {
			t.Fatalf("GetOrCreate as %s: %v", subject, err)
		}
		return j, outcome
	}
	check := func(when, subject string, ids []string, want []bool) {
		t.Helper()
		got, err := s.FromCache(ctx, subject, ids...)
		if err != nil {
			t.Fatalf("%s: FromCache(%s, %v): %v", when, subject, ids, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: FromCache(%s, %v) mismatch (-want +got):\n%s", when, subject, ids, diff)
		}
	}

	first, outcome := request("alice")
	if outcome != job.OutcomeCreated {
		t.Fatalf("first request = %v, want created", outcome)
	}
	if _, outcome := request("bob"); outcome != job.OutcomeJoined {
		t.Fatalf("bob's request of the running job = %v, want joined", outcome)
	}
	check("created and joined", "alice", []string{first.ID}, []bool{false})
	check("created and joined", "bob", []string{first.ID}, []bool{false})

	if _, _, err := s.Complete(ctx, first.ID, job.Result{FileKey: "packages/x.gpkg", FileSize: 42}, time.Hour); err != nil {
		t.Fatal(err)
	}
	// The creator and the joiner ask again: they saw the job render, so
	// their answer from the package is no cache hit of theirs.
	for _, sub := range []string{"alice", "bob"} {
		if _, outcome := request(sub); outcome != job.OutcomeCacheHit {
			t.Fatalf("%s's request of the completed job = %v, want a cache hit", sub, outcome)
		}
	}
	check("alice and bob ask again", "alice", []string{first.ID}, []bool{false})
	check("alice and bob ask again", "bob", []string{first.ID}, []bool{false})
	if _, outcome := request("dave"); outcome != job.OutcomeCacheHit {
		t.Fatalf("dave's request of the completed job = %v, want a cache hit", outcome)
	}
	check("dave served from the cache", "dave", []string{first.ID}, []bool{true})
	check("never asked", "carol", []string{first.ID}, []bool{false})

	// Many subjects at once: each hit is recorded with the answer.
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sub := fmt.Sprintf("client-%d", i)
			_, outcome, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: sub, TTL: time.Hour})
			if err != nil || outcome != job.OutcomeCacheHit {
				t.Errorf("GetOrCreate as %s = %v, %v; want a cache hit", sub, outcome, err)
			}
		})
	}
	wg.Wait()
	for i := range n {
		check("concurrent hits", fmt.Sprintf("client-%d", i), []string{first.ID}, []bool{true})
	}

	// The package expires; the next request makes a new job. The list of
	// ids is answered in order, unknown ids false.
	b.clock.advance(2 * time.Hour)
	if _, err := s.Expire(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	second, outcome := request("dave")
	if outcome != job.OutcomeCreated {
		t.Fatalf("request after expiry = %v, want created", outcome)
	}
	check("after expiry", "dave", []string{second.ID, uuid.NewString(), first.ID}, []bool{false, false, true})
	check("no ids", "dave", nil, nil)

	// Deleting the expired job forgets its hits.
	expired, err := s.Get(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if deleted, err := s.Delete(ctx, expired); err != nil || !deleted {
		t.Fatalf("Delete(expired) = %v, %v; want deleted", deleted, err)
	}
	check("after delete", "dave", []string{first.ID}, []bool{false})
	if n, err := b.RDB.Exists(ctx, "test:subject:dave:cached", "test:subject:client-0:cached").Result(); err != nil || n != 0 {
		t.Errorf("cache-hit sets left after the only hit job was deleted: %d (%v), want none", n, err)
	}
}

// TestLook checks that Look reads in one step what Get, FromCache and
// Deliveries read one after the other, and what GetOrCreate answers is the
// record as stored.
func TestLook(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := t.Context()
	cb := job.Callback{URL: "http://example.com/done", BBox: []float64{34.81, 31.95, 34.82, 31.96}}
	first, _, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "alice", TTL: time.Hour, Callbacks: []job.Callback{cb}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Complete(ctx, first.ID, job.Result{FileKey: "packages/x.gpkg", FileSize: 42}, time.Hour); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 12, 0, 1, 0, time.UTC)
	if err := s.RecordDelivery(ctx, first.ID, job.Delivery{Callback: cb, Outcome: job.DeliveryDelivered, Code: 200, Attempts: 1, At: at}); err != nil {
		t.Fatal(err)
	}
	b.clock.advance(time.Minute)
	hit, outcome, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "bob", TTL: time.Hour})
	if err != nil || outcome != job.OutcomeCacheHit {
		t.Fatalf("bob's request = %v, %v; want a cache hit", outcome, err)
	}
	stored, err := s.Get(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stored, hit); diff != "" {
		t.Errorf("GetOrCreate's cache hit differs from the stored job (-want +got):\n%s", diff)
	}
	if !hit.ExpiresAt.Equal(b.clock.now().Add(time.Hour)) {
		t.Errorf("cache hit ExpiresAt = %v, want the pushed-out %v", hit.ExpiresAt, b.clock.now().Add(time.Hour))
	}
	wantDeliveries, err := s.Deliveries(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, subject        string
		deliveries           bool
		requested, fromCache bool
	}{
		{name: "creator", subject: "alice", deliveries: true, requested: true},
		{name: "served from the cache", subject: "bob", deliveries: true, requested: true, fromCache: true},
		{name: "without deliveries", subject: "bob", requested: true, fromCache: true},
		{name: "never asked", subject: "carol", deliveries: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Look(ctx, first.ID, tc.subject, tc.deliveries)
			if err != nil {
				t.Fatal(err)
			}
			want := job.View{Job: stored, Requested: tc.requested, FromCache: tc.fromCache}
			if tc.deliveries {
				want.Deliveries = wantDeliveries
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Look(%s, %v) mismatch (-want +got):\n%s", tc.subject, tc.deliveries, diff)
			}
		})
	}
	if _, err := s.Look(ctx, uuid.NewString(), "alice", true); !errors.Is(err, job.ErrNotFound) {
		t.Errorf("Look(unknown) = %v, want ErrNotFound", err)
	}
}

// TestSetRetrying checks that Look counts the batches waiting to be run
// again, each once however often it is marked, until they start.
func TestSetRetrying(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := t.Context()
	j, _, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "alice", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		batch   int
		waiting bool
		want    int64
	}{
		{batch: 2, waiting: true, want: 1},
		{batch: 2, waiting: true, want: 1},
		{batch: 0, waiting: true, want: 2},
		{batch: 2, waiting: false, want: 1},
		{batch: 1, waiting: false, want: 1},
		{batch: 0, waiting: false, want: 0},
	} {
		if err := s.SetRetrying(ctx, j.ID, step.batch, step.waiting); err != nil {
			t.Fatal(err)
		}
		v, err := s.Look(ctx, j.ID, "alice", false)
		if err != nil {
			t.Fatal(err)
		}
		if v.Retrying != step.want {
			t.Errorf("after SetRetrying(%d, %v): Look().Retrying = %d, want %d", step.batch, step.waiting, v.Retrying, step.want)
		}
	}
}

// TestClaimAssembly: the first machine to claim a job's assembly keeps
// it; others are told no; an unknown job is ErrNotFound.
func TestClaimAssembly(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := t.Context()
	j := createJob(t, s, b)
	for _, step := range []struct {
		machine string
		want    bool
	}{{"a", true}, {"b", false}, {"a", true}, {"b", false}} {
		if got, err := s.ClaimAssembly(ctx, j.ID, step.machine); err != nil || got != step.want {
			t.Errorf("ClaimAssembly(%s) = %v, %v; want %v", step.machine, got, err, step.want)
		}
	}
	if _, err := s.ClaimAssembly(ctx, uuid.NewString(), "a"); !errors.Is(err, job.ErrNotFound) {
		t.Errorf("ClaimAssembly(unknown job) = %v, want ErrNotFound", err)
	}
}

// TestGetOrCreateReusesTheRightJob: the record answered with a reuse is
// the reused job's, also after the cache key named another job before, and
// after Redis forgot the scripts.
func TestGetOrCreateReusesTheRightJob(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := t.Context()
	request := func(want job.Outcome) job.Job {
		t.Helper()
		j, outcome, err := s.GetOrCreate(ctx, jobtest.NewJob(b.spec), job.Request{Subject: "alice", TTL: time.Hour})
		if err != nil || outcome != want {
			t.Fatalf("GetOrCreate = %v, %v; want %v", outcome, err, want)
		}
		stored, err := s.Get(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(stored, j); diff != "" {
			t.Errorf("GetOrCreate (%v) answered another record than the stored one (-want +got):\n%s", want, diff)
		}
		return j
	}
	first := request(job.OutcomeCreated)
	request(job.OutcomeJoined)
	if _, _, err := s.Complete(ctx, first.ID, job.Result{FileKey: "packages/x.gpkg", FileSize: 42}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := b.RDB.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if hit := request(job.OutcomeCacheHit); hit.ID != first.ID || hit.Status != job.StatusCompleted {
		t.Errorf("cache hit after SCRIPT FLUSH = %s %s, want %s Completed", hit.ID, hit.Status, first.ID)
	}
	b.clock.advance(2 * time.Hour)
	if _, err := s.Expire(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	second := request(job.OutcomeCreated)
	if second.ID == first.ID {
		t.Fatalf("the request after expiry reused %s", first.ID)
	}
	if _, _, err := s.Complete(ctx, second.ID, job.Result{FileKey: "packages/y.gpkg", FileSize: 43}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if hit := request(job.OutcomeCacheHit); hit.ID != second.ID {
		t.Errorf("cache hit = %s, want the new job %s", hit.ID, second.ID)
	}
}

// TestGetOrCreatePlansTaskIDs: a job given without task ids gets those of
// its plan when it is stored.
func TestGetOrCreatePlansTaskIDs(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	id := uuid.NewString()
	j, outcome, err := s.GetOrCreate(t.Context(), job.Job{ID: id, Spec: b.spec}, job.Request{Subject: "alice", TTL: time.Hour})
	if err != nil || outcome != job.OutcomeCreated {
		t.Fatalf("GetOrCreate = %v, %v; want created", outcome, err)
	}
	if diff := cmp.Diff(job.TaskIDs(id, len(b.spec.Plan())), j.TaskIDs); diff != "" {
		t.Errorf("task ids mismatch (-want +got):\n%s", diff)
	}
}
