package scheduler

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
)

// expire marks due jobs Expired and deletes their packages (and the
// metadata JSON beside each). A job a cache
// hit extended meanwhile is left alone; a run that died between marking
// and deleting is finished by the next.
func (s *Scheduler) expire(ctx context.Context) (int, error) {
	ids, err := s.deps.Jobs.DueForExpiry(ctx, s.cfg.BatchSize)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, id := range ids {
		j, err := s.deps.Jobs.Get(ctx, id)
		if err != nil && !errors.Is(err, job.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		key, err := s.deps.Jobs.Expire(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if key == "" {
			continue
		}
		if err := errors.Join(s.deps.Files.Delete(ctx, key), s.deps.Files.Delete(ctx, job.MetadataFileKey(key))); err != nil {
			errs = append(errs, fmt.Errorf("delete package %s of job %s: %w", key, id, err))
			continue
		}
		if err := s.deps.Jobs.ForgetExpiry(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		s.metrics.expired.Inc()
		s.metrics.bytesFreed.Add(float64(j.FileSize))
	}
	return n, errors.Join(errs...)
}

// orphans deletes files older than OrphanAge that no job will use: the
// parts of jobs that no longer run, and the packages of jobs that are gone
// or ended without completing (a package stored by a finalize that lost
// the race with a cancel, say). A running job's parts and a Completed or
// Expired job's package are never touched: expire deletes the latter.
func (s *Scheduler) orphans(ctx context.Context) (int, error) {
	n := 0
	var errs []error
	for _, o := range []struct {
		root    string
		keep    func(job.Status) bool
		deleted prometheus.Counter
	}{
		{job.PartsRoot, func(st job.Status) bool { return st == job.StatusInProgress }, s.metrics.orphans},
		{job.PackagesPrefix, func(st job.Status) bool {
			return st == job.StatusInProgress || st == job.StatusCompleted || st == job.StatusExpired
		}, s.metrics.orphanPackages},
	} {
		if int64(n) >= s.cfg.BatchSize {
			break
		}
		deleted, err := s.orphansUnder(ctx, o.root, o.keep, o.deleted, s.cfg.BatchSize-int64(n))
		n += deleted
		if err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// orphansUnder deletes at most limit files under root+<job id>/ whose
// job's status keep refuses (a job that is gone has the empty status).
// Files directly under root, such as packages stored before per-job
// keys, belong to no job and are left alone.
func (s *Scheduler) orphansUnder(ctx context.Context, root string, keep func(job.Status) bool, deleted prometheus.Counter, limit int64) (int, error) {
	cutoff := s.deps.Now().Add(-s.cfg.OrphanAge)
	kept := map[string]bool{}
	n := 0
	var errs []error
	for info, err := range s.deps.Files.List(ctx, root) {
		if err != nil {
			return n, errors.Join(append(errs, err)...)
		}
		if int64(n) >= limit {
			break
		}
		id, ok := job.KeyJobID(root, info.Key)
		if !ok || info.ModTime.After(cutoff) {
			continue
		}
		k, seen := kept[id]
		if !seen {
			st, err := s.deps.Jobs.Status(ctx, id)
			if err != nil && !errors.Is(err, job.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			k = keep(st)
			kept[id] = k
		}
		if k {
			continue
		}
		if err := s.deps.Files.Delete(ctx, info.Key); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		deleted.Inc()
		s.metrics.bytesFreed.Add(float64(info.Size))
	}
	return n, errors.Join(errs...)
}

// clean deletes the records of Failed, Cancelled and Expired jobs last
// changed more than CleanAfter ago.
func (s *Scheduler) clean(ctx context.Context) (int, error) {
	ids, err := s.deps.Jobs.Oldest(ctx, s.cfg.CleanAfter, 0, s.cfg.BatchSize)
	if err != nil {
		return 0, err
	}
	cutoff := s.deps.Now().Add(-s.cfg.CleanAfter)
	n := 0
	var errs []error
	for _, id := range ids {
		j, err := s.deps.Jobs.Get(ctx, id)
		if err != nil {
			if !errors.Is(err, job.ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		if j.UpdatedAt.After(cutoff) {
			continue
		}
		deleted, err := s.deps.Jobs.Delete(ctx, j)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if deleted {
			n++
			s.metrics.cleaned.Inc()
		}
	}
	return n, errors.Join(errs...)
}

// reconcile looks at In-Progress jobs older than StuckAfter and moves the
// stuck ones on: all batches stored but no merge queued → queue the merge;
// a render task lost from the queue → queue it again; a render or merge
// task archived by asynq after its retries → fail the job and tell its
// callers.
func (s *Scheduler) reconcile(ctx context.Context) (int, error) {
	n := 0
	var errs []error
	for offset := int64(0); offset < 50*s.cfg.BatchSize; offset += s.cfg.BatchSize {
		ids, err := s.deps.Jobs.Oldest(ctx, s.cfg.StuckAfter, offset, s.cfg.BatchSize)
		if err != nil {
			return n, errors.Join(append(errs, err)...)
		}
		for _, id := range ids {
			changed, err := s.reconcileJob(ctx, id)
			if err != nil {
				errs = append(errs, fmt.Errorf("reconcile job %s: %w", id, err))
			}
			if changed {
				n++
				s.metrics.reconciled.Inc()
			}
		}
		if int64(len(ids)) < s.cfg.BatchSize {
			break
		}
	}
	return n, errors.Join(errs...)
}

func (s *Scheduler) reconcileJob(ctx context.Context, id string) (bool, error) {
	j, err := s.deps.Jobs.Get(ctx, id)
	if errors.Is(err, job.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if j.Status != job.StatusInProgress {
		return false, nil
	}
	plan := j.Spec.Plan()
	if len(plan) > 1 {
		done, err := s.deps.Jobs.DoneBatches(ctx, id)
		if err != nil {
			return false, err
		}
		if int(done) == len(plan) {
			// The finalize is in the job's queue, or in the queue of the
			// machine that merged its parts ahead.
			queues := []string{s.deps.Enqueuer.Queue(j)}
			asm, err := s.deps.Jobs.Assembler(ctx, id)
			if err != nil {
				return false, err
			}
			if asm != "" {
				queues = append(queues, asm)
			}
			return s.ensureTask(ctx, j, job.TypeFinalize, job.FinalizeTaskID(id), queues, func() (bool, error) { return s.deps.Enqueuer.Finalize(ctx, j) })
		}
	}
	revived := false
	for i, tid := range j.TaskIDs {
		if len(plan) > 1 {
			if done, err := s.deps.Jobs.IsBatchDone(ctx, id, i); err != nil || done {
				continue
			}
		}
		ok, err := s.ensureTask(ctx, j, job.TypeRender, tid, []string{s.deps.Enqueuer.Queue(j)}, func() (bool, error) { return s.deps.Enqueuer.Render(ctx, j, i) })
		if err != nil {
			return revived, err
		}
		revived = revived || ok
	}
	return revived, nil
}

// ensureTask makes sure the job's task tid of type typ exists in one of
// queues: an archived one fails the job, a missing one is queued again by
// enqueue. changed reports either.
func (s *Scheduler) ensureTask(ctx context.Context, j job.Job, typ, tid string, queues []string, enqueue func() (bool, error)) (changed bool, err error) {
	var info *asynq.TaskInfo
	for _, q := range queues {
		if info, err = s.deps.Tasks.GetTaskInfo(q, tid); err == nil || !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			break
		}
	}
	switch {
	case err == nil && info.State == asynq.TaskStateArchived:
		reason := fmt.Sprintf("%s task gave up after %d retries: %s", typ, info.Retried, info.LastErr)
		failed, changed, err := s.deps.Jobs.Fail(ctx, j.ID, reason)
		if err != nil || !changed {
			return false, err
		}
		s.log.WarnContext(ctx, "stuck job failed", logattr.JobID, j.ID, logattr.Reason, reason)
		return true, s.deps.Enqueuer.Callbacks(ctx, failed)
	case err == nil:
		return false, nil // pending, scheduled, retrying, running or done
	case !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound):
		return false, err
	}
	added, err := enqueue()
	if err != nil || !added {
		return false, err
	}
	s.log.WarnContext(ctx, "lost task queued again", logattr.JobID, j.ID, logattr.TaskID, tid, logattr.TaskType, typ)
	return true, nil
}
