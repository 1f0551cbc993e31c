package testenv

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
)

func TestRedis(t *testing.T) {
	t.Parallel()
	rc := NewRedisClients(t)
	opt, rdb := rc.Opt, rc.RDB
	ctx := t.Context()

	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING %s: %v", opt.Addr, err)
	}
	if host, _, _ := net.SplitHostPort(opt.Addr); host != "127.0.0.1" {
		t.Errorf("Redis(t).Addr = %q, want 127.0.0.1:<port>", opt.Addr)
	}
	got := map[string]string{}
	for _, key := range []string{"save", "appendonly", "bind"} {
		v, err := rdb.ConfigGet(ctx, key).Result()
		if err != nil {
			t.Fatalf("CONFIG GET %s: %v", key, err)
		}
		got[key] = v[key]
	}
	want := map[string]string{"save": "", "appendonly": "no", "bind": "127.0.0.1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("redis config mismatch (-want +got):\n%s", diff)
	}
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Errorf("DBSIZE on a fresh server = %d, %v, want 0", n, err)
	}

	// The options work with asynq as they are.
	info, err := rc.Queue.EnqueueContext(ctx, asynq.NewTask("testenv:ping", nil))
	if err != nil {
		t.Fatalf("asynq enqueue: %v", err)
	}
	if _, err := rc.Inspector.GetTaskInfo(info.Queue, info.ID); err != nil {
		t.Errorf("asynq GetTaskInfo(%s, %s): %v", info.Queue, info.ID, err)
	}
}

func TestRedisIsolated(t *testing.T) {
	skipShort(t) // the checks after the subtest need a server
	t.Parallel()
	seen := make(chan string, 4)
	t.Run("group", func(t *testing.T) {
		for range cap(seen) {
			t.Run("server", func(t *testing.T) {
				t.Parallel()
				rc := NewRedisClients(t)
				addr, rdb := rc.Opt.Addr, rc.RDB
				if n, err := rdb.DBSize(t.Context()).Result(); err != nil || n != 0 {
					t.Errorf("DBSIZE on %s = %d, %v, want 0", addr, n, err)
				}
				if err := rdb.Set(t.Context(), "k", addr, 0).Err(); err != nil {
					t.Fatal(err)
				}
				seen <- addr
			})
		}
	})
	close(seen)
	addrs := map[string]bool{}
	for a := range seen {
		if addrs[a] {
			t.Errorf("two tests got the same Redis at %s", a)
		}
		addrs[a] = true
	}
}

func TestRedisCleanup(t *testing.T) {
	skipShort(t) // the checks after the subtest need a server
	t.Parallel()
	var addr string
	var pid int
	t.Run("use", func(t *testing.T) {
		addr = RedisAddr(t)
		var err error
		if pid, err = redisPing(addr); err != nil {
			t.Fatal(err)
		}
	})
	// Stopped and reaped by the subtest's cleanup.
	if !processGone(pid) {
		t.Errorf("redis-server pid %d still exists after its test ended", pid)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr); err == nil {
		c.Close()
		t.Errorf("dial %s after cleanup succeeded, want the server gone", addr)
	}
}
