package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotFound is returned for an unknown job id.
var ErrNotFound = errors.New("job: not found")

// Outcome says what GetOrCreate did.
type Outcome string

// Outcomes of GetOrCreate.
const (
	// OutcomeCreated: no reusable job existed; the given one was stored.
	OutcomeCreated Outcome = "created"
	// OutcomeCacheHit: a Completed, unexpired job exists; its expiry was
	// pushed out.
	OutcomeCacheHit Outcome = "cache_hit"
	// OutcomeJoined: an In-Progress job exists; the callbacks were added.
	OutcomeJoined Outcome = "joined"
)

// Store keeps jobs in Redis. Every key starts with the configured prefix:
//
//	<p>:job:<id>             hash: the job record
//	<p>:job:<id>:callbacks   set: JSON Callback values, each once
//	<p>:job:<id>:progress    hash: batch → tiles written, never decreasing
//	<p>:cache:<cache key>    string: id of the job holding that export
//	<p>:expiry               sorted set: completed job ids by expiry (ms)
//	<p>:jobs                 sorted set: every job id by creation (ms)
//
// State changes are Lua scripts, so each is one atomic step. The scripts
// build job keys from ids they read, so the store needs a single Redis
// (with Sentinel for HA), not Redis Cluster.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
}

// NewStore returns a store over rdb. now is the clock; nil means time.Now.
func NewStore(rdb redis.UniversalClient, prefix string, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, prefix: prefix + ":", now: now}
}

func (s *Store) jobKey(id string) string  { return s.prefix + "job:" + id }
func (s *Store) cacheKey(k string) string { return s.prefix + "cache:" + k }
func (s *Store) expiryKey() string        { return s.prefix + "expiry" }
func (s *Store) jobsKey() string          { return s.prefix + "jobs" }

// getOrCreate: KEYS cache, new job, expiry, jobs; ARGV prefix, id, now,
// ttl, spec, task ids, callbacks...
var getOrCreate = redis.NewScript(`
local now = tonumber(ARGV[3])
local id = redis.call('GET', KEYS[1])
if id then
  local jk = ARGV[1] .. 'job:' .. id
  local st = redis.call('HGET', jk, 'status')
  if st == 'Completed' then
    local exp = tonumber(redis.call('HGET', jk, 'expires_at') or '0')
    if exp > now then
      local newexp = now + tonumber(ARGV[4])
      if newexp > exp then
        redis.call('HSET', jk, 'expires_at', newexp, 'updated_at', now)
        redis.call('ZADD', KEYS[3], newexp, id)
      end
      return {'cache_hit', id}
    end
  elseif st == 'In-Progress' then
    for i = 7, #ARGV do redis.call('SADD', jk .. ':callbacks', ARGV[i]) end
    return {'joined', id}
  end
end
redis.call('HSET', KEYS[2], 'id', ARGV[2], 'spec', ARGV[5], 'task_ids', ARGV[6],
  'status', 'In-Progress', 'tiles_done', 0, 'created_at', now, 'updated_at', now)
for i = 7, #ARGV do redis.call('SADD', KEYS[2] .. ':callbacks', ARGV[i]) end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[4], now, ARGV[2])
return {'created', ARGV[2]}
`)

// GetOrCreate is the one atomic step of POST /create: it returns the
// reusable job for j's cache key, or stores j (which must carry a fresh ID
// and its TaskIDs) if there is none. A Completed, unexpired job is a cache
// hit and its expiry moves to now+ttl; an In-Progress job is joined and
// callbacks are added to it, each distinct callback once. Failed,
// Cancelled and Expired jobs are never reused.
func (s *Store) GetOrCreate(ctx context.Context, j Job, callbacks []Callback, ttl time.Duration) (Job, Outcome, error) {
	spec, err := json.Marshal(j.Spec)
	if err != nil {
		return Job{}, "", fmt.Errorf("encode spec: %w", err)
	}
	tasks, err := json.Marshal(j.TaskIDs)
	if err != nil {
		return Job{}, "", fmt.Errorf("encode task ids: %w", err)
	}
	args := []any{s.prefix, j.ID, s.now().UnixMilli(), ttl.Milliseconds(), spec, tasks}
	for _, cb := range callbacks {
		b, err := json.Marshal(cb)
		if err != nil {
			return Job{}, "", fmt.Errorf("encode callback: %w", err)
		}
		args = append(args, b)
	}
	keys := []string{s.cacheKey(j.Spec.CacheKey()), s.jobKey(j.ID), s.expiryKey(), s.jobsKey()}
	res, err := getOrCreate.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return Job{}, "", fmt.Errorf("get or create job: %w", err)
	}
	got, err := s.Get(ctx, res[1])
	if err != nil {
		return Job{}, "", err
	}
	return got, Outcome(res[0]), nil
}

// Get returns the job with id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Job, error) {
	m, err := s.rdb.HGetAll(ctx, s.jobKey(id)).Result()
	if err != nil {
		return Job{}, fmt.Errorf("get job %s: %w", id, err)
	}
	if len(m) == 0 {
		return Job{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return decodeJob(m)
}

func decodeJob(m map[string]string) (Job, error) {
	j := Job{ID: m["id"], Status: Status(m["status"]), Reason: m["reason"], FileKey: m["file_key"], SHA256: m["sha256"]}
	if err := json.Unmarshal([]byte(m["spec"]), &j.Spec); err != nil {
		return Job{}, fmt.Errorf("decode job %s spec: %w", j.ID, err)
	}
	if err := json.Unmarshal([]byte(m["task_ids"]), &j.TaskIDs); err != nil {
		return Job{}, fmt.Errorf("decode job %s task ids: %w", j.ID, err)
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(m[k], 10, 64); return n }
	ms := func(k string) time.Time {
		if n := num(k); n > 0 {
			return time.UnixMilli(n).UTC()
		}
		return time.Time{}
	}
	j.TilesDone, j.FileSize, j.TilesStored = num("tiles_done"), num("file_size"), num("tiles_stored")
	j.CreatedAt, j.UpdatedAt, j.CompletedAt, j.ExpiresAt = ms("created_at"), ms("updated_at"), ms("completed_at"), ms("expires_at")
	return j, nil
}

// Callbacks returns the callbacks recorded for a job, in no order.
func (s *Store) Callbacks(ctx context.Context, id string) ([]Callback, error) {
	raw, err := s.rdb.SMembers(ctx, s.jobKey(id)+":callbacks").Result()
	if err != nil {
		return nil, fmt.Errorf("get job %s callbacks: %w", id, err)
	}
	out := make([]Callback, 0, len(raw))
	for _, r := range raw {
		var cb Callback
		if err := json.Unmarshal([]byte(r), &cb); err != nil {
			return nil, fmt.Errorf("decode job %s callback: %w", id, err)
		}
		out = append(out, cb)
	}
	return out, nil
}

// progress: KEYS job, progress; ARGV batch, done, now.
var progress = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local old = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local new = tonumber(ARGV[2])
if new > old then
  redis.call('HSET', KEYS[2], ARGV[1], new)
  redis.call('HINCRBY', KEYS[1], 'tiles_done', new - old)
  redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
end
return 1
`)

// SetProgress records that batch has written done tiles. Progress never goes
// backwards: a re-run batch counts again only past its earlier high mark,
// so a job's total never counts a tile twice.
func (s *Store) SetProgress(ctx context.Context, id, batch string, done int64) error {
	k := s.jobKey(id)
	if err := progress.Run(ctx, s.rdb, []string{k, k + ":progress"}, batch, done, s.now().UnixMilli()).Err(); err != nil {
		return fmt.Errorf("set job %s progress: %w", id, err)
	}
	return nil
}

// complete: KEYS job, expiry; ARGV id, now, ttl, file key, size, sha256, tiles.
var complete = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'In-Progress' then return {st or '', 0} end
local exp = tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'status', 'Completed', 'file_key', ARGV[4], 'file_size', ARGV[5],
  'sha256', ARGV[6], 'tiles_stored', ARGV[7], 'completed_at', ARGV[2], 'updated_at', ARGV[2], 'expires_at', exp)
redis.call('ZADD', KEYS[2], exp, ARGV[1])
return {'Completed', 1}
`)

// Result is what a finished render produced.
type Result struct {
	FileKey     string
	FileSize    int64
	SHA256      string
	TilesStored int64
}

// Complete marks an In-Progress job Completed with its package, expiring
// after ttl. It is idempotent: on a job that is no longer In-Progress it
// changes nothing and returns the job's current state with changed false.
func (s *Store) Complete(ctx context.Context, id string, r Result, ttl time.Duration) (j Job, changed bool, err error) {
	return s.transition(ctx, id, complete, []string{s.jobKey(id), s.expiryKey()},
		id, s.now().UnixMilli(), ttl.Milliseconds(), r.FileKey, r.FileSize, r.SHA256, r.TilesStored)
}

// fail: KEYS job; ARGV reason, now.
var fail = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'In-Progress' then return {st or '', 0} end
redis.call('HSET', KEYS[1], 'status', 'Failed', 'reason', ARGV[1], 'updated_at', ARGV[2])
return {'Failed', 1}
`)

// Fail marks an In-Progress job Failed with reason. Idempotent like
// Complete.
func (s *Store) Fail(ctx context.Context, id, reason string) (j Job, changed bool, err error) {
	return s.transition(ctx, id, fail, []string{s.jobKey(id)}, reason, s.now().UnixMilli())
}

func (s *Store) transition(ctx context.Context, id string, script *redis.Script, keys []string, args ...any) (Job, bool, error) {
	res, err := script.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return Job{}, false, fmt.Errorf("update job %s: %w", id, err)
	}
	if res[0] == "" {
		return Job{}, false, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	j, err := s.Get(ctx, id)
	if err != nil {
		return Job{}, false, err
	}
	return j, res[1] == int64(1), nil
}

// DueForExpiry returns up to limit ids of jobs whose expiry is at or
// before the store's clock, oldest first.
func (s *Store) DueForExpiry(ctx context.Context, limit int64) ([]string, error) {
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: s.expiryKey(), ByScore: true, Start: "-inf", Stop: strconv.FormatInt(s.now().UnixMilli(), 10), Count: limit,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("list due jobs: %w", err)
	}
	return ids, nil
}

// expire: KEYS job, cache prefix; ARGV now. Returns {status, file key}.
var expire = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'Completed' then
  local exp = tonumber(redis.call('HGET', KEYS[1], 'expires_at') or '0')
  if exp > tonumber(ARGV[1]) then return {st, ''} end
  redis.call('HSET', KEYS[1], 'status', 'Expired', 'updated_at', ARGV[1])
  st = 'Expired'
end
return {st or '', redis.call('HGET', KEYS[1], 'file_key') or ''}
`)

// Expire marks a Completed job whose expiry has passed Expired, so that
// the next identical request builds a new package, and returns the key of
// the package to delete. A job extended by a cache hit meanwhile is left
// alone (fileKey empty). Expiring an Expired job again returns its key
// again, so a run that died before deleting the file finishes it; call
// ForgetExpiry once the file is gone.
func (s *Store) Expire(ctx context.Context, id string) (fileKey string, err error) {
	res, err := expire.Run(ctx, s.rdb, []string{s.jobKey(id)}, s.now().UnixMilli()).StringSlice()
	if err != nil {
		return "", fmt.Errorf("expire job %s: %w", id, err)
	}
	if res[0] != string(StatusExpired) {
		if res[0] != string(StatusCompleted) {
			// Gone or in another state: nothing is stored for it.
			return "", s.ForgetExpiry(ctx, id)
		}
		return "", nil
	}
	return res[1], nil
}

// ForgetExpiry drops a job from the expiry index.
func (s *Store) ForgetExpiry(ctx context.Context, id string) error {
	if err := s.rdb.ZRem(ctx, s.expiryKey(), id).Err(); err != nil {
		return fmt.Errorf("forget expiry of job %s: %w", id, err)
	}
	return nil
}
