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

// stopTimeout is how long a process gets to exit after SIGTERM before it is
// killed.
const stopTimeout = 10 * time.Second

// Process is a server process started by [StartProcess], for test helpers
// that run a real server ([Redis], [MinIO], or a helper in another package).
// Its output goes to a log file (an *os.File, so os/exec starts no copying
// goroutines) that is quoted when the server fails.
//
// A Process is reaped by a goroutine of its own; stop it with [Process.Stop],
// usually in t.Cleanup. On Linux the kernel also kills it when the test
// binary dies.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // valid once exited is closed
}

// StartProcess starts cmd with its standard input empty and its standard
// output and error appended to logPath (created if missing). name says what
// the process is in errors and in [Process.LogTail], for example
// "redis-server". It returns once the process has started, or with an error
// wrapped as "start <name>: ...".
//
// On Linux the process gets a parent-death signal (SIGKILL), so it does not
// outlive the test binary even when that is killed. cmd.SysProcAttr is
// kept, apart from its Pdeathsig.
//
// The process is started and waited for from one goroutine locked to its OS
// thread: on Linux the parent-death signal fires when the thread that
// started the child exits, so the thread must live as long as the child
// does. The Go runtime never retires an unlocked thread, and this one exits
// only after the child has been reaped.
func StartProcess(name string, cmd *exec.Cmd, logPath string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd.Stdin = nil
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	setParentDeathSignal(cmd)

	p := &Process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
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

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited returns a channel that is closed once the process has exited and
// been reaped, whether it was stopped or exited on its own.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Stop asks the process to exit (SIGTERM), kills it (SIGKILL) if it is still
// running 10 seconds later, and returns once it has been reaped. The error
// reports only that it had to be killed; an exit status is not an error
// here. Stop is safe to call more than once, and returns nil at once for a
// process that has already exited.
func (p *Process) Stop() error {
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
	return fmt.Errorf("stop %s (pid %d): no exit %v after SIGTERM, killed", p.name, p.Pid(), stopTimeout)
}

// WaitReady calls probe every 25ms until it returns nil, the process exits
// or timeout passes; polling is the only way to learn that another process
// is ready. The error of an exit, "<name> (pid N) exited: <wait error>", or
// of the timeout, "<name> (pid N) not ready after <timeout>: <last probe
// error>", is followed by [Process.LogTail]. After an exit error,
// [Process.Exited] is closed; after a timeout the process still runs.
func (p *Process) WaitReady(timeout time.Duration, probe func() error) error {
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
			return fmt.Errorf("%s (pid %d) not ready after %v: %w\n%s", p.name, p.Pid(), timeout, last, p.LogTail())
		case <-tick.C:
		}
	}
}

// exitError describes an unexpected exit, quoting the end of the log.
func (p *Process) exitError() error {
	return fmt.Errorf("%s (pid %d) exited: %w\n%s", p.name, p.Pid(), p.waitErr, p.LogTail())
}

// LogTail returns the last 4 KiB of the process's output, headed
// "--- <name> log (<path>) ---", for quoting in a test failure. If the log
// cannot be read, it says so instead.
func (p *Process) LogTail() string {
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
