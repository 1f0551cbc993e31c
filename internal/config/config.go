// Package config holds the one Config struct of the exporter, its defaults,
// its validation, and the mapping of every field onto an EXPORTER_*
// environment variable and a command-line flag.
//
// Precedence is flag, then environment, then default. Names map
// mechanically: the flag -redis-url is the variable EXPORTER_REDIS_URL.
// Nothing outside cmd and this package reads the environment or flags.
//
// It imports no other package of the exporter.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// EnvPrefix starts every environment variable the exporter reads.
const EnvPrefix = "EXPORTER_"

// Config is the whole configuration of every role. Each binary loads all of
// it and uses the parts it needs.
type Config struct {
	Log       Log
	Redis     Redis
	Storage   Storage
	Catalog   Catalog
	HTTP      HTTP
	Auth      Auth
	Jobs      Jobs
	Queues    Queues
	Worker    Worker
	Scheduler Scheduler
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string
	// Format is text, json or auto (text on a terminal, json otherwise).
	// Default auto.
	Format string
}

// Redis configures the broker and job store.
type Redis struct {
	// URL is a redis:// or rediss:// URL. Empty runs an embedded Redis,
	// which only the "all" role accepts: a redis-server child process with
	// its files under DataDir/redis.
	URL Secret
	// Prefix starts every key the exporter writes. Default "exporter".
	Prefix string
	// Server is the redis-server executable of the embedded Redis: a path,
	// or a name looked up on PATH. Default "redis-server".
	Server string
}

// Storage configures where packages are kept: an S3 bucket when S3Endpoint
// is set, else the directory DataDir.
type Storage struct {
	// DataDir is the local package directory. Default "./data".
	DataDir string
	// S3Endpoint is host:port of an S3 or MinIO server. Empty: local.
	S3Endpoint string
	// S3Bucket is created if missing. Default "exporter".
	S3Bucket string
	// S3AccessKey and S3SecretKey are the credentials.
	S3AccessKey string
	S3SecretKey Secret
	// S3Region is optional.
	S3Region string
	// S3TLS turns on HTTPS to the endpoint. Default false.
	S3TLS bool
}

// Catalog configures the layer catalog.
type Catalog struct {
	// File is a JSON catalog file. Empty serves the built-in demo catalog.
	File string
}

// HTTP configures the trigger's API.
type HTTP struct {
	// Addr is the listen address. Default ":8080".
	Addr string
	// PublicURL is the base of the download links handed to clients.
	// Default http://localhost:<port of Addr>.
	PublicURL string
	// Debug adds stack traces to 500 responses. Default false.
	Debug bool
	// BodyLimit caps a request body in bytes. Default 1 MiB.
	BodyLimit int
	// MaxROIVertices caps the positions of a POST /export area, all
	// features together. Default 100,000, as area.DefaultMaxVertices.
	MaxROIVertices int
	// ShutdownTimeout bounds the drain of open requests. Default 10s.
	ShutdownTimeout time.Duration
	// MetricsAddr, when set, serves /metrics without authentication on
	// this separate address; otherwise /metrics on Addr needs a token.
	MetricsAddr string
	// RateLimit is the requests per minute one subject may make; 0 turns
	// the limit off. Default 600.
	RateLimit int
	// RateBurst is how many requests above the rate a subject may make at
	// once. Default 60.
	RateBurst int
	// MonitoringReadOnly makes asynqmon at /monitoring read-only: queues
	// and tasks can be looked at, not changed. Default true.
	MonitoringReadOnly bool
	// PrometheusURL, when set, lets asynqmon draw queue charts from this
	// Prometheus server.
	PrometheusURL string
	// CallbackAllow lists networks (CIDR) and host names that callbacks may
	// reach although they are loopback, private, link-local or metadata
	// addresses, comma-separated. Default none.
	CallbackAllow string
	// PreviewTimeout bounds one preview tile of a layer: a quarter of it
	// for a free slot, the rest for the layer's source. Default 10s.
	PreviewTimeout time.Duration
	// PreviewConcurrency is how many preview tiles one trigger reads at
	// once. Default 4.
	PreviewConcurrency int
}

// Auth configures the verification of JWT bearer tokens. One of
// HS256Secret, PublicKeyFile and JWKSFile is required, except for role
// all, which generates a secret in the data directory when none is set.
type Auth struct {
	// HS256Secret verifies (and `exporter token` signs) HS256 tokens.
	HS256Secret Secret
	// PublicKeyFile is a PEM file of RSA or EC public keys (RS256, ES256).
	PublicKeyFile string
	// JWKSFile is a JSON Web Key Set file of public keys, selected by kid.
	JWKSFile string
	// Issuer and Audience, when set, must match the iss and aud claims.
	Issuer   string
	Audience string
	// RoleClaim names the claim holding the caller's role(s). Default "role".
	RoleClaim string
	// ClientRole and OperatorRole are the role values that grant the API
	// and, for operators, everything. Defaults "client" and "operator".
	ClientRole   string
	OperatorRole string
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 30s.
	Leeway time.Duration
}

// Jobs configures export jobs.
type Jobs struct {
	// PackageTTL is how long a finished package is kept after it was
	// finished or last served from the cache. Default 720h (30 days).
	PackageTTL time.Duration
	// MaxTiles caps the tiles of one export. Default 5,000,000.
	MaxTiles int64
	// RenderTimeout bounds one render task. Default 2h.
	RenderTimeout time.Duration
	// RenderMaxRetry is how often a failed render is retried. Default 5.
	RenderMaxRetry int
	// CallbackTimeout bounds one callback POST. Default 10s.
	CallbackTimeout time.Duration
	// CallbackMaxRetry is how often a failed callback is retried. Default 10.
	CallbackMaxRetry int
	// EstimatePNGBytes and EstimateJPEGBytes are the average tile sizes
	// used to estimate a package's size. Defaults 40000 and 12000.
	EstimatePNGBytes  int64
	EstimateJPEGBytes int64
	// QuotaBytes caps the bytes of stored packages plus the estimates of
	// unfinished jobs; 0 means no quota.
	QuotaBytes int64
	// BatchTiles is the most tiles one render task writes; larger exports
	// are split into batches that any worker may render. Default 10,000.
	BatchTiles int64
	// BatchSpread spreads an export over at least this many batches, so
	// that many workers share it, as long as each batch keeps at least
	// BatchMinTiles tiles. Defaults 16 and 1,000.
	BatchSpread   int64
	BatchMinTiles int64
	// CallbackSecret, when set, signs each callback body with HMAC-SHA256
	// in the X-Exporter-Signature header.
	CallbackSecret Secret
}

// Queues maps priorities to queues: priority ≥ UrgentFrom goes to the
// urgent queue, ≥ DefaultFrom to the default one, the rest to the low one.
type Queues struct {
	// UrgentFrom is the lowest urgent priority. Default 100,000,000.
	UrgentFrom int
	// DefaultFrom is the lowest default priority. Default 1000.
	DefaultFrom int
	// Weights are the relative shares of urgent, default and low, as
	// "6,3,1". Every queue is served, so low never starves.
	Weights string
}

// Worker configures the render worker.
type Worker struct {
	// Concurrency is the number of tasks a worker runs at once.
	// Default the number of CPUs.
	Concurrency int
	// Fetchers is the number of tiles fetched at once within one task.
	// Default four times the number of CPUs.
	Fetchers int
	// Encoders is the number of tiles decoded and encoded at once within
	// one task. Default the number of CPUs.
	Encoders int
	// TempDir holds packages while they are built. Default the system's.
	TempDir string
	// ShutdownTimeout is how long running tasks may finish on shutdown
	// before they are handed back to the queue. Default 30s.
	ShutdownTimeout time.Duration
	// ReservedConcurrency, when above 0, adds a pool of that many task
	// slots that serve the urgent queue only. Default 0.
	ReservedConcurrency int
	// PollInterval is how long an idle worker waits before it looks for
	// new tasks again: the most a queued task waits for a free worker.
	// Default 200ms.
	PollInterval time.Duration
}

// Scheduler configures periodic maintenance. Schedules are cron specs of
// five fields or descriptors such as "@hourly" and "@every 5m"; "@every"
// slots are multiples of the interval since the Unix epoch, the same on
// every scheduler replica.
type Scheduler struct {
	// ExpireSchedule is when packages past their expiry are deleted.
	// Default "@every 1m".
	ExpireSchedule string
	// OrphansSchedule is when parts of jobs no longer running are deleted.
	// Default "@every 15m".
	OrphansSchedule string
	// CleanSchedule is when records of ended jobs are deleted. Default
	// "@hourly".
	CleanSchedule string
	// ReconcileSchedule is when stuck jobs are moved on. Default
	// "@every 2m".
	ReconcileSchedule string
	// OrphanAge is how old a part of a job no longer running must be before
	// it is deleted. Default 1h.
	OrphanAge time.Duration
	// CleanAfter is how long the records of Failed, Cancelled and Expired
	// jobs are kept. Default 168h.
	CleanAfter time.Duration
	// StuckAfter is how old an In-Progress job must be before reconcile
	// looks at it. Default 10m.
	StuckAfter time.Duration
}

// Default returns the configuration with every default filled in.
func Default() Config {
	return Config{
		Log:     Log{Level: "info", Format: "auto"},
		Redis:   Redis{Prefix: "exporter", Server: "redis-server"},
		Storage: Storage{DataDir: "./data", S3Bucket: "exporter"},
		HTTP: HTTP{
			Addr: ":8080", BodyLimit: 1 << 20, MaxROIVertices: 100_000, ShutdownTimeout: 10 * time.Second, RateLimit: 600, RateBurst: 60, MonitoringReadOnly: true,
			PreviewTimeout: 10 * time.Second, PreviewConcurrency: 4,
		},
		Auth: Auth{RoleClaim: "role", ClientRole: "client", OperatorRole: "operator", Leeway: 30 * time.Second},
		Jobs: Jobs{
			PackageTTL: 30 * 24 * time.Hour, MaxTiles: 5_000_000,
			RenderTimeout: 2 * time.Hour, RenderMaxRetry: 5,
			CallbackTimeout: 10 * time.Second, CallbackMaxRetry: 10,
			EstimatePNGBytes: 40_000, EstimateJPEGBytes: 12_000, BatchTiles: 10_000, BatchSpread: 16, BatchMinTiles: 1000,
		},
		Queues: Queues{UrgentFrom: 100_000_000, DefaultFrom: 1000, Weights: "6,3,1"},
		Worker: Worker{Concurrency: runtime.NumCPU(), Fetchers: 4 * runtime.NumCPU(), Encoders: runtime.NumCPU(), ShutdownTimeout: 30 * time.Second, PollInterval: 200 * time.Millisecond},
		Scheduler: Scheduler{
			ExpireSchedule: "@every 1m", OrphansSchedule: "@every 15m", CleanSchedule: "@hourly", ReconcileSchedule: "@every 2m",
			OrphanAge: time.Hour, CleanAfter: 7 * 24 * time.Hour, StuckAfter: 10 * time.Minute,
		},
	}
}

// bind declares every field as a flag of fs. The flag name is the variable
// name without EnvPrefix, lowercased, with dashes for underscores.
func (c *Config) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Log.Level, "log-level", c.Log.Level, "log level: debug, info, warn or error")
	fs.StringVar(&c.Log.Format, "log-format", c.Log.Format, "log format: text, json or auto (text on a terminal)")
	fs.Var(&c.Redis.URL, "redis-url", "Redis URL (redis://[:password@]host:port/db); empty runs an embedded redis-server with its files in <data-dir>/redis (role all only)")
	fs.StringVar(&c.Redis.Prefix, "redis-prefix", c.Redis.Prefix, "prefix of every Redis key the exporter writes")
	fs.StringVar(&c.Redis.Server, "redis-server", c.Redis.Server, "redis-server executable of the embedded Redis: a path, or a name looked up on PATH")
	fs.StringVar(&c.Storage.DataDir, "data-dir", c.Storage.DataDir, "local package directory, used when no S3 endpoint is set")
	fs.StringVar(&c.Storage.S3Endpoint, "s3-endpoint", c.Storage.S3Endpoint, "S3/MinIO endpoint host:port; empty keeps packages in the data dir")
	fs.StringVar(&c.Storage.S3Bucket, "s3-bucket", c.Storage.S3Bucket, "S3 bucket for packages, created if missing")
	fs.StringVar(&c.Storage.S3AccessKey, "s3-access-key", c.Storage.S3AccessKey, "S3 access key")
	fs.Var(&c.Storage.S3SecretKey, "s3-secret-key", "S3 secret key")
	fs.StringVar(&c.Storage.S3Region, "s3-region", c.Storage.S3Region, "S3 region (optional)")
	fs.BoolVar(&c.Storage.S3TLS, "s3-tls", c.Storage.S3TLS, "use HTTPS to the S3 endpoint")
	fs.StringVar(&c.Catalog.File, "catalog-file", c.Catalog.File, "JSON layer catalog; empty serves the built-in demo catalog")
	fs.StringVar(&c.HTTP.Addr, "http-addr", c.HTTP.Addr, "HTTP listen address of the trigger")
	fs.StringVar(&c.HTTP.PublicURL, "http-public-url", c.HTTP.PublicURL, "base URL of download links (default http://localhost:<port>)")
	fs.BoolVar(&c.HTTP.Debug, "http-debug", c.HTTP.Debug, "include stack traces in 500 responses")
	fs.IntVar(&c.HTTP.BodyLimit, "http-body-limit", c.HTTP.BodyLimit, "largest accepted request body in bytes")
	fs.IntVar(&c.HTTP.MaxROIVertices, "http-max-roi-vertices", c.HTTP.MaxROIVertices, "most positions the area (roi) of one POST /export may have, all features together")
	fs.DurationVar(&c.HTTP.ShutdownTimeout, "http-shutdown-timeout", c.HTTP.ShutdownTimeout, "time open requests get to finish on shutdown")
	fs.StringVar(&c.HTTP.MetricsAddr, "http-metrics-addr", c.HTTP.MetricsAddr, "separate listen address serving /metrics without a token (default: /metrics on http-addr, with a token)")
	fs.IntVar(&c.HTTP.RateLimit, "http-rate-limit", c.HTTP.RateLimit, "requests per minute one subject may make; 0 turns the limit off")
	fs.IntVar(&c.HTTP.RateBurst, "http-rate-burst", c.HTTP.RateBurst, "requests above the rate one subject may make at once")
	fs.StringVar(&c.HTTP.CallbackAllow, "http-callback-allow", c.HTTP.CallbackAllow, "comma-separated CIDRs and host names callbacks may reach although private, loopback or link-local")
	fs.BoolVar(&c.HTTP.MonitoringReadOnly, "http-monitoring-read-only", c.HTTP.MonitoringReadOnly, "asynqmon at /monitoring only shows queues and tasks, it cannot change them")
	fs.StringVar(&c.HTTP.PrometheusURL, "http-prometheus-url", c.HTTP.PrometheusURL, "Prometheus server asynqmon draws its queue charts from (optional)")
	fs.DurationVar(&c.HTTP.PreviewTimeout, "http-preview-timeout", c.HTTP.PreviewTimeout, "bound on one preview tile: a quarter for a free slot (then 503), the rest for the layer's source (then 504)")
	fs.IntVar(&c.HTTP.PreviewConcurrency, "http-preview-concurrency", c.HTTP.PreviewConcurrency, "preview tiles one trigger reads at once")
	fs.Var(&c.Auth.HS256Secret, "auth-hs256-secret", "shared secret of HS256 tokens")
	fs.StringVar(&c.Auth.PublicKeyFile, "auth-public-key-file", c.Auth.PublicKeyFile, "PEM file of RSA/EC public keys for RS256/ES256 tokens")
	fs.StringVar(&c.Auth.JWKSFile, "auth-jwks-file", c.Auth.JWKSFile, "JWKS file of public keys for RS256/ES256 tokens")
	fs.StringVar(&c.Auth.Issuer, "auth-issuer", c.Auth.Issuer, "required iss claim (optional)")
	fs.StringVar(&c.Auth.Audience, "auth-audience", c.Auth.Audience, "required aud claim (optional)")
	fs.StringVar(&c.Auth.RoleClaim, "auth-role-claim", c.Auth.RoleClaim, "claim holding the caller's role or roles")
	fs.StringVar(&c.Auth.ClientRole, "auth-client-role", c.Auth.ClientRole, "role value of API clients")
	fs.StringVar(&c.Auth.OperatorRole, "auth-operator-role", c.Auth.OperatorRole, "role value of operators")
	fs.DurationVar(&c.Auth.Leeway, "auth-leeway", c.Auth.Leeway, "clock skew allowed on exp, nbf and iat")
	fs.DurationVar(&c.Jobs.PackageTTL, "jobs-package-ttl", c.Jobs.PackageTTL, "how long a package is kept after it was finished or last served from the cache")
	fs.Int64Var(&c.Jobs.MaxTiles, "jobs-max-tiles", c.Jobs.MaxTiles, "largest number of tiles one export may hold")
	fs.DurationVar(&c.Jobs.RenderTimeout, "jobs-render-timeout", c.Jobs.RenderTimeout, "time limit of one render task")
	fs.IntVar(&c.Jobs.RenderMaxRetry, "jobs-render-max-retry", c.Jobs.RenderMaxRetry, "retries of a failed render task before the job fails")
	fs.DurationVar(&c.Jobs.CallbackTimeout, "jobs-callback-timeout", c.Jobs.CallbackTimeout, "time limit of one callback POST")
	fs.IntVar(&c.Jobs.CallbackMaxRetry, "jobs-callback-max-retry", c.Jobs.CallbackMaxRetry, "retries of a failed callback")
	fs.Int64Var(&c.Jobs.EstimatePNGBytes, "jobs-estimate-png-bytes", c.Jobs.EstimatePNGBytes, "average PNG tile size used for size estimates")
	fs.Int64Var(&c.Jobs.EstimateJPEGBytes, "jobs-estimate-jpeg-bytes", c.Jobs.EstimateJPEGBytes, "average JPEG tile size used for size estimates")
	fs.Int64Var(&c.Jobs.BatchTiles, "jobs-batch-tiles", c.Jobs.BatchTiles, "most tiles one render task writes; larger exports are split into batches")
	fs.Int64Var(&c.Jobs.BatchSpread, "jobs-batch-spread", c.Jobs.BatchSpread, "batches an export is spread over at least, for many workers to share it")
	fs.Int64Var(&c.Jobs.BatchMinTiles, "jobs-batch-min-tiles", c.Jobs.BatchMinTiles, "fewest tiles in a batch made to spread an export")
	fs.Var(&c.Jobs.CallbackSecret, "jobs-callback-secret", "signs callback bodies with HMAC-SHA256 in X-Exporter-Signature when set")
	fs.Int64Var(&c.Jobs.QuotaBytes, "jobs-quota-bytes", c.Jobs.QuotaBytes, "storage quota: stored packages plus estimates of unfinished jobs; 0 is none")
	fs.IntVar(&c.Queues.UrgentFrom, "queues-urgent-from", c.Queues.UrgentFrom, "lowest priority served by the urgent queue")
	fs.IntVar(&c.Queues.DefaultFrom, "queues-default-from", c.Queues.DefaultFrom, "lowest priority served by the default queue; lower goes to the low queue")
	fs.StringVar(&c.Queues.Weights, "queues-weights", c.Queues.Weights, "relative service weights of the urgent, default and low queues")
	fs.IntVar(&c.Worker.Concurrency, "worker-concurrency", c.Worker.Concurrency, "tasks one worker runs at once")
	fs.IntVar(&c.Worker.Fetchers, "worker-fetchers", c.Worker.Fetchers, "tiles fetched at once within one task")
	fs.IntVar(&c.Worker.Encoders, "worker-encoders", c.Worker.Encoders, "tiles decoded and encoded at once within one task")
	fs.StringVar(&c.Worker.TempDir, "worker-temp-dir", c.Worker.TempDir, "directory for packages being built (default the system's)")
	fs.IntVar(&c.Worker.ReservedConcurrency, "worker-reserved-concurrency", c.Worker.ReservedConcurrency, "extra task slots that serve the urgent queue only; 0 is none")
	fs.DurationVar(&c.Worker.ShutdownTimeout, "worker-shutdown-timeout", c.Worker.ShutdownTimeout, "time running tasks get to finish on shutdown before they are handed back")
	fs.DurationVar(&c.Worker.PollInterval, "worker-poll-interval", c.Worker.PollInterval, "how long an idle worker waits before it looks for new tasks again")
	fs.StringVar(&c.Scheduler.ExpireSchedule, "scheduler-expire-schedule", c.Scheduler.ExpireSchedule, "when expired packages are deleted (cron spec or @every)")
	fs.StringVar(&c.Scheduler.OrphansSchedule, "scheduler-orphans-schedule", c.Scheduler.OrphansSchedule, "when parts of jobs no longer running are deleted (cron spec or @every)")
	fs.StringVar(&c.Scheduler.CleanSchedule, "scheduler-clean-schedule", c.Scheduler.CleanSchedule, "when records of ended jobs are deleted (cron spec or @every)")
	fs.StringVar(&c.Scheduler.ReconcileSchedule, "scheduler-reconcile-schedule", c.Scheduler.ReconcileSchedule, "when stuck jobs are moved on (cron spec or @every)")
	fs.DurationVar(&c.Scheduler.OrphanAge, "scheduler-orphan-age", c.Scheduler.OrphanAge, "age at which parts of jobs no longer running are deleted")
	fs.DurationVar(&c.Scheduler.CleanAfter, "scheduler-clean-after", c.Scheduler.CleanAfter, "how long records of Failed, Cancelled and Expired jobs are kept")
	fs.DurationVar(&c.Scheduler.StuckAfter, "scheduler-stuck-after", c.Scheduler.StuckAfter, "age at which reconcile looks at an In-Progress job")
}

// EnvName is the environment variable of the flag named name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Load builds the configuration of one subcommand from its arguments and
// the environment. name is used in usage messages; usage output and
// errors go to out. It returns flag.ErrHelp for -h and --help.
func Load(name string, args []string, getenv func(string) string, out io.Writer) (Config, []string, error) {
	c := Default()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	c.bind(fs)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: %s [flags]\n\nEvery flag can also be set by its environment variable.\n\n", name)
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(out, "  -%s (%s)\n    \t%s", f.Name, EnvName(f.Name), f.Usage)
			_, secret := f.Value.(*Secret)
			if !secret && f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				fmt.Fprintf(out, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(out)
		})
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := EnvName(f.Name)
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return c, nil, err
	}
	if err := fs.Parse(args); err != nil {
		return c, nil, err
	}
	return c, fs.Args(), nil
}

// Flags returns the names of every flag, for docs and their tests.
func Flags() []string {
	var c Config
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.bind(fs)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log-level: %q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json", "auto":
	default:
		add("log-format: %q is not text, json or auto", c.Log.Format)
	}
	if u := c.Redis.URL.Reveal(); u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "redis" && p.Scheme != "rediss") {
			add("redis-url: want redis://host:port or rediss://host:port")
		}
	}
	if c.Redis.Prefix == "" || strings.ContainsAny(c.Redis.Prefix, " {}") {
		add("redis-prefix: %q must be non-empty without spaces or braces", c.Redis.Prefix)
	}
	if c.Storage.S3Endpoint == "" && c.Storage.DataDir == "" {
		add("data-dir: must be set when no s3-endpoint is")
	}
	if c.Storage.S3Endpoint != "" {
		if strings.Contains(c.Storage.S3Endpoint, "://") {
			add("s3-endpoint: %q must be host:port without a scheme (use s3-tls for HTTPS)", c.Storage.S3Endpoint)
		}
		if c.Storage.S3Bucket == "" {
			add("s3-bucket: must be set with s3-endpoint")
		}
		if c.Storage.S3AccessKey == "" || c.Storage.S3SecretKey == "" {
			add("s3-access-key, s3-secret-key: both must be set with s3-endpoint")
		}
	}
	if c.HTTP.Addr == "" {
		add("http-addr: must be set")
	}
	if c.HTTP.PublicURL != "" {
		if p, err := url.Parse(c.HTTP.PublicURL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			add("http-public-url: %q is not an absolute http(s) URL", c.HTTP.PublicURL)
		}
	}
	if c.HTTP.BodyLimit < 1024 {
		add("http-body-limit: %d is below 1024 bytes", c.HTTP.BodyLimit)
	}
	if c.HTTP.MaxROIVertices < 4 {
		add("http-max-roi-vertices: %d is below 4, the positions of one ring", c.HTTP.MaxROIVertices)
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"http-shutdown-timeout", c.HTTP.ShutdownTimeout},
		{"http-preview-timeout", c.HTTP.PreviewTimeout},
		{"jobs-package-ttl", c.Jobs.PackageTTL},
		{"jobs-render-timeout", c.Jobs.RenderTimeout},
		{"jobs-callback-timeout", c.Jobs.CallbackTimeout},
		{"worker-shutdown-timeout", c.Worker.ShutdownTimeout},
		{"scheduler-orphan-age", c.Scheduler.OrphanAge},
		{"scheduler-clean-after", c.Scheduler.CleanAfter},
		{"scheduler-stuck-after", c.Scheduler.StuckAfter},
	}
	for _, p := range positive {
		if p.d <= 0 {
			add("%s: %v must be positive", p.name, p.d)
		}
	}
	if c.Worker.PollInterval < 10*time.Millisecond || c.Worker.PollInterval > 10*time.Second {
		add("worker-poll-interval: %v must be between 10ms and 10s", c.Worker.PollInterval)
	}
	if c.Jobs.MaxTiles < 1 {
		add("jobs-max-tiles: %d must be at least 1", c.Jobs.MaxTiles)
	}
	if c.Jobs.RenderMaxRetry < 0 || c.Jobs.CallbackMaxRetry < 0 {
		add("jobs-render-max-retry, jobs-callback-max-retry: must not be negative")
	}
	if c.Queues.DefaultFrom < 0 || c.Queues.UrgentFrom <= c.Queues.DefaultFrom || c.Queues.UrgentFrom > 999_999_999 {
		add("queues-default-from, queues-urgent-from: want 0 ≤ default-from < urgent-from ≤ 999999999, got %d and %d", c.Queues.DefaultFrom, c.Queues.UrgentFrom)
	}
	if _, err := ParseWeights(c.Queues.Weights); err != nil {
		add("queues-weights: %v", err)
	}
	if c.HTTP.RateLimit < 0 || c.HTTP.RateBurst < 0 {
		add("http-rate-limit, http-rate-burst: must not be negative")
	}
	if c.HTTP.RateLimit > 0 && c.HTTP.RateBurst < 1 {
		add("http-rate-burst: must be at least 1 with a rate limit")
	}
	if c.HTTP.PreviewConcurrency < 1 {
		add("http-preview-concurrency: %d must be at least 1", c.HTTP.PreviewConcurrency)
	}
	if n := len(c.Auth.HS256Secret.Reveal()); n > 0 && n < 32 {
		add("auth-hs256-secret: %d bytes is too short; use at least 32 random bytes", n)
	}
	if c.Auth.RoleClaim == "" || c.Auth.ClientRole == "" || c.Auth.OperatorRole == "" {
		add("auth-role-claim, auth-client-role, auth-operator-role: must be set")
	}
	if c.Auth.Leeway < 0 || c.Auth.Leeway > 10*time.Minute {
		add("auth-leeway: %v must be within 0..10m", c.Auth.Leeway)
	}
	if c.Jobs.EstimatePNGBytes < 1 || c.Jobs.EstimateJPEGBytes < 1 {
		add("jobs-estimate-png-bytes, jobs-estimate-jpeg-bytes: must be at least 1")
	}
	if c.Jobs.QuotaBytes < 0 {
		add("jobs-quota-bytes: %d must not be negative", c.Jobs.QuotaBytes)
	}
	if c.Worker.ReservedConcurrency < 0 {
		add("worker-reserved-concurrency: %d must not be negative", c.Worker.ReservedConcurrency)
	}
	if c.Worker.Concurrency < 1 {
		add("worker-concurrency: %d must be at least 1", c.Worker.Concurrency)
	}
	if c.Worker.Fetchers < 1 || c.Worker.Encoders < 1 {
		add("worker-fetchers, worker-encoders: must be at least 1, got %d and %d", c.Worker.Fetchers, c.Worker.Encoders)
	}
	if c.Jobs.BatchTiles < 100 {
		add("jobs-batch-tiles: %d is below 100", c.Jobs.BatchTiles)
	}
	if c.Jobs.BatchSpread < 1 {
		add("jobs-batch-spread: %d must be at least 1", c.Jobs.BatchSpread)
	}
	for _, sc := range []struct{ name, spec string }{
		{"scheduler-expire-schedule", c.Scheduler.ExpireSchedule},
		{"scheduler-orphans-schedule", c.Scheduler.OrphansSchedule},
		{"scheduler-clean-schedule", c.Scheduler.CleanSchedule},
		{"scheduler-reconcile-schedule", c.Scheduler.ReconcileSchedule},
	} {
		if _, err := cron.ParseStandard(sc.spec); err != nil {
			add("%s: %q is not a cron spec or @every interval: %v", sc.name, sc.spec, err)
		}
	}
	if c.Jobs.BatchMinTiles < 1 {
		add("jobs-batch-min-tiles: %d must be at least 1", c.Jobs.BatchMinTiles)
	}
	return errors.Join(errs...)
}

// ParseWeights parses "urgent,default,low" queue weights.
func ParseWeights(s string) ([3]int, error) {
	var w [3]int
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return w, fmt.Errorf("%q: want three weights, urgent,default,low", s)
	}
	for i, p := range parts {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(p), "%d", &n); err != nil || n < 1 {
			return w, fmt.Errorf("%q: weight %q is not a positive integer", s, p)
		}
		w[i] = n
	}
	return w, nil
}

// PublicURL is the base of download links: HTTP.PublicURL, or
// http://localhost:<port> from HTTP.Addr.
func (c Config) PublicURL() string {
	if c.HTTP.PublicURL != "" {
		return strings.TrimRight(c.HTTP.PublicURL, "/")
	}
	addr := c.HTTP.Addr
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		return "http://localhost" + addr[i:]
	}
	return "http://" + addr
}

// LogValue logs c as its flags and their values, secrets redacted, so the
// effective configuration reads as it is set.
func (c Config) LogValue() slog.Value {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.bind(fs)
	var attrs []slog.Attr
	fs.VisitAll(func(f *flag.Flag) { attrs = append(attrs, slog.String(f.Name, f.Value.String())) })
	return slog.GroupValue(attrs...)
}
