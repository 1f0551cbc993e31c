package testenv

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	s := Sentinel(t)
	ctx := t.Context()
	if addr, err := s.PrimaryAddr(ctx); err != nil || addr != s.Primary.Addr {
		t.Fatalf("PrimaryAddr() = %q, %v; want the primary %s", addr, err, s.Primary.Addr)
	}
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: SentinelMaster, SentinelAddrs: s.SentinelAddrs})
	defer rdb.Close()
	if err := rdb.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// WAIT: the write has reached the replica before the primary dies.
	if n, err := rdb.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v", n, err)
	}
	start := time.Now()
	s.KillPrimary()
	if got := s.WaitPromoted(30 * time.Second); got != s.Replica.Addr {
		t.Fatalf("WaitPromoted() = %s, want the replica %s", got, s.Replica.Addr)
	}
	t.Logf("replica promoted %v after the primary was killed", time.Since(start).Round(10*time.Millisecond))
	// The failover client follows the sentinels to the new primary.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := rdb.Set(ctx, "after", "1", 0).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SET on the new primary: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v, err := rdb.Get(ctx, "before").Result(); err != nil || v != "1" {
		t.Errorf("GET before on the new primary = %q, %v; want the replicated 1", v, err)
	}
}
