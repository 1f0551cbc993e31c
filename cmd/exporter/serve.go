package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/geoexport/exporter/internal/auth"
	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/config"
	"github.com/geoexport/exporter/internal/egress"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/redisconn"
	"github.com/geoexport/exporter/internal/redisserver"
	"github.com/geoexport/exporter/internal/storage"
	"github.com/geoexport/exporter/monitoring"
	"github.com/geoexport/exporter/scheduler"
	"github.com/geoexport/exporter/source"
	"github.com/geoexport/exporter/trigger"
	"github.com/geoexport/exporter/worker"
)

type role string

func (r role) has(part role) bool { return r == "all" || r == part }

func loadConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (config.Config, []string, error) {
	cfg, rest, err := config.Load(name, args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return cfg, nil, err
	}
	if err != nil {
		return cfg, nil, &usageError{err}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, nil, &usageError{fmt.Errorf("invalid configuration:\n%w", err)}
	}
	return cfg, rest, nil
}

// store is the package storage every role uses.
type store interface {
	trigger.Files
	worker.Files
	scheduler.Files
	Ping(ctx context.Context) error
}

// serve runs the parts of r until ctx is done, or until one of them, or
// the embedded Redis, fails.
func serve(ctx context.Context, r role, cfg config.Config, stdout, stderr io.Writer) (err error) {
	cfg = cfg.Resolved()
	log, err := monitoring.NewLogger(stderr, monitoring.LogConfig{Level: cfg.Log.Level, Format: cfg.Log.Format})
	if err != nil {
		return &usageError{err}
	}
	log = log.With("role", string(r))
	log.InfoContext(ctx, "starting", "version", Version(), "config", cfg)
	reg := monitoring.NewRegistry(Version(), string(r))
	redis.SetLogger(redisconn.Logger(log))

	redisOpt, embedded, err := connectRedis(ctx, r, cfg, log)
	if err != nil {
		return err
	}
	if embedded != nil {
		// Stopped last, once every part that uses it has drained.
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), embeddedStopTimeout)
			defer cancel()
			err = errors.Join(err, embedded.Stop(sctx))
		}()
	}
	// One client for the job store, the rate limiter and the readiness
	// check, reaching the Redis asynq reaches: the primary the sentinels
	// name, for a redis-sentinel:// URL.
	rdb, err := redisconn.NewClient(redisOpt)
	if err != nil {
		return err
	}
	defer rdb.Close()
	jobs := job.NewStore(rdb, cfg.Redis.Prefix, nil).WithWait(cfg.Redis.WaitReplicas, cfg.Redis.WaitTimeout)
	files, tiles, err := openStorage(ctx, cfg)
	if err != nil {
		return err
	}
	queue := asynq.NewClient(redisOpt)
	defer queue.Close()
	// One enqueue API, so that every role gives a task the same options.
	// Finalize has no settings of its own: it takes render's.
	enqueuer, err := job.NewEnqueuer(queue, jobs, cfg.Tasks)
	if err != nil {
		return &usageError{err}
	}
	// Readiness: Redis and storage answer, and every part of the role that
	// reports readiness (appended below) is ready.
	checks := []func(context.Context) error{
		func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		files.Ping,
	}
	ready := func(ctx context.Context) error {
		var errs []error
		for _, check := range checks {
			errs = append(errs, check(ctx))
		}
		return errors.Join(errs...)
	}
	callbacks, err := egress.New(egress.Config{Allow: cfg.HTTP.CallbackAllow})
	if err != nil {
		return &usageError{fmt.Errorf("http-callback-allow: %w", err)}
	}

	// Every part is built before any starts, so none sees another half made.
	g, gctx := errgroup.WithContext(ctx)
	var runs []func() error
	if cfg.HTTP.MetricsAddr != "" {
		if err := serveOps(gctx, g, cfg.HTTP.MetricsAddr, reg, nil, cfg.HTTP.Pprof, log); err != nil {
			return err
		}
	}
	if r.has("trigger") {
		cat := catalog.Demo()
		if cfg.Catalog.File != "" {
			if cat, err = catalog.Load(cfg.Catalog.File, source.CheckLayer); err != nil {
				return &usageError{err}
			}
		}
		authCfg, printToken, err := authConfig(r, cfg)
		if err != nil {
			return err
		}
		verifier, err := auth.New(authCfg)
		if err != nil {
			return &usageError{err}
		}
		inspector := asynq.NewInspector(redisOpt)
		defer inspector.Close()
		var gatherer prometheus.Gatherer = reg
		if cfg.HTTP.MetricsAddr != "" {
			gatherer = nil // served on its own address
		}
		srv, err := trigger.New(cfg.Trigger, trigger.Deps{CallbackPolicy: callbacks,
			Logger: log, Registry: reg, Gatherer: gatherer, Catalog: cat, Jobs: jobs, Enqueuer: enqueuer, Tasks: inspector,
			Files: files, Auth: trigger.NewAuthenticator(verifier), Limiter: redis_rate.NewLimiter(rdb), Ready: ready, Redis: redisOpt,
			// Preview tiles read layers as the worker does.
			Sources: source.StorageDeps(tiles, cfg.Worker.TempDir),
		})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", cfg.HTTP.Addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
		}
		log.InfoContext(ctx, "http listening", "addr", ln.Addr().String(), "url", cfg.PublicURL())
		fmt.Fprintf(stdout, "exporter %s: listening on %s\n", r, cfg.PublicURL())
		if printToken != nil {
			tok, err := printToken()
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "open %s/?token=%s\nAPI docs: %s/docs\ncall the API with: Authorization: Bearer %s\n", cfg.PublicURL(), tok, cfg.PublicURL(), tok)
		}
		runs = append(runs, func() error { return srv.Run(gctx, ln) })
	}
	if r.has("worker") {
		w, err := worker.New(cfg.Worker, worker.Deps{Logger: log, Registry: reg, Redis: redisOpt, Jobs: jobs, Files: files, Tiles: tiles, Enqueuer: enqueuer,
			HTTP: callbacks.Client(cfg.Tasks.CallbackTimeout)})
		if err != nil {
			return err
		}
		runs = append(runs, func() error { return w.Run(gctx) })
		checks = append(checks, func(context.Context) error { return w.Ready() })
	}
	if r.has("scheduler") {
		inspector := asynq.NewInspector(redisOpt)
		defer inspector.Close()
		// Queue depth and latency, read from Redis at scrape time: served by
		// the scheduler role alone, so replicas of the others do not repeat it.
		reg.MustRegister(asynqmetrics.NewQueueMetricsCollector(inspector))
		s, err := scheduler.New(cfg.Scheduler, scheduler.Deps{Logger: log, Registry: reg, Jobs: jobs, Files: files, Enqueuer: enqueuer, Tasks: inspector, Redis: redisOpt,
			QuotaBytes: cfg.Trigger.QuotaBytes})
		if err != nil {
			return err
		}
		runs = append(runs, func() error { return s.Run(gctx) })
	}
	if !r.has("trigger") {
		// Workers and schedulers serve no API: their address has health
		// and metrics only, without a token.
		if err := serveOps(gctx, g, cfg.HTTP.Addr, reg, ready, cfg.HTTP.Pprof, log); err != nil {
			return err
		}
	}
	if embedded != nil {
		// The embedded Redis dying ends the process with an error naming
		// it, rather than leaving every part retrying a dead socket.
		runs = append(runs, func() error {
			select {
			case <-gctx.Done():
				return nil
			case <-embedded.Done():
				return embedded.Err()
			}
		})
	}
	for _, run := range runs {
		g.Go(run)
	}
	err = g.Wait()
	log.InfoContext(context.WithoutCancel(ctx), "stopped", "error", err)
	return err
}

// embeddedStopTimeout bounds the stop of the embedded Redis: SIGTERM,
// then SIGKILL after redisserver's StopTimeout.
const embeddedStopTimeout = 40 * time.Second

// connectRedis returns the configured Redis (one server, or the primary
// of a Sentinel setup), or for role all without a URL
// the embedded one: a redis-server child process with its files in
// <data dir>/redis, which the caller stops. embedded is nil for a
// configured Redis.
func connectRedis(ctx context.Context, r role, cfg config.Config, log *slog.Logger) (asynq.RedisConnOpt, *redisserver.Server, error) {
	if u := cfg.Redis.URL.Reveal(); u != "" {
		opt, err := redisconn.Parse(u)
		if err != nil {
			return nil, nil, &usageError{fmt.Errorf("redis-url: %w", err)}
		}
		return opt, nil, nil
	}
	if r != "all" {
		return nil, nil, &usageError{fmt.Errorf("role %s needs redis-url (EXPORTER_REDIS_URL); only role all runs an embedded Redis", r)}
	}
	if cfg.Storage.DataDir == "" {
		return nil, nil, &usageError{errors.New("data-dir: role all without redis-url keeps its Redis in the data directory; set one of them")}
	}
	srv, err := redisserver.Start(ctx, redisserver.Config{
		Binary: cfg.Redis.Server, Dir: filepath.Join(cfg.Storage.DataDir, "redis"), Logger: log,
		StopTimeout: embeddedStopTimeout - 10*time.Second,
	})
	if errors.Is(err, redisserver.ErrNotFound) {
		return nil, nil, fmt.Errorf("embedded redis: %s not found on PATH: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) "+
			"or set %s to its path, or set %s to use a running Redis (%w)", cfg.Redis.Server, config.EnvName("redis-server"), config.EnvName("redis-url"), err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("embedded redis: %w", err)
	}
	return srv.ClientOpt(), srv, nil
}

// openStorage returns the package store, and the tile-store object reader
// when packages live in S3.
func openStorage(ctx context.Context, cfg config.Config) (store, source.Objects, error) {
	if cfg.Storage.S3Endpoint == "" {
		l, err := storage.NewLocal(cfg.Storage.DataDir)
		if err != nil {
			return nil, nil, err
		}
		return l, nil, nil
	}
	s3, err := storage.NewS3(ctx, storage.S3Config{
		Endpoint: cfg.Storage.S3Endpoint, Bucket: cfg.Storage.S3Bucket, AccessKey: cfg.Storage.S3AccessKey,
		SecretKey: cfg.Storage.S3SecretKey.Reveal(), Region: cfg.Storage.S3Region,
		UseTLS: cfg.Storage.S3TLS, CreateBucket: true,
	})
	if err != nil {
		return nil, nil, err
	}
	return s3, s3, nil
}

// authConfig builds the token verification of the trigger. Role all with
// no key configured uses the secret kept in the data directory (created on
// first start) and returns a function minting a day's operator token for
// the person who ran it; any other role must be given a key.
func authConfig(r role, cfg config.Config) (auth.Config, func() (string, error), error) {
	ac := cfg.Auth
	if len(ac.HS256Secret) > 0 || ac.PublicKeyFile != "" || ac.JWKSFile != "" {
		return ac, nil, nil
	}
	if r != "all" {
		return ac, nil, &usageError{fmt.Errorf("role %s needs a token key: set auth-hs256-secret, auth-public-key-file or auth-jwks-file", r)}
	}
	secret, err := dataDirSecret(cfg.Storage.DataDir)
	if err != nil {
		return ac, nil, err
	}
	ac.HS256Secret = secret
	mint := func() (string, error) {
		key, err := auth.LoadSigningKey(secret, "")
		if err != nil {
			return "", err
		}
		return auth.Mint(key, auth.MintClaims{Subject: "local", RoleClaim: cfg.Auth.RoleClaim, Role: cfg.Auth.OperatorRole, TTL: 24 * time.Hour, Issuer: cfg.Auth.Issuer, Audience: cfg.Auth.Audience})
	}
	return ac, mint, nil
}

// serveOps serves /metrics, with ready also /healthz and /readyz, and
// with profiles Go's runtime profiles at /debug/pprof/, without a token on
// addr.
func serveOps(ctx context.Context, g *errgroup.Group, addr string, reg *prometheus.Registry, ready func(context.Context) error, profiles bool, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if profiles {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	if ready != nil {
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
		})
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			rctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
			defer cancel()
			w.Header().Set("Content-Type", "application/json")
			if err := ready(rctx); err != nil {
				log.WarnContext(rctx, "not ready", "error", err)
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(`{"status":"unavailable"}` + "\n"))
				return
			}
			_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
		})
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.InfoContext(ctx, "health and metrics listening", "addr", ln.Addr().String())
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve metrics: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return nil
}
