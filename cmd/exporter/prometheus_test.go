package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geoexport/exporter/internal/testenv"
	"github.com/geoexport/exporter/monitoring/monitoringtest"
)

// TestQueriesAgainstPrometheus runs a demo export on `exporter all`, lets a
// real Prometheus scrape it and load the alert and recording rules, and
// evaluates every expression of the dashboard and the rules. (The alerts'
// own unit tests, on series written for them, are monitoring's
// TestAlertRules.)
func TestQueriesAgainstPrometheus(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	metricsAddr := testenv.FreeAddr(t)
	p := start(t, dir, map[string]string{
		"EXPORTER_HTTP_ADDR": testenv.FreeAddr(t), "EXPORTER_HTTP_METRICS_ADDR": metricsAddr,
		"EXPORTER_HTTP_RATE_LIMIT": "0", "EXPORTER_LOG_FORMAT": "json", "EXPORTER_HTTP_CALLBACK_ALLOW": "127.0.0.1/32",
		"EXPORTER_HTTP_PPROF": "true",
		// A quota, so that the storage panels and alert have one to
		// compare with; expiry often, so that its last success is known.
		"EXPORTER_JOBS_QUOTA_BYTES": "10000000000", "EXPORTER_SCHEDULER_EXPIRE_SCHEDULE": "@every 2s",
	}, "all")
	base, token := waitURL(t, p)
	waitReady(t, base, p)
	// The runtime profiles are served beside the metrics, never on the API.
	wantStatus(t, "http://"+metricsAddr+"/debug/pprof/cmdline", http.StatusOK)
	wantStatus(t, base+"/debug/pprof/cmdline", http.StatusNotFound)
	a := api{base: base, token: token}
	prom := monitoringtest.StartPrometheus(t, metricsAddr)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	// Prometheus applies its targets a few seconds after it starts; from
	// the first scrape on it scrapes every second.
	prom.WaitScrapedAfter(ctx, t, time.Now())

	// The demo export of the README, then the same request again: a
	// naive-cache hit.
	request := fmt.Sprintf(seedRequest, newCallbacks(t).url)
	first := a.postJSON(t, "/create", request)
	waitCompleted(t, a, first["id"].(string))
	if again := a.postJSON(t, "/create", request); again["status"] != "Completed" || again["fileUri"] == "" {
		t.Errorf("second POST /create answered %v, want the cache hit: Completed with a fileUri", again)
	}
	done := time.Now()

	// Two scrapes after the last request, so every counter has two samples
	// with its final value and rates exist. (A render's task metrics are
	// counted when its handler returns, just after the job is Completed.)
	prom.WaitScrapedAfter(ctx, t, done.Add(1500*time.Millisecond))

	// The gauges the scheduler reads from Redis say what happened: the
	// export finished, its package is stored within the quota, and expiry
	// (every 2 s here) succeeded a moment ago.
	for _, expr := range []string{
		`max(exporter_jobs_running) == 0`,
		`max(exporter_storage_stored_bytes) > 0 and max(exporter_storage_reserved_bytes) == 0`,
		`max(exporter_storage_quota_bytes) == 10000000000`,
		`time() - max(exporter_scheduler_last_success_timestamp_seconds{task_type="maintenance:expire"}) < 10`,
	} {
		if n, err := prom.Series(ctx, expr); err != nil || n != 1 {
			t.Errorf("Prometheus %s: %d series, %v; want it true", expr, n, err)
		}
	}

	queries := monitoringtest.DashboardQueries(t, monitoringtest.LoadDashboard(t))
	queries = append(queries, prom.RuleQueries(ctx, t)...)
	scraped := prom.MetricNames(ctx, t)

	var empty []string
	for _, q := range queries {
		expr, err := monitoringtest.PromQL(q.Expr)
		if err != nil {
			t.Errorf("%s: %v", q.Where, err)
			continue
		}
		if bad := monitoringtest.BadGrouping(expr); len(bad) > 0 {
			t.Errorf("%s groups by %v, outside the fixed label sets %v", q.Where, bad, monitoringtest.GroupingLabels)
		}
		n, err := prom.Series(ctx, expr)
		if err != nil {
			t.Errorf("%s: invalid expression %s: %v", q.Where, expr, err)
			continue
		}
		if n > 0 {
			continue
		}
		missing := monitoringtest.Unscraped(expr, scraped)
		line := fmt.Sprintf("%s: %s", q.Where, expr)
		if len(missing) > 0 {
			line += fmt.Sprintf(" (metrics never scraped: %s)", strings.Join(missing, ", "))
		}
		empty = append(empty, line)
		if q.MustData {
			t.Errorf("no series from %s", line)
		}
	}
	if len(empty) > 0 {
		t.Logf("%d of %d expressions returned no series (alert conditions are expected to be false):\n  %s",
			len(empty), len(queries), strings.Join(empty, "\n  "))
	}
	var never []string
	for _, q := range queries {
		never = append(never, monitoringtest.Unscraped(q.Expr, scraped)...)
	}
	slices.Sort(never)
	if never = slices.Compact(never); len(never) > 0 {
		t.Logf("metrics used by the dashboard or the rules that the exporter did not expose: %s", strings.Join(never, ", "))
	}
}
