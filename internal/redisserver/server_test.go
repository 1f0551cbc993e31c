package redisserver_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geoexport/exporter/internal/redisserver"
	"github.com/geoexport/exporter/internal/testenv"
)

// helperEnv makes the test binary a helper process that starts a server
// over the directory it names, prints "pid <server pid>" and waits to be
// killed: an exporter that dies without stopping its server.
const helperEnv = "REDISSERVER_TEST_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(runHelper(dir))
	}
	os.Exit(m.Run())
}

func runHelper(dir string) int {
	type result struct {
		s   *redisserver.Server
		err error
	}
	// The main goroutine keeps the main thread, which the runtime never
	// ends, so the goroutine below runs on another one.
	runtime.LockOSThread()
	started := make(chan result)
	go func() {
		// Start from a goroutine locked to its thread, which the runtime
		// ends when the goroutine returns: had the child been forked from
		// this thread, its parent-death signal would fire now.
		runtime.LockOSThread()
		s, err := redisserver.Start(context.Background(), redisserver.Config{
			Binary: os.Getenv("REDISSERVER_TEST_BINARY"), Dir: dir})
		started <- result{s, err}
	}()
	r := <-started
	if r.err != nil {
		fmt.Println("ERROR", r.err)
		return 1
	}
	fmt.Println("pid", r.s.Pid())
	select {} // until killed
}

func start(t *testing.T, dir string) *redisserver.Server {
	t.Helper()
	s, err := redisserver.Start(t.Context(), redisserver.Config{Binary: testenv.RedisServerBinary(t), Dir: dir, StopTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("Start(%s) = %v", dir, err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func client(t *testing.T, s *redisserver.Server) *redis.Client {
	t.Helper()
	opt := s.ClientOpt()
	c := redis.NewClient(&redis.Options{Network: opt.Network, Addr: opt.Addr, Password: opt.Password})
	t.Cleanup(func() { c.Close() })
	return c
}

func stop(t *testing.T, s *redisserver.Server) {
	t.Helper()
	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if err := s.Err(); err != nil {
		t.Errorf("Err after Stop = %v, want nil", err)
	}
}

func TestStartKeepsDataAcrossRestarts(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "redis")
	s := start(t, dir)
	if s.Network() != "unix" || filepath.Dir(s.Addr()) != dir {
		t.Errorf("server listens on %s %s, want a socket in %s", s.Network(), s.Addr(), dir)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("Stat(%s) = %v, %v; want mode 0700", dir, fi.Mode(), err)
	}
	c := client(t, s)
	ctx := t.Context()
	for key, want := range map[string]string{"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction", "save": "", "port": "0", "unixsocketperm": "700", "dir": dir} {
		got, err := c.ConfigGet(ctx, key).Result()
		if err != nil || got[key] != want {
			t.Errorf("CONFIG GET %s = %v, %v; want %q", key, got, err, want)
		}
	}
	if err := c.Set(ctx, "k", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pid := s.Pid()
	stop(t, s)
	if _, err := os.Stat(filepath.Join(dir, "redis.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after a clean stop: %v, want it removed", err)
	}

	s2 := start(t, dir)
	if s2.Pid() == pid {
		t.Fatalf("second start has the first server's pid %d", pid)
	}
	if got, err := client(t, s2).Get(ctx, "k").Result(); err != nil || got != "v1" {
		t.Errorf("GET k after a restart = %q, %v; want v1", got, err)
	}
}

func TestLongDirListensOnLoopbackWithPassword(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for len(filepath.Join(dir, "redis.sock")) <= redisserver.MaxSocketPath {
		dir = filepath.Join(dir, "a-long-directory-name")
	}
	s := start(t, dir)
	opt := s.ClientOpt()
	if s.Network() != "tcp" || !strings.HasPrefix(s.Addr(), "127.0.0.1:") || len(opt.Password) < 32 {
		t.Fatalf("server with a socket path of %d bytes listens on %s %s with a %d-byte password; want loopback with a password",
			len(filepath.Join(dir, "redis.sock")), s.Network(), s.Addr(), len(opt.Password))
	}
	ctx := t.Context()
	anon := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer anon.Close()
	if err := anon.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("PING without the password = %v, want NOAUTH", err)
	}
	if err := client(t, s).Set(ctx, "k", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	stop(t, s)
	s2 := start(t, dir)
	if s2.ClientOpt().Password == opt.Password {
		t.Error("the password of the second start is the first one's, want a new one")
	}
	if got, err := client(t, s2).Get(ctx, "k").Result(); err != nil || got != "v1" {
		t.Errorf("GET k after a restart = %q, %v; want v1", got, err)
	}
}

func TestSocketRefusedListensOnLoopback(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Where the socket should be, something redis-server cannot replace,
	// as on a file system without sockets.
	if err := os.Mkdir(filepath.Join(dir, "redis.sock"), 0o700); err != nil {
		t.Fatal(err)
	}
	s := start(t, dir)
	if s.Network() != "tcp" || s.ClientOpt().Password == "" {
		t.Fatalf("server that cannot bind its socket listens on %s %s, want loopback with a password", s.Network(), s.Addr())
	}
	if err := client(t, s).Ping(t.Context()).Err(); err != nil {
		t.Error(err)
	}
}

func TestSecondStartInSameDirRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := start(t, dir)
	_, err := redisserver.Start(t.Context(), redisserver.Config{Binary: testenv.RedisServerBinary(t), Dir: dir})
	if !errors.Is(err, redisserver.ErrInUse) || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Errorf("second Start(%s) = %v, want ErrInUse naming pid %d", dir, err, os.Getpid())
	}
	if err := client(t, s).Ping(t.Context()).Err(); err != nil {
		t.Errorf("first server after the refused start: %v", err)
	}
}

func TestMissingBinary(t *testing.T) {
	t.Parallel()
	notExec := filepath.Join(t.TempDir(), "redis-server")
	if err := os.WriteFile(notExec, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{"no-such-redis-server", notExec} {
		_, err := redisserver.Start(t.Context(), redisserver.Config{Binary: bin, Dir: t.TempDir()})
		if !errors.Is(err, redisserver.ErrNotFound) {
			t.Errorf("Start with binary %s = %v, want ErrNotFound", bin, err)
		}
	}
}

func TestDeathIsReported(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := start(t, dir)
	if err := s.Err(); err != nil {
		t.Fatalf("Err of a running server = %v", err)
	}
	if err := syscall.Kill(s.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed within 10s of the server's death")
	}
	err := s.Wait()
	if err == nil || !strings.Contains(err.Error(), "redis-server") || !strings.Contains(err.Error(), strconv.Itoa(s.Pid())) || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Wait after SIGKILL = %v, want an error naming redis-server, its pid and the signal", err)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("Stop of a dead server = %v, want nil", err)
	}
	// The directory is free again; the killed server's pid file is stale.
	start(t, dir)
}

func TestStaleServerOfDirStopped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := start(t, dir)
	if err := client(t, old).Set(t.Context(), "k", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := old.Abandon(); err != nil {
		t.Fatal(err)
	}
	s := start(t, dir)
	select {
	case <-old.Done():
	default:
		t.Errorf("the abandoned server (pid %d) still runs after a new start in its directory", old.Pid())
	}
	if got, err := client(t, s).Get(t.Context(), "k").Result(); err != nil || got != "v1" {
		t.Errorf("GET k from the new server = %q, %v; want v1", got, err)
	}
}

func TestStalePidFile(t *testing.T) {
	t.Parallel()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	for name, pid := range map[string]int{"process gone": dead.Process.Pid, "pid of another program": os.Getpid()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "redis.pid"), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			start(t, dir)
		})
	}
}

func TestUnconfirmedRedisRefused(t *testing.T) {
	t.Parallel()
	other := start(t, t.TempDir())
	dir := t.TempDir()
	// A pid file naming a live redis-server that is not this directory's.
	if err := os.WriteFile(filepath.Join(dir, "redis.pid"), []byte(strconv.Itoa(other.Pid())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := redisserver.Start(t.Context(), redisserver.Config{Binary: testenv.RedisServerBinary(t), Dir: dir})
	if !errors.Is(err, redisserver.ErrInUse) || !strings.Contains(err.Error(), strconv.Itoa(other.Pid())) {
		t.Errorf("Start over a pid file of another live redis-server = %v, want ErrInUse naming pid %d", err, other.Pid())
	}
	if err := client(t, other).Ping(t.Context()).Err(); err != nil {
		t.Errorf("the other server after the refused start: %v", err)
	}
}

func TestServerEndsWithKilledParent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux has a parent-death signal; elsewhere the next start stops the server")
	}
	t.Parallel()
	dir := t.TempDir()
	helper, line, _ := testenv.HelperProcess(t, helperEnv+"="+dir, "REDISSERVER_TEST_BINARY="+testenv.RedisServerBinary(t))
	pid, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "pid "))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	// The goroutine that started the server has returned and its thread
	// has ended: the server must still serve.
	time.Sleep(200 * time.Millisecond)
	if testenv.WaitGone(pid, 0) {
		t.Fatal("the server died with the thread that asked for it")
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	if !testenv.WaitGone(pid, 10*time.Second) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("redis-server (pid %d) still runs 10s after its parent was killed", pid)
	}
	// SIGTERM, not SIGKILL: the server shut down cleanly, removing its pid file.
	if _, err := os.Stat(filepath.Join(dir, "redis.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after the parent's death: %v, want it removed by a clean shutdown", err)
	}
	start(t, dir)
}

func TestConfQuoting(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "/data/redis", `/a "b"\c`, "/tmp/with space/é\n\x00"} {
		got, err := redisserver.Unquote(redisserver.Quote(s))
		if err != nil || got != s {
			t.Errorf("Unquote(Quote(%q)) = %q, %v", s, got, err)
		}
	}
}
