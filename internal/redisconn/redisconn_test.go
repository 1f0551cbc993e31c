package redisconn

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url string
		want      asynq.RedisConnOpt
	}{
		{"plain", "redis://10.0.0.1:6379", asynq.RedisClientOpt{Addr: "10.0.0.1:6379"}},
		{"password and db", "redis://:pw@host:6380/3", asynq.RedisClientOpt{Addr: "host:6380", Password: "pw", DB: 3}},
		{"user", "redis://app:pw@host:6379/", asynq.RedisClientOpt{Addr: "host:6379", Username: "app", Password: "pw"}},
		{"tls", "rediss://host:6379/1", asynq.RedisClientOpt{Addr: "host:6379", DB: 1,
			TLSConfig: &tls.Config{ServerName: "host", MinVersion: tls.VersionTLS12}}},
		{"sentinels, master in the path", "redis-sentinel://:pw@s1:26379,s2:26380,s3:26381/mymaster",
			asynq.RedisFailoverClientOpt{MasterName: "mymaster", SentinelAddrs: []string{"s1:26379", "s2:26380", "s3:26381"},
				Password: "pw", SentinelPassword: "pw"}},
		{"master and db in the path", "redis-sentinel://s1:26379/mymaster/2",
			asynq.RedisFailoverClientOpt{MasterName: "mymaster", SentinelAddrs: []string{"s1:26379"}, DB: 2}},
		{"asynq's query form", "redis-sentinel://:pw@s1:26379,s2:26379?master=mymaster&db=4",
			asynq.RedisFailoverClientOpt{MasterName: "mymaster", SentinelAddrs: []string{"s1:26379", "s2:26379"},
				Password: "pw", SentinelPassword: "pw", DB: 4}},
		{"both forms agreeing", "redis-sentinel://s1:26379/m/1?master=m&db=1",
			asynq.RedisFailoverClientOpt{MasterName: "m", SentinelAddrs: []string{"s1:26379"}, DB: 1}},
		{"sentinels without a password", "redis-sentinel://:pw@s1:26379/m?sentinel_password=",
			asynq.RedisFailoverClientOpt{MasterName: "m", SentinelAddrs: []string{"s1:26379"}, Password: "pw"}},
		{"sentinels with their own password", "redis-sentinel://:pw@s1:26379/m?sentinel_password=spw",
			asynq.RedisFailoverClientOpt{MasterName: "m", SentinelAddrs: []string{"s1:26379"}, Password: "pw", SentinelPassword: "spw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tc.url)
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tc.url, err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreUnexported(tls.Config{})); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tc.url, diff)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url string
		cluster   bool
		says      string
	}{
		{"cluster scheme", "redis-cluster://h1:7000,h2:7001", true, ""},
		{"cluster scheme with TLS", "rediss-cluster://h1:7000", true, ""},
		{"several hosts", "redis://h1:7000,h2:7001", true, ""},
		{"go-redis cluster addr parameters", "redis://h1:7000?addr=h2:7001", true, ""},
		{"unknown scheme", "http://h1:6379", false, `scheme "http"`},
		{"redis without a port", "redis://h1", false, "want host:port"},
		{"bad db", "redis://h1:6379/x", false, `database "x"`},
		{"deep path", "redis://h1:6379/1/2", false, "at most /<db>"},
		{"unknown parameter", "redis://h1:6379?dial_timeout=3", false, "dial_timeout"},
		{"no master", "redis-sentinel://s1:26379", false, "names no master"},
		{"masters differ", "redis-sentinel://s1:26379/a?master=b", false, "differ"},
		{"dbs differ", "redis-sentinel://s1:26379/a/1?db=2", false, "differ"},
		{"empty sentinel address", "redis-sentinel://s1:26379,,s2:26379/m", false, "want host:port"},
		{"sentinel without a port", "redis-sentinel://s1/m", false, "want host:port"},
		{"sentinel path too deep", "redis-sentinel://s1:26379/m/1/x", false, "/<master>[/<db>]"},
		{"bad sentinel db", "redis-sentinel://s1:26379/m/-1", false, `database "-1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tc.url)
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want one", tc.url)
			}
			if errors.Is(err, ErrCluster) != tc.cluster {
				t.Errorf("Parse(%q) = %v; want ErrCluster: %v", tc.url, err, tc.cluster)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Parse(%q) = %v, want it to say %q", tc.url, err, tc.says)
			}
		})
	}
}

func TestParseHidesPassword(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"redis://:secret@h1:6379/x", "redis://:secret@h1 :6379", "redis-sentinel://:secret@s1/m/1/2"} {
		if _, err := Parse(u); err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("Parse(%q) = %v, want an error without the password", u, err)
		}
	}
}

func TestNewClient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		want func(redis.UniversalClient) bool
	}{
		{"redis://h1:6379/2", func(c redis.UniversalClient) bool {
			o := c.(*redis.Client).Options()
			return o.Addr == "h1:6379" && o.DB == 2
		}},
		{"redis-sentinel://:pw@s1:26379,s2:26379/mymaster/1", func(c redis.UniversalClient) bool {
			// A failover client is a *redis.Client whose address is the
			// master's name, resolved through the sentinels at dial time.
			o := c.(*redis.Client).Options()
			return o.Addr == "FailoverClient" && o.DB == 1 && o.Password == "pw"
		}},
	} {
		opt, err := Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewClient(opt)
		if err != nil {
			t.Fatalf("NewClient(%q) = %v", tc.url, err)
		}
		if !tc.want(c) {
			t.Errorf("NewClient(%q) = %T %+v, not the client the URL names", tc.url, c, c)
		}
		c.Close()
	}
	if _, err := NewClient(asynq.RedisClusterClientOpt{Addrs: []string{"h1:7000"}}); !errors.Is(err, ErrCluster) {
		t.Errorf("NewClient(cluster options) = %v, want ErrCluster", err)
	}
}

func TestLogger(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	Logger(slog.New(slog.NewJSONHandler(&b, nil))).Printf(t.Context(), "sentinel: new master=%q addr=%q", "exporter", "10.0.0.2:6379")
	if got := b.String(); !strings.Contains(got, `"component":"go-redis"`) || !strings.Contains(got, `new master=\"exporter\" addr=\"10.0.0.2:6379\"`) {
		t.Errorf("logged %s", got)
	}
}
