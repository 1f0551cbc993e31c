package trigger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/geoexport/exporter/internal/area"
	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/logattr"
	"github.com/geoexport/exporter/internal/setting"
	"github.com/geoexport/exporter/internal/storage"
	"github.com/geoexport/exporter/source"
)

// Config configures the API.
type Config struct {
	// PublicURL is the base of download links, without a trailing slash.
	PublicURL string
	// Debug adds stack traces to 500 responses.
	Debug bool
	// BodyLimit caps request bodies in bytes, but those of POST /export
	// and POST /estimate.
	BodyLimit int
	// AreaBodyLimit caps the bodies of POST /export and POST /estimate,
	// whose area may hold MaxROIVertices positions at some 40 bytes each.
	// BodyLimit applies when it is larger. Zero: 16 MiB.
	AreaBodyLimit int
	// ShutdownTimeout bounds the drain of open requests in Run.
	ShutdownTimeout time.Duration
	// PackageTTL is how long a package lives after a cache hit.
	PackageTTL time.Duration
	// MaxTiles caps the tiles of one export.
	MaxTiles int64
	// MaxROIVertices caps the positions of an /export's area, all
	// features together. Zero: area.DefaultMaxVertices.
	MaxROIVertices int
	// TileSizes are the average tile sizes of size estimates, where a
	// layer's finished packages have not yet taught better.
	TileSizes job.TileSizes
	// LearnedMaxAge is how long a replica keeps a layer's learned tile
	// sizes before it reads them from Redis again.
	LearnedMaxAge time.Duration
	// Batching cuts exports into render tasks.
	Batching job.Batching
	// QuotaBytes caps stored packages plus unfinished estimates; 0 is none.
	QuotaBytes int64
	// RateLimit is requests per minute per subject, 0 for none; RateBurst
	// is the burst above it.
	RateLimit, RateBurst int
	// MonitoringWritable lets operators change queues and tasks in asynqmon
	// at /monitoring (pause, delete, run, archive). Zero: read-only.
	MonitoringWritable bool
	// PrometheusURL is the Prometheus server asynqmon draws its queue
	// charts from. Empty: no charts.
	PrometheusURL string
	// PreviewTimeout bounds one preview tile: at most a quarter of it is
	// spent waiting for a free slot (then 503), the rest on the layer's
	// source (then 504). Zero: DefaultPreviewTimeout.
	PreviewTimeout time.Duration
	// PreviewConcurrency is how many preview tiles this replica reads at
	// once, so that previews cannot starve the API. Zero:
	// DefaultPreviewConcurrency.
	PreviewConcurrency int
}

// CallbackPolicy checks a callback URL before it is accepted.
type CallbackPolicy interface {
	// CheckURL returns an error saying why raw may not be called back.
	CheckURL(ctx context.Context, raw string) error
}

// DefaultConfig returns the defaults of every setting that has one; a
// deployment sets PublicURL.
func DefaultConfig() Config {
	return Config{
		BodyLimit: 1 << 20, AreaBodyLimit: 16 << 20, ShutdownTimeout: 10 * time.Second,
		PackageTTL: 30 * 24 * time.Hour, MaxTiles: 5_000_000, MaxROIVertices: area.DefaultMaxVertices,
		TileSizes: job.TileSizes{PNG: 40_000, JPEG: 12_000}, LearnedMaxAge: 30 * time.Second,
		Batching:  job.Batching{MaxTiles: 10_000, Spread: 16, MinTiles: 1000},
		RateLimit: 600, RateBurst: 60,
		PreviewTimeout: DefaultPreviewTimeout, PreviewConcurrency: DefaultPreviewConcurrency,
	}
}

// withDefaults fills in the settings whose zero means their default.
func (c Config) withDefaults() Config {
	c.PreviewTimeout = cmp.Or(c.PreviewTimeout, DefaultPreviewTimeout)
	c.PreviewConcurrency = cmp.Or(c.PreviewConcurrency, DefaultPreviewConcurrency)
	c.MaxROIVertices = cmp.Or(c.MaxROIVertices, area.DefaultMaxVertices)
	c.AreaBodyLimit = cmp.Or(c.AreaBodyLimit, DefaultConfig().AreaBodyLimit)
	return c
}

// Validate reports every problem of c at once, each naming its fields
// (setting.FieldError). New fills in the defaults of zero preview and roi settings
// first; Validate takes c as it is.
func (c Config) Validate() error {
	var errs []error
	add := func(msg string, fields ...string) {
		errs = append(errs, setting.Error(errors.New("trigger: "+msg), fields...))
	}
	if c.PublicURL == "" {
		add("public url is required", "PublicURL")
	}
	if c.BodyLimit < 1024 {
		add(fmt.Sprintf("body limit %d is below 1024 bytes", c.BodyLimit), "BodyLimit")
	}

	if c.ShutdownTimeout <= 0 {
		add(fmt.Sprintf("shutdown timeout %v must be positive", c.ShutdownTimeout), "ShutdownTimeout")
	}
	if c.PackageTTL <= 0 {
		add("package ttl must be positive", "PackageTTL")
	}
	if c.MaxTiles < 1 {
		add("max tiles must be at least 1", "MaxTiles")
	}
	if c.MaxROIVertices < 4 {
		add(fmt.Sprintf("max roi vertices %d is below 4, the positions of one ring", c.MaxROIVertices), "MaxROIVertices")
	}
	if c.TileSizes.PNG < 1 || c.TileSizes.JPEG < 1 {
		add("estimated tile sizes must be at least 1 byte", "TileSizes.PNG", "TileSizes.JPEG")
	}
	if c.LearnedMaxAge < 0 {
		add(fmt.Sprintf("learned sizes max age %v must not be negative", c.LearnedMaxAge), "LearnedMaxAge")
	}
	if b := c.Batching; b.MaxTiles < 0 || b.Spread < 0 || b.MinTiles < 0 {
		add("batch tiles, spread and min tiles must not be negative", "Batching.MaxTiles", "Batching.Spread", "Batching.MinTiles")
	}
	if c.QuotaBytes < 0 {
		add(fmt.Sprintf("quota %d bytes must not be negative", c.QuotaBytes), "QuotaBytes")
	}
	if c.RateLimit < 0 || c.RateBurst < 0 {
		add("rate limit and burst must not be negative", "RateLimit", "RateBurst")
	}
	if c.RateLimit > 0 && c.RateBurst < 1 {
		add("rate burst must be at least 1 with a rate limit", "RateBurst")
	}
	if c.PreviewTimeout <= 0 {
		add(fmt.Sprintf("preview timeout %v must be positive", c.PreviewTimeout), "PreviewTimeout")
	}
	if c.PreviewConcurrency < 1 {
		add(fmt.Sprintf("preview concurrency %d must be at least 1", c.PreviewConcurrency), "PreviewConcurrency")
	}
	return errors.Join(errs...)
}

// Files is the package storage the API reads.
type Files interface {
	// Open returns the object at key for reading with Range support;
	// storage.ErrNotFound when it does not exist. The caller closes it.
	Open(ctx context.Context, key string) (storage.Object, error)
}

// Enqueuer queues the tasks of jobs; *job.Enqueuer is one. Each method
// is idempotent: a task that exists already is not queued again.
type Enqueuer interface {
	// Queue is the queue of j's tasks.
	Queue(j job.Job) string
	// Render queues the render task of one of j's batches.
	Render(ctx context.Context, j job.Job, batch int) (added bool, err error)
	// Finalize queues the merge of j's parts, which also removes the
	// parts of a job that no longer runs.
	Finalize(ctx context.Context, j job.Job) (added bool, err error)
	// Callbacks queues the callbacks of the ended job j.
	Callbacks(ctx context.Context, j job.Job) error
}

// Tasks removes queued tasks and stops running ones.
type Tasks interface {
	// DeleteTask removes a task that is not running.
	DeleteTask(queue, id string) error
	// CancelProcessing cancels the context of a running task.
	CancelProcessing(id string) error
}

// Deps are the collaborators of the API.
type Deps struct {
	// CallbackPolicy checks callback URLs; nil accepts any http(s) URL.
	CallbackPolicy CallbackPolicy
	Logger         *slog.Logger
	Registry       prometheus.Registerer
	// Gatherer serves /metrics; nil serves none.
	Gatherer prometheus.Gatherer
	Catalog  *catalog.Catalog
	Jobs     *job.Store
	// Enqueuer queues render, finalize and callback tasks.
	Enqueuer Enqueuer
	// Tasks stops the tasks of cancelled jobs; *asynq.Inspector is one.
	Tasks Tasks
	Files Files
	// Auth authenticates requests (NewAuthenticator of an *auth.Verifier).
	// Required.
	Auth *Authenticator
	// Limiter counts requests per subject; nil with RateLimit 0.
	Limiter *redis_rate.Limiter
	// Ready reports whether the dependencies answer; nil is always ready.
	Ready func(ctx context.Context) error
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Redis is the broker that asynqmon at /monitoring shows to operators;
	// nil serves no /monitoring.
	Redis asynq.RedisConnOpt
	// Sources is what the sources of preview tiles need besides the layer
	// records: object storage and a GeoPackage reader. The zero value
	// opens demo, tile-store directory and WMS, WMTS and XYZ layers; other
	// layers answer their preview tiles with 500.
	Sources source.LayerDeps
}

// Server is the HTTP API.
type Server struct {
	cfg     Config
	deps    Deps
	app     *fiber.App
	metrics *metrics
	// learned caches the layers' learned tile sizes.
	learned     learnedSizes
	openapiJSON []byte
	previews    *previews
	// closeMonitor releases asynqmon's Redis connections, once; nil
	// without /monitoring.
	closeMonitor func() error
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	created  *prometheus.CounterVec
	panics   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exporter_http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "exporter_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exporter_jobs_created_total", Help: "POST /create answers by outcome: created, cache_hit, joined, rejected.",
		}, []string{"outcome"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "exporter_http_panics_total", Help: "Panics recovered in HTTP handlers; each one is a bug.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.created, m.panics} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register trigger metrics: %w", err)
		}
	}
	return m, nil
}

// New builds the API.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil || deps.Registry == nil || deps.Catalog == nil || deps.Jobs == nil || deps.Enqueuer == nil ||
		deps.Tasks == nil || deps.Files == nil || deps.Auth == nil {
		return nil, errors.New("trigger: logger, registry, catalog, jobs, enqueuer, tasks, files and auth are required")
	}
	if cfg.RateLimit > 0 && deps.Limiter == nil {
		return nil, errors.New("trigger: a rate limit needs a limiter")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	doc, err := openapiJSON()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, deps: deps, metrics: m, openapiJSON: doc, previews: newPreviews(cfg, deps.Sources)}
	s.app = fiber.New(fiber.Config{
		AppName:               "exporter",
		DisableStartupMessage: true,
		BodyLimit:             max(cfg.BodyLimit, cfg.AreaBodyLimit),
		ReadBufferSize:        maxHeaderBytes,
		ErrorHandler:          s.handleError,
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           2 * time.Minute,
	})
	s.app.Use(s.observe, s.recover, s.limitBody)
	// Public.
	s.app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	s.app.Get("/readyz", s.ready)
	s.docsRoutes()
	s.webRoutes()
	// Clients and operators, rate limited per subject.
	client := []fiber.Handler{deps.Auth.Require(deps.Auth.ClientRole()), s.rateLimit}
	s.app.Post("/create", append(client, s.create)...)
	s.app.Post("/estimate", append(client, s.estimateAny)...)
	s.app.Post("/export", append(client, s.export)...)
	s.app.Get("/export/:jobId/status", append(client, s.exportStatus)...)
	s.app.Get("/storage", append(client, s.storage)...)
	s.app.Get("/jobs", append(client, s.listJobs)...)
	s.app.Get("/jobs/:id", append(client, s.getJob)...)
	s.app.Delete("/jobs/:id", append(client, s.cancelJob)...)
	s.app.Get("/taskStatus/:jobId", append(client, s.taskStatus)...)
	s.app.Get("/layers", append(client, s.listLayers)...)
	s.app.Get("/downloads/:jobId/:name", append(client, s.download)...)
	s.app.Head("/downloads/:jobId/:name", append(client, s.download)...)
	s.app.Get("/downloads/:name", append(client, s.download)...) // packages stored before per-job keys
	s.app.Head("/downloads/:name", append(client, s.download)...)
	s.previewRoutes()
	// Operators.
	if deps.Gatherer != nil {
		s.app.Get("/metrics", deps.Auth.Require(deps.Auth.OperatorRole()), MetricsHandler(deps.Gatherer))
	}
	s.monitoringRoutes()
	return s, nil
}

// App returns the fiber application, for in-process tests.
func (s *Server) App() *fiber.App { return s.app }

// Run serves on ln until ctx is done, then drains open requests within
// the configured shutdown budget. It closes the server on its way out.
func (s *Server) Run(ctx context.Context, ln net.Listener) (err error) {
	defer func() { err = errors.Join(err, s.Close()) }()
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.app.ShutdownWithContext(sctx); err != nil {
		return fmt.Errorf("shutdown http: %w", err)
	}
	// A shutdown that came before the server started stops nothing:
	// closing the listener ends a Listener that starts late, too.
	if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close listener: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// Close releases the server's resources outside fiber: asynqmon's Redis
// clients and the sources of preview tiles. Run calls it on its way out;
// later calls return what the first returned.
func (s *Server) Close() error {
	err := s.previews.Close()
	if s.closeMonitor == nil {
		return err
	}
	return errors.Join(err, s.closeMonitor())
}

// observe counts and times every request by its route pattern.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		// Let the error handler set the status before it is counted.
		if herr := s.app.ErrorHandler(c, err); herr != nil {
			c.Status(fiber.StatusInternalServerError)
		}
	}
	route := "unmatched"
	if r := c.Route(); r != nil && (r.Path != "/" || c.Path() == "/") {
		route = r.Path
	}
	method := strings.Clone(c.Method()) // fasthttp reuses the buffer
	s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(c.Response().StatusCode())).Inc()
	s.metrics.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	return nil
}

// panicError is a panic recovered in a handler, with its stack.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

func (s *Server) recover(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.metrics.panics.Inc()
			err = &panicError{value: r, stack: debug.Stack()}
		}
	}()
	return c.Next()
}

// httpError is an error with a status and a message safe to show.
type httpError struct {
	status  int
	message string
}

func (e *httpError) Error() string { return e.message }

func errorf(status int, format string, a ...any) error {
	return &httpError{status: status, message: fmt.Sprintf(format, a...)}
}

// errUnavailable marks a failure of Redis or the queue: 503, retry later.
// Errors of the job store other than ErrNotFound and *job.QuotaError are
// wrapped with it, whether or not the store classified them as
// job.ErrUnavailable, so that no failure to reach Redis (a failover in
// progress, a replica that refuses writes) is ever answered 500.
var errUnavailable = errors.New("trigger: job broker unavailable")

// unavailable marks err as a failure of Redis or the queue.
func unavailable(err error) error { return fmt.Errorf("%w: %w", errUnavailable, err) }

// handleError is the one place errors become responses and are logged.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var (
		verr  *ValidationError
		aerr  *AuthError
		qerr  *job.QuotaError
		herr  *httpError
		ferr  *fiber.Error
		pverr *previewError
	)
	switch {
	case errors.As(err, &verr):
		return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"message": verr.Error()})
	case errors.As(err, &aerr):
		if aerr.Challenge != "" {
			c.Set(fiber.HeaderWWWAuthenticate, aerr.Challenge)
		}
		return c.Status(aerr.Status).JSON(fiber.Map{"message": aerr.Message})
	case errors.As(err, &qerr):
		return c.Status(fiber.StatusInsufficientStorage).JSON(fiber.Map{"message": fmt.Sprintf(
			"the export needs an estimated %d bytes but only %d of the %d byte storage quota are left", qerr.Estimate, qerr.Available(), qerr.Quota)})
	case errors.As(err, &herr):
		return c.Status(herr.status).JSON(fiber.Map{"message": herr.message})
	case errors.As(err, &pverr):
		status, msg := pverr.status()
		s.deps.Logger.WarnContext(c.UserContext(), "preview tile failed", logattr.Route, routeOf(c), logattr.Status, status, logattr.Error, err)
		return c.Status(status).JSON(fiber.Map{"message": msg})
	case errors.As(err, &ferr):
		msg := ferr.Message
		switch ferr.Code {
		case fiber.StatusRequestEntityTooLarge:
			msg = fmt.Sprintf("request body larger than %d bytes", s.bodyLimit(c))
		case fiber.StatusRequestHeaderFieldsTooLarge:
			msg = fmt.Sprintf("request line and headers larger than %d bytes", maxHeaderBytes)
		}
		return c.Status(ferr.Code).JSON(fiber.Map{"message": msg})
	case errors.Is(err, errUnavailable), errors.Is(err, job.ErrUnavailable):
		s.deps.Logger.WarnContext(c.UserContext(), "request failed", logattr.Route, routeOf(c), logattr.Error, err)
		c.Set(fiber.HeaderRetryAfter, "5")
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"message": "the job queue is unavailable, retry later"})
	}
	stack := ""
	var perr *panicError
	if errors.As(err, &perr) {
		s.deps.Logger.ErrorContext(c.UserContext(), "handler panic", logattr.Route, routeOf(c), logattr.Error, err, "stack", string(perr.stack))
		if s.cfg.Debug {
			stack = string(perr.stack)
		}
	} else {
		s.deps.Logger.ErrorContext(c.UserContext(), "request failed", logattr.Route, routeOf(c), logattr.Error, err)
		if s.cfg.Debug {
			stack = err.Error()
		}
	}
	return c.Status(fiber.StatusInternalServerError).JSON(fiber.Map{"message": "internal server error", "stacktrace": stack})
}

func routeOf(c *fiber.Ctx) string {
	if r := c.Route(); r != nil {
		return r.Path
	}
	return ""
}

func (s *Server) ready(c *fiber.Ctx) error {
	if s.deps.Ready != nil {
		ctx, cancel := context.WithTimeout(c.UserContext(), 3*time.Second)
		defer cancel()
		if err := s.deps.Ready(ctx); err != nil {
			s.deps.Logger.WarnContext(ctx, "not ready", logattr.Error, err)
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "message": "a dependency does not answer"})
		}
	}
	return c.JSON(fiber.Map{"status": "ok"})
}

// MetricsHandler serves the registry's metrics in the Prometheus format.
func MetricsHandler(g prometheus.Gatherer) fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
}

// bodyLimit is the largest body c's route accepts: AreaBodyLimit for the
// routes that take an area, BodyLimit for every other.
func (s *Server) bodyLimit(c *fiber.Ctx) int {
	if c.Method() == fiber.MethodPost && (c.Path() == "/export" || c.Path() == "/estimate") {
		return max(s.cfg.BodyLimit, s.cfg.AreaBodyLimit)
	}
	return s.cfg.BodyLimit
}

// limitBody answers 413 to a body over its route's limit. fasthttp reads
// bodies up to the larger limit, the area routes', before any route is
// known; every other route is held to BodyLimit here.
func (s *Server) limitBody(c *fiber.Ctx) error {
	if len(c.Request().Body()) > s.bodyLimit(c) {
		return fiber.ErrRequestEntityTooLarge
	}
	return c.Next()
}
