package worker

import (
	"context"
	"log/slog"

	"github.com/geoexport/exporter/internal/tempdir"
)

// MakeTaskDir and SweepTempDirs are the task temp dirs, for tests.
var (
	MakeTaskDir   = tempdir.Make
	SweepTempDirs = sweepTempDirs
)

// TempLockName is the lock file in each task dir.
const TempLockName = tempLockName

// ScanMachines runs once a rescuer's look at the queues of dead machines,
// on the machine whose queue is own.
func ScanMachines(ctx context.Context, tasks ActiveTasks, jobs Jobs, e Enqueuer, own string) error {
	r := &rescuer{active: tasks, jobs: jobs, enqueuer: e, log: slog.New(slog.DiscardHandler), own: own}
	return r.scanMachines(ctx)
}
