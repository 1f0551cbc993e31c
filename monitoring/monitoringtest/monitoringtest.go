// Package monitoringtest reads the dashboards and alert rules that
// monitoring holds beside its Go code and checks their queries: statically,
// and against a real Prometheus (started by internal/testenv) that scrapes
// a running exporter. It is for tests only.
package monitoringtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/geoexport/exporter/internal/testenv"
)

// Dir is the monitoring directory, whatever the working directory of the
// test.
func Dir(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("monitoringtest: no source path")
	}
	return filepath.Dir(filepath.Dir(file))
}

// The files monitoring holds beside its Go code, relative to Dir.
const (
	DashboardFile = "grafana/dashboards/exporter.json"
	RulesGlob     = "prometheus/rules/*.yml"
)

// PanelsWithData are the panels that must show data once a demo export has
// run (with a storage quota set, and expiry run at least once): throughput,
// queues and the operator's views. The dashboard must keep a panel of each
// title.
var PanelsWithData = []string{
	"Tiles /s, all layers", "Tiles written /s", "Tile bytes written /s", "Jobs /min",
	"Queue backlog", "Queue depth", "Queue latency",
	"Exports running now", "Storage used of the quota", "Export time, request to Completed",
	"Storage used and quota", "Queue latency by priority", "Callback failures /min",
	"Scheduler runs", "Since the last successful maintenance run",
}

// GroupingLabels are the labels queries may group by: the small fixed sets
// of the style guide, plus le for quantiles and Prometheus's own target
// labels.
var GroupingLabels = []string{
	"le", "queue", "state", "task_type", "outcome", "status", "route", "method", "code",
	"format", "layer", "kind", "role", "job", "instance",
}

// Dashboard is the part of the Grafana dashboard model the tests read.
type Dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []Panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// Panel is a dashboard panel, or a row holding panels.
type Panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *Datasource `json:"datasource"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *Datasource `json:"datasource"`
	} `json:"targets"`
	Panels []Panel `json:"panels"` // of a collapsed row
}

// Datasource names a panel's or a query's data source.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Query is one PromQL expression of the dashboard or the rules.
type Query struct {
	Where    string // panel title and refId, or rule group and name
	Expr     string // as written
	MustData bool   // a result without series fails the test
}

// LoadDashboard reads the dashboard.
func LoadDashboard(tb testing.TB) Dashboard {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(tb), DashboardFile))
	if err != nil {
		tb.Fatal(err)
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		tb.Fatalf("parse %s: %v", DashboardFile, err)
	}
	return d
}

// AllPanels flattens rows into one list.
func AllPanels(ps []Panel) []Panel {
	var out []Panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, AllPanels(p.Panels)...)
	}
	return out
}

// DashboardQueries returns every expression of the dashboard, and fails
// the test if a panel of PanelsWithData is missing.
func DashboardQueries(tb testing.TB, d Dashboard) []Query {
	tb.Helper()
	var qs []Query
	titles := map[string]bool{}
	for _, p := range AllPanels(d.Panels) {
		titles[p.Title] = true
		for _, tg := range p.Targets {
			qs = append(qs, Query{
				Where:    fmt.Sprintf("dashboard panel %q %s", p.Title, tg.RefID),
				Expr:     tg.Expr,
				MustData: slices.Contains(PanelsWithData, p.Title),
			})
		}
	}
	for _, title := range PanelsWithData {
		if !titles[title] {
			tb.Errorf("%s has no panel %q, which must show data after an export", DashboardFile, title)
		}
	}
	return qs
}

var (
	grafanaVar  = regexp.MustCompile(`\$\{?(__rate_interval|__interval|__range)\}?`)
	anyVar      = regexp.MustCompile(`\$\{?[A-Za-z_]\w*`)
	grouping    = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	metricNames = regexp.MustCompile(`\b(?:exporter|asynq)_[a-z0-9_]*[a-z0-9]\b`)
)

// PromQL turns a dashboard expression into one Prometheus evaluates:
// Grafana's interval variables become 1m.
func PromQL(expr string) (string, error) {
	out := grafanaVar.ReplaceAllString(expr, "1m")
	if v := anyVar.FindString(out); v != "" {
		return "", fmt.Errorf("unknown Grafana variable %s", v)
	}
	return out, nil
}

// BadGrouping returns the labels expr groups by that are not in
// GroupingLabels.
func BadGrouping(expr string) []string {
	var bad []string
	for _, m := range grouping.FindAllStringSubmatch(expr, -1) {
		for l := range strings.SplitSeq(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(GroupingLabels, l) {
				bad = append(bad, l)
			}
		}
	}
	return bad
}

// Unscraped returns the exporter and asynq metric names expr uses that
// are not in scraped.
func Unscraped(expr string, scraped map[string]bool) []string {
	var out []string
	for _, name := range metricNames.FindAllString(expr, -1) {
		if !scraped[name] && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// Prometheus is a running Prometheus server and its HTTP API.
type Prometheus struct {
	url    string
	client *http.Client
}

// StartPrometheus starts Prometheus scraping target (host:port) every
// second and loading the rules of this repository.
func StartPrometheus(t testing.TB, target string) *Prometheus {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "prometheus.yml")
	// JSON is YAML: no YAML library needed.
	b, err := json.Marshal(map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
		"rule_files": []string{filepath.Join(Dir(t), RulesGlob)},
		"scrape_configs": []any{map[string]any{
			"job_name":       "exporter",
			"static_configs": []any{map[string]any{"targets": []string{target}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return &Prometheus{url: testenv.Prometheus(t, cfg), client: &http.Client{Timeout: 10 * time.Second}}
}

// apiResponse is the envelope of every Prometheus API answer.
type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// api calls a Prometheus API path and decodes its data into out.
func (p *Prometheus) api(ctx context.Context, path string, params url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r apiResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: status %d: decode: %w", path, resp.StatusCode, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, out)
}

// Series evaluates expr now and returns how many series (or scalars) it
// gave.
func (p *Prometheus) Series(ctx context.Context, expr string) (int, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return 0, err
	}
	switch data.ResultType {
	case "vector", "matrix":
		var rs []json.RawMessage
		if err := json.Unmarshal(data.Result, &rs); err != nil {
			return 0, err
		}
		return len(rs), nil
	case "scalar", "string":
		return 1, nil
	}
	return 0, fmt.Errorf("result type %q", data.ResultType)
}

// WaitScrapedAfter waits until the exporter target's last scrape started
// after at.
func (p *Prometheus) WaitScrapedAfter(ctx context.Context, t testing.TB, at time.Time) {
	t.Helper()
	waitFor(ctx, t, "a scrape after the export", func() error {
		var data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		}
		if err := p.api(ctx, "/api/v1/query", url.Values{"query": {`timestamp(up{job="exporter"})`}}, &data); err != nil {
			return err
		}
		if len(data.Result) == 0 {
			return errors.New("no successful scrape yet")
		}
		s, _ := data.Result[0].Value[1].(string)
		ts, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("scrape timestamp %q: %w", s, err)
		}
		if last := time.UnixMilli(int64(ts * 1000)); last.Before(at) {
			return fmt.Errorf("last scrape at %s", last.Format(time.RFC3339Nano))
		}
		return nil
	})
}

// RuleQueries returns the expressions of every loaded rule, after checking
// that every rules file was loaded, has been evaluated without error, and
// that every alert has a severity, a summary and a description.
func (p *Prometheus) RuleQueries(ctx context.Context, t testing.TB) []Query {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(Dir(t), RulesGlob))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rules files match %s (%v)", RulesGlob, err)
	}
	type rule struct {
		Type        string            `json:"type"`
		Name        string            `json:"name"`
		Query       string            `json:"query"`
		Health      string            `json:"health"`
		LastError   string            `json:"lastError"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	}
	var data struct {
		Groups []struct {
			Name  string `json:"name"`
			File  string `json:"file"`
			Rules []rule `json:"rules"`
		} `json:"groups"`
	}
	// Every rule is evaluated once a second; wait for the first round.
	waitFor(ctx, t, "rules evaluated", func() error {
		if err := p.api(ctx, "/api/v1/rules", nil, &data); err != nil {
			return err
		}
		for _, g := range data.Groups {
			for _, r := range g.Rules {
				if r.Health == "unknown" {
					return fmt.Errorf("rule %s not evaluated yet", r.Name)
				}
			}
		}
		return nil
	})
	loaded := map[string]bool{}
	var qs []Query
	for _, g := range data.Groups {
		loaded[filepath.Base(g.File)] = true
		for _, r := range g.Rules {
			where := fmt.Sprintf("rule %s/%s", g.Name, r.Name)
			if r.Health != "ok" {
				t.Errorf("%s: health %s: %s", where, r.Health, r.LastError)
			}
			if r.Type == "alerting" {
				if sev := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, sev) {
					t.Errorf("%s: severity label %q, want critical, warning or info", where, sev)
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("%s: want summary and description annotations, have %v", where, r.Annotations)
				}
			}
			qs = append(qs, Query{Where: where, Expr: r.Query})
		}
	}
	for _, f := range files {
		if !loaded[filepath.Base(f)] {
			t.Errorf("prometheus loaded no rule group from %s", f)
		}
	}
	return qs
}

// MetricNames returns the names of every metric Prometheus has.
func (p *Prometheus) MetricNames(ctx context.Context, t testing.TB) map[string]bool {
	t.Helper()
	var names []string
	if err := p.api(ctx, "/api/v1/label/__name__/values", nil, &names); err != nil {
		t.Fatalf("metric names: %v", err)
	}
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// poll calls f every 100 ms until it succeeds or ctx ends; it returns f's
// last error.
func poll(ctx context.Context, f func() error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// waitFor polls f and fails the test if it never succeeds.
func waitFor(ctx context.Context, t testing.TB, what string, f func() error) {
	t.Helper()
	if err := poll(ctx, f); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
