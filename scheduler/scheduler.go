package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/geoexport/exporter/internal/job"
)

// Config configures the scheduler. Zero fields take the defaults below.
type Config struct {
	// Interval between runs. Default 1m.
	Interval time.Duration
	// BatchSize is the most packages one run expires. Default 100.
	BatchSize int64
	// RunTimeout bounds one run; it is also the lease's length. Default 30s.
	RunTimeout time.Duration
	// LeaseKey is the Redis key of the lease. Default "exporter:scheduler:lease".
	LeaseKey string
}

func (c Config) withDefaults() Config {
	c.Interval = cmp.Or(c.Interval, time.Minute)
	c.BatchSize = cmp.Or(c.BatchSize, 100)
	c.RunTimeout = cmp.Or(c.RunTimeout, 30*time.Second)
	c.LeaseKey = cmp.Or(c.LeaseKey, "exporter:scheduler:lease")
	return c
}

// Validate reports a negative setting.
func (c Config) Validate() error {
	if c.Interval < 0 || c.BatchSize < 0 || c.RunTimeout < 0 {
		return errors.New("scheduler: interval, batch size and run timeout must not be negative")
	}
	return nil
}

// Files is the package storage the scheduler deletes from.
type Files interface {
	// Delete removes the object at key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Scheduler runs maintenance periodically.
type Scheduler struct {
	cfg     Config
	log     *slog.Logger
	rdb     redis.UniversalClient
	jobs    *job.Store
	files   Files
	expired prometheus.Counter
	owner   string
}

// New builds a scheduler.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer, rdb redis.UniversalClient, jobs *job.Store, files Files) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	expired := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "exporter_scheduler_packages_expired_total", Help: "Packages deleted because they expired.",
	})
	if err := reg.Register(expired); err != nil {
		return nil, fmt.Errorf("register scheduler metrics: %w", err)
	}
	return &Scheduler{cfg: cfg.withDefaults(), log: log, rdb: rdb, jobs: jobs, files: files, expired: expired, owner: uuid.NewString()}, nil
}

// Run runs maintenance every Interval until ctx is done; a run in
// progress finishes first.
func (s *Scheduler) Run(ctx context.Context) error {
	s.log.InfoContext(ctx, "scheduler started", "interval", s.cfg.Interval)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if err := s.RunOnce(context.WithoutCancel(ctx)); err != nil {
			s.log.ErrorContext(ctx, "maintenance run failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunOnce expires due packages once, if this replica gets the lease.
func (s *Scheduler) RunOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RunTimeout)
	defer cancel()
	ok, err := s.rdb.SetNX(ctx, s.cfg.LeaseKey, s.owner, s.cfg.RunTimeout).Result()
	if err != nil {
		return fmt.Errorf("take lease: %w", err)
	}
	if !ok {
		s.log.DebugContext(ctx, "another scheduler holds the lease")
		return nil
	}
	defer s.release(ctx)
	n, err := s.expire(ctx)
	if n > 0 {
		s.log.InfoContext(ctx, "packages expired", "count", n)
	}
	return err
}

// release drops the lease if this replica still holds it.
var release = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

func (s *Scheduler) release(ctx context.Context) {
	if err := release.Run(context.WithoutCancel(ctx), s.rdb, []string{s.cfg.LeaseKey}, s.owner).Err(); err != nil {
		s.log.WarnContext(ctx, "release lease", "error", err)
	}
}

// expire marks due jobs Expired and deletes their packages.
func (s *Scheduler) expire(ctx context.Context) (int, error) {
	ids, err := s.jobs.DueForExpiry(ctx, s.cfg.BatchSize)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, id := range ids {
		key, err := s.jobs.Expire(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if key == "" {
			continue
		}
		if err := s.files.Delete(ctx, key); err != nil {
			errs = append(errs, fmt.Errorf("delete package %s of job %s: %w", key, id, err))
			continue
		}
		if err := s.jobs.ForgetExpiry(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		s.expired.Inc()
	}
	return n, errors.Join(errs...)
}
