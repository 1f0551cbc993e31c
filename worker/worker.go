package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/geoexport/exporter/internal/egress"
	"github.com/geoexport/exporter/internal/job"
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
	// QueueWeights are the shares of the urgent, default and low queues.
	QueueWeights [3]int
	// UrgentFrom and DefaultFrom map priorities to queues (job.QueueFor);
	// callbacks go to their job's queue.
	UrgentFrom, DefaultFrom int
	// TempDir holds packages while they are built; empty is the system's.
	TempDir string
	// ShutdownTimeout is how long running tasks may finish on shutdown
	// before asynq hands them back to the queue.
	ShutdownTimeout time.Duration
	// PollInterval is how long an idle task pool waits before it looks for
	// new tasks again; zero means 200ms. The urgent pool looks at least
	// every 100ms.
	PollInterval time.Duration
	// PublicURL is the base of download links in callbacks.
	PublicURL string
	// PackageTTL is how long a finished package is kept.
	PackageTTL time.Duration
	// FinalizeTimeout and FinalizeMaxRetry are set on every merge task.
	FinalizeTimeout  time.Duration
	FinalizeMaxRetry int
	// Encoders is the number of tiles encoded at once in one render task.
	Encoders int
	// CallbackSecret, when set, signs callback bodies (HMAC-SHA256).
	CallbackSecret []byte
	// CallbackTimeout bounds one callback POST; CallbackMaxRetry is set on
	// every callback task.
	CallbackTimeout  time.Duration
	CallbackMaxRetry int
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if c.Concurrency < 1 || c.Fetchers < 1 || c.Encoders < 1 || c.ReservedConcurrency < 0 {
		errs = append(errs, errors.New("worker: concurrency, fetchers and encoders must be at least 1, reserved concurrency not negative"))
	}
	if c.FinalizeTimeout <= 0 || c.FinalizeMaxRetry < 0 {
		errs = append(errs, errors.New("worker: finalize timeout must be positive, finalize retries not negative"))
	}
	for _, w := range c.QueueWeights {
		if w < 1 {
			errs = append(errs, errors.New("worker: every queue weight must be at least 1"))
			break
		}
	}
	if c.PublicURL == "" {
		errs = append(errs, errors.New("worker: public url is required"))
	}
	if c.PackageTTL <= 0 || c.CallbackTimeout <= 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("worker: package ttl, callback timeout and shutdown timeout must be positive"))
	}
	if c.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("worker: poll interval %v is negative", c.PollInterval))
	}
	return errors.Join(errs...)
}

// Deps are the collaborators of a worker.
type Deps struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Redis    asynq.RedisConnOpt
	Jobs     *job.Store
	Files    Files
	// Tiles reads tile-store layers kept under an S3 prefix; nil when
	// packages are kept on local disk.
	Tiles source.Objects
	// Queue enqueues callbacks; *asynq.Client is one.
	Queue job.Enqueuer
	// HTTP posts callbacks; nil is an egress client that reaches public
	// addresses only, with CallbackTimeout. New uses a copy that never
	// follows redirects, whatever CheckRedirect is set.
	HTTP *http.Client
}

// Worker runs the export task handlers.
type Worker struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	metrics *metrics
	running atomic.Bool
	// sources keeps layers' sources open across render tasks: the batches
	// of one export share connections, metatile cache and a downloaded
	// GeoPackage.
	sources *source.Pool
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
	if deps.Logger == nil || deps.Registry == nil || deps.Jobs == nil || deps.Files == nil || deps.Queue == nil {
		return nil, errors.New("worker: logger, registry, jobs, files and queue are required")
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
	return &Worker{cfg: cfg, deps: deps, log: deps.Logger, metrics: m,
		sources: source.NewPool(source.StorageDeps(deps.Tiles, cfg.TempDir), source.DefaultPoolIdle)}, nil
}

// Close closes the layer sources the worker keeps open. Run calls it when
// it returns; callers that use Handler alone call it when done.
func (w *Worker) Close() error { return w.sources.Close() }

// Handler returns the task mux: export:render and export:callback, with
// metrics and logging around each.
func (w *Worker) Handler() asynq.Handler {
	mux := asynq.NewServeMux()
	mux.Use(w.observe)
	mux.HandleFunc(job.TypeRender, w.handleRender)
	mux.HandleFunc(job.TypeFinalize, w.handleFinalize)
	mux.HandleFunc(job.TypeCallback, w.handleCallback)
	return mux
}

// Run removes the temp dirs that dead processes left in TempDir, then
// serves tasks until ctx is done, then lets running tasks finish within
// ShutdownTimeout; unfinished ones go back to the queue.
func (w *Worker) Run(ctx context.Context) error {
	if w.deps.Redis == nil {
		return errors.New("worker: redis connection is required to run")
	}
	w.sweep(ctx)
	servers := []*asynq.Server{w.server(w.cfg.Concurrency, map[string]int{
		job.QueueUrgent: w.cfg.QueueWeights[0], job.QueueDefault: w.cfg.QueueWeights[1], job.QueueLow: w.cfg.QueueWeights[2],
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
	<-ctx.Done()
	w.running.Store(false)
	var wg sync.WaitGroup
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
	check := cmp.Or(w.cfg.PollInterval, 200*time.Millisecond)
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
			w.log.WarnContext(ctx, "task failed", "task_type", task.Type(), "task_id", id,
				"retried", retried, "max_retry", maxRetry, "error", err)
		}),
		RetryDelayFunc: retryDelay,
		// A task that found Redis unavailable (a failover, say) is
		// retried without using up one of its attempts: the outage is
		// no fault of the task, and a job must not fail for it.
		IsFailure: func(err error) bool { return !errors.Is(err, job.ErrUnavailable) },
	})
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

// lastAttempt reports whether err ends the task for good: it skips
// retries, or no retry is left. Redis being unavailable never does.
func lastAttempt(ctx context.Context, err error) bool {
	if errors.Is(err, asynq.SkipRetry) {
		return true
	}
	if errors.Is(err, job.ErrUnavailable) {
		return false // not counted as an attempt: see IsFailure in server
	}
	retried, ok1 := asynq.GetRetryCount(ctx)
	maxRetry, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && retried >= maxRetry
}
