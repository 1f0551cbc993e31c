//go:build unix && !linux

package redisserver

import (
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// procAttr puts the server in a process group of its own, so that a
// terminal's Ctrl-C reaches only the exporter, which stops the server after
// its own parts have drained. Only Linux has a parent-death signal: here a
// server whose exporter was killed lives on until the next start stops it.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// alive reports whether pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// processName returns the command name of pid, or "" if it is unknown.
func processName(pid int) string {
	out, err := exec.Command("ps", "-o", "comm=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
