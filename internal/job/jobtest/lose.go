package jobtest

// Lost writes: what a Redis failover can leave behind, made on purpose in
// a real Redis, so that the tests of each repair start from it.

import (
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
)

// undoComplete reverses the job store's complete script: KEYS job,
// expiry, stored, reserved, running; ARGV id.
var undoComplete = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'Completed' then return 0 end
redis.call('DECRBY', KEYS[3], tonumber(redis.call('HGET', KEYS[1], 'file_size')))
redis.call('INCRBY', KEYS[4], tonumber(redis.call('HGET', KEYS[1], 'estimate') or '0'))
redis.call('HDEL', KEYS[1], 'file_key', 'file_size', 'sha256', 'tiles_stored', 'completed_at', 'expires_at')
redis.call('HSET', KEYS[1], 'status', 'In-Progress')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
return 1
`)

// LoseComplete puts the Completed job id of the store with key prefix
// prefix back as the Completed write found it: In-Progress, without its
// package, expiry and quota moves. The package and the parts stay as
// they are in storage.
func LoseComplete(t testing.TB, rdb redis.Scripter, prefix, id string) {
	t.Helper()
	p := prefix + ":"
	n, err := undoComplete.Run(t.Context(), rdb, []string{p + "job:" + id, p + "expiry", p + "quota:stored", p + "quota:reserved", p + "running"}, id).Int()
	if err != nil || n != 1 {
		t.Fatalf("jobtest: undo the completion of job %s: %d, %v (is it Completed?)", id, n, err)
	}
}

// undoExpire reverses the job store's expire script and the expiry
// index's removal: KEYS job, expiry, stored; ARGV id.
var undoExpire = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'Expired' then return 0 end
redis.call('INCRBY', KEYS[3], tonumber(redis.call('HGET', KEYS[1], 'file_size') or '0'))
redis.call('HSET', KEYS[1], 'status', 'Completed')
redis.call('ZADD', KEYS[2], tonumber(redis.call('HGET', KEYS[1], 'expires_at')), ARGV[1])
return 1
`)

// LoseExpire puts the Expired job id back as the expire run found it:
// Completed, in the expiry index, its bytes counted as stored. Its package
// stays deleted.
func LoseExpire(t testing.TB, rdb redis.Scripter, prefix, id string) {
	t.Helper()
	p := prefix + ":"
	n, err := undoExpire.Run(t.Context(), rdb, []string{p + "job:" + id, p + "expiry", p + "quota:stored"}, id).Int()
	if err != nil || n != 1 {
		t.Fatalf("jobtest: undo the expiry of job %s: %d, %v (is it Expired?)", id, n, err)
	}
}

// LoseBatchDone removes batch from the done-set of job id, as if the
// write recording its stored part was lost.
func LoseBatchDone(t testing.TB, rdb redis.Cmdable, prefix, id string, batch int) {
	t.Helper()
	n, err := rdb.SRem(t.Context(), prefix+":job:"+id+":done", strconv.Itoa(batch)).Result()
	if err != nil || n != 1 {
		t.Fatalf("jobtest: drop batch %d from the done-set of job %s: %d, %v", batch, id, n, err)
	}
}
