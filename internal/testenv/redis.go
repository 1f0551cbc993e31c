package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

const (
	// redisAttempts bounds the retries when another process takes the
	// port between FreePort and redis-server's bind.
	redisAttempts = 5
	// redisReadyTimeout bounds the wait for the first PING reply.
	redisReadyTimeout = 30 * time.Second
)

// Redis starts a fresh redis-server for this test and returns the options to
// reach it. The server binds 127.0.0.1 on a port the kernel picked, persists
// nothing (--save "" --appendonly no) and keeps its working directory in
// t.TempDir(). It has answered PING when Redis returns, and it is stopped,
// and waited for, in t.Cleanup.
//
// Under -short the test is skipped; a missing redis-server fails it.
func Redis(t testing.TB) asynq.RedisClientOpt {
	t.Helper()
	return asynq.RedisClientOpt{Addr: StartRedis(t).Addr}
}

// RedisClients are the clients a component's tests use on one fresh
// redis-server started by [Redis]: go-redis for the job store, an asynq
// client to queue tasks and an inspector to look at them.
type RedisClients struct {
	// Opt are the options to reach the server, for asynq servers.
	Opt       asynq.RedisClientOpt
	RDB       *redis.Client
	Queue     *asynq.Client
	Inspector *asynq.Inspector
}

// NewRedisClients starts a server like [Redis] and returns clients of it,
// closed in t.Cleanup.
func NewRedisClients(t testing.TB) *RedisClients {
	t.Helper()
	opt := Redis(t)
	c := &RedisClients{
		Opt:       opt,
		RDB:       redis.NewClient(&redis.Options{Addr: opt.Addr}),
		Queue:     asynq.NewClient(opt),
		Inspector: asynq.NewInspector(opt),
	}
	t.Cleanup(func() { c.Inspector.Close(); c.Queue.Close(); c.RDB.Close() })
	return c
}

// RedisServer is a redis-server started by [StartRedis], for tests that
// stop, kill or reconfigure their server.
type RedisServer struct {
	*Process
	// Addr is "127.0.0.1:<port>".
	Addr string
	// Dir is the server's working directory.
	Dir string
}

// StartRedis starts a redis-server like [Redis], with args appended to its
// command line (a later option wins over an earlier one, so args may
// replace the defaults: "--appendonly", "yes"), and returns it. It has
// answered PING when StartRedis returns, and it is stopped in t.Cleanup.
func StartRedis(t testing.TB, args ...string) *RedisServer {
	t.Helper()
	bin := RedisServerBinary(t)
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		p, addr, err := startRedis(bin, dir, attempt, args)
		if err == nil {
			t.Cleanup(func() {
				if err := p.Stop(); err != nil {
					t.Errorf("testenv: %v", err)
				}
			})
			return &RedisServer{Process: p, Addr: addr, Dir: dir}
		}
		// An early exit is most likely a lost race for the port: try
		// another. Anything else will not get better.
		if !errors.Is(err, errExitedEarly) || attempt == redisAttempts {
			t.Fatalf("testenv: start redis-server (attempt %d): %v", attempt, err)
		}
	}
}

// Kill ends the server with SIGKILL, as a crash would, and returns once
// it has been reaped.
func (r *RedisServer) Kill() error {
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill redis-server (pid %d): %w", r.Pid(), err)
	}
	<-r.Exited()
	return nil
}

// RedisServerBinary returns the redis-server binary [Redis] runs, for tests
// that start one of their own. Under -short the test is skipped; a missing
// binary fails it with an install hint.
func RedisServerBinary(t testing.TB) string {
	t.Helper()
	return requireBinary(t, "redis-server", EnvRedisServer)
}

// RedisAddr starts a server like [Redis] and returns its "host:port".
func RedisAddr(t testing.TB) string {
	t.Helper()
	return Redis(t).Addr
}

var errExitedEarly = errors.New("exited before it was ready")

// startRedis starts one redis-server on a fresh port, with extra arguments,
// and waits until that very process answers.
func startRedis(bin, dir string, attempt int, extra []string) (*Process, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := loopbackAddr(port)
	cmd := exec.Command(bin,
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		// A replica syncs at once rather than after the default 5 s wait
		// for more replicas.
		"--repl-diskless-sync-delay", "0",
	)
	cmd.Args = append(cmd.Args, extra...)
	cmd.Dir = dir
	p, err := StartProcess("redis-server", cmd, filepath.Join(dir, fmt.Sprintf("redis-%d.log", attempt)))
	if err != nil {
		return nil, "", err
	}
	err = p.WaitReady(redisReadyTimeout, func() error {
		pid, err := redisPing(addr)
		if err != nil {
			return err
		}
		// Someone else's server may have won the port; ours will exit.
		if pid != p.Pid() {
			return fmt.Errorf("%s is served by pid %d, not ours (%d)", addr, pid, p.Pid())
		}
		return nil
	})
	if err != nil {
		select {
		case <-p.Exited():
			return nil, "", fmt.Errorf("%w: %w", errExitedEarly, err)
		default:
		}
		_ = p.Stop()
		return nil, "", err
	}
	return p, addr, nil
}

// redisPing sends PING and INFO server over a raw connection and returns the
// process_id of the server that answered. A raw client keeps the probe free
// of connection pools and their logging.
func redisPing(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return 0, err
	}
	if _, err := io.WriteString(c, "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("read PING reply: %w", err)
	}
	if line != "+PONG\r\n" {
		return 0, fmt.Errorf("PING replied %q", strings.TrimSpace(line))
	}
	line, err = r.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("read INFO reply: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(line, "$"), "\r\n"))
	if !strings.HasPrefix(line, "$") || err != nil || n < 0 {
		return 0, fmt.Errorf("INFO replied %q", strings.TrimSpace(line))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, fmt.Errorf("read INFO reply: %w", err)
	}
	for l := range strings.SplitSeq(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(l, "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server has no process_id")
}
