package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/geoexport/exporter/internal/egress"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
	"github.com/geoexport/exporter/internal/setting"
	"github.com/geoexport/exporter/internal/storage"
	"github.com/geoexport/exporter/source"
)

// Config configures a worker.
type Config struct {
	// Concurrency is the number of tasks run at once. Required.
	Concurrency int
	// ReservedConcurrency, above 0, adds a pool of that many slots that
	// serve only the urgent queue, so urgent work never waits behind a
	// backlog.
	ReservedConcurrency int
	// Fetchers is the number of tiles fetched and encoded at once in one
	// render task. Required.
	Fetchers int
	// QueueWeights are the shares of the urgent, default and low queues;
	// the merge queue has the urgent queue's.
	QueueWeights [3]int
	// TempDir holds packages while they are built; empty is the system's.
	TempDir string
	// ShutdownTimeout is how long running tasks may finish on shutdown
	// before asynq hands them back to the queue.
	ShutdownTimeout time.Duration
	// PollInterval is how long an idle task pool waits before it looks for
	// new tasks again; zero means 50ms. The urgent pool looks at least
	// every 100ms.
	PollInterval time.Duration
	// SweepInterval is how often the worker removes what nobody needs any
	// more from TempDir: task directories of dead processes, and packages
	// assembled here for jobs that ended (finalized on another machine,
	// cancelled or failed). It also sweeps once when it starts. Zero
	// means DefaultSweepInterval.
	SweepInterval time.Duration
	// PublicURL is the base of download links in callbacks.
	PublicURL string
	// PackageTTL is how long a finished package is kept.
	PackageTTL time.Duration
	// Encoders is the number of tiles encoded at once in one render task.
	Encoders int
	// CallbackSecret, when set, signs callback bodies (HMAC-SHA256).
	CallbackSecret []byte
	// CallbackTimeout bounds one callback POST (of the default HTTP
	// client); the callback task's options are the Enqueuer's.
	CallbackTimeout time.Duration
}

// DefaultConfig returns the defaults of the worker's own settings, for
// this machine's CPUs. PublicURL, PackageTTL and CallbackTimeout are
// shared with the trigger and the task options, and set from those.
func DefaultConfig() Config {
	return Config{
		Concurrency: runtime.NumCPU(), Fetchers: 4 * runtime.NumCPU(), Encoders: runtime.NumCPU(),
		QueueWeights: [3]int{6, 3, 1}, ShutdownTimeout: 30 * time.Second, PollInterval: DefaultPollInterval,
		SweepInterval: DefaultSweepInterval,
	}
}

// The poll and sweep intervals of a zero Config.
const (
	DefaultPollInterval  = 50 * time.Millisecond
	DefaultSweepInterval = time.Minute
)

// Validate reports every problem of c at once, each naming its fields
// (setting.FieldError).
func (c Config) Validate() error {
	var errs []error
	add := func(err error, fields ...string) { errs = append(errs, setting.Error(err, fields...)) }
	if c.Concurrency < 1 {
		add(fmt.Errorf("worker: concurrency %d must be at least 1", c.Concurrency), "Concurrency")
	}
	if c.Fetchers < 1 || c.Encoders < 1 {
		add(fmt.Errorf("worker: fetchers and encoders must be at least 1, got %d and %d", c.Fetchers, c.Encoders), "Fetchers", "Encoders")
	}
	if c.ReservedConcurrency < 0 {
		add(fmt.Errorf("worker: reserved concurrency %d must not be negative", c.ReservedConcurrency), "ReservedConcurrency")
	}
	for _, w := range c.QueueWeights {
		if w < 1 {
			add(errors.New("worker: every queue weight must be at least 1"), "QueueWeights")
			break
		}
	}
	if c.PublicURL == "" {
		add(errors.New("worker: public url is required"), "PublicURL")
	}
	if c.PackageTTL <= 0 {
		add(errors.New("worker: package ttl must be positive"), "PackageTTL")
	}
	if c.CallbackTimeout <= 0 {
		add(errors.New("worker: callback timeout must be positive"), "CallbackTimeout")
	}
	if c.ShutdownTimeout <= 0 {
		add(errors.New("worker: shutdown timeout must be positive"), "ShutdownTimeout")
	}
	if c.SweepInterval != 0 && c.SweepInterval < time.Second {
		add(fmt.Errorf("worker: sweep interval %v must be at least 1s", c.SweepInterval), "SweepInterval")
	}
	switch {
	case c.PollInterval < 0:
		add(fmt.Errorf("worker: poll interval %v is negative", c.PollInterval), "PollInterval")
	case c.PollInterval != 0 && (c.PollInterval < 10*time.Millisecond || c.PollInterval > 10*time.Second):
		add(fmt.Errorf("worker: poll interval %v must be between 10ms and 10s", c.PollInterval), "PollInterval")
	}
	return errors.Join(errs...)
}

// Deps are the collaborators of a worker.
type Deps struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Redis    asynq.RedisConnOpt
	Jobs     Jobs
	Files    Files
	// Tiles reads tile-store layers kept under an S3 prefix; nil when
	// packages are kept on local disk.
	Tiles source.Objects
	// Enqueuer queues the finalize and callback tasks a worker starts.
	Enqueuer Enqueuer
	// HTTP posts callbacks; nil is an egress client that reaches public
	// addresses only, with CallbackTimeout. New uses a copy that never
	// follows redirects, whatever CheckRedirect is set.
	HTTP *http.Client
}

// Files is the package storage the worker writes.
type Files interface {
	// Put uploads size bytes read from r under key, replacing any object
	// there; readers never see a partial object. It reads r once, from
	// the start, and does not close it.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// PutFile uploads the local file at path under key, replacing any
	// object there; readers never see a partial object.
	PutFile(ctx context.Context, key, path, contentType string) error
	// GetFile downloads the object at key to path; storage.ErrNotFound
	// when it does not exist.
	GetFile(ctx context.Context, key, path string) error
	// Delete removes the object at key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List yields the objects under prefix.
	List(ctx context.Context, prefix string) iter.Seq2[storage.Info, error]
}

// Jobs is the job store a worker reads and moves jobs on with; *job.Store
// is one. Get, Status, BatchDone, Complete and Fail return
// job.ErrNotFound for an unknown job id.
type Jobs interface {
	// Get returns a job record.
	Get(ctx context.Context, id string) (job.Job, error)
	// Status returns a job's status.
	Status(ctx context.Context, id string) (job.Status, error)
	// SetProgress records how many tiles of a batch are done; it never
	// goes back.
	SetProgress(ctx context.Context, id, batch string, done int64) error
	// SetRetrying records whether a batch waits to be run again; shown
	// in the job's status. Idempotent.
	SetRetrying(ctx context.Context, id string, batch int, waiting bool) error
	// IsBatchDone reports whether a batch is in the job's done-set.
	IsBatchDone(ctx context.Context, id string, batch int) (bool, error)
	// Heartbeat says the machine whose queue is queue is alive for ttl.
	Heartbeat(ctx context.Context, queue string, ttl time.Duration) error
	// MachineAlive reports whether that machine's heartbeat lasts.
	MachineAlive(ctx context.Context, queue string) (bool, error)
	// ClaimAssembly makes machine the one that merges the job's parts
	// ahead of finalize unless another machine is, and reports whether
	// machine is it.
	ClaimAssembly(ctx context.Context, id, machine string) (bool, error)
	// BatchDone adds a batch to the job's done-set (a set: a re-run
	// counts once) and returns how many batches are done.
	BatchDone(ctx context.Context, id string, batch int) (int64, error)
	// Complete marks an In-Progress job Completed with its package;
	// changed is false, and j the job as it is, for any other job.
	Complete(ctx context.Context, id string, r job.Result, ttl time.Duration) (j job.Job, changed bool, err error)
	// Fail marks an In-Progress job Failed with reason; changed is false,
	// and j the job as it is, for any other job.
	Fail(ctx context.Context, id, reason string) (j job.Job, changed bool, err error)
	// RecordDelivery stores the outcome of a callback attempt.
	RecordDelivery(ctx context.Context, id string, d job.Delivery) error
}

// Enqueuer queues the tasks that follow a worker's; *job.Enqueuer is one.
// Each method is idempotent: a task that exists already is not queued
// again.
type Enqueuer interface {
	// Queue is the queue of j's tasks, which its priority picks.
	Queue(j job.Job) string
	// Finalize queues the merge of j's parts.
	Finalize(ctx context.Context, j job.Job) (added bool, err error)
	// Merge queues a merge of j's stored parts ahead of finalize, after
	// batch was stored.
	Merge(ctx context.Context, j job.Job, batch int) (added bool, err error)
	// Callbacks queues the callbacks of the ended job j.
	Callbacks(ctx context.Context, j job.Job) error
	// RenderAgain queues once more the render task of j's batch that
	// deadTaskID was running when its worker died; added is false when
	// that copy exists already.
	RenderAgain(ctx context.Context, j job.Job, batch int, deadTaskID string) (added bool, err error)
	// FinalizeElsewhere queues in j's own queue the finalize deadTaskID
	// that a dead machine's queue holds; added is false when that copy
	// exists already.
	FinalizeElsewhere(ctx context.Context, j job.Job, deadTaskID string) (added bool, err error)
}

// Worker runs the export task handlers.
type Worker struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	metrics *metrics
	running atomic.Bool
	// queue is this machine's own queue (job.MachineQueue of
	// assemblyMachine): finalizes of the packages it assembles.
	queue string
	// The steps of an export, each calling forward only:
	// render → (merge's and finalize's tasks) → merge, finalize →
	// publish, any → failure.
	render   *renderer
	merge    *merger
	finalize *finalizer
}

// Ready reports whether the worker's asynq servers are serving.
func (w *Worker) Ready() error {
	if !w.running.Load() {
		return errors.New("worker: not serving tasks")
	}
	return nil
}

// New builds a worker.
func New(cfg Config, deps Deps) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil || deps.Registry == nil || deps.Jobs == nil || deps.Files == nil || deps.Enqueuer == nil {
		return nil, errors.New("worker: logger, registry, jobs, files and enqueuer are required")
	}
	if cfg.TempDir != "" {
		if err := os.MkdirAll(cfg.TempDir, 0o750); err != nil {
			return nil, fmt.Errorf("worker: temp dir: %w", err)
		}
	}
	if deps.HTTP == nil {
		policy, err := egress.New(egress.Config{})
		if err != nil {
			return nil, err
		}
		deps.HTTP = policy.Client(cfg.CallbackTimeout)
	}
	deps.HTTP = withoutRedirects(deps.HTTP)
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	fail := &failures{jobs: deps.Jobs, files: deps.Files, enqueuer: deps.Enqueuer, log: deps.Logger, metrics: m}
	machineQueue := job.MachineQueue(assemblyMachine(cfg.TempDir))
	publish := &publisher{jobs: deps.Jobs, files: deps.Files, enqueuer: deps.Enqueuer, log: deps.Logger, metrics: m, ttl: cfg.PackageTTL}
	return &Worker{cfg: cfg, deps: deps, log: deps.Logger, metrics: m,
		render: &renderer{
			jobs: deps.Jobs, files: deps.Files, enqueuer: deps.Enqueuer, log: deps.Logger, metrics: m,
			tempDir: cfg.TempDir, fetchers: cfg.Fetchers, encoders: cfg.Encoders,
			sources: source.NewPool(source.StorageDeps(deps.Tiles, cfg.TempDir), source.DefaultPoolIdle),
			publish: publish, fail: fail,
		},
		queue: machineQueue,
		merge: &merger{jobs: deps.Jobs, files: deps.Files, log: deps.Logger, tempDir: cfg.TempDir, machine: machineQueue},
		finalize: &finalizer{
			jobs: deps.Jobs, files: deps.Files, enqueuer: deps.Enqueuer, log: deps.Logger,
			tempDir: cfg.TempDir, publish: publish, fail: fail, metrics: m,
		},
	}, nil
}

// Close closes the layer sources the worker keeps open. Run calls it when
// it returns; callers that use Handler alone call it when done.
func (w *Worker) Close() error { return w.render.sources.Close() }

// Handler returns the task mux: export:render, export:merge,
// export:finalize and export:callback, with metrics around each.
func (w *Worker) Handler() asynq.Handler {
	mux := asynq.NewServeMux()
	mux.Use(w.observe)
	mux.HandleFunc(job.TypeRender, w.render.handle)
	mux.HandleFunc(job.TypeMerge, w.merge.handle)
	mux.HandleFunc(job.TypeFinalize, w.finalize.handle)
	mux.HandleFunc(job.TypeCallback, w.handleCallback)
	return mux
}

// Run removes the temp dirs that dead processes left in TempDir, then
// serves tasks until ctx is done (sweeping TempDir every SweepInterval), then lets running tasks finish within
// ShutdownTimeout; unfinished ones go back to the queue.
func (w *Worker) Run(ctx context.Context) error {
	if w.deps.Redis == nil {
		return errors.New("worker: redis connection is required to run")
	}
	w.sweep(ctx)
	// The heartbeat goes first: a finalize is sent to this machine's queue
	// only while it lasts.
	w.heartbeat(ctx)
	servers := []*asynq.Server{w.server(w.cfg.Concurrency, map[string]int{
		job.QueueUrgent: w.cfg.QueueWeights[0], job.QueueDefault: w.cfg.QueueWeights[1], job.QueueLow: w.cfg.QueueWeights[2],
		job.QueueMerge: w.cfg.QueueWeights[0], w.queue: w.cfg.QueueWeights[0],
	})}
	if n := w.cfg.ReservedConcurrency; n > 0 {
		servers = append(servers, w.server(n, map[string]int{job.QueueUrgent: 1}))
	}
	for i, srv := range servers {
		if err := srv.Start(w.Handler()); err != nil {
			for _, started := range servers[:i] {
				started.Shutdown()
			}
			return fmt.Errorf("start worker: %w", err)
		}
	}
	w.log.InfoContext(ctx, "worker started", "concurrency", w.cfg.Concurrency, "reserved_concurrency", w.cfg.ReservedConcurrency)
	w.running.Store(true)
	inspector := asynq.NewInspector(w.deps.Redis)
	rescue := &rescuer{active: inspector, jobs: w.deps.Jobs, enqueuer: w.deps.Enqueuer, log: w.log, metrics: w.metrics,
		own: w.queue, beat: func() { w.heartbeat(ctx) }}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); rescue.run(ctx, RescueInterval) }()
	go func() {
		defer wg.Done()
		// A package that merges assembled here while finalize ran on another
		// machine goes within an interval of the job's end, not at a restart.
		every(ctx, cmp.Or(w.cfg.SweepInterval, DefaultSweepInterval), func() { w.sweep(ctx) })
	}()
	<-ctx.Done()
	w.running.Store(false)
	wg.Wait()
	_ = inspector.Close()
	for _, srv := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); srv.Shutdown() }()
	}
	wg.Wait()
	return w.Close()
}

// server builds an asynq server of n slots over queues. An idle server
// looks for new tasks every PollInterval (asynq's default is a second,
// which a one-batch export or a finalize waits for in full); one of the
// urgent queue alone looks at least ten times a second.
func (w *Worker) server(n int, queues map[string]int) *asynq.Server {
	check := cmp.Or(w.cfg.PollInterval, DefaultPollInterval)
	if len(queues) == 1 && queues[job.QueueUrgent] > 0 {
		check = min(check, 100*time.Millisecond)
	}
	return asynq.NewServer(w.deps.Redis, asynq.Config{
		Concurrency:       n,
		TaskCheckInterval: check,
		Queues:            queues,
		ShutdownTimeout:   w.cfg.ShutdownTimeout,
		Logger:            job.AsynqLogger(w.log),
		LogLevel:          asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, task *asynq.Task, err error) {
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			id, _ := asynq.GetTaskID(ctx)
			w.log.WarnContext(ctx, "task failed", logattr.TaskType, task.Type(), logattr.TaskID, id,
				"retried", retried, "max_retry", maxRetry, logattr.Error, err)
			w.retrying(ctx, task, err, retried < maxRetry)
		}),
		RetryDelayFunc: retryDelay,
		// A task that found Redis unavailable (a failover, say) is
		// retried without using up one of its attempts: the outage is
		// no fault of the task, and a job must not fail for it.
		IsFailure: func(err error) bool { return !errors.Is(err, job.ErrUnavailable) },
	})
}

// retrying marks the batch of a render task that failed and will be
// retried (retriesLeft, the error not ending it for good) as waiting to
// be run again, for the job's status.
func (w *Worker) retrying(ctx context.Context, task *asynq.Task, err error, retriesLeft bool) {
	if task.Type() != job.TypeRender || !retriesLeft || errors.Is(err, asynq.SkipRetry) || errors.Is(err, errCancelled) {
		return
	}
	var p job.RenderPayload
	if job.Decode(task.Payload(), &p) != nil {
		return
	}
	if serr := w.deps.Jobs.SetRetrying(context.WithoutCancel(ctx), p.JobID, p.Batch, true); serr != nil {
		w.log.WarnContext(ctx, "record batch retry", logattr.JobID, p.JobID, logattr.Error, serr)
	}
}

// retryDelay backs off exponentially from 2s, capped at 5 minutes.
func retryDelay(n int, _ error, _ *asynq.Task) time.Duration {
	d := 2 * time.Second << min(n, 8)
	return min(d, 5*time.Minute)
}

// observe times every task and counts it by type and outcome.
func (w *Worker) observe(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		start := time.Now()
		err := next.ProcessTask(ctx, t)
		outcome := "success"
		switch {
		case err == nil:
		case errors.Is(err, asynq.SkipRetry):
			outcome = "failed"
		case ctx.Err() != nil:
			outcome = "cancelled"
		default:
			outcome = "retry"
		}
		w.metrics.tasks.WithLabelValues(t.Type(), outcome).Inc()
		w.metrics.taskDuration.WithLabelValues(t.Type()).Observe(time.Since(start).Seconds())
		return err
	})
}
