package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
//	<p>:job:<id>:subjects    set: subjects that requested the job
//	<p>:subject:<sub>:jobs   sorted set: a subject's job ids by last request (ms)
//	<p>:subject:<sub>:cached set: ids of jobs whose finished package answered the subject's first request of them
//	<p>:job:<id>:done        set: indexes of batches whose parts are stored
//	<p>:job:<id>:assembler   string: the queue of the worker machine that merges the job's parts ahead of finalize
//	<p>:machine:<queue>      string with a TTL: a worker machine's heartbeat
//	<p>:job:<id>:deliveries  hash: callback → JSON Delivery, the latest outcome
//	<p>:quota:stored         bytes of packages stored
//	<p>:quota:reserved       estimated bytes of unfinished jobs
//	<p>:running              set: ids of In-Progress jobs
//	<p>:maintenance:success  hash: maintenance task type → last successful run (ms)
//
// State changes are Lua scripts, so each is one atomic step. The scripts
// build job keys from ids they read, so the store needs a single Redis
// (with Sentinel for HA), not Redis Cluster.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
	// waitReplicas, when positive, is how many replicas must have a job's
	// state change within waitTimeout (WithWait).
	waitReplicas int
	waitTimeout  time.Duration
	// memory is shared by the stores WithWait makes.
	memory *memory
}

// memory is what a store remembers between calls: decoded specs and task
// ids, which never change.
type memory struct {
	specs   memo[Spec]
	taskIDs memo[[]string]
}

// NewStore returns a store over rdb. now is the clock; nil means time.Now.
func NewStore(rdb redis.UniversalClient, prefix string, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, prefix: prefix + ":", now: now, memory: &memory{}}
}

// WithWait returns a store that makes each change of a job's state (a new
// job; Completed, Failed, Cancelled) wait until replicas replicas have it,
// for at most timeout: Redis replicates asynchronously, and a failover
// loses what the promoted replica had not received. A change that fewer
// replicas acknowledged in time is still made on the primary, but returns
// an error wrapping ErrUnavailable, so the caller retries rather than
// report it (the trigger answers 503, a task runs again; both steps are
// idempotent). replicas 0 waits for nothing. A timeout must stay below the
// client's read timeout (go-redis: 3 s).
func (s *Store) WithWait(replicas int, timeout time.Duration) *Store {
	c := *s
	c.waitReplicas, c.waitTimeout = replicas, timeout
	return &c
}

// change runs a script that changes a job's state; with WithWait, WAIT
// follows it on the same connection (a pipeline), since WAIT counts the
// writes of its own connection.
func (s *Store) change(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	if s.waitReplicas <= 0 {
		return script.Run(ctx, s.rdb, keys, args...)
	}
	pipe := s.rdb.Pipeline()
	cmd := script.Eval(ctx, pipe, keys, args...)
	wait := pipe.Do(ctx, "wait", s.waitReplicas, s.waitTimeout.Milliseconds())
	if _, err := pipe.Exec(ctx); err != nil {
		if cmd.Err() == nil {
			cmd.SetErr(err)
		}
		return cmd
	}
	if err := s.waited(wait); err != nil {
		cmd.SetErr(err)
	}
	return cmd
}

// errUnreplicated marks a change fewer replicas acknowledged than asked.
var errUnreplicated = errors.New("job: not replicated")

// waited is the error of a WAIT (nil: none was sent) that fewer replicas
// than WithWait asks for acknowledged in time.
func (s *Store) waited(wait *redis.Cmd) error {
	if wait == nil {
		return nil
	}
	if n, _ := wait.Int64(); n < int64(s.waitReplicas) {
		return fmt.Errorf("%w: %w: the write reached %d of %d replicas within %v", ErrUnavailable, errUnreplicated, n, s.waitReplicas, s.waitTimeout)
	}
	return nil
}

func (s *Store) jobKey(id string) string  { return s.prefix + "job:" + id }
func (s *Store) cacheKey(k string) string { return s.prefix + "cache:" + k }
func (s *Store) expiryKey() string        { return s.prefix + "expiry" }
func (s *Store) jobsKey() string          { return s.prefix + "jobs" }
func (s *Store) subjectKey(sub string) string {
	return s.prefix + "subject:" + sub + ":jobs"
}
func (s *Store) subjectCachedKey(sub string) string {
	return s.prefix + "subject:" + sub + ":cached"
}
func (s *Store) storedKey() string   { return s.prefix + "quota:stored" }
func (s *Store) reservedKey() string { return s.prefix + "quota:reserved" }
func (s *Store) runningKey() string  { return s.prefix + "running" }
func (s *Store) maintenanceKey() string {
	return s.prefix + "maintenance:success"
}

// reuseLua is the first half of the get-or-create scripts: it answers a
// Completed, unexpired job of the cache key as a cache hit (pushing its
// expiry out) and joins an In-Progress one (adding the callbacks). KEYS
// cache, new job, expiry, jobs, subject's jobs, stored, reserved,
// subject's cache hits, running; ARGV prefix, id, now, ttl, spec, task ids,
// subject, quota, estimate, callbacks...
const reuseLua = `
local now = tonumber(ARGV[3])
local function seen(id)
  redis.call('SADD', ARGV[1] .. 'job:' .. id .. ':subjects', ARGV[7])
  redis.call('ZADD', KEYS[5], now, id)
end
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
      -- The subject's first request of the job was answered from the
      -- package: a subject that created or joined the job saw it rendered.
      if redis.call('SISMEMBER', jk .. ':subjects', ARGV[7]) == 0 then redis.call('SADD', KEYS[8], id) end
      seen(id)
      return {'cache_hit', id, redis.call('HGETALL', jk)}
    end
  elseif st == 'In-Progress' then
    for i = 10, #ARGV do redis.call('SADD', jk .. ':callbacks', ARGV[i]) end
    seen(id)
    return {'joined', id, redis.call('HGETALL', jk)}
  end
end
`

// reuse answers 'miss' where getOrCreate would create a job; it needs
// neither the new job's spec nor its task ids. A hit or a join answers the
// job's record too (HGETALL).
var reuse = redis.NewScript(reuseLua + "return {'miss'}\n")

// getOrCreate stores the new job where reuse finds nothing to reuse, in
// the same atomic step, and answers its record too (HGETALL).
var getOrCreate = redis.NewScript(reuseLua + `
local quota, estimate = tonumber(ARGV[8]), tonumber(ARGV[9])
if quota > 0 then
  local used = tonumber(redis.call('GET', KEYS[6]) or '0') + tonumber(redis.call('GET', KEYS[7]) or '0')
  if used + estimate > quota then return {'over_quota', tostring(used)} end
end
redis.call('INCRBY', KEYS[7], estimate)
redis.call('HSET', KEYS[2], 'id', ARGV[2], 'spec', ARGV[5], 'task_ids', ARGV[6], 'owner', ARGV[7],
  'estimate', estimate, 'status', 'In-Progress', 'tiles_done', 0, 'created_at', now, 'updated_at', now)
for i = 10, #ARGV do redis.call('SADD', KEYS[2] .. ':callbacks', ARGV[i]) end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[4], now, ARGV[2])
redis.call('SADD', KEYS[9], ARGV[2])
seen(ARGV[2])
return {'created', ARGV[2], redis.call('HGETALL', KEYS[2])}
`)

// Request is who asks for a job and how it is to be kept.
type Request struct {
	// Subject is the caller; the job is listed among its jobs, and a new
	// job is owned by it.
	Subject string
	// Callbacks are added to a new or running job, each distinct one once.
	Callbacks []Callback
	// TTL is how long a package lives after it is made or served again.
	TTL time.Duration
	// QuotaBytes caps stored bytes plus unfinished estimates; 0 is none.
	QuotaBytes int64
}

// QuotaError is returned when a new job's estimate does not fit the quota.
type QuotaError struct {
	Estimate, Used, Quota int64
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("job: estimated %d bytes exceed the %d bytes left of the %d byte quota", e.Estimate, max(0, e.Quota-e.Used), e.Quota)
}

// Available is the quota left.
func (e *QuotaError) Available() int64 { return max(0, e.Quota-e.Used) }

// GetOrCreate is the atomic get-or-create of POST /create: it returns the
// reusable job for j's cache key, or stores j (which must carry a fresh ID
// and its estimate) if there is none. A nil j.TaskIDs is derived from the
// plan (TaskIDs of j.Spec.Plan()), and only when j is stored: planning a
// large export costs more than answering a cache hit. Reusing is one script,
// which needs neither j's spec nor its task ids; only when it finds
// nothing to reuse does a second script check again and store j, in one
// atomic step, so two requests never make two jobs. A Completed, unexpired
// job is a cache hit and its expiry moves to now+TTL; an In-Progress job
// is joined and callbacks are added to it, each distinct callback once.
// Failed, Cancelled and Expired jobs are never reused. A new job whose
// estimate does not fit the quota is refused with *QuotaError. Every
// outcome lists the job among the subject's jobs; a cache hit that is the
// subject's first request of the job also records, in the same step, that
// the subject was served the finished package (FromCache). A subject that
// created or joined the job and asks again is not recorded: it saw the job
// render, and its list should not call the job an earlier export.
func (s *Store) GetOrCreate(ctx context.Context, j Job, req Request) (Job, Outcome, error) {
	keys := []string{s.cacheKey(j.Spec.CacheKey()), s.jobKey(j.ID), s.expiryKey(), s.jobsKey(),
		s.subjectKey(req.Subject), s.storedKey(), s.reservedKey(), s.subjectCachedKey(req.Subject), s.runningKey()}
	args := []any{s.prefix, j.ID, s.now().UnixMilli(), req.TTL.Milliseconds(), "", "", req.Subject, req.QuotaBytes, j.Spec.EstimatedBytes}
	for _, cb := range req.Callbacks {
		b, err := json.Marshal(cb)
		if err != nil {
			return Job{}, "", fmt.Errorf("encode callback: %w", err)
		}
		args = append(args, b)
	}
	// Most requests reuse a job: first try that alone, without the new
	// job's spec and task ids.
	res, err := s.reuse(ctx, keys, args)
	if err != nil {
		return Job{}, "", fmt.Errorf("get or create job: %w", Unavailable(err))
	}
	if res[0] == "miss" {
		if j.TaskIDs == nil {
			j.TaskIDs = TaskIDs(j.ID, len(j.Spec.Plan()))
		}
		if args[4], err = json.Marshal(j.Spec); err != nil {
			return Job{}, "", fmt.Errorf("encode spec: %w", err)
		}
		if args[5], err = json.Marshal(j.TaskIDs); err != nil {
			return Job{}, "", fmt.Errorf("encode task ids: %w", err)
		}
		if res, err = s.change(ctx, getOrCreate, keys, args...).Slice(); err != nil {
			return Job{}, "", fmt.Errorf("get or create job: %w", Unavailable(err))
		}
	}
	outcome, _ := res[0].(string)
	id, _ := res[1].(string)
	if outcome == "over_quota" {
		used, _ := strconv.ParseInt(id, 10, 64)
		return Job{}, "", &QuotaError{Estimate: j.Spec.EstimatedBytes, Used: used, Quota: req.QuotaBytes}
	}
	if len(res) < 3 {
		return Job{}, "", fmt.Errorf("get or create job: reply %v has no record", res)
	}
	got, err := s.decodeJob(id, hashReply(res[2]))
	if err != nil {
		return Job{}, "", err
	}
	return got, Outcome(outcome), nil
}

// reuse runs the reuse script, with WithWait followed by a WAIT. A miss
// wrote nothing, so too few replicas do not make it an error: the
// creating script waits for its own write.
func (s *Store) reuse(ctx context.Context, keys []string, args []any) ([]any, error) {
	cmd := s.change(ctx, reuse, keys, args...)
	res, err := cmd.Slice()
	if errors.Is(err, errUnreplicated) {
		if v, _ := cmd.Val().([]any); len(v) > 0 && v[0] == "miss" {
			return v, nil
		}
	}
	return res, err
}

// hashReply is a hash as a script returns HGETALL's reply: a flat list of
// fields and values.
func hashReply(v any) map[string]string {
	list, _ := v.([]any)
	m := make(map[string]string, len(list)/2)
	for i := 0; i+1 < len(list); i += 2 {
		k, _ := list[i].(string)
		m[k], _ = list[i+1].(string)
	}
	return m
}

// Usage returns the bytes of stored packages and the estimates of
// unfinished jobs, as the quota counts them.
func (s *Store) Usage(ctx context.Context) (stored, reserved int64, err error) {
	vals, err := s.rdb.MGet(ctx, s.storedKey(), s.reservedKey()).Result()
	if err != nil {
		return 0, 0, fmt.Errorf("read usage: %w", Unavailable(err))
	}
	return count(vals[0]), count(vals[1]), nil
}

// count reads a counter MGET answered: 0 when it is missing.
func count(v any) int64 {
	str, _ := v.(string)
	x, _ := strconv.ParseInt(str, 10, 64)
	return x
}

// Get returns the job with id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Job, error) {
	m, err := s.rdb.HGetAll(ctx, s.jobKey(id)).Result()
	if err != nil {
		return Job{}, fmt.Errorf("get job %s: %w", id, Unavailable(err))
	}
	return s.decodeJob(id, m)
}

// decodeJob decodes the record m of job id; an empty record is
// ErrNotFound. The job's Spec may share slices, maps and pointers with
// other jobs the store returned (it never changes after creation, and
// must not be modified).
func (s *Store) decodeJob(id string, m map[string]string) (Job, error) {
	if len(m) == 0 {
		return Job{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	j := Job{ID: m["id"], Status: Status(m["status"]), Reason: m["reason"], FileKey: m["file_key"], SHA256: m["sha256"], Owner: m["owner"]}
	if err := s.memory.specs.decode(m["spec"], &j.Spec); err != nil {
		return Job{}, fmt.Errorf("decode job %s spec: %w", j.ID, err)
	}
	var tasks []string
	if err := s.memory.taskIDs.decode(m["task_ids"], &tasks); err != nil {
		return Job{}, fmt.Errorf("decode job %s task ids: %w", j.ID, err)
	}
	j.TaskIDs = slices.Clone(tasks)
	num := func(k string) int64 { n, _ := strconv.ParseInt(m[k], 10, 64); return n }
	ms := func(k string) time.Time {
		if n := num(k); n > 0 {
			return time.UnixMilli(n).UTC()
		}
		return time.Time{}
	}
	j.TilesDone, j.FileSize, j.TilesStored, j.MetadataSize = num("tiles_done"), num("file_size"), num("tiles_stored"), num("metadata_size")
	j.CreatedAt, j.UpdatedAt, j.CompletedAt, j.ExpiresAt = ms("created_at"), ms("updated_at"), ms("completed_at"), ms("expires_at")
	j.RateSince, j.RateBase = ms("rate_since"), num("rate_base")
	return j, nil
}

// Callbacks returns the callbacks recorded for a job, in no order.
func (s *Store) Callbacks(ctx context.Context, id string) ([]Callback, error) {
	raw, err := s.rdb.SMembers(ctx, s.jobKey(id)+":callbacks").Result()
	if err != nil {
		return nil, fmt.Errorf("get job %s callbacks: %w", id, Unavailable(err))
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

// progress: KEYS job, progress; ARGV batch, done, now, ETAWindow in ms,
// ETAMinTiles.
var progress = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local old = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local new = tonumber(ARGV[2])
if new > old then
  redis.call('HSET', KEYS[2], ARGV[1], new)
  local done = redis.call('HINCRBY', KEYS[1], 'tiles_done', new - old)
  local now = tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], 'updated_at', now)
  local nextat = tonumber(redis.call('HGET', KEYS[1], 'rate_next_at') or '0')
  if nextat == 0 then
    redis.call('HSET', KEYS[1], 'rate_since', now, 'rate_base', done, 'rate_next_at', now, 'rate_next_tiles', done)
  else
    local nexttiles = tonumber(redis.call('HGET', KEYS[1], 'rate_next_tiles'))
    if now - nextat >= tonumber(ARGV[4]) and done - nexttiles >= tonumber(ARGV[5]) then
      redis.call('HSET', KEYS[1], 'rate_since', nextat, 'rate_base', nexttiles, 'rate_next_at', now, 'rate_next_tiles', done)
    end
  end
end
return 1
`)

// SetProgress records that batch has written done tiles. Progress never goes
// backwards: a re-run batch counts again only past its earlier high mark,
// so a job's total never counts a tile twice. It also moves the start of
// the window Job.ETA measures the job's rate over (Job.RateSince and
// Job.RateBase): the first progress starts it, and a checkpoint taken then
// becomes its start once ETAWindow and ETAMinTiles have passed since, when
// a new checkpoint is taken. The window so reaches back between one and
// two ETAWindows, further while the job is slow.
func (s *Store) SetProgress(ctx context.Context, id, batch string, done int64) error {
	k := s.jobKey(id)
	if err := progress.Run(ctx, s.rdb, []string{k, k + ":progress"}, batch, done, s.now().UnixMilli(), ETAWindow.Milliseconds(), ETAMinTiles).Err(); err != nil {
		return fmt.Errorf("set job %s progress: %w", id, Unavailable(err))
	}
	return nil
}

// complete: KEYS job, expiry, stored, reserved, layer sizes, running;
// ARGV id, now, ttl, file key, size, sha256, tiles, metadata size, then
// zoom and bytes pairs.
var complete = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'In-Progress' then return {st or '', 0} end
redis.call('DECRBY', KEYS[4], tonumber(redis.call('HGET', KEYS[1], 'estimate') or '0'))
redis.call('INCRBY', KEYS[3], tonumber(ARGV[5]))
local exp = tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'status', 'Completed', 'file_key', ARGV[4], 'file_size', ARGV[5],
  'sha256', ARGV[6], 'tiles_stored', ARGV[7], 'metadata_size', ARGV[8], 'completed_at', ARGV[2], 'updated_at', ARGV[2], 'expires_at', exp)
redis.call('ZADD', KEYS[2], exp, ARGV[1])
redis.call('SREM', KEYS[6], ARGV[1])
for i = 9, #ARGV, 2 do redis.call('HINCRBY', KEYS[5], ARGV[i], ARGV[i + 1]) end
return {'Completed', 1}
`)

// Result is what a finished render produced.
type Result struct {
	FileKey     string
	FileSize    int64
	SHA256      string
	TilesStored int64
	// MetadataSize is the size of the metadata JSON stored beside the
	// package (job.MetadataFileKey).
	MetadataSize int64
	// Zooms are the package's tiles and tile bytes per zoom, which the
	// layer's learned sizes (LearnedSizes) add up; none when unknown.
	Zooms []ZoomBytes
}

// Complete marks an In-Progress job Completed with its package, expiring
// after ttl, and adds r.Zooms to the layer's learned sizes in the same
// step, so a package counts once however often it is completed. It is
// idempotent: on a job that is no longer In-Progress it changes nothing
// and returns the job's current state with changed false.
func (s *Store) Complete(ctx context.Context, id string, r Result, ttl time.Duration) (j Job, changed bool, err error) {
	j, err = s.Get(ctx, id)
	if err != nil {
		return Job{}, false, err
	}
	args := append([]any{id, s.now().UnixMilli(), ttl.Milliseconds(), r.FileKey, r.FileSize, r.SHA256, r.TilesStored, r.MetadataSize}, learnArgs(r)...)
	return s.transition(ctx, id, complete, []string{s.jobKey(id), s.expiryKey(), s.storedKey(), s.reservedKey(), s.sizesKey(j.Spec.Layer), s.runningKey()}, args...)
}

// end: KEYS job, reserved, running; ARGV status, reason, now, id.
var end = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'In-Progress' then return {st or '', 0} end
redis.call('DECRBY', KEYS[2], tonumber(redis.call('HGET', KEYS[1], 'estimate') or '0'))
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'reason', ARGV[2], 'updated_at', ARGV[3])
redis.call('SREM', KEYS[3], ARGV[4])
return {ARGV[1], 1}
`)

// Fail marks an In-Progress job Failed with reason. Idempotent like
// Complete.
func (s *Store) Fail(ctx context.Context, id, reason string) (j Job, changed bool, err error) {
	return s.transition(ctx, id, end, []string{s.jobKey(id), s.reservedKey(), s.runningKey()}, string(StatusFailed), reason, s.now().UnixMilli(), id)
}

// Cancel marks an In-Progress job Cancelled with reason, for good: its
// tasks stop at their next check and are not retried. Idempotent like
// Complete.
func (s *Store) Cancel(ctx context.Context, id, reason string) (j Job, changed bool, err error) {
	return s.transition(ctx, id, end, []string{s.jobKey(id), s.reservedKey(), s.runningKey()}, string(StatusCancelled), reason, s.now().UnixMilli(), id)
}

// Status reads only a job's status: the cheap check a running task makes
// to notice cancellation.
func (s *Store) Status(ctx context.Context, id string) (Status, error) {
	st, err := s.rdb.HGet(ctx, s.jobKey(id), "status").Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return "", fmt.Errorf("get job %s status: %w", id, Unavailable(err))
	}
	return Status(st), nil
}

// View is what Look reads of one job for one subject.
type View struct {
	Job Job
	// Requested: the subject asked for the job (created, joined or was
	// served it from the cache).
	Requested bool
	// FromCache: the subject's first request for the job was answered
	// from its finished package (FromCache).
	FromCache bool
	// Retrying is how many of the job's batches wait to be run again
	// (SetRetrying).
	Retrying int64
	// Deliveries are the job's callback outcomes (Deliveries), when asked
	// for.
	Deliveries []Delivery
}

// Look reads, in one round trip to Redis, the job with id (ErrNotFound
// when there is none), whether subject requested it and was served it from
// the cache, and with deliveries also its callback outcomes: what Get,
// FromCache and Deliveries would read one after the other.
func (s *Store) Look(ctx context.Context, id, subject string, deliveries bool) (View, error) {
	with := "0"
	if deliveries {
		with = "1"
	}
	res, err := look.Run(ctx, s.rdb, []string{s.jobKey(id), s.jobKey(id) + ":subjects", s.subjectCachedKey(subject), s.deliveriesKey(id), s.jobKey(id) + ":retry"},
		subject, id, with).Slice()
	if err != nil {
		return View{}, fmt.Errorf("get job %s: %w", id, Unavailable(err))
	}
	var v View
	if v.Job, err = s.decodeJob(id, hashReply(res[0])); err != nil {
		return View{}, err
	}
	requested, _ := res[1].(int64)
	fromCache, _ := res[2].(int64)
	v.Requested, v.FromCache = requested == 1, fromCache == 1
	v.Retrying, _ = res[4].(int64)
	if deliveries {
		if v.Deliveries, err = decodeDeliveries(id, hashReply(res[3])); err != nil {
			return View{}, err
		}
	}
	return v, nil
}

// look reads what Look answers. KEYS job, its subjects, the subject's
// cache hits, the job's deliveries, its batches waiting for a retry; ARGV
// subject, job id, 1 to read the deliveries.
var look = redis.NewScript(`
local dels = {}
if ARGV[3] == '1' then dels = redis.call('HGETALL', KEYS[4]) end
return {redis.call('HGETALL', KEYS[1]), redis.call('SISMEMBER', KEYS[2], ARGV[1]),
  redis.call('SISMEMBER', KEYS[3], ARGV[2]), dels, redis.call('SCARD', KEYS[5])}
`)

// FromCache reports, for each of ids, whether the first request of subject
// for that job was answered from its finished package (a cache hit of
// GetOrCreate) rather than by creating or joining it; a later identical
// request of a subject that created or joined the job leaves it false. The answer is in the order of ids;
// an unknown id is false.
func (s *Store) FromCache(ctx context.Context, subject string, ids ...string) ([]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	hits, err := s.rdb.SMIsMember(ctx, s.subjectCachedKey(subject), members...).Result()
	if err != nil {
		return nil, fmt.Errorf("get cache hits of %s: %w", subject, Unavailable(err))
	}
	return hits, nil
}

// List returns a subject's jobs, most recently requested first, skipping
// offset jobs that match status (all jobs when status is empty) and
// returning at most limit. next is the offset of the following page, or -1
// when there is none.
func (s *Store) List(ctx context.Context, subject string, status Status, offset, limit int) (jobs []Job, next int, err error) {
	const chunk = 100
	skipped := 0
	for start := int64(0); ; start += chunk {
		ids, err := s.rdb.ZRevRange(ctx, s.subjectKey(subject), start, start+chunk-1).Result()
		if err != nil {
			return nil, -1, fmt.Errorf("list jobs of %s: %w", subject, Unavailable(err))
		}
		for _, id := range ids {
			j, err := s.Get(ctx, id)
			if errors.Is(err, ErrNotFound) {
				continue // cleaned up meanwhile
			}
			if err != nil {
				return nil, -1, err
			}
			if status != "" && j.Status != status {
				continue
			}
			if skipped < offset {
				skipped++
				continue
			}
			if len(jobs) == limit {
				return jobs, offset + limit, nil
			}
			jobs = append(jobs, j)
		}
		if len(ids) < chunk {
			return jobs, -1, nil
		}
	}
}

func (s *Store) transition(ctx context.Context, id string, script *redis.Script, keys []string, args ...any) (Job, bool, error) {
	res, err := s.change(ctx, script, keys, args...).Slice()
	if err != nil {
		return Job{}, false, fmt.Errorf("update job %s: %w", id, Unavailable(err))
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
		return nil, fmt.Errorf("list due jobs: %w", Unavailable(err))
	}
	return ids, nil
}

// expire: KEYS job, stored; ARGV now. Returns {status, file key}.
var expire = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'Completed' then
  local exp = tonumber(redis.call('HGET', KEYS[1], 'expires_at') or '0')
  if exp > tonumber(ARGV[1]) then return {st, ''} end
  redis.call('HSET', KEYS[1], 'status', 'Expired', 'updated_at', ARGV[1])
  redis.call('DECRBY', KEYS[2], tonumber(redis.call('HGET', KEYS[1], 'file_size') or '0'))
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
	res, err := expire.Run(ctx, s.rdb, []string{s.jobKey(id), s.storedKey()}, s.now().UnixMilli()).StringSlice()
	if err != nil {
		return "", fmt.Errorf("expire job %s: %w", id, Unavailable(err))
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
		return fmt.Errorf("forget expiry of job %s: %w", id, Unavailable(err))
	}
	return nil
}

// doneBatch: KEYS job, done set; ARGV batch. Returns the count of done
// batches, or -1 for a job that is gone.
var doneBatch = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('SADD', KEYS[2], ARGV[1])
return redis.call('SCARD', KEYS[2])
`)

// BatchDone records that a batch's part is stored and returns how many
// batches are done. A set: a re-run batch never counts twice.
func (s *Store) BatchDone(ctx context.Context, id string, batch int) (int64, error) {
	k := s.jobKey(id)
	n, err := doneBatch.Run(ctx, s.rdb, []string{k, k + ":done"}, batch).Int64()
	if err != nil {
		return 0, fmt.Errorf("record batch %d of job %s: %w", batch, id, Unavailable(err))
	}
	if n < 0 {
		return 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return n, nil
}

// SetRetrying records whether a batch of job id waits to be run again:
// its task failed with retries left, or its worker died and the task was
// queued again; the batch's next start clears it. GET /jobs/{id} counts
// these batches (View.Retrying). Idempotent.
func (s *Store) SetRetrying(ctx context.Context, id string, batch int, waiting bool) error {
	k := s.jobKey(id) + ":retry"
	var err error
	if waiting {
		err = s.rdb.SAdd(ctx, k, batch).Err()
	} else {
		err = s.rdb.SRem(ctx, k, batch).Err()
	}
	if err != nil {
		return fmt.Errorf("record retry of batch %d of job %s: %w", batch, id, Unavailable(err))
	}
	return nil
}

// claimAssembly: KEYS job, assembler; ARGV machine. Returns 1 when the
// machine is the job's assembler (it is now, or was already), 0 when
// another is, -1 for a job that is gone.
var claimAssembly = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('SET', KEYS[2], ARGV[1], 'NX')
if redis.call('GET', KEYS[2]) == ARGV[1] then return 1 end
return 0
`)

// ClaimAssembly makes machine the one that merges job id's parts ahead of
// finalize, unless another machine is already, and reports whether
// machine is it. A package is assembled on one machine only: merges
// elsewhere would each build a copy of it that only a finalize there uses.
func (s *Store) ClaimAssembly(ctx context.Context, id, machine string) (bool, error) {
	k := s.jobKey(id)
	n, err := claimAssembly.Run(ctx, s.rdb, []string{k, k + ":assembler"}, machine).Int64()
	if err != nil {
		return false, fmt.Errorf("claim the assembly of job %s: %w", id, Unavailable(err))
	}
	if n < 0 {
		return false, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return n == 1, nil
}

// Assembler is the queue of the machine that claimed job id's assembly,
// alive or not; "" when none did.
func (s *Store) Assembler(ctx context.Context, id string) (string, error) {
	q, err := s.rdb.Get(ctx, s.jobKey(id)+":assembler").Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("assembler of job %s: %w", id, Unavailable(err))
	}
	return q, nil
}

// Heartbeat says the worker machine whose queue is queue is alive for ttl.
func (s *Store) Heartbeat(ctx context.Context, queue string, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.prefix+"machine:"+queue, 1, ttl).Err(); err != nil {
		return fmt.Errorf("heartbeat of %s: %w", queue, Unavailable(err))
	}
	return nil
}

// MachineAlive reports whether the machine whose queue is queue has sent a
// heartbeat that has not expired.
func (s *Store) MachineAlive(ctx context.Context, queue string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.prefix+"machine:"+queue).Result()
	if err != nil {
		return false, fmt.Errorf("heartbeat of %s: %w", queue, Unavailable(err))
	}
	return n == 1, nil
}

// assemblerQueue: KEYS assembler; ARGV machine key prefix. The claimed
// machine's queue while its heartbeat lasts, else ”.
var assemblerQueue = redis.NewScript(`
local q = redis.call('GET', KEYS[1])
if q and redis.call('EXISTS', ARGV[1] .. q) == 1 then return q end
return ''
`)

// AssemblerQueue is the queue of the machine that claimed job id's
// assembly while that machine is alive, else "".
func (s *Store) AssemblerQueue(ctx context.Context, id string) (string, error) {
	q, err := assemblerQueue.Run(ctx, s.rdb, []string{s.jobKey(id) + ":assembler"}, s.prefix+"machine:").Text()
	if err != nil {
		return "", fmt.Errorf("assembler of job %s: %w", id, Unavailable(err))
	}
	return q, nil
}

// IsBatchDone reports whether a batch's part is stored.
func (s *Store) IsBatchDone(ctx context.Context, id string, batch int) (bool, error) {
	ok, err := s.rdb.SIsMember(ctx, s.jobKey(id)+":done", batch).Result()
	if err != nil {
		return false, fmt.Errorf("get batch %d of job %s: %w", batch, id, Unavailable(err))
	}
	return ok, nil
}

// Oldest returns up to limit job ids, oldest first, created before the
// store's clock minus age, starting after the id at offset.
func (s *Store) Oldest(ctx context.Context, age time.Duration, offset, limit int64) ([]string, error) {
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: s.jobsKey(), ByScore: true, Start: "-inf", Stop: strconv.FormatInt(s.now().Add(-age).UnixMilli(), 10),
		Offset: offset, Count: limit,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("list old jobs: %w", Unavailable(err))
	}
	return ids, nil
}

// deleteJob: KEYS job, jobs index, cache key; ARGV id, prefix. Deletes an
// ended job and every key of it, and drops it from its subjects' lists.
var deleteJob = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'In-Progress' or st == 'Completed' then return 0 end
for _, sub in ipairs(redis.call('SMEMBERS', KEYS[1] .. ':subjects')) do
  redis.call('ZREM', ARGV[2] .. 'subject:' .. sub .. ':jobs', ARGV[1])
  redis.call('SREM', ARGV[2] .. 'subject:' .. sub .. ':cached', ARGV[1])
end
for _, k in ipairs({'', ':callbacks', ':progress', ':subjects', ':done', ':deliveries', ':retry', ':assembler'}) do
  redis.call('DEL', KEYS[1] .. k)
end
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return 1
`)

// Delete removes an ended job (Failed, Cancelled, Expired) and all its
// records, its subjects' cache hits included; it refuses In-Progress and Completed jobs (deleted false).
func (s *Store) Delete(ctx context.Context, j Job) (deleted bool, err error) {
	n, err := deleteJob.Run(ctx, s.rdb, []string{s.jobKey(j.ID), s.jobsKey(), s.cacheKey(j.Spec.CacheKey())}, j.ID, s.prefix).Int()
	if err != nil {
		return false, fmt.Errorf("delete job %s: %w", j.ID, Unavailable(err))
	}
	return n == 1, nil
}

// DoneBatches returns how many of a job's batches have stored parts.
func (s *Store) DoneBatches(ctx context.Context, id string) (int64, error) {
	n, err := s.rdb.SCard(ctx, s.jobKey(id)+":done").Result()
	if err != nil {
		return 0, fmt.Errorf("count batches of job %s: %w", id, Unavailable(err))
	}
	return n, nil
}
