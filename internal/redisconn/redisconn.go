// Package redisconn turns the exporter's Redis URL (EXPORTER_REDIS_URL)
// into the connection options of asynq and the go-redis client that the
// job store, the rate limiter and every other go-redis user share, so
// that both always reach the same Redis: one primary by address, or the
// primary that Redis Sentinel names.
//
// Logger routes go-redis's own log lines into the process's log.
//
// Redis Cluster is refused: the job store's Lua scripts build job keys
// from ids they read, and its steps touch several keys of a job and the
// shared indexes at once, which Cluster allows only within one hash slot.
//
// It imports no other project package.
package redisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// ErrCluster is returned by [Parse] for a Redis Cluster URL.
var ErrCluster = errors.New("redisconn: Redis Cluster is not supported: the job store's Lua scripts and MULTI blocks " +
	"touch several job keys and shared indexes in one step, which needs a single primary; use redis:// " +
	"or redis-sentinel:// for failover")

// Forms lists the accepted URL forms, for help texts and errors.
const Forms = "redis://[[user]:password@]host:port[/db], rediss://… (TLS), " +
	"redis-sentinel://[[user]:password@]host:port[,host:port…]/<master>[/db] (or ?master=<master>&db=<db>)"

// Parse reads a Redis URL and returns asynq's connection options for it:
//
//	redis://[[user]:password@]host:port[/db]     one Redis (rediss:// with TLS)
//	redis-sentinel://[[user]:password@]host:port[,host:port…]/<master>[/db]
//	redis-sentinel://[[user]:password@]host:port[,host:port…]?master=<master>[&db=<db>]
//
// The second form lists the sentinels; the third is asynq's own spelling
// of it. The password authenticates to the
// primary and replicas, and to the sentinels too unless the query
// parameter sentinel_password gives theirs (empty for none). Cluster
// URLs (a redis-cluster scheme, several hosts or addr parameters in a
// redis:// URL) are refused with [ErrCluster].
func Parse(raw string) (asynq.RedisConnOpt, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url's errors quote the URL, password included.
		return nil, errors.New("redisconn: not a URL")
	}
	if strings.Contains(u.Scheme, "cluster") {
		return nil, ErrCluster
	}
	switch u.Scheme {
	case "redis", "rediss":
		return parseDirect(u)
	case "redis-sentinel":
		return parseSentinel(u)
	}
	return nil, fmt.Errorf("redisconn: scheme %q is not one of redis, rediss and redis-sentinel", u.Scheme)
}

func parseDirect(u *url.URL) (asynq.RedisConnOpt, error) {
	q := u.Query()
	if strings.Contains(u.Host, ",") || q.Has("addr") {
		return nil, ErrCluster
	}
	if err := onlyParams(q); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return nil, fmt.Errorf("redisconn: address %q: want host:port", u.Host)
	}
	segs := pathSegments(u.Path)
	if len(segs) > 1 {
		return nil, fmt.Errorf("redisconn: path %q: want at most /<db>", u.Path)
	}
	opt := asynq.RedisClientOpt{Addr: u.Host, Username: u.User.Username()}
	opt.Password, _ = u.User.Password()
	if len(segs) == 1 {
		var err error
		if opt.DB, err = parseDB(segs[0]); err != nil {
			return nil, err
		}
	}
	if u.Scheme == "rediss" {
		opt.TLSConfig = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	return opt, nil
}

func parseSentinel(u *url.URL) (asynq.RedisConnOpt, error) {
	q := u.Query()
	if err := onlyParams(q, "master", "db", "sentinel_password"); err != nil {
		return nil, err
	}
	opt := asynq.RedisFailoverClientOpt{Username: u.User.Username()}
	opt.Password, _ = u.User.Password()
	opt.SentinelPassword = opt.Password
	if q.Has("sentinel_password") {
		opt.SentinelPassword = q.Get("sentinel_password")
	}
	for a := range strings.SplitSeq(u.Host, ",") {
		if h, p, err := net.SplitHostPort(a); err != nil || h == "" || p == "" {
			return nil, fmt.Errorf("redisconn: sentinel addresses %q: want host:port[,host:port…]", u.Host)
		}
		opt.SentinelAddrs = append(opt.SentinelAddrs, a)
	}
	segs := pathSegments(u.Path)
	if len(segs) > 2 {
		return nil, fmt.Errorf("redisconn: path %q: want /<master>[/<db>]", u.Path)
	}
	db := q.Get("db")
	if len(segs) > 0 {
		opt.MasterName = segs[0]
	}
	if len(segs) == 2 {
		if db != "" && db != segs[1] {
			return nil, fmt.Errorf("redisconn: database %q in the path and %q in the query differ", segs[1], db)
		}
		db = segs[1]
	}
	if m := q.Get("master"); m != "" {
		if opt.MasterName != "" && opt.MasterName != m {
			return nil, fmt.Errorf("redisconn: master %q in the path and %q in the query differ", opt.MasterName, m)
		}
		opt.MasterName = m
	}
	if opt.MasterName == "" {
		return nil, errors.New("redisconn: sentinel URL names no master: want redis-sentinel://host:port[,host:port…]/<master>")
	}
	if db != "" {
		var err error
		if opt.DB, err = parseDB(db); err != nil {
			return nil, err
		}
	}
	return opt, nil
}

// NewClient returns a go-redis client of opt that reaches the same Redis
// as asynq does with it: a client of one server, or a failover client
// that asks the sentinels for the primary and follows it when they
// promote a replica. The caller closes it.
func NewClient(opt asynq.RedisConnOpt) (redis.UniversalClient, error) {
	if _, ok := opt.(asynq.RedisClusterClientOpt); ok {
		return nil, ErrCluster
	}
	c, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("redisconn: %T makes no go-redis client", opt)
	}
	return c, nil
}

func pathSegments(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func parseDB(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("redisconn: database %q: want a number ≥ 0", s)
	}
	return n, nil
}

// onlyParams refuses query parameters other than allowed.
func onlyParams(q url.Values, allowed ...string) error {
	var unknown []string
	for k := range q {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fmt.Errorf("redisconn: unknown query parameters %s", strings.Join(unknown, ", "))
}

// Logger is go-redis's logging interface (redis.SetLogger) over l: its
// messages (a sentinel naming a new primary, a pool failing to dial) go
// to the process's log, marked as go-redis's, rather than to standard
// error.
func Logger(l *slog.Logger) interface {
	Printf(ctx context.Context, format string, v ...any)
} {
	return goRedisLogger{l.With("component", "go-redis")}
}

type goRedisLogger struct{ l *slog.Logger }

func (g goRedisLogger) Printf(ctx context.Context, format string, v ...any) {
	g.l.InfoContext(ctx, fmt.Sprintf(format, v...))
}
