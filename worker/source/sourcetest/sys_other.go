//go:build !linux

package sourcetest

import "os/exec"

// setParentDeathSignal does nothing here: only Linux has a parent-death
// signal. The server is still stopped by tb.Cleanup.
func setParentDeathSignal(*exec.Cmd) {}
