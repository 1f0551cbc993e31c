package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
)

// merger is the export:merge step: each stored part of a job of several
// batches queues one, which merges the stored parts into the job's package
// on this machine while the other batches render, so that finalize has
// little left to merge. One writer per package: a merge task that finds
// the package locked by another process leaves the parts to it, to the
// next merge task or to finalize. A merge ends without error for asynq
// whatever happens: what it does not merge, finalize does, so its failure
// fails no job.
type merger struct {
	jobs    Jobs
	files   Files
	log     *slog.Logger
	tempDir string
	// machine is this machine's queue (job.MachineQueue of
	// assemblyMachine), the value its assembly claims hold.
	machine string
}

func (m *merger) handle(ctx context.Context, t *asynq.Task) error {
	p, err := decode[job.MergePayload](t)
	if err != nil {
		return err
	}
	if err := m.merge(ctx, p.JobID); err != nil && ctx.Err() == nil {
		m.log.WarnContext(ctx, "merge stopped; finalize merges the rest", logattr.JobID, p.JobID, logattr.Error, err)
	}
	return nil
}

func (m *merger) merge(ctx context.Context, id string) error {
	j, err := getJob(ctx, m.jobs, "merge", id)
	if err != nil {
		return err
	}
	if j.Status != job.StatusInProgress {
		return removeAssembly(m.tempDir, id)
	}
	// One machine merges ahead: the first whose merge gets here. Merges
	// that other machines take leave their parts to it, or to finalize.
	if mine, err := m.jobs.ClaimAssembly(ctx, id, m.machine); err != nil || !mine {
		return err
	}
	a, err := openAssembly(ctx, m.tempDir, j, false)
	if errors.Is(err, errAssemblyBusy) {
		return nil
	}
	if err != nil {
		return err
	}
	start := time.Now()
	stored := func(i int) (bool, error) { return m.jobs.IsBatchDone(ctx, j.ID, i) }
	total := 0
	// Again until nothing is new: parts stored meanwhile queued merges
	// that found the package locked.
	for {
		n, err := mergeParts(ctx, m.files, a, j, a.dir, stored)
		total += n
		if err != nil || n == 0 {
			if st, serr := m.jobs.Status(ctx, id); serr == nil && st != job.StatusInProgress {
				// Ended meanwhile: the package is nobody's.
				return errors.Join(err, a.remove())
			}
			if total > 0 {
				m.log.InfoContext(ctx, "parts merged ahead", logattr.JobID, j.ID, "parts", total, "merged", a.Parts(),
					"of", len(j.TaskIDs), "seconds", time.Since(start).Seconds())
			}
			return errors.Join(err, a.close())
		}
	}
}
