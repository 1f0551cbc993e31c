package redisserver

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// procAttr puts the server in a process group of its own, so that a
// terminal's Ctrl-C reaches only the exporter, which stops the server after
// its own parts have drained; and it makes the kernel send the server
// SIGTERM when the exporter dies, even by SIGKILL, so that the server
// writes its append-only file out and exits rather than live on holding it.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// alive reports whether pid runs: it exists and is not a zombie waiting to
// be reaped (an orphan whose new parent does not reap it still has a pid).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// processName returns the command name of pid, or "" if it is unknown.
func processName(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
