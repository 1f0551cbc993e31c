package redisserver

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"

	"github.com/geoexport/exporter/internal/filelock"
)

// Files of the server directory.
const (
	confFile = "redis.conf"
	pidFile  = "redis.pid"
	logFile  = "redis.log"
	sockFile = "redis.sock"
	lockFile = "owner.lock"
)

const (
	// maxSocketPath is the longest Unix socket path used: sun_path holds
	// 108 bytes on Linux and 104 on macOS and the BSDs, with the final NUL.
	maxSocketPath = 103
	// logRotateBytes is the size above which the log is moved to
	// redis.log.1 when the server starts.
	logRotateBytes = 1 << 20
	// bindAttempts bounds the retries when another process takes the
	// loopback port between picking and binding it.
	bindAttempts = 5
)

var (
	// ErrNotFound is returned by [Start] when the redis-server binary is
	// neither a path to an executable nor found on PATH.
	ErrNotFound = errors.New("redisserver: redis-server not found")
	// ErrInUse is returned by [Start] when another live process owns the
	// directory: an exporter running there, or a server that cannot be
	// told apart from one left by an earlier exporter.
	ErrInUse = errors.New("redisserver: directory in use")
)

// Config configures the server.
type Config struct {
	// Binary is the redis-server executable: a path, or a name looked up on
	// PATH. Default "redis-server".
	Binary string
	// Dir holds the server's files; it is created with mode 0700, and an
	// existing one is set to 0700. Required.
	Dir string
	// Logger receives the server's state changes. Default: discarded.
	Logger *slog.Logger
	// StartTimeout bounds the wait for the server to answer, which
	// includes loading the append-only file. Default 5m.
	StartTimeout time.Duration
	// StopTimeout is how long the server has to exit after SIGTERM before
	// it is killed, in [Server.Stop] and when a server left running by an
	// earlier process is stopped. Default 30s.
	StopTimeout time.Duration
}

func (c Config) withDefaults() Config {
	c.Binary = cmp.Or(c.Binary, "redis-server")
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.StartTimeout = cmp.Or(c.StartTimeout, 5*time.Minute)
	c.StopTimeout = cmp.Or(c.StopTimeout, 30*time.Second)
	return c
}

// endpoint is where a server listens.
type endpoint struct {
	network  string // "unix" or "tcp"
	addr     string // socket path or host:port
	password string
}

// Server is a running redis-server child process.
type Server struct {
	cfg  Config
	dir  string
	ep   endpoint
	lock *filelock.Lock
	cmd  *exec.Cmd
	log  *slog.Logger

	logPath  string
	logStart int64 // offset of this start's output in the log

	done    chan struct{} // closed once the child has been reaped
	waitErr error         // valid once done is closed

	mu       sync.Mutex
	stopping bool
	stopOnce sync.Once
	stopErr  error
}

// Start starts a redis-server over cfg.Dir and returns once it answers
// PING. It returns an error wrapping [ErrNotFound] when the binary is
// missing and [ErrInUse] when another live process owns the directory. A
// server left running over the directory by an earlier, dead owner is
// stopped first. ctx bounds the start only.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.Dir == "" {
		return nil, errors.New("redisserver: dir is required")
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("redisserver: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("redisserver: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("redisserver: %w", err)
	}
	lockPath := filepath.Join(dir, lockFile)
	lock, err := filelock.TryLock(lockPath)
	// A lock this process released a moment ago can still be held by a
	// child another goroutine is forking: its copy of the descriptor lives
	// until the child's exec closes it. Wait that out, briefly.
	for deadline := time.Now().Add(time.Second); errors.Is(err, filelock.ErrLocked) &&
		filelock.Owner(lockPath) == os.Getpid() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		lock, err = filelock.TryLock(lockPath)
	}
	if errors.Is(err, filelock.ErrLocked) {
		return nil, fmt.Errorf("%w: %s is used by another process (pid %d); run one exporter per data directory", ErrInUse, dir, filelock.Owner(lockPath))
	}
	if err != nil {
		return nil, fmt.Errorf("redisserver: %w", err)
	}
	if err := lock.WriteOwner(); err != nil {
		lock.Close()
		return nil, err
	}
	s, err := start(ctx, cfg, bin, dir, lock)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

func start(ctx context.Context, cfg Config, bin, dir string, lock *filelock.Lock) (*Server, error) {
	if err := stopStale(ctx, cfg, bin, dir); err != nil {
		return nil, err
	}
	loopback := false
	for attempt := 1; ; attempt++ {
		ep, err := chooseEndpoint(dir, loopback)
		if err != nil {
			return nil, err
		}
		s := &Server{cfg: cfg, dir: dir, ep: ep, lock: lock, log: cfg.Logger, done: make(chan struct{})}
		err = s.run(ctx, bin)
		if err == nil {
			s.log.InfoContext(ctx, "redis-server started", "pid", s.Pid(), "dir", dir, "network", ep.network, "addr", ep.addr)
			return s, nil
		}
		var exit *exitError
		if !errors.As(err, &exit) || attempt == bindAttempts {
			return nil, err
		}
		switch {
		case ep.network == "tcp":
			// A loopback port taken between picking and binding makes the
			// server exit at once: try another.
		case strings.Contains(err.Error(), "Unix socket"):
			// A file system without sockets (some network and container
			// mounts): the server said "Failed opening Unix socket".
			cfg.Logger.WarnContext(ctx, "redis-server cannot listen on a socket in its directory; it listens on loopback with a password", "dir", dir, "error", err)
			loopback = true
		default:
			return nil, err
		}
	}
}

// chooseEndpoint listens on a socket in dir, or on loopback with a fresh
// password when the socket path would be too long or loopback is set.
func chooseEndpoint(dir string, loopback bool) (endpoint, error) {
	sock := filepath.Join(dir, sockFile)
	if len(sock) <= maxSocketPath && !loopback {
		return endpoint{network: "unix", addr: sock}, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return endpoint{}, fmt.Errorf("redisserver: pick a port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return endpoint{}, fmt.Errorf("redisserver: pick a port: %w", err)
	}
	pw := make([]byte, 32)
	if _, err := rand.Read(pw); err != nil {
		return endpoint{}, fmt.Errorf("redisserver: password: %w", err)
	}
	return endpoint{network: "tcp", addr: addr, password: hex.EncodeToString(pw)}, nil
}

// run writes the configuration, starts the child and waits until it
// answers.
func (s *Server) run(ctx context.Context, bin string) error {
	conf := filepath.Join(s.dir, confFile)
	if err := writeFileAtomic(conf, []byte(renderConf(s.dir, s.ep))); err != nil {
		return fmt.Errorf("redisserver: write %s: %w", conf, err)
	}
	out, err := s.openLog()
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own descriptor
	s.cmd = exec.Command(bin, conf)
	s.cmd.Dir = s.dir
	s.cmd.Stdin = nil
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = procAttr()

	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the thread that forked the
		// child exits, and the runtime may retire any thread a goroutine
		// is not locked to. This thread stays until the child is reaped:
		// without UnlockOSThread it exits with the goroutine.
		runtime.LockOSThread()
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("redisserver: start %s: %w", bin, err)
	}
	return s.waitReady(ctx)
}

// openLog opens the server's log for appending, moving a large one aside.
func (s *Server) openLog() (*os.File, error) {
	s.logPath = filepath.Join(s.dir, logFile)
	if fi, err := os.Stat(s.logPath); err == nil && fi.Size() > logRotateBytes {
		_ = os.Rename(s.logPath, s.logPath+".1")
	}
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("redisserver: %w", err)
	}
	if fi, err := f.Stat(); err == nil {
		s.logStart = fi.Size()
	}
	return f, nil
}

// waitReady polls the server until it answers as the child, the child
// exits, StartTimeout passes or ctx is done; polling is the only way to
// learn that another process is ready.
func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.NewTimer(s.cfg.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := probe(s.ep, true, time.Second)
		if err == nil {
			if info["process_id"] == strconv.Itoa(s.Pid()) {
				return nil
			}
			err = fmt.Errorf("%s is served by pid %s", s.ep.addr, info["process_id"])
		}
		select {
		case <-s.done:
			return &exitError{s.exitError()}
		case <-deadline.C:
			s.kill()
			return fmt.Errorf("redisserver: redis-server (pid %d) not ready after %v: %w%s", s.Pid(), s.cfg.StartTimeout, err, s.logTail())
		case <-ctx.Done():
			s.kill()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// exitError is an exit of the child before it was ready.
type exitError struct{ err error }

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// kill ends the child at once and waits for it.
func (s *Server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Pid returns the process id of the server.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Dir returns the absolute path of the server's directory.
func (s *Server) Dir() string { return s.dir }

// Network returns "unix" when the server listens on its socket, "tcp" when
// it listens on loopback.
func (s *Server) Network() string { return s.ep.network }

// Addr returns the socket path or the loopback host:port.
func (s *Server) Addr() string { return s.ep.addr }

// ClientOpt returns the options that connect to the server, with its
// password when it listens on loopback.
func (s *Server) ClientOpt() asynq.RedisClientOpt {
	return asynq.RedisClientOpt{Network: s.ep.network, Addr: s.ep.addr, Password: s.ep.password}
}

// Done returns a channel that is closed once the server has exited, whether
// [Server.Stop] stopped it or it died.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns nil while the server runs and after [Server.Stop] stopped it;
// after any other exit it returns an error naming the server, how it ended
// and the last lines of its log.
func (s *Server) Err() error {
	select {
	case <-s.done:
	default:
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil
	}
	return s.exitError()
}

// Wait blocks until the server has exited and returns [Server.Err].
func (s *Server) Wait() error {
	<-s.done
	return s.Err()
}

func (s *Server) exitError() error {
	how := "exited"
	if s.waitErr != nil {
		how = s.waitErr.Error()
	}
	return fmt.Errorf("redis-server (pid %d, dir %s) ended unexpectedly: %s%s", s.Pid(), s.dir, how, s.logTail())
}

// Stop asks the server to exit (SIGTERM: it writes out its append-only
// file), kills it if it is still running StopTimeout later or when ctx is
// done, waits for it and releases the directory. It returns an error if the
// server had to be killed or exited with a failure; a server that had
// already died is not an error here ([Server.Err] reports it). Stop is safe
// to call more than once.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopErr = s.stop(ctx)
		if err := s.lock.Close(); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("redisserver: release %s: %w", s.dir, err)
		}
	})
	return s.stopErr
}

func (s *Server) stop(ctx context.Context) error {
	select {
	case <-s.done:
		return nil
	default:
	}
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = s.cmd.Process.Kill()
	}
	timer := time.NewTimer(s.cfg.StopTimeout)
	defer timer.Stop()
	select {
	case <-s.done:
		if s.waitErr != nil {
			return fmt.Errorf("redisserver: stop redis-server (pid %d): %w%s", s.Pid(), s.waitErr, s.logTail())
		}
		s.log.InfoContext(ctx, "redis-server stopped", "pid", s.Pid())
		return nil
	case <-timer.C:
	case <-ctx.Done():
	}
	s.kill()
	return fmt.Errorf("redisserver: stop redis-server (pid %d): still running %v after SIGTERM, killed", s.Pid(), s.cfg.StopTimeout)
}

// logTail returns the last lines this start wrote to the log, headed by the
// log's path, for error messages.
func (s *Server) logTail() string {
	const tailBytes, tailLines = 2 << 10, 8
	f, err := os.Open(s.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	from := s.logStart
	if fi, err := f.Stat(); err == nil && fi.Size()-from > tailBytes {
		from = fi.Size() - tailBytes
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return ""
	}
	b, err := io.ReadAll(f)
	if err != nil || len(strings.TrimSpace(string(b))) == 0 {
		return "; log: " + s.logPath
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return "; end of " + s.logPath + ":\n" + strings.Join(lines[max(0, len(lines)-tailLines):], "\n")
}

// writeFileAtomic writes b to path (mode 0600) through a temporary file, so
// a crash never leaves half a file.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
