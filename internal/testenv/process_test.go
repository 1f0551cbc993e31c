package testenv

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startShell starts sh -c script as a Process named "sh" and stops it in
// t.Cleanup.
func startShell(t *testing.T, script string) *Process {
	t.Helper()
	p, err := StartProcess("sh", exec.Command("sh", "-c", script), filepath.Join(t.TempDir(), "sh.log"))
	if err != nil {
		t.Fatalf("StartProcess(sh) = %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("Stop() = %v", err)
		}
	})
	return p
}

func TestProcessExitQuotesLog(t *testing.T) {
	t.Parallel()
	p := startShell(t, "echo boom; exit 3")
	errNotReady := errors.New("not ready")
	err := p.WaitReady(time.Minute, func() error { return errNotReady })
	if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "--- sh log (") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("WaitReady() = %v, want an exit error quoting the log", err)
	}
	select {
	case <-p.Exited():
	default:
		t.Error("Exited() is open after WaitReady reported an exit")
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop() after exit = %v, want nil", err)
	}
}

func TestProcessStop(t *testing.T) {
	t.Parallel()
	p := startShell(t, "echo started; exec sleep 60")
	if err := p.WaitReady(time.Minute, func() error { return nil }); err != nil {
		t.Fatalf("WaitReady() = %v", err)
	}
	errNotReady := errors.New("not ready")
	err := p.WaitReady(50*time.Millisecond, func() error { return errNotReady })
	if !errors.Is(err, errNotReady) || !strings.Contains(err.Error(), "not ready after") {
		t.Errorf("WaitReady(50ms) = %v, want a timeout wrapping %v", err, errNotReady)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	select {
	case <-p.Exited():
	default:
		t.Error("Exited() is open after Stop")
	}
	if p.Pid() <= 0 {
		t.Errorf("Pid() = %d, want > 0", p.Pid())
	}
}
