// Package jobtest holds in-memory fakes of the job store and of the
// enqueue API, for the unit tests of the worker's and the scheduler's
// decisions under -short, and the jobs those tests and the real-Redis
// ones store (Spec, DemoSpec, NewJob in spec.go). They keep the store's rules that those
// decisions depend on (only an In-Progress job ends, done-sets are sets,
// unknown ids are job.ErrNotFound); the real-Redis tests use job.Store and
// job.Enqueuer. LoseComplete, LoseExpire and LoseBatchDone undo writes of
// job.Store in a real Redis, as a failover that lost them would (lose.go).
//
// It is imported by _test.go files only.
package jobtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/internal/job"
)

// Store is an in-memory job store: jobs by id in creation order, their
// done-sets, and the ids due for expiry with the keys Expire answers.
type Store struct {
	// OnGet, when set, runs after Get has read a job and before it
	// returns it, as something racing the reader would (a cancel).
	OnGet func(id string)

	mu      sync.Mutex
	now     func() time.Time
	order   []string
	jobs    map[string]job.Job
	done    map[string]map[int]bool
	due     []string
	expires map[string]string
	ran     map[string]time.Time
	// assembler is each job's assembling machine (ClaimAssembly); alive
	// the machines whose heartbeat was recorded.
	assembler map[string]string
	alive     map[string]bool
}

// NewStore returns an empty store on the clock now.
func NewStore(now func() time.Time) *Store {
	return &Store{now: now, jobs: map[string]job.Job{}, done: map[string]map[int]bool{}, expires: map[string]string{}, ran: map[string]time.Time{}}
}

// Put stores j, replacing the job of its id.
func (s *Store) Put(j job.Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[j.ID]; !ok {
		s.order = append(s.order, j.ID)
	}
	s.jobs[j.ID] = j
}

// Add stores a new job of spec (see NewJob) in status st, created at
// created, and returns it.
func (s *Store) Add(spec job.Spec, st job.Status, created time.Time) job.Job {
	j := NewJob(spec)
	j.Status, j.CreatedAt = st, created
	s.Put(j)
	return j
}

// Remove deletes a job's record; its id stays in the creation index, as
// an index may outlive a record.
func (s *Store) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.jobs, id)
}

// MarkDone adds batches to a job's done-set.
func (s *Store) MarkDone(id string, batches ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done[id] == nil {
		s.done[id] = map[int]bool{}
	}
	for _, b := range batches {
		s.done[id][b] = true
	}
}

// MarkDue makes a job due for expiry; Expire answers key for it (empty:
// a cache hit extended it meanwhile).
func (s *Store) MarkDue(id, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.due = append(s.due, id)
	s.expires[id] = key
}

// Due returns the ids still in the expiry index.
func (s *Store) Due() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.due)
}

// End moves an In-Progress job to st, changing it with change, as the
// store's scripts do; any other job is returned as it is.
func (s *Store) End(id string, st job.Status, change func(*job.Job)) (job.Job, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return job.Job{}, false, notFound(id)
	}
	if j.Status != job.StatusInProgress {
		return j, false, nil
	}
	j.Status = st
	if change != nil {
		change(&j)
	}
	s.jobs[id] = j
	return j, true, nil
}

func notFound(id string) error { return fmt.Errorf("%w: %s", job.ErrNotFound, id) }

// Get returns a job record.
func (s *Store) Get(_ context.Context, id string) (job.Job, error) {
	s.mu.Lock()
	j, ok := s.jobs[id]
	s.mu.Unlock()
	if !ok {
		return job.Job{}, notFound(id)
	}
	if s.OnGet != nil {
		s.OnGet(id)
	}
	return j, nil
}

// Status returns a job's status.
func (s *Store) Status(_ context.Context, id string) (job.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return "", notFound(id)
	}
	return j.Status, nil
}

// SetProgress records nothing: progress is not a decision.
func (s *Store) SetProgress(context.Context, string, string, int64) error { return nil }

// SetRetrying records nothing: it is shown, not decided on.
func (s *Store) SetRetrying(context.Context, string, int, bool) error { return nil }

// Assembler is the machine that claimed the job's assembly, or "".
func (s *Store) Assembler(_ context.Context, id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.assembler[id], nil
}

// Heartbeat records that the machine whose queue is queue is alive; it
// stays so (the fake keeps no time for it).
func (s *Store) Heartbeat(_ context.Context, queue string, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.alive == nil {
		s.alive = map[string]bool{}
	}
	s.alive[queue] = true
	return nil
}

// MachineAlive reports whether a heartbeat of the machine was recorded.
func (s *Store) MachineAlive(_ context.Context, queue string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alive[queue], nil
}

// ClaimAssembly makes machine the job's assembler unless another is, and
// reports whether machine is it.
func (s *Store) ClaimAssembly(_ context.Context, id, machine string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[id]; !ok {
		return false, notFound(id)
	}
	if s.assembler == nil {
		s.assembler = map[string]string{}
	}
	if s.assembler[id] == "" {
		s.assembler[id] = machine
	}
	return s.assembler[id] == machine, nil
}

// IsBatchDone reports whether a batch is in the job's done-set.
func (s *Store) IsBatchDone(_ context.Context, id string, batch int) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[id][batch], nil
}

// BatchDone adds a batch to the done-set and returns its size.
func (s *Store) BatchDone(_ context.Context, id string, batch int) (int64, error) {
	s.MarkDone(id, batch)
	return s.DoneBatches(context.Background(), id)
}

// DoneBatches returns the size of a job's done-set.
func (s *Store) DoneBatches(_ context.Context, id string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.done[id])), nil
}

// Complete marks an In-Progress job Completed with its package.
func (s *Store) Complete(_ context.Context, id string, r job.Result, _ time.Duration) (job.Job, bool, error) {
	return s.End(id, job.StatusCompleted, func(j *job.Job) {
		j.FileKey, j.FileSize, j.SHA256, j.TilesStored, j.MetadataSize = r.FileKey, r.FileSize, r.SHA256, r.TilesStored, r.MetadataSize
	})
}

// Fail marks an In-Progress job Failed with reason.
func (s *Store) Fail(_ context.Context, id, reason string) (job.Job, bool, error) {
	return s.End(id, job.StatusFailed, func(j *job.Job) { j.Reason = reason })
}

// RecordDelivery records nothing.
func (s *Store) RecordDelivery(context.Context, string, job.Delivery) error { return nil }

// DueForExpiry returns up to limit ids due for expiry.
func (s *Store) DueForExpiry(_ context.Context, limit int64) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.due[:min(int(limit), len(s.due))]), nil
}

// Expire marks a due job Expired and returns the key MarkDue gave it.
func (s *Store) Expire(_ context.Context, id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := s.expires[id]
	if j, ok := s.jobs[id]; ok && key != "" {
		j.Status = job.StatusExpired
		s.jobs[id] = j
	}
	return key, nil
}

// ForgetExpiry drops a job from the expiry index.
func (s *Store) ForgetExpiry(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.due = slices.DeleteFunc(s.due, func(d string) bool { return d == id })
	return nil
}

// Oldest returns up to limit ids, in creation order, of jobs created at
// least age ago and of records that are gone, after the one at offset.
func (s *Store) Oldest(_ context.Context, age time.Duration, offset, limit int64) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, id := range s.order {
		if j, ok := s.jobs[id]; !ok || !j.CreatedAt.After(s.now().Add(-age)) {
			ids = append(ids, id)
		}
	}
	ids = ids[min(int(offset), len(ids)):]
	return ids[:min(int(limit), len(ids))], nil
}

// Delete removes the record of an ended job.
func (s *Store) Delete(_ context.Context, j job.Job) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.jobs[j.ID].Status; st == job.StatusInProgress || st == job.StatusCompleted {
		return false, nil
	}
	delete(s.jobs, j.ID)
	return true, nil
}

// Enqueuer records the tasks queued, as "render <job> <batch>",
// "finalize <job>", "callbacks <job> <status>" and maintenance tasks by
// their task id; every task is new.
type Enqueuer struct {
	mu     sync.Mutex
	queued []string
}

func (e *Enqueuer) add(s string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.queued = append(e.queued, s)
	return true, nil
}

// Queued returns the tasks queued so far, in order.
func (e *Enqueuer) Queued() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.queued)
}

// Queue is the queue of j's tasks with the default priority bounds.
func (e *Enqueuer) Queue(j job.Job) string {
	return job.QueueFor(j.Spec.Priority, 100_000_000, job.DefaultPriority)
}

// Render records a render task.
func (e *Enqueuer) Render(_ context.Context, j job.Job, batch int) (bool, error) {
	return e.add(fmt.Sprintf("render %s %d", j.ID, batch))
}

// RenderAgain records a render task queued again for a dead worker's.
func (e *Enqueuer) RenderAgain(_ context.Context, j job.Job, batch int, deadTaskID string) (bool, error) {
	return e.add(fmt.Sprintf("render %s %d again for %s", j.ID, batch, deadTaskID))
}

// Finalize records a finalize task.
func (e *Enqueuer) Finalize(_ context.Context, j job.Job) (bool, error) {
	return e.add("finalize " + j.ID)
}

// FinalizeElsewhere records a finalize moved from a dead machine's queue.
func (e *Enqueuer) FinalizeElsewhere(_ context.Context, j job.Job, deadTaskID string) (bool, error) {
	return e.add("finalize " + j.ID + " again after " + deadTaskID)
}

// Merge records a merge task.
func (e *Enqueuer) Merge(_ context.Context, j job.Job, batch int) (bool, error) {
	return e.add(fmt.Sprintf("merge %s %d", j.ID, batch))
}

// Callbacks records the callbacks of an ended job.
func (e *Enqueuer) Callbacks(_ context.Context, j job.Job) error {
	_, err := e.add("callbacks " + j.ID + " " + string(j.Status))
	return err
}

// Maintenance records a maintenance slot.
func (e *Enqueuer) Maintenance(_ context.Context, typ string, slot time.Time, _ time.Duration) (bool, error) {
	return e.add(job.MaintenanceTaskID(typ, slot))
}

// CheckQueued fails t unless exactly want were queued, in order.
func (e *Enqueuer) CheckQueued(t testing.TB, want ...string) {
	t.Helper()
	if diff := cmp.Diff(want, e.Queued(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("tasks queued (-want +got):\n%s", diff)
	}
}

// CheckFinalizeTask fails t unless job id's finalize task waits on queue
// with the finalize retries and timeout of opt: every path that queues
// it (the last batch, a cancel, reconcile) must give it those.
func CheckFinalizeTask(t testing.TB, in *asynq.Inspector, queue, id string, opt job.TaskOptions) {
	t.Helper()
	info, err := in.GetTaskInfo(queue, job.FinalizeTaskID(id))
	if err != nil {
		t.Fatalf("finalize task of job %s: %v", id, err)
	}
	if info.Type != job.TypeFinalize || info.MaxRetry != opt.FinalizeMaxRetry || info.Timeout != opt.FinalizeTimeout {
		t.Errorf("finalize task = %s, max retry %d, timeout %v; want %s, %d, %v", info.Type, info.MaxRetry, info.Timeout,
			job.TypeFinalize, opt.FinalizeMaxRetry, opt.FinalizeTimeout)
	}
}

// Overview counts the In-Progress jobs and the stored bytes of Completed
// ones, and answers the maintenance runs MaintenanceSucceeded recorded.
func (s *Store) Overview(context.Context) (job.Overview, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := job.Overview{MaintenanceSucceeded: maps.Clone(s.ran)}
	for _, j := range s.jobs {
		switch j.Status {
		case job.StatusInProgress:
			o.Running++
			o.Reserved += j.Spec.EstimatedBytes
		case job.StatusCompleted:
			o.Stored += j.FileSize
		}
	}
	return o, nil
}

// MaintenanceSucceeded records a run of typ at at, never moving back.
func (s *Store) MaintenanceSucceeded(_ context.Context, typ string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at.After(s.ran[typ]) {
		s.ran[typ] = at
	}
	return nil
}
