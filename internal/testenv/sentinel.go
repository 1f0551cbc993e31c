package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel timings: a primary that does not answer for a second is down,
// and a failover that stalls is given up after three.
const (
	SentinelMaster          = "exporter"
	SentinelDownAfter       = time.Second
	SentinelFailoverTimeout = 3 * time.Second
	// sentinelQuorum sentinels must agree that the primary is down.
	sentinelQuorum = 2
	// sentinelReadyTimeout bounds the wait for the sentinels to know the
	// replica and each other.
	sentinelReadyTimeout = 30 * time.Second
)

// SentinelSet is a primary, one replica and three sentinels watching them,
// real processes on loopback ports, started by [Sentinel].
type SentinelSet struct {
	t testing.TB
	// Primary is the redis-server the set started as primary; Replica
	// replicates it. After a failover the replica is the primary.
	Primary, Replica *RedisServer
	// Sentinels are the sentinel processes, at SentinelAddrs.
	Sentinels     []*Process
	SentinelAddrs []string
}

// Sentinel starts a primary redis-server, a replica of it (--replicaof)
// and three sentinels (redis-server --sentinel, with a generated config:
// master SentinelMaster, quorum 2, down-after SentinelDownAfter, failover
// timeout SentinelFailoverTimeout), all on free loopback ports, and waits
// until the replica has synced and every sentinel knows the replica and
// the two other sentinels, so that a failover can be agreed on at once.
// Everything is stopped in t.Cleanup.
//
// Under -short the test is skipped; a missing redis-server fails it.
func Sentinel(t testing.TB) *SentinelSet {
	t.Helper()
	s := &SentinelSet{t: t}
	s.Primary = StartRedis(t)
	s.Replica = StartReplica(t, s.Primary)
	ctx := t.Context()
	bin := RedisServerBinary(t)
	for i := range 3 {
		p, addr := startSentinel(t, bin, i, s.Primary.Addr)
		s.Sentinels = append(s.Sentinels, p)
		s.SentinelAddrs = append(s.SentinelAddrs, addr)
	}
	for i, addr := range s.SentinelAddrs {
		if err := s.Sentinels[i].WaitReady(sentinelReadyTimeout, func() error { return sentinelKnowsAll(ctx, addr) }); err != nil {
			t.Fatalf("testenv: sentinel %s not ready: %v", addr, err)
		}
	}
	return s
}

// StartReplica starts a redis-server like [StartRedis] that replicates
// primary (--replicaof), with args appended, and returns once it has
// synced. It is stopped in t.Cleanup.
func StartReplica(t testing.TB, primary *RedisServer, args ...string) *RedisServer {
	t.Helper()
	host, port, _ := net.SplitHostPort(primary.Addr)
	r := StartRedis(t, append([]string{"--replicaof", host, port}, args...)...)
	if err := r.WaitReady(sentinelReadyTimeout, func() error { return linkUp(t.Context(), r.Addr) }); err != nil {
		t.Fatalf("testenv: replica %s did not sync with %s: %v", r.Addr, primary.Addr, err)
	}
	return r
}

// URL is the exporter's redis-sentinel:// URL of the set.
func (s *SentinelSet) URL() string {
	return "redis-sentinel://" + strings.Join(s.SentinelAddrs, ",") + "/" + SentinelMaster
}

// PrimaryAddr asks the sentinels which address is the primary now.
func (s *SentinelSet) PrimaryAddr(ctx context.Context) (string, error) {
	var errs []error
	for _, addr := range s.SentinelAddrs {
		c := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1})
		hp, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
		c.Close()
		if err == nil {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		errs = append(errs, fmt.Errorf("sentinel %s: %w", addr, err))
	}
	return "", errors.Join(errs...)
}

// KillPrimary kills the primary with SIGKILL, as a crash would.
func (s *SentinelSet) KillPrimary() {
	s.t.Helper()
	if err := s.Primary.Kill(); err != nil {
		s.t.Fatalf("testenv: %v", err)
	}
}

// WaitPromoted waits until the sentinels name the replica as the primary
// and the replica has taken the role, and returns its address.
func (s *SentinelSet) WaitPromoted(timeout time.Duration) string {
	s.t.Helper()
	ctx := s.t.Context()
	err := s.Replica.WaitReady(timeout, func() error {
		addr, err := s.PrimaryAddr(ctx)
		if err != nil {
			return err
		}
		if addr != s.Replica.Addr {
			return fmt.Errorf("the sentinels name %s, not the replica %s", addr, s.Replica.Addr)
		}
		return isPrimary(ctx, s.Replica.Addr)
	})
	if err != nil {
		var logs []string
		for _, p := range s.Sentinels {
			logs = append(logs, p.LogTail())
		}
		s.t.Fatalf("testenv: replica not promoted within %v: %v\n%s", timeout, err, strings.Join(logs, "\n"))
	}
	return s.Replica.Addr
}

// startSentinel starts sentinel i watching primary, on a fresh port; a
// lost race for the port is retried.
func startSentinel(t testing.TB, bin string, i int, primary string) (*Process, string) {
	t.Helper()
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := loopbackAddr(port)
		conf := filepath.Join(dir, "sentinel.conf")
		// The sentinel rewrites its config with what it learns, so each
		// attempt starts from a fresh one.
		if err := os.WriteFile(conf, []byte(sentinelConfig(port, dir, primary)), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, conf, "--sentinel")
		cmd.Dir = dir
		p, err := StartProcess(fmt.Sprintf("redis-sentinel %d", i), cmd, filepath.Join(dir, fmt.Sprintf("sentinel-%d.log", attempt)))
		if err != nil {
			t.Fatal(err)
		}
		err = p.WaitReady(redisReadyTimeout, func() error {
			pid, err := redisPing(addr)
			if err == nil && pid != p.Pid() {
				err = fmt.Errorf("%s is served by pid %d, not ours (%d)", addr, pid, p.Pid())
			}
			return err
		})
		if err == nil {
			t.Cleanup(func() {
				if err := p.Stop(); err != nil {
					t.Errorf("testenv: %v", err)
				}
			})
			return p, addr
		}
		_ = p.Stop()
		if attempt == redisAttempts {
			t.Fatalf("testenv: start sentinel %d (attempt %d): %v", i, attempt, err)
		}
	}
}

func sentinelConfig(port int, dir, primary string) string {
	host, pport, _ := net.SplitHostPort(primary)
	return fmt.Sprintf(`port %d
bind 127.0.0.1
daemonize no
dir %q
sentinel monitor %s %s %s %d
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s %d
sentinel parallel-syncs %s 1
`, port, dir, SentinelMaster, host, pport, sentinelQuorum,
		SentinelMaster, SentinelDownAfter.Milliseconds(), SentinelMaster, SentinelFailoverTimeout.Milliseconds(), SentinelMaster)
}

// replicationInfo returns the fields of INFO replication of the server at
// addr.
func replicationInfo(ctx context.Context, addr string) (map[string]string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	for l := range strings.SplitSeq(info, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			fields[k] = v
		}
	}
	return fields, nil
}

func linkUp(ctx context.Context, replica string) error {
	f, err := replicationInfo(ctx, replica)
	if err != nil {
		return err
	}
	if f["master_link_status"] != "up" {
		return fmt.Errorf("master_link_status %q", f["master_link_status"])
	}
	return nil
}

func isPrimary(ctx context.Context, addr string) error {
	f, err := replicationInfo(ctx, addr)
	if err != nil {
		return err
	}
	if f["role"] != "master" {
		return fmt.Errorf("%s has role %q", addr, f["role"])
	}
	return nil
}

// sentinelKnowsAll checks that the sentinel at addr sees the primary up,
// one replica and two other sentinels.
func sentinelKnowsAll(ctx context.Context, addr string) error {
	c := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	m, err := c.Master(ctx, SentinelMaster).Result()
	if err != nil {
		return err
	}
	if m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" || strings.Contains(m["flags"], "down") {
		return fmt.Errorf("sentinel %s sees flags %q, %s replicas, %s other sentinels; want the primary up, 1 and 2",
			addr, m["flags"], m["num-slaves"], m["num-other-sentinels"])
	}
	return nil
}
