package config_test

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/geoexport/exporter/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(config.Config) bool
	}{
		{"default", nil, nil, func(c config.Config) bool { return c.HTTP.Addr == ":8080" && c.Trigger.PackageTTL == 720*time.Hour }},
		{"env over default", nil, map[string]string{"EXPORTER_HTTP_ADDR": ":9000"}, func(c config.Config) bool { return c.HTTP.Addr == ":9000" }},
		{"flag over env", []string{"-http-addr", ":9100"}, map[string]string{"EXPORTER_HTTP_ADDR": ":9000"}, func(c config.Config) bool { return c.HTTP.Addr == ":9100" }},
		{"duration", nil, map[string]string{"EXPORTER_JOBS_PACKAGE_TTL": "48h"}, func(c config.Config) bool { return c.Trigger.PackageTTL == 48*time.Hour }},
		{"bool", []string{"-s3-tls"}, nil, func(c config.Config) bool { return c.Storage.S3TLS }},
		{"secret", nil, map[string]string{"EXPORTER_S3_SECRET_KEY": "hunter2"}, func(c config.Config) bool { return c.Storage.S3SecretKey.Reveal() == "hunter2" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, rest, err := config.Load("test", tc.args, env(tc.env), io.Discard)
			if err != nil || len(rest) != 0 {
				t.Fatalf("Load(%v) = %v, %v", tc.args, rest, err)
			}
			if !tc.want(c) {
				t.Errorf("Load(%v, %v) = %+v", tc.args, tc.env, c)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	_, _, err := config.Load("test", nil, env(map[string]string{"EXPORTER_JOBS_MAX_TILES": "many", "EXPORTER_HTTP_DEBUG": "perhaps"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "EXPORTER_JOBS_MAX_TILES") || !strings.Contains(err.Error(), "EXPORTER_HTTP_DEBUG") {
		t.Errorf("Load with bad variables = %v, want both named", err)
	}
	if _, _, err := config.Load("test", []string{"-h"}, env(nil), io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("Load(-h) = %v, want flag.ErrHelp", err)
	}
	if _, _, err := config.Load("test", []string{"-no-such-flag"}, env(nil), io.Discard); err == nil {
		t.Error("Load(-no-such-flag) succeeded")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	if err := config.Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	c := config.Default()
	c.Log.Level = "loud"
	c.Redis.URL = "http://x"
	c.Storage.S3Endpoint = "https://s3.test"
	c.HTTP.PublicURL = "ftp://x"
	c.Trigger.PackageTTL = 0
	c.Tasks.UrgentFrom = 10
	c.Worker.QueueWeights = [3]int{1, 0, 2}
	c.Worker.Concurrency = 0
	c.Auth.HS256Secret = []byte("short")
	c.Trigger.PreviewTimeout = -time.Second
	c.Trigger.PreviewConcurrency = 0
	c.Worker.PollInterval = time.Millisecond
	c.Trigger.Batching.Spread = 0
	c.Trigger.Batching.MinTiles = 0
	c.Tasks.FinalizeMaxRetry = -1
	c.Scheduler.BatchSize = 0
	c.Redis.WaitReplicas, c.Redis.WaitTimeout = 1, 5*time.Second
	err := c.Validate()
	for _, want := range []string{"redis-wait-timeout", "auth-hs256-secret", "log-level", "redis-url", "s3-endpoint", "s3-access-key", "http-public-url", "jobs-package-ttl", "queues-urgent-from", "queues-weights", "worker-concurrency", "http-preview-timeout", "http-preview-concurrency",
		"worker-poll-interval", "jobs-batch-spread", "jobs-batch-min-tiles", "jobs-finalize-max-retry", "scheduler-batch-size"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a problem with %s", err, want)
		}
	}
}

func TestValidateRedisURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		want []string // in the problem; none when the URL is accepted
	}{
		{url: "redis://:pw@10.0.0.1:6379/0"},
		{url: "redis-sentinel://:pw@s1:26379,s2:26379,s3:26379/exporter/0"},
		{url: "redis-sentinel://s1:26379,s2:26379?master=exporter"},
		{url: "redis-cluster://c1:7000,c2:7000", want: []string{"EXPORTER_REDIS_URL", "Redis Cluster is not supported", "Lua scripts", "single primary"}},
		{url: "redis://c1:7000,c2:7000", want: []string{"EXPORTER_REDIS_URL", "Redis Cluster is not supported"}},
		{url: "redis-sentinel://s1:26379", want: []string{"EXPORTER_REDIS_URL", "names no master", "redis-sentinel://"}},
	} {
		c := config.Default()
		c.Redis.URL = config.Secret(tc.url)
		err := c.Validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("Validate() with redis-url %s = %v, want nil", tc.url, err)
			}
			continue
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("Validate() with redis-url %s = %v, want it to say %q", tc.url, err, w)
			}
		}
		if strings.Contains(err.Error(), ":pw@") {
			t.Errorf("Validate() = %v shows the password", err)
		}
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	t.Parallel()
	c, _, err := config.Load("test", nil, env(map[string]string{
		"EXPORTER_S3_SECRET_KEY": "hunter2", "EXPORTER_REDIS_URL": "redis://:pw@host:6379",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "config", c)
	if !strings.Contains(b.String(), `"jobs-package-ttl":"720h0m0s"`) {
		t.Errorf("logged config does not read as its flags: %s", b.String())
	}
	if strings.Contains(b.String(), "hunter2") || strings.Contains(b.String(), "pw@") {
		t.Errorf("logged config shows a secret: %s", b.String())
	}
}

func TestPublicURL(t *testing.T) {
	t.Parallel()
	c := config.Default()
	if got := c.PublicURL(); got != "http://localhost:8080" {
		t.Errorf("PublicURL() = %q", got)
	}
	c.HTTP.PublicURL = "https://maps.example.com/export/"
	if got := c.PublicURL(); got != "https://maps.example.com/export" {
		t.Errorf("PublicURL() = %q", got)
	}
}

// TestREADMEListsEverySetting keeps the README's table true.
func TestREADMEListsEverySetting(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range config.Flags() {
		if v := config.EnvName(name); !strings.Contains(string(readme), "| `"+v+"` |") {
			t.Errorf("README.md does not list %s", v)
		}
	}
}

// TestValidateNamesFlags checks that every problem the components report
// about a zero configuration is named by the flags of its fields, never by
// Go field names.
func TestValidateNamesFlags(t *testing.T) {
	t.Parallel()
	flags := map[string]bool{}
	for _, name := range config.Flags() {
		flags[name] = true
	}
	err := config.Config{}.Validate()
	if err == nil {
		t.Fatal("a zero Config is valid")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) < 20 {
		t.Errorf("%d problems of a zero Config, want one for each required setting: %v", len(lines), err)
	}
	for _, line := range lines {
		names, _, ok := strings.Cut(line, ": ")
		if !ok {
			t.Errorf("problem %q names no setting", line)
			continue
		}
		for _, name := range strings.Split(names, ", ") {
			if !flags[name] {
				t.Errorf("problem %q names %q, which is not a flag", line, name)
			}
		}
	}
}
