package redisserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopStale stops a redis-server left running over dir by an earlier owner
// that died: its pid file names a live process that answers, where the
// earlier redis.conf says it listens, as the server of this directory's
// configuration. The caller holds the directory's lock, so the earlier
// owner is gone. A stale pid file of a process that no longer runs, or of a
// process that is no redis-server, is removed. A live redis-server that
// cannot be confirmed as this directory's is an error wrapping ErrInUse:
// starting a second server over its append-only file could corrupt it.
func stopStale(ctx context.Context, cfg Config, bin, dir string) error {
	pidPath := filepath.Join(dir, pidFile)
	b, err := os.ReadFile(pidPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("redisserver: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !alive(pid) {
		return removeStale(pidPath)
	}
	conf := filepath.Join(dir, confFile)
	if ep, ok := readEndpoint(conf); ok {
		if info, err := probe(ep, false, 2*time.Second); err == nil && info["process_id"] == strconv.Itoa(pid) && sameFile(info["config_file"], conf) {
			cfg.Logger.WarnContext(ctx, "stopping the redis-server an earlier exporter left running in this directory", "pid", pid, "dir", dir)
			return terminate(pid, cfg.StopTimeout)
		}
	}
	if name := processName(pid); name != "" && !isRedisServer(name, bin) {
		return removeStale(pidPath) // the pid was reused by another program
	}
	return fmt.Errorf("%w: process %d named in %s still runs but does not answer as the redis-server of %s; "+
		"stop it, or remove the file if that process is no redis-server", ErrInUse, pid, pidPath, dir)
}

// isRedisServer reports whether a process's command name (on Linux cut to
// 15 bytes; elsewhere perhaps a path) is redis-server's, or bin's.
func isRedisServer(name, bin string) bool {
	name = filepath.Base(name)
	return strings.HasPrefix(name, "redis-server") || strings.HasPrefix(filepath.Base(bin), name)
}

func removeStale(pidPath string) error {
	if err := os.Remove(pidPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("redisserver: remove stale pid file: %w", err)
	}
	return nil
}

// terminate sends SIGTERM to pid, a process that is not our child, and
// polls until it is gone: SIGKILL after timeout, an error if it outlives
// that too.
func terminate(pid int, timeout time.Duration) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return fmt.Errorf("redisserver: stop stale redis-server (pid %d): %w", pid, err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("redisserver: stop stale redis-server (pid %d): %w", pid, err)
	}
	if waitGone(pid, timeout) {
		return nil
	}
	_ = p.Kill()
	if waitGone(pid, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("redisserver: stale redis-server (pid %d) still runs after SIGTERM and SIGKILL", pid)
}

// waitGone polls until pid no longer runs or timeout passes; polling is
// the only way to wait for a process that is not our child.
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// sameFile reports whether paths a and b name the same existing file.
func sameFile(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
