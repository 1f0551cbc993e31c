package testenv

import (
	"errors"
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill the server when the test binary
// dies, even by SIGKILL, so a shared server never outlives `go test`.
func setParentDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// processGone reports whether no process with this pid exists.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
