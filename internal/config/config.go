// Package config holds the one Config struct of the exporter, its defaults,
// its validation, and the mapping of every field onto an EXPORTER_*
// environment variable and a command-line flag.
//
// Precedence is flag, then environment, then default. Names map
// mechanically: the flag -redis-url is the variable EXPORTER_REDIS_URL.
// Nothing outside cmd and this package reads the environment or flags.
//
// It imports the components whose Config it is made of (trigger, worker,
// scheduler, internal/auth, internal/job), internal/setting and
// internal/redisconn (which reads the Redis URL exactly as cmd connects
// with it), and only cmd imports it.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/geoexport/exporter/internal/auth"
	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/redisconn"
	"github.com/geoexport/exporter/internal/setting"
	"github.com/geoexport/exporter/scheduler"
	"github.com/geoexport/exporter/trigger"
	"github.com/geoexport/exporter/worker"
)

// EnvPrefix starts every environment variable the exporter reads.
const EnvPrefix = "EXPORTER_"

// Config is the whole configuration of every role, composed of the
// components' own Config types; each binary loads all of it and uses the
// parts it needs. The sections Log, Redis, Storage, Catalog and HTTP are
// the command's own: what it connects to and where it listens.
type Config struct {
	Log       Log
	Redis     Redis
	Storage   Storage
	Catalog   Catalog
	HTTP      HTTP
	Trigger   trigger.Config
	Auth      auth.Config
	Tasks     job.TaskOptions
	Worker    worker.Config
	Scheduler scheduler.Config
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
	// URL is a redis://, rediss:// or redis-sentinel:// URL (the forms of
	// redisconn.Parse); Redis Cluster is refused. Empty runs an embedded
	// Redis, which only the "all" role accepts: a redis-server child
	// process with its files under DataDir/redis.
	URL Secret
	// Prefix starts every key the exporter writes. Default "exporter".
	Prefix string
	// Server is the redis-server executable of the embedded Redis: a path,
	// or a name looked up on PATH. Default "redis-server".
	Server string
	// WaitReplicas, when positive, is how many replicas must have each
	// change of a job's state (new, Completed, Failed, Cancelled) before
	// it counts as made (Redis WAIT), so that a failover cannot lose it.
	// Default 0: no waiting.
	WaitReplicas int
	// WaitTimeout bounds each such wait; a change that fewer replicas
	// acknowledged is retried (503 from the trigger, a task run again).
	// At most 2s. Default 1s.
	WaitTimeout time.Duration
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

// HTTP configures where the roles listen and whom callbacks may reach;
// the API itself is configured by Trigger.
type HTTP struct {
	// Addr is the listen address. Default ":8080".
	Addr string
	// PublicURL is the base of the download links handed to clients.
	// Default http://localhost:<port of Addr>.
	PublicURL string
	// MetricsAddr, when set, serves /metrics without authentication on
	// this separate address; otherwise /metrics on Addr needs a token.
	MetricsAddr string
	// Pprof serves Go's runtime profiles at /debug/pprof/ without a token
	// where /metrics is served without one: on MetricsAddr, and on a
	// worker's or scheduler's Addr. Default false.
	Pprof bool
	// CallbackAllow lists networks (CIDR) and host names that callbacks may
	// reach although they are loopback, private, link-local or metadata
	// addresses, comma-separated. Default none.
	CallbackAllow string
}

// Default returns the configuration with every default filled in: the
// command's own, and each component's DefaultConfig.
func Default() Config {
	return Config{
		Log:       Log{Level: "info", Format: "auto"},
		Redis:     Redis{Prefix: "exporter", Server: "redis-server", WaitTimeout: time.Second},
		Storage:   Storage{DataDir: "./data", S3Bucket: "exporter"},
		HTTP:      HTTP{Addr: ":8080"},
		Trigger:   trigger.DefaultConfig(),
		Auth:      auth.DefaultConfig(),
		Tasks:     job.DefaultTaskOptions(),
		Worker:    worker.DefaultConfig(),
		Scheduler: scheduler.DefaultConfig(),
	}
}

// Resolved returns c with the values that several components share
// copied from the setting that holds them: the public URL of download
// links (trigger and worker), the package TTL (jobs-package-ttl, trigger
// and worker) and the callback timeout (jobs-callback-timeout, tasks and
// worker).
func (c Config) Resolved() Config {
	c.Trigger.PublicURL = c.PublicURL()
	c.Worker.PublicURL = c.PublicURL()
	c.Worker.PackageTTL = c.Trigger.PackageTTL
	c.Worker.CallbackTimeout = c.Tasks.CallbackTimeout
	return c
}

// bind declares every setting as a flag of fs, bound to its field of c.
// The flag name is the variable name without EnvPrefix, lowercased, with
// dashes for underscores.
func (c *Config) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Log.Level, "log-level", c.Log.Level, "log level: debug, info, warn or error")
	fs.StringVar(&c.Log.Format, "log-format", c.Log.Format, "log format: text, json or auto (text on a terminal)")
	fs.Var(&c.Redis.URL, "redis-url", "Redis URL: redis://[:password@]host:port[/db], or redis-sentinel://[:password@]host:port[,host:port…]/<master>[/db] for Sentinel failover (no Redis Cluster); empty runs an embedded redis-server with its files in <data-dir>/redis (role all only)")
	fs.StringVar(&c.Redis.Prefix, "redis-prefix", c.Redis.Prefix, "prefix of every Redis key the exporter writes")
	fs.StringVar(&c.Redis.Server, "redis-server", c.Redis.Server, "redis-server executable of the embedded Redis: a path, or a name looked up on PATH")
	fs.IntVar(&c.Redis.WaitReplicas, "redis-wait-replicas", c.Redis.WaitReplicas, "replicas that must have each change of a job's state before it counts (Redis WAIT); 0 waits for none")
	fs.DurationVar(&c.Redis.WaitTimeout, "redis-wait-timeout", c.Redis.WaitTimeout, "longest wait for redis-wait-replicas, at most 2s")
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
	fs.BoolVar(&c.Trigger.Debug, "http-debug", c.Trigger.Debug, "include stack traces in 500 responses")
	fs.IntVar(&c.Trigger.BodyLimit, "http-body-limit", c.Trigger.BodyLimit, "largest accepted request body in bytes, but those of POST /export and POST /estimate")
	fs.IntVar(&c.Trigger.AreaBodyLimit, "http-area-body-limit", c.Trigger.AreaBodyLimit, "largest accepted body of POST /export and POST /estimate in bytes, whose area may be large")
	fs.IntVar(&c.Trigger.MaxROIVertices, "http-max-roi-vertices", c.Trigger.MaxROIVertices, "most positions the area (roi) of one POST /export may have, all features together")
	fs.DurationVar(&c.Trigger.ShutdownTimeout, "http-shutdown-timeout", c.Trigger.ShutdownTimeout, "time open requests get to finish on shutdown")
	fs.StringVar(&c.HTTP.MetricsAddr, "http-metrics-addr", c.HTTP.MetricsAddr, "separate listen address serving /metrics without a token (default: /metrics on http-addr, with a token)")
	fs.BoolVar(&c.HTTP.Pprof, "http-pprof", c.HTTP.Pprof, "serve Go's runtime profiles at /debug/pprof/ without a token beside /metrics on http-metrics-addr (and on a worker's or scheduler's http-addr)")
	fs.IntVar(&c.Trigger.RateLimit, "http-rate-limit", c.Trigger.RateLimit, "requests per minute one subject may make; 0 turns the limit off")
	fs.IntVar(&c.Trigger.RateBurst, "http-rate-burst", c.Trigger.RateBurst, "requests above the rate one subject may make at once")
	fs.StringVar(&c.HTTP.CallbackAllow, "http-callback-allow", c.HTTP.CallbackAllow, "comma-separated CIDRs and host names callbacks may reach although private, loopback or link-local")
	fs.Var((*negatedBool)(&c.Trigger.MonitoringWritable), "http-monitoring-read-only", "asynqmon at /monitoring only shows queues and tasks, it cannot change them")
	fs.StringVar(&c.Trigger.PrometheusURL, "http-prometheus-url", c.Trigger.PrometheusURL, "Prometheus server asynqmon draws its queue charts from (optional)")
	fs.DurationVar(&c.Trigger.PreviewTimeout, "http-preview-timeout", c.Trigger.PreviewTimeout, "bound on one preview tile: a quarter for a free slot (then 503), the rest for the layer's source (then 504)")
	fs.IntVar(&c.Trigger.PreviewConcurrency, "http-preview-concurrency", c.Trigger.PreviewConcurrency, "preview tiles one trigger reads at once")
	fs.Var((*secretBytes)(&c.Auth.HS256Secret), "auth-hs256-secret", "shared secret of HS256 tokens")
	fs.StringVar(&c.Auth.PublicKeyFile, "auth-public-key-file", c.Auth.PublicKeyFile, "PEM file of RSA/EC public keys for RS256/ES256 tokens")
	fs.StringVar(&c.Auth.JWKSFile, "auth-jwks-file", c.Auth.JWKSFile, "JWKS file of public keys for RS256/ES256 tokens")
	fs.StringVar(&c.Auth.Issuer, "auth-issuer", c.Auth.Issuer, "required iss claim (optional)")
	fs.StringVar(&c.Auth.Audience, "auth-audience", c.Auth.Audience, "required aud claim (optional)")
	fs.StringVar(&c.Auth.RoleClaim, "auth-role-claim", c.Auth.RoleClaim, "claim holding the caller's role or roles")
	fs.StringVar(&c.Auth.ClientRole, "auth-client-role", c.Auth.ClientRole, "role value of API clients")
	fs.StringVar(&c.Auth.OperatorRole, "auth-operator-role", c.Auth.OperatorRole, "role value of operators")
	fs.DurationVar(&c.Auth.Leeway, "auth-leeway", c.Auth.Leeway, "clock skew allowed on exp, nbf and iat")
	fs.DurationVar(&c.Trigger.PackageTTL, "jobs-package-ttl", c.Trigger.PackageTTL, "how long a package is kept after it was finished or last served from the cache")
	fs.Int64Var(&c.Trigger.MaxTiles, "jobs-max-tiles", c.Trigger.MaxTiles, "largest number of tiles one export may hold")
	fs.DurationVar(&c.Tasks.RenderTimeout, "jobs-render-timeout", c.Tasks.RenderTimeout, "time limit of one render task")
	fs.IntVar(&c.Tasks.RenderMaxRetry, "jobs-render-max-retry", c.Tasks.RenderMaxRetry, "retries of a failed render task before the job fails")
	fs.DurationVar(&c.Tasks.FinalizeTimeout, "jobs-finalize-timeout", c.Tasks.FinalizeTimeout, "time limit of one finalize task (merge, digest, store)")
	fs.IntVar(&c.Tasks.FinalizeMaxRetry, "jobs-finalize-max-retry", c.Tasks.FinalizeMaxRetry, "retries of a failed finalize task before the job fails")
	fs.DurationVar(&c.Tasks.CallbackRetention, "jobs-callback-retention", c.Tasks.CallbackRetention, "how long a delivered callback's task is kept, so the same notification is not delivered twice")
	fs.DurationVar(&c.Tasks.CallbackTimeout, "jobs-callback-timeout", c.Tasks.CallbackTimeout, "time limit of one callback POST")
	fs.IntVar(&c.Tasks.CallbackMaxRetry, "jobs-callback-max-retry", c.Tasks.CallbackMaxRetry, "retries of a failed callback")
	fs.Int64Var(&c.Trigger.TileSizes.PNG, "jobs-estimate-png-bytes", c.Trigger.TileSizes.PNG, "average PNG tile size used for size estimates")
	fs.Int64Var(&c.Trigger.TileSizes.JPEG, "jobs-estimate-jpeg-bytes", c.Trigger.TileSizes.JPEG, "average JPEG tile size used for size estimates")
	fs.DurationVar(&c.Trigger.LearnedMaxAge, "jobs-estimate-refresh", c.Trigger.LearnedMaxAge, "how long a trigger keeps a layer's tile sizes learned from its finished packages before reading them again")
	fs.Int64Var(&c.Trigger.Batching.MaxTiles, "jobs-batch-tiles", c.Trigger.Batching.MaxTiles, "most tiles one render task writes; larger exports are split into batches")
	fs.Int64Var(&c.Trigger.Batching.Spread, "jobs-batch-spread", c.Trigger.Batching.Spread, "batches an export is spread over at least, for many workers to share it")
	fs.Int64Var(&c.Trigger.Batching.MinTiles, "jobs-batch-min-tiles", c.Trigger.Batching.MinTiles, "fewest tiles in a batch made to spread an export")
	fs.Var((*secretBytes)(&c.Worker.CallbackSecret), "jobs-callback-secret", "signs callback bodies with HMAC-SHA256 in X-Exporter-Signature when set")
	fs.Int64Var(&c.Trigger.QuotaBytes, "jobs-quota-bytes", c.Trigger.QuotaBytes, "storage quota: stored packages plus estimates of unfinished jobs; 0 is none")
	fs.IntVar(&c.Tasks.UrgentFrom, "queues-urgent-from", c.Tasks.UrgentFrom, "lowest priority served by the urgent queue")
	fs.IntVar(&c.Tasks.DefaultFrom, "queues-default-from", c.Tasks.DefaultFrom, "lowest priority served by the default queue; lower goes to the low queue")
	fs.Var((*weights)(&c.Worker.QueueWeights), "queues-weights", "relative service weights of the urgent, default and low queues")
	fs.IntVar(&c.Worker.Concurrency, "worker-concurrency", c.Worker.Concurrency, "tasks one worker runs at once")
	fs.IntVar(&c.Worker.Fetchers, "worker-fetchers", c.Worker.Fetchers, "tiles fetched at once within one task")
	fs.IntVar(&c.Worker.Encoders, "worker-encoders", c.Worker.Encoders, "tiles decoded and encoded at once within one task")
	fs.StringVar(&c.Worker.TempDir, "worker-temp-dir", c.Worker.TempDir, "directory for packages being built (default the system's)")
	fs.IntVar(&c.Worker.ReservedConcurrency, "worker-reserved-concurrency", c.Worker.ReservedConcurrency, "extra task slots that serve the urgent queue only; 0 is none")
	fs.DurationVar(&c.Worker.ShutdownTimeout, "worker-shutdown-timeout", c.Worker.ShutdownTimeout, "time running tasks get to finish on shutdown before they are handed back")
	fs.DurationVar(&c.Worker.PollInterval, "worker-poll-interval", c.Worker.PollInterval, "how long an idle worker waits before it looks for new tasks again")
	fs.DurationVar(&c.Worker.SweepInterval, "worker-sweep-interval", c.Worker.SweepInterval, "how often a worker removes from its temp dir what dead processes and ended jobs left")
	fs.StringVar(&c.Scheduler.ExpireSpec, "scheduler-expire-schedule", c.Scheduler.ExpireSpec, "when expired packages are deleted (cron spec or @every)")
	fs.StringVar(&c.Scheduler.OrphansSpec, "scheduler-orphans-schedule", c.Scheduler.OrphansSpec, "when parts of jobs no longer running are deleted (cron spec or @every)")
	fs.StringVar(&c.Scheduler.CleanSpec, "scheduler-clean-schedule", c.Scheduler.CleanSpec, "when records of ended jobs are deleted (cron spec or @every)")
	fs.StringVar(&c.Scheduler.ReconcileSpec, "scheduler-reconcile-schedule", c.Scheduler.ReconcileSpec, "when stuck jobs are moved on (cron spec or @every)")
	fs.DurationVar(&c.Scheduler.OrphanAge, "scheduler-orphan-age", c.Scheduler.OrphanAge, "age at which parts of jobs no longer running are deleted")
	fs.DurationVar(&c.Scheduler.CleanAfter, "scheduler-clean-after", c.Scheduler.CleanAfter, "how long records of Failed, Cancelled and Expired jobs are kept")
	fs.Int64Var(&c.Scheduler.BatchSize, "scheduler-batch-size", c.Scheduler.BatchSize, "most jobs, packages or parts one maintenance run handles; the next run takes the rest")
	fs.DurationVar(&c.Scheduler.RunTimeout, "scheduler-run-timeout", c.Scheduler.RunTimeout, "time limit of one maintenance run")
	fs.DurationVar(&c.Tasks.MaintenanceRetention, "scheduler-slot-retention", c.Tasks.MaintenanceRetention, "how long a maintenance slot's task is kept, so no replica runs the slot again")
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
		PrintFlags(out, fs)
	}
	if err := SetFromEnv(fs, getenv); err != nil {
		return c, nil, err
	}
	if err := fs.Parse(args); err != nil {
		return c, nil, err
	}
	return c, fs.Args(), nil
}

// SetFromEnv sets each flag of fs whose environment variable (EnvName)
// getenv gives a value, so that flags parsed after it win. It reports
// every value a flag refuses, named by its variable.
func SetFromEnv(fs *flag.FlagSet, getenv func(string) string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := EnvName(f.Name)
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	return errors.Join(errs...)
}

// PrintFlags lists the flags of fs with their environment variables,
// meanings and defaults (never the value of a secret).
func PrintFlags(out io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(out, "  -%s (%s)\n    \t%s", f.Name, EnvName(f.Name), f.Usage)
		if !redactedValue(f.Value) && f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			fmt.Fprintf(out, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(out)
	})
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

// Validate reports every problem of c at once: those of the command's
// own sections, and each component's Validate of its section, every
// problem named by the flags of the fields it is about.
func (c Config) Validate() error {
	r := c.Resolved()
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch r.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log-level: %q is not debug, info, warn or error", r.Log.Level)
	}
	switch r.Log.Format {
	case "text", "json", "auto":
	default:
		add("log-format: %q is not text, json or auto", r.Log.Format)
	}
	if u := r.Redis.URL.Reveal(); u != "" {
		if _, err := redisconn.Parse(u); err != nil {
			add("redis-url (%s): %v; accepted forms: %s", EnvName("redis-url"), err, redisconn.Forms)
		}
	}
	if r.Redis.WaitReplicas < 0 {
		add("redis-wait-replicas: %d must not be negative", r.Redis.WaitReplicas)
	}
	if r.Redis.WaitReplicas > 0 && (r.Redis.WaitTimeout <= 0 || r.Redis.WaitTimeout > 2*time.Second) {
		// go-redis reads a reply for 3s: a longer WAIT would time out the
		// connection instead.
		add("redis-wait-timeout: %v must be within 0..2s", r.Redis.WaitTimeout)
	}
	if r.Redis.Prefix == "" || strings.ContainsAny(r.Redis.Prefix, " {}") {
		add("redis-prefix: %q must be non-empty without spaces or braces", r.Redis.Prefix)
	}
	if r.Storage.S3Endpoint == "" && r.Storage.DataDir == "" {
		add("data-dir: must be set when no s3-endpoint is")
	}
	if r.Storage.S3Endpoint != "" {
		if strings.Contains(r.Storage.S3Endpoint, "://") {
			add("s3-endpoint: %q must be host:port without a scheme (use s3-tls for HTTPS)", r.Storage.S3Endpoint)
		}
		if r.Storage.S3Bucket == "" {
			add("s3-bucket: must be set with s3-endpoint")
		}
		if r.Storage.S3AccessKey == "" || r.Storage.S3SecretKey == "" {
			add("s3-access-key, s3-secret-key: both must be set with s3-endpoint")
		}
	}
	if r.HTTP.Addr == "" {
		add("http-addr: must be set")
	}
	if r.HTTP.PublicURL != "" {
		if p, err := url.Parse(r.HTTP.PublicURL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			add("http-public-url: %q is not an absolute http(s) URL", r.HTTP.PublicURL)
		}
	}
	// Floors of the deployment, stricter than what the trigger can run
	// (tests plan batches of a few tiles): a batch is a task in Redis, and
	// batches of a handful of tiles would flood the queues.
	if b := r.Trigger.Batching; b.MaxTiles < 100 {
		add("jobs-batch-tiles: %d is below 100", b.MaxTiles)
	}
	if r.Trigger.Batching.Spread < 1 {
		add("jobs-batch-spread: %d must be at least 1", r.Trigger.Batching.Spread)
	}
	if r.Trigger.Batching.MinTiles < 1 {
		add("jobs-batch-min-tiles: %d must be at least 1", r.Trigger.Batching.MinTiles)
	}
	names := r.flagNames()
	for _, sec := range []struct {
		cfg any // a pointer to the section in r
		err error
	}{
		{&r.Trigger, r.Trigger.Validate()},
		{&r.Auth, r.Auth.Validate()},
		{&r.Tasks, r.Tasks.Validate()},
		{&r.Worker, r.Worker.Validate()},
		{&r.Scheduler, r.Scheduler.Validate()},
	} {
		for _, p := range setting.Problems(sec.err) {
			var fe *setting.FieldError
			if !errors.As(p, &fe) {
				errs = append(errs, p)
				continue
			}
			var flags []string
			for _, field := range fe.Fields {
				flags = append(flags, names.of(sec.cfg, field))
			}
			add("%s: %s", strings.Join(flags, ", "), withoutPackage(fe.Err.Error()))
		}
	}
	return errors.Join(errs...)
}

// withoutPackage drops the "worker: " that starts a component's message:
// the flag names the setting.
func withoutPackage(msg string) string {
	if pkg, rest, ok := strings.Cut(msg, ": "); ok && !strings.Contains(pkg, " ") {
		return rest
	}
	return msg
}

// flagSet maps the address of each field of one Config to the flag bound
// to it.
type flagSet map[uintptr]string

// flagNames binds a flag set to c and records which field each flag sets.
// Every flag.Value the standard library makes, and each Value of this
// package, is a pointer to the field it sets. Fields the command fills in
// itself (Resolved) are named by the setting they come from.
func (c *Config) flagNames() flagSet {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.bind(fs)
	names := flagSet{}
	fs.VisitAll(func(f *flag.Flag) { names[reflect.ValueOf(f.Value).Pointer()] = f.Name })
	for field, from := range map[any]any{
		&c.Trigger.PublicURL: &c.HTTP.PublicURL, &c.Worker.PublicURL: &c.HTTP.PublicURL,
		&c.Worker.PackageTTL: &c.Trigger.PackageTTL, &c.Worker.CallbackTimeout: &c.Tasks.CallbackTimeout,
	} {
		names[reflect.ValueOf(field).Pointer()] = names[reflect.ValueOf(from).Pointer()]
	}
	return names
}

// of names the flag of the field (a Go field name, dotted for a nested
// struct) of the section that section points to.
func (n flagSet) of(section any, field string) string {
	v := reflect.ValueOf(section).Elem()
	for _, name := range strings.Split(field, ".") {
		v = v.FieldByName(name)
		if !v.IsValid() {
			return field
		}
	}
	if name, ok := n[v.Addr().Pointer()]; ok {
		return name
	}
	return field
}

// parseWeights parses "urgent,default,low" queue weights.
func parseWeights(s string) ([3]int, error) {
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
