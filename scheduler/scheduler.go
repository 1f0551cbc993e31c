package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
	"github.com/geoexport/exporter/internal/setting"
	"github.com/geoexport/exporter/internal/storage"
)

// Task types and the queue of maintenance.
const (
	TypeExpire    = "maintenance:expire"
	TypeOrphans   = "maintenance:orphans"
	TypeClean     = "maintenance:clean"
	TypeReconcile = "maintenance:reconcile"
	Queue         = job.QueueMaintenance
)

// Config configures the scheduler. Zero fields take the defaults below.
type Config struct {
	// ExpireSpec, OrphansSpec, CleanSpec and ReconcileSpec are cron specs
	// (five fields, or descriptors such as "@every 5m"). Defaults every
	// minute, every 15 minutes, hourly and every 2 minutes.
	ExpireSpec, OrphansSpec, CleanSpec, ReconcileSpec string
	// BatchSize is the most items one run handles. Default 200.
	BatchSize int64
	// RunTimeout bounds one run. Default 2m.
	RunTimeout time.Duration
	// OrphanAge is how old a part of a job that no longer runs must be
	// before it is removed. Default 1h.
	OrphanAge time.Duration
	// CleanAfter is how long Failed, Cancelled and Expired jobs are kept
	// before their records are deleted. Default 168h (a week).
	CleanAfter time.Duration
	// StuckAfter is how old an In-Progress job must be before reconcile
	// looks at it. Default 10m.
	StuckAfter time.Duration
}

func (c Config) withDefaults() Config {
	c.ExpireSpec = cmp.Or(c.ExpireSpec, "@every 1m")
	c.OrphansSpec = cmp.Or(c.OrphansSpec, "@every 15m")
	c.CleanSpec = cmp.Or(c.CleanSpec, "@hourly")
	c.ReconcileSpec = cmp.Or(c.ReconcileSpec, "@every 2m")
	c.BatchSize = cmp.Or(c.BatchSize, 200)
	c.RunTimeout = cmp.Or(c.RunTimeout, 2*time.Minute)
	c.OrphanAge = cmp.Or(c.OrphanAge, time.Hour)
	c.CleanAfter = cmp.Or(c.CleanAfter, 7*24*time.Hour)
	c.StuckAfter = cmp.Or(c.StuckAfter, 10*time.Minute)
	return c
}

// DefaultConfig returns the default of every setting.
func DefaultConfig() Config { return Config{}.withDefaults() }

// Validate reports every problem of c at once, each naming its fields
// (setting.FieldError). New fills in the defaults of zero settings first;
// Validate takes c as it is.
func (c Config) Validate() error {
	var errs []error
	for _, sc := range []struct{ field, name, spec string }{
		{"ExpireSpec", "expire", c.ExpireSpec}, {"OrphansSpec", "orphans", c.OrphansSpec},
		{"CleanSpec", "clean", c.CleanSpec}, {"ReconcileSpec", "reconcile", c.ReconcileSpec},
	} {
		if _, err := cron.ParseStandard(sc.spec); err != nil {
			errs = append(errs, setting.Error(fmt.Errorf("scheduler: %s spec %q is not a cron spec or @every interval: %w", sc.name, sc.spec, err), sc.field))
		}
	}
	if c.BatchSize < 1 {
		errs = append(errs, setting.Error(fmt.Errorf("scheduler: batch size %d must be at least 1", c.BatchSize), "BatchSize"))
	}
	for _, d := range []struct {
		field, name string
		d           time.Duration
	}{{"RunTimeout", "run timeout", c.RunTimeout}, {"OrphanAge", "orphan age", c.OrphanAge}, {"CleanAfter", "clean after", c.CleanAfter}, {"StuckAfter", "stuck after", c.StuckAfter}} {
		if d.d <= 0 {
			errs = append(errs, setting.Error(fmt.Errorf("scheduler: %s %v must be positive", d.name, d.d), d.field))
		}
	}
	return errors.Join(errs...)
}

// Files is the storage the scheduler cleans.
type Files interface {
	// Delete removes the object at key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List yields the objects under prefix.
	List(ctx context.Context, prefix string) iter.Seq2[storage.Info, error]
}

// Jobs is the job store maintenance reads and moves jobs on with;
// *job.Store is one. Get and Status return job.ErrNotFound for an unknown
// job id.
type Jobs interface {
	// Get returns a job record.
	Get(ctx context.Context, id string) (job.Job, error)
	// Status returns a job's status.
	Status(ctx context.Context, id string) (job.Status, error)
	// DueForExpiry returns up to limit ids of jobs whose expiry has come,
	// oldest first.
	DueForExpiry(ctx context.Context, limit int64) ([]string, error)
	// Expire marks a due Completed job Expired and returns the key of its
	// package to delete; empty when a cache hit extended it meanwhile.
	// Expiring an Expired job again returns the key again.
	Expire(ctx context.Context, id string) (fileKey string, err error)
	// ForgetExpiry drops a job from the expiry index, once its package is
	// gone.
	ForgetExpiry(ctx context.Context, id string) error
	// Oldest returns up to limit job ids created more than age ago,
	// oldest first, starting after the one at offset.
	Oldest(ctx context.Context, age time.Duration, offset, limit int64) ([]string, error)
	// Delete removes the records of an ended job; deleted is false for an
	// In-Progress or Completed job.
	Delete(ctx context.Context, j job.Job) (deleted bool, err error)
	// DoneBatches returns how many of a job's batches are stored.
	DoneBatches(ctx context.Context, id string) (int64, error)
	// IsBatchDone reports whether a batch is stored.
	IsBatchDone(ctx context.Context, id string, batch int) (bool, error)
	// Assembler is the queue of the machine that claimed the job's
	// assembly, where its finalize may be; "" when none did.
	Assembler(ctx context.Context, id string) (string, error)
	// Fail marks an In-Progress job Failed with reason; changed is false
	// for any other job.
	Fail(ctx context.Context, id, reason string) (j job.Job, changed bool, err error)
	// Overview reads the running jobs, the quota's counts and the last
	// successful maintenance runs, for the gauges of every replica.
	Overview(ctx context.Context) (job.Overview, error)
	// MaintenanceSucceeded records a successful run of a maintenance task
	// type; it never moves the recorded time back.
	MaintenanceSucceeded(ctx context.Context, typ string, at time.Time) error
}

// Tasks looks up the asynq tasks of jobs; *asynq.Inspector is one.
type Tasks interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
}

// Enqueuer queues the tasks reconcile moves stuck jobs on with, and the
// maintenance slots; *job.Enqueuer is one. Each method is idempotent: a
// task that exists already is not queued again, and added says whether
// one was.
type Enqueuer interface {
	// Queue is the queue of j's tasks.
	Queue(j job.Job) string
	// Render queues the render task of one of j's batches.
	Render(ctx context.Context, j job.Job, batch int) (added bool, err error)
	// Finalize queues the merge of j's parts.
	Finalize(ctx context.Context, j job.Job) (added bool, err error)
	// Callbacks queues the callbacks of the ended job j.
	Callbacks(ctx context.Context, j job.Job) error
	// Maintenance queues the maintenance task typ of slot, bounded by
	// timeout.
	Maintenance(ctx context.Context, typ string, slot time.Time, timeout time.Duration) (added bool, err error)
}

// Deps are the scheduler's collaborators.
type Deps struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Jobs     Jobs
	Files    Files
	Enqueuer Enqueuer
	Tasks    Tasks
	// Redis serves the maintenance queue in Run.
	Redis asynq.RedisConnOpt
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// QuotaBytes is the storage quota the trigger enforces
	// (EXPORTER_JOBS_QUOTA_BYTES), reported beside the usage; 0 is none.
	QuotaBytes int64
}

// Scheduler enqueues maintenance at its cron slots and runs it.
type Scheduler struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	entries []entry
	metrics *metrics
}

type entry struct {
	typ      string
	schedule cron.Schedule
}

type metrics struct {
	expired, bytesFreed, orphans, orphanPackages, cleaned, reconciled prometheus.Counter
	runs                                                              *prometheus.CounterVec
}

// New builds a scheduler.
func New(cfg Config, deps Deps) (*Scheduler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil || deps.Registry == nil || deps.Jobs == nil || deps.Files == nil || deps.Enqueuer == nil || deps.Tasks == nil {
		return nil, errors.New("scheduler: logger, registry, jobs, files, enqueuer and tasks are required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Scheduler{cfg: cfg, deps: deps, log: deps.Logger}
	for typ, spec := range map[string]string{TypeExpire: cfg.ExpireSpec, TypeOrphans: cfg.OrphansSpec, TypeClean: cfg.CleanSpec, TypeReconcile: cfg.ReconcileSpec} {
		sched, _ := cron.ParseStandard(spec) // validated above
		s.entries = append(s.entries, entry{typ: typ, schedule: sched})
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	s.metrics = &metrics{
		expired:    counter("exporter_scheduler_packages_expired_total", "Packages deleted because they expired."),
		bytesFreed: counter("exporter_scheduler_bytes_freed_total", "Bytes of expired packages and orphaned parts deleted."),
		orphans:    counter("exporter_scheduler_orphaned_parts_deleted_total", "Parts of jobs no longer running that were deleted."),
		orphanPackages: counter("exporter_scheduler_orphaned_packages_deleted_total",
			"Packages of jobs that are gone or ended without completing that were deleted."),
		cleaned:    counter("exporter_scheduler_jobs_cleaned_total", "Records of ended jobs deleted after the grace period."),
		reconciled: counter("exporter_scheduler_jobs_reconciled_total", "Stuck jobs finished, revived or failed by reconcile."),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exporter_scheduler_runs_total", Help: "Maintenance runs by task type and outcome.",
		}, []string{"task_type", "outcome"}),
	}
	for _, e := range s.entries {
		// Every series exists from the start, so a run that never happens
		// shows as a flat zero rather than as no data.
		s.metrics.runs.WithLabelValues(e.typ, "success")
		s.metrics.runs.WithLabelValues(e.typ, "failed")
	}
	for _, c := range []prometheus.Collector{s.metrics.expired, s.metrics.bytesFreed, s.metrics.orphans, s.metrics.orphanPackages, s.metrics.cleaned, s.metrics.reconciled, s.metrics.runs, newOverviewCollector(s)} {
		if err := deps.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("register scheduler metrics: %w", err)
		}
	}
	return s, nil
}

// Handler returns the mux of the maintenance tasks.
func (s *Scheduler) Handler() asynq.Handler {
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeExpire, s.run(TypeExpire, s.expire))
	mux.HandleFunc(TypeOrphans, s.run(TypeOrphans, s.orphans))
	mux.HandleFunc(TypeClean, s.run(TypeClean, s.clean))
	mux.HandleFunc(TypeReconcile, s.run(TypeReconcile, s.reconcile))
	return mux
}

// run wraps one maintenance step: it logs what it did and counts the run.
func (s *Scheduler) run(typ string, step func(context.Context) (int, error)) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		n, err := step(ctx)
		outcome := "success"
		if err != nil {
			outcome = "failed"
		}
		s.metrics.runs.WithLabelValues(typ, outcome).Inc()
		level := slog.LevelDebug
		if n > 0 {
			level = slog.LevelInfo
		}
		s.log.Log(ctx, level, "maintenance run", logattr.TaskType, typ, "handled", n, logattr.Error, err)
		if err == nil {
			// For the alert on maintenance that stops succeeding, whichever
			// replica ran it. The run itself is done: a failure to record
			// it is only logged.
			if rerr := s.deps.Jobs.MaintenanceSucceeded(ctx, typ, s.deps.Now()); rerr != nil {
				s.log.WarnContext(ctx, "record maintenance run", logattr.TaskType, typ, logattr.Error, rerr)
			}
		}
		return err
	}
}

// EnqueueDue enqueues every task whose latest slot lies in (since, now].
// The task id names the task and its slot, so every replica may call this
// for the same slot and only one task results.
func (s *Scheduler) EnqueueDue(ctx context.Context, since, now time.Time) error {
	var errs []error
	for _, e := range s.entries {
		slot := latestSlot(e.schedule, since, now)
		if slot.IsZero() {
			continue
		}
		if _, err := s.deps.Enqueuer.Maintenance(ctx, e.typ, slot, s.cfg.RunTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// latestSlot returns the last slot of sched in (since, now], or the zero
// time when there is none; missed slots before it are not run.
//
// An "@every d" schedule counts d from the moment it is asked
// (Next(t) = t+d), so asking it from since would never reach now when the
// caller asks every few seconds, and replicas started at different times
// would disagree on the slots. Its slots are instead the multiples of d
// since the Unix epoch: the same instants on every replica, whenever it
// started.
func latestSlot(sched cron.Schedule, since, now time.Time) time.Time {
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		d := every.Delay.Milliseconds()
		slot := time.UnixMilli(now.UnixMilli() / d * d)
		if !slot.After(since) {
			return time.Time{}
		}
		return slot
	}
	slot := time.Time{}
	for t := sched.Next(since); !t.After(now); t = sched.Next(t) {
		slot = t
	}
	return slot
}

// tick is how often Run looks for due slots: the finest a schedule can be
// ("@every 1s"), so no slot is missed.
const tick = time.Second

// Run enqueues due maintenance every second and serves the
// maintenance queue until ctx is done; a running task then gets the run
// timeout to finish.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.deps.Redis == nil {
		return errors.New("scheduler: redis connection is required to run")
	}
	srv := asynq.NewServer(s.deps.Redis, asynq.Config{
		Concurrency: 1, Queues: map[string]int{Queue: 1}, ShutdownTimeout: s.cfg.RunTimeout,
		Logger: job.AsynqLogger(s.log), LogLevel: asynq.WarnLevel, TaskCheckInterval: time.Second,
	})
	if err := srv.Start(s.Handler()); err != nil {
		return fmt.Errorf("start scheduler: %w", err)
	}
	defer srv.Shutdown()
	s.log.InfoContext(ctx, "scheduler started")
	t := time.NewTicker(tick)
	defer t.Stop()
	last := s.deps.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := s.deps.Now()
		if err := s.EnqueueDue(ctx, last, now); err != nil {
			s.log.ErrorContext(ctx, "enqueue maintenance", logattr.Error, err)
			continue // try the same slots again
		}
		last = now
	}
}
