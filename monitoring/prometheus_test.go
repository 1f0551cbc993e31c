package monitoring_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The files this package holds beside its Go code.
const (
	dashboardFile = "grafana/dashboards/exporter.json"
	rulesGlob     = "prometheus/rules/*.yml"
)

// Panels that must show data once a demo export has run: throughput and
// queues. The dashboard must keep a panel of each title.
var panelsWithData = []string{
	"Tiles /s, all layers", "Tiles written /s", "Tile bytes written /s", "Jobs /min",
	"Queue backlog", "Queue depth", "Queue latency",
}

// Labels queries may group by: the small fixed sets of the style guide,
// plus le for quantiles and Prometheus's own target labels.
var groupingLabels = []string{
	"le", "queue", "state", "task_type", "outcome", "status", "route", "method", "code",
	"format", "layer", "kind", "role", "job", "instance",
}

// dashboard is the part of the Grafana dashboard model the tests read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// query is one PromQL expression of the dashboard or the rules.
type query struct {
	where    string // panel title and refId, or rule group and name
	expr     string // as written
	mustData bool   // a result without series fails the test
}

func loadDashboard(t testing.TB) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("parse %s: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows into one list.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// dashboardQueries returns every expression of the dashboard.
func dashboardQueries(t testing.TB, d dashboard) []query {
	t.Helper()
	var qs []query
	titles := map[string]bool{}
	for _, p := range allPanels(d.Panels) {
		titles[p.Title] = true
		for _, tg := range p.Targets {
			qs = append(qs, query{
				where:    fmt.Sprintf("dashboard panel %q %s", p.Title, tg.RefID),
				expr:     tg.Expr,
				mustData: slices.Contains(panelsWithData, p.Title),
			})
		}
	}
	for _, title := range panelsWithData {
		if !titles[title] {
			t.Errorf("%s has no panel %q, which must show data after an export", dashboardFile, title)
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

// promQL turns a dashboard expression into one Prometheus evaluates:
// Grafana's interval variables become 1m.
func promQL(expr string) (string, error) {
	out := grafanaVar.ReplaceAllString(expr, "1m")
	if v := anyVar.FindString(out); v != "" {
		return "", fmt.Errorf("unknown Grafana variable %s", v)
	}
	return out, nil
}

// badGrouping returns the labels expr groups by that are not in the
// fixed sets.
func badGrouping(expr string) []string {
	var bad []string
	for _, m := range grouping.FindAllStringSubmatch(expr, -1) {
		for l := range strings.SplitSeq(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(groupingLabels, l) {
				bad = append(bad, l)
			}
		}
	}
	return bad
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q, title %q: want both set", d.UID, d.Title)
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion = %d, want >= 39 (Grafana 11)", d.SchemaVersion)
	}
	var dsVar bool
	for _, v := range d.Templating.List {
		if v.Name == "DS_PROMETHEUS" && v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = true
		}
	}
	if !dsVar {
		t.Errorf("templating has no datasource variable DS_PROMETHEUS of type prometheus")
	}
	ids := map[int]string{}
	for _, p := range allPanels(d.Panels) {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q datasource = %+v, want uid ${DS_PROMETHEUS}", p.Title, p.Datasource)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: refId %q empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q %s datasource = %+v, want uid ${DS_PROMETHEUS}", p.Title, tg.RefID, tg.Datasource)
			}
		}
	}
	for _, q := range dashboardQueries(t, d) {
		if q.expr == "" {
			t.Errorf("%s: empty expression", q.where)
			continue
		}
		if _, err := promQL(q.expr); err != nil {
			t.Errorf("%s: %v", q.where, err)
		}
		if bad := badGrouping(q.expr); len(bad) > 0 {
			t.Errorf("%s groups by %v, outside the fixed label sets %v", q.where, bad, groupingLabels)
		}
	}
}

// TestQueriesAgainstPrometheus runs a demo export on `exporter all`, lets a
// real Prometheus scrape it and load the alert and recording rules, and
// evaluates every expression of the dashboard and the rules.
func TestQueriesAgainstPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts prometheus and the exporter; skipped under -short")
	}
	promBin := os.Getenv("EXPORTER_TEST_PROMETHEUS")
	if promBin == "" {
		var err error
		if promBin, err = exec.LookPath("prometheus"); err != nil {
			t.Fatalf("prometheus not found on PATH (%v): run `make tools` (Debian package prometheus) or set EXPORTER_TEST_PROMETHEUS", err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()

	exp := startExporter(ctx, t, buildExporter(ctx, t, dir), dir)
	prom := startPrometheus(ctx, t, promBin, dir, exp.metricsAddr)
	// Prometheus applies its targets a few seconds after it starts; from
	// the first scrape on it scrapes every second.
	prom.waitScrapedAfter(ctx, t, time.Now())

	// The demo export of the README, then the same request again: a
	// naive-cache hit.
	first := exp.create(ctx, t)
	if first.ID == "" {
		t.Fatalf("POST /create answered %+v, want a job id", first)
	}
	exp.waitCompleted(ctx, t, first.ID)
	if again := exp.create(ctx, t); again.Status != "Completed" || again.FileURI == "" {
		t.Errorf("second POST /create answered %+v, want the cache hit: Completed with a fileUri", again)
	}
	done := time.Now()

	// Two scrapes after the last request, so every counter has two samples
	// with its final value and rates exist. (A render's task metrics are
	// counted when its handler returns, just after the job is Completed.)
	prom.waitScrapedAfter(ctx, t, done.Add(1500*time.Millisecond))

	queries := dashboardQueries(t, loadDashboard(t))
	queries = append(queries, prom.ruleQueries(ctx, t)...)
	scraped := prom.metricNames(ctx, t)

	var empty []string
	for _, q := range queries {
		expr, err := promQL(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		if bad := badGrouping(expr); len(bad) > 0 {
			t.Errorf("%s groups by %v, outside the fixed label sets %v", q.where, bad, groupingLabels)
		}
		n, err := prom.series(ctx, expr)
		if err != nil {
			t.Errorf("%s: invalid expression %s: %v", q.where, expr, err)
			continue
		}
		if n > 0 {
			continue
		}
		missing := unscraped(expr, scraped)
		line := fmt.Sprintf("%s: %s", q.where, expr)
		if len(missing) > 0 {
			line += fmt.Sprintf(" (metrics never scraped: %s)", strings.Join(missing, ", "))
		}
		empty = append(empty, line)
		if q.mustData {
			t.Errorf("no series from %s", line)
		}
	}
	if len(empty) > 0 {
		t.Logf("%d of %d expressions returned no series (alert conditions are expected to be false):\n  %s",
			len(empty), len(queries), strings.Join(empty, "\n  "))
	}
	var never []string
	for _, q := range queries {
		never = append(never, unscraped(q.expr, scraped)...)
	}
	slices.Sort(never)
	if never = slices.Compact(never); len(never) > 0 {
		t.Logf("metrics used by the dashboard or the rules that the exporter did not expose: %s", strings.Join(never, ", "))
	}
}

// unscraped returns the exporter and asynq metric names expr uses that
// Prometheus has no series of.
func unscraped(expr string, scraped map[string]bool) []string {
	var out []string
	for _, name := range metricNames.FindAllString(expr, -1) {
		if !scraped[name] && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// buildExporter builds the exporter binary into dir.
func buildExporter(ctx context.Context, t *testing.T, dir string) string {
	t.Helper()
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	bin := filepath.Join(dir, "exporter")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/exporter")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/exporter: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a loopback address the kernel just had free.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a started child process whose output goes to a log file.
type process struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

// start runs bin with args, env added to the environment (without the
// parent's EXPORTER_ variables), and stops it in cleanup.
func start(t *testing.T, name, bin, dir string, args, env []string, stdout io.Writer) *process {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EXPORTER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = logFile
	cmd.Stdout = logFile
	if stdout != nil {
		cmd.Stdout = io.MultiWriter(logFile, stdout)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("%s output (tail):\n%s", name, b)
		}
	})
	return p
}

// stop interrupts the process and kills it if it has not exited in 10 s.
func (p *process) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// exporter is a running `exporter all`.
type exporter struct {
	apiURL      string
	metricsAddr string
	token       string
	client      *http.Client
}

// tokenWriter finds the operator token in the exporter's stdout.
type tokenWriter struct {
	buf   bytes.Buffer
	token chan string
}

func (w *tokenWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	complete := w.buf.Bytes()
	complete = complete[:bytes.LastIndexByte(complete, '\n')+1] // whole lines only
	sc := bufio.NewScanner(bytes.NewReader(complete))
	for sc.Scan() {
		if _, tok, ok := strings.Cut(sc.Text(), "Authorization: Bearer "); ok && tok != "" {
			select {
			case w.token <- strings.TrimSpace(tok):
			default:
			}
		}
	}
	return len(b), nil
}

// startExporter starts `exporter all` on free loopback ports with an
// embedded Redis and a data directory in dir, retrying if a port was taken
// meanwhile.
func startExporter(ctx context.Context, t *testing.T, bin, dir string) *exporter {
	t.Helper()
	for attempt := 1; ; attempt++ {
		apiAddr, metricsAddr := freePort(t), freePort(t)
		work := filepath.Join(dir, fmt.Sprintf("exporter-%d", attempt))
		if err := os.MkdirAll(work, 0o755); err != nil {
			t.Fatal(err)
		}
		tw := &tokenWriter{token: make(chan string, 1)}
		p := start(t, fmt.Sprintf("exporter-%d", attempt), bin, work, []string{"all"}, []string{
			"EXPORTER_HTTP_ADDR=" + apiAddr,
			"EXPORTER_HTTP_METRICS_ADDR=" + metricsAddr,
			"EXPORTER_DATA_DIR=" + filepath.Join(work, "data"),
			"EXPORTER_WORKER_TEMP_DIR=" + work,
			"EXPORTER_LOG_FORMAT=json",
		}, tw)
		e := &exporter{apiURL: "http://" + apiAddr, metricsAddr: metricsAddr, client: &http.Client{Timeout: 10 * time.Second}}
		select {
		case e.token = <-tw.token:
		case <-p.exited:
			if attempt < 3 {
				continue // most likely a port taken between freePort and the bind
			}
			t.Fatalf("exporter all exited before printing its token; see %s", p.log)
		case <-ctx.Done():
			t.Fatalf("exporter all printed no token: %v", ctx.Err())
		}
		waitFor(ctx, t, "exporter metrics address", func() error {
			return getOK(ctx, e.client, "http://"+metricsAddr+"/metrics")
		})
		waitFor(ctx, t, "exporter readiness", func() error { return getOK(ctx, e.client, e.apiURL+"/readyz") })
		return e
	}
}

// demoRequest is the README's quick-start export of the demo layer.
const demoRequest = `{
  "dbId": "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8",
  "bbox": [34.811938017107494, 31.95475033759175, 34.82237261707599, 31.96426962177354],
  "targetResolution": 0.0000429153442382812,
  "callbackURLs": [], "crs": "EPSG:4326", "priority": 0}`

// createResponse is what POST /create answers: a job (In-Progress) or a
// finished package (Completed).
type createResponse struct {
	Status  string `json:"status"`
	ID      string `json:"id"`
	FileURI string `json:"fileUri"`
}

// create posts the demo export.
func (e *exporter) create(ctx context.Context, t *testing.T) createResponse {
	t.Helper()
	var resp createResponse
	if code := e.do(ctx, t, http.MethodPost, "/create", demoRequest, &resp); code != http.StatusOK {
		t.Fatalf("POST /create = %d, want 200", code)
	}
	return resp
}

// waitCompleted polls the job until it is Completed.
func (e *exporter) waitCompleted(ctx context.Context, t *testing.T, id string) {
	t.Helper()
	waitFor(ctx, t, "job "+id+" Completed", func() error {
		var j struct {
			Status string `json:"status"`
			Reason string `json:"reason"`
		}
		if code := e.do(ctx, t, http.MethodGet, "/jobs/"+id, "", &j); code != http.StatusOK {
			return fmt.Errorf("GET /jobs/%s = %d", id, code)
		}
		switch j.Status {
		case "Completed":
			return nil
		case "In-Progress":
			return fmt.Errorf("job is %s", j.Status)
		}
		t.Fatalf("job %s ended %s: %s", id, j.Status, j.Reason)
		return nil
	})
}

// do calls the API with the operator token and decodes a JSON answer.
func (e *exporter) do(ctx context.Context, t *testing.T, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, e.apiURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// prometheus is a running Prometheus server and its HTTP API.
type prometheus struct {
	url    string
	client *http.Client
}

// startPrometheus starts Prometheus on a free loopback port, with storage
// in dir, scraping target every second and loading the rules of this
// repository, retrying if the port was taken meanwhile.
func startPrometheus(ctx context.Context, t *testing.T, bin, dir, target string) *prometheus {
	t.Helper()
	rules, err := filepath.Abs(rulesGlob)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	// JSON is YAML: no YAML library needed.
	b, err := json.Marshal(map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
		"rule_files": []string{rules},
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
	for attempt := 1; ; attempt++ {
		addr := freePort(t)
		p := start(t, fmt.Sprintf("prometheus-%d", attempt), bin, dir, []string{
			"--config.file=" + cfg,
			"--storage.tsdb.path=" + filepath.Join(dir, fmt.Sprintf("tsdb-%d", attempt)),
			"--web.listen-address=" + addr,
			"--log.level=warn",
		}, nil, nil)
		pr := &prometheus{url: "http://" + addr, client: &http.Client{Timeout: 10 * time.Second}}
		err := poll(ctx, func() error {
			select {
			case <-p.exited:
				return errExited
			default:
			}
			return getOK(ctx, pr.client, pr.url+"/-/ready")
		})
		if errors.Is(err, errExited) && attempt < 3 {
			continue
		}
		if err != nil {
			t.Fatalf("prometheus not ready: %v; see %s", err, p.log)
		}
		return pr
	}
}

var errExited = errors.New("process exited")

// apiResponse is the envelope of every Prometheus API answer.
type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// api calls a Prometheus API path and decodes its data into out.
func (p *prometheus) api(ctx context.Context, path string, params url.Values, out any) error {
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

// series evaluates expr now and returns how many series (or scalars) it
// gave.
func (p *prometheus) series(ctx context.Context, expr string) (int, error) {
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

// waitScrapedAfter waits until the exporter target's last scrape started
// after at.
func (p *prometheus) waitScrapedAfter(ctx context.Context, t *testing.T, at time.Time) {
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

// ruleQueries returns the expressions of every loaded rule, after checking
// that every rules file was loaded, has been evaluated without error, and
// that every alert has a severity, a summary and a description.
func (p *prometheus) ruleQueries(ctx context.Context, t *testing.T) []query {
	t.Helper()
	files, err := filepath.Glob(rulesGlob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no rules files match %s (%v)", rulesGlob, err)
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
	var qs []query
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
			qs = append(qs, query{where: where, expr: r.Query})
		}
	}
	for _, f := range files {
		if !loaded[filepath.Base(f)] {
			t.Errorf("prometheus loaded no rule group from %s", f)
		}
	}
	return qs
}

// metricNames returns the names of every metric Prometheus has.
func (p *prometheus) metricNames(ctx context.Context, t *testing.T) map[string]bool {
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

// getOK fails unless GET url answers 200.
func getOK(ctx context.Context, c *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s = %d", u, resp.StatusCode)
	}
	return nil
}

// poll calls f every 100 ms until it succeeds, returns errExited or ctx
// ends; it returns f's last error.
func poll(ctx context.Context, f func() error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil || errors.Is(err, errExited) {
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
func waitFor(ctx context.Context, t *testing.T, what string, f func() error) {
	t.Helper()
	if err := poll(ctx, f); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
