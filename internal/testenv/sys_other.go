//go:build !linux

package testenv

import (
	"os/exec"
	"time"
)

// setParentDeathSignal does nothing here: only Linux has a parent-death
// signal. The servers are still stopped by [Process.Stop], which the
// helpers call in t.Cleanup and [Run].
func setParentDeathSignal(*exec.Cmd) {}

// processGone reports false, so stale data directories are never swept
// where liveness cannot be checked cheaply.
func processGone(int) bool { return false }

// WaitGone reports false: where liveness cannot be checked cheaply, no
// process is known to be gone.
func WaitGone(int, time.Duration) bool { return false }
