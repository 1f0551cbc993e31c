package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/config"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/storage"
	"github.com/geoexport/exporter/monitoring"
	"github.com/geoexport/exporter/scheduler"
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

// serve runs the parts of r until ctx is done.
func serve(ctx context.Context, r role, cfg config.Config, stdout, stderr io.Writer) error {
	log, err := monitoring.NewLogger(stderr, monitoring.LogConfig{Level: cfg.Log.Level, Format: cfg.Log.Format})
	if err != nil {
		return &usageError{err}
	}
	log = log.With("role", string(r))
	log.InfoContext(ctx, "starting", "version", Version(), "config", cfg)
	reg := monitoring.NewRegistry(Version(), string(r))

	redisOpt, closeRedis, err := connectRedis(ctx, r, cfg, log)
	if err != nil {
		return err
	}
	defer closeRedis()
	rdb, ok := redisOpt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return errors.New("redis client of unexpected type")
	}
	defer rdb.Close()
	jobs := job.NewStore(rdb, cfg.Redis.Prefix, nil)
	files, tiles, err := openStorage(ctx, cfg)
	if err != nil {
		return err
	}
	queue := asynq.NewClient(redisOpt)
	defer queue.Close()
	ready := func(ctx context.Context) error {
		return errors.Join(rdb.Ping(ctx).Err(), files.Ping(ctx))
	}
	weights, _ := config.ParseWeights(cfg.Queues.Weights) // validated in loadConfig

	g, gctx := errgroup.WithContext(ctx)
	if r.has("trigger") {
		cat := catalog.Demo()
		if cfg.Catalog.File != "" {
			if cat, err = catalog.Load(cfg.Catalog.File); err != nil {
				return &usageError{err}
			}
		}
		srv, err := trigger.New(trigger.Config{
			PublicURL: cfg.PublicURL(), Debug: cfg.HTTP.Debug, BodyLimit: cfg.HTTP.BodyLimit,
			ShutdownTimeout: cfg.HTTP.ShutdownTimeout, PackageTTL: cfg.Jobs.PackageTTL, MaxTiles: cfg.Jobs.MaxTiles,
			UrgentFrom: cfg.Queues.UrgentFrom, DefaultFrom: cfg.Queues.DefaultFrom,
			RenderTimeout: cfg.Jobs.RenderTimeout, RenderMaxRetry: cfg.Jobs.RenderMaxRetry,
		}, trigger.Deps{
			Logger: log, Registry: reg, Gatherer: reg, Catalog: cat, Jobs: jobs, Queue: queue, Files: files, Ready: ready,
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
		g.Go(func() error { return srv.Run(gctx, ln) })
	}
	if r.has("worker") {
		w, err := worker.New(worker.Config{
			Concurrency: cfg.Worker.Concurrency, Fetchers: cfg.Worker.Fetchers, QueueWeights: weights,
			UrgentFrom: cfg.Queues.UrgentFrom, DefaultFrom: cfg.Queues.DefaultFrom,
			TempDir: cfg.Worker.TempDir, ShutdownTimeout: cfg.Worker.ShutdownTimeout, PublicURL: cfg.PublicURL(),
			PackageTTL: cfg.Jobs.PackageTTL, CallbackTimeout: cfg.Jobs.CallbackTimeout, CallbackMaxRetry: cfg.Jobs.CallbackMaxRetry,
		}, worker.Deps{Logger: log, Registry: reg, Redis: redisOpt, Jobs: jobs, Files: files, Tiles: tiles, Queue: queue})
		if err != nil {
			return err
		}
		g.Go(func() error { return w.Run(gctx) })
	}
	if r.has("scheduler") {
		s, err := scheduler.New(scheduler.Config{LeaseKey: cfg.Redis.Prefix + ":scheduler:lease"}, log, reg, rdb, jobs, files)
		if err != nil {
			return err
		}
		g.Go(func() error { return s.Run(gctx) })
	}
	err = g.Wait()
	log.InfoContext(context.WithoutCancel(ctx), "stopped", "error", err)
	return err
}

// connectRedis returns the configured Redis, or for role all without a URL
// an embedded in-process one whose clock is driven so TTLs pass.
func connectRedis(ctx context.Context, r role, cfg config.Config, log *slog.Logger) (asynq.RedisConnOpt, func(), error) {
	if u := cfg.Redis.URL.Reveal(); u != "" {
		opt, err := asynq.ParseRedisURI(u)
		if err != nil {
			return nil, nil, &usageError{fmt.Errorf("redis-url: %w", err)}
		}
		return opt, func() {}, nil
	}
	if r != "all" {
		return nil, nil, &usageError{fmt.Errorf("role %s needs redis-url (EXPORTER_REDIS_URL); only role all runs an embedded Redis", r)}
	}
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return nil, nil, fmt.Errorf("start embedded redis: %w", err)
	}
	log.InfoContext(ctx, "embedded redis started; jobs last until the process exits", "addr", mr.Addr())
	stop := make(chan struct{})
	go func() {
		// miniredis only moves its clock when told: drive it with ours.
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				mr.SetTime(now)
				mr.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return asynq.RedisClientOpt{Addr: mr.Addr()}, func() { close(stop); mr.Close() }, nil
}

// openStorage returns the package store, and the tile-store object reader
// when packages live in S3.
func openStorage(ctx context.Context, cfg config.Config) (store, worker.Objects, error) {
	if cfg.Storage.S3Endpoint == "" {
		l, err := storage.NewLocal(cfg.Storage.DataDir)
		if err != nil {
			return nil, nil, err
		}
		return l, nil, nil
	}
	s3, err := storage.NewS3(ctx, storage.S3Config{
		Endpoint: cfg.Storage.S3Endpoint, Bucket: cfg.Storage.S3Bucket, AccessKey: cfg.Storage.S3AccessKey,
		SecretKey: cfg.Storage.S3SecretKey, Region: cfg.Storage.S3Region,
		UseTLS: cfg.Storage.S3TLS, CreateBucket: true,
	})
	if err != nil {
		return nil, nil, err
	}
	return s3, s3, nil
}
