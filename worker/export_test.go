package worker

// MakeTaskDir and SweepTempDirs are the task temp dirs, for tests.
var (
	MakeTaskDir   = makeTaskDir
	SweepTempDirs = sweepTempDirs
)

// TempLockName is the lock file in each task dir.
const TempLockName = tempLockName
