package testenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// stopTimeout is how long a server gets to exit after SIGTERM before it is
// killed.
const stopTimeout = 10 * time.Second

// process is a server started by this package. Its output goes to a log
// file (an *os.File, so os/exec starts no copying goroutines) that is quoted
// when the server fails.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // valid once exited is closed
}

// startProcess starts cmd with its output appended to logPath.
//
// The process is started and waited for from one goroutine locked to its OS
// thread: on Linux the parent-death signal fires when the thread that
// started the child exits, so the thread must live as long as the child
// does. The Go runtime never retires an unlocked thread, and this one exits
// only after the child has been reaped.
func startProcess(name string, cmd *exec.Cmd, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd.Stdin = nil
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	setParentDeathSignal(cmd)

	p := &process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread exits with this goroutine, after the
		// child is gone.
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

// pid returns the process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// stop asks the process to exit (SIGTERM), kills it after stopTimeout, and
// waits until it has been reaped. It is safe to call more than once.
func (p *process) stop() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = p.cmd.Process.Kill()
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		return nil
	case <-timer.C:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("stop %s (pid %d): no exit %v after SIGTERM, killed", p.name, p.pid(), stopTimeout)
}

// exitError describes an unexpected exit, quoting the end of the log.
func (p *process) exitError() error {
	return fmt.Errorf("%s (pid %d) exited: %w\n%s", p.name, p.pid(), p.waitErr, p.logTail())
}

// logTail returns the last few KiB of the process's output.
func (p *process) logTail() string {
	const tailBytes = 4 << 10
	f, err := os.Open(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > tailBytes {
		if _, err := f.Seek(-tailBytes, io.SeekEnd); err != nil {
			return fmt.Sprintf("(no log: %v)", err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return "--- " + p.name + " log (" + p.logPath + ") ---\n" + strings.TrimSpace(string(b))
}

// waitReady polls probe until it succeeds, the process exits or timeout
// passes. Polling is the only way to learn that another process is ready.
func (p *process) waitReady(timeout time.Duration, probe func() error) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = probe(); last == nil {
			return nil
		}
		select {
		case <-p.exited:
			return p.exitError()
		case <-deadline.C:
			return fmt.Errorf("%s (pid %d) not ready after %v: %w\n%s", p.name, p.pid(), timeout, last, p.logTail())
		case <-tick.C:
		}
	}
}
