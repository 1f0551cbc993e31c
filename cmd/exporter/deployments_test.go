package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/geoexport/exporter/internal/config"
	"github.com/geoexport/exporter/internal/job"
)

// The files under deployments/ are checked here against the code they
// deploy: the variables they set exist, the ports they publish and probe
// are the ones the process listens on, the commands are roles, and the
// shutdown budgets fit the grace periods.

const (
	repoRoot       = "../.."
	deploymentsDir = repoRoot + "/deployments"
	// apiPort is EXPORTER_HTTP_ADDR in every deployment: the API of the
	// trigger, /healthz, /readyz and /metrics of the other roles.
	apiPort = 8080
	// metricsPort is EXPORTER_HTTP_METRICS_ADDR in every deployment:
	// /metrics without a token, on every role, as
	// monitoring/prometheus/prometheus.yml scrapes it.
	metricsPort = 9464
)

// exporterRoles are the subcommands a deployed exporter container may run.
var exporterRoles = []string{"trigger", "worker", "scheduler", "all"}

// thirdPartyImages are the repositories, besides the exporter's own,
// that deployments may run.
var thirdPartyImages = []string{
	"redis",
	"minio/minio", "quay.io/minio/minio",
	"prom/prometheus", "quay.io/prometheus/prometheus",
	"grafana/grafana", "grafana/grafana-oss",
}

// deployedContainer is one exporter or third-party container of a Compose
// service or a Kubernetes pod, reduced to what the checks need.
type deployedContainer struct {
	where string
	image string
	// args are the arguments after the entrypoint: the role and its flags.
	args []string
	// env is the environment the container gets (ConfigMaps, Secrets and
	// interpolation resolved; values of unknown Secrets are empty).
	env map[string]string
	// ports are the container-side ports published, exposed or declared.
	ports []int
	// probes are HTTP health checks against the container.
	probes []deployProbe
	// grace is how long the container has between SIGTERM and SIGKILL.
	grace time.Duration
	// readOnlyRoot is a read-only root filesystem; mounts are the
	// writable paths mounted over it.
	readOnlyRoot bool
	mounts       []string
}

type deployProbe struct {
	kind string // liveness, readiness, startup, healthcheck
	path string
	port int
}

func TestDeploymentsYAMLParse(t *testing.T) {
	t.Parallel()
	n := 0
	err := filepath.WalkDir(deploymentsDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isYAML(path) {
			return err
		}
		n++
		if docs := readYAML(t, path); len(docs) == 0 {
			t.Errorf("%s: no YAML documents", rel(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Errorf("found %d YAML files under deployments/, want compose.yaml and the k8s manifests", n)
	}
}

func TestDeploymentsDockerfile(t *testing.T) {
	t.Parallel()
	path := deploymentsDir + "/Dockerfile"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The last stage's instructions, continuation lines joined.
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for cont := false; sc.Scan(); {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if cont {
			lines[len(lines)-1] += " " + strings.TrimSuffix(l, "\\")
		} else {
			lines = append(lines, strings.TrimSuffix(l, "\\"))
		}
		cont = strings.HasSuffix(l, "\\")
		if word, _, _ := strings.Cut(l, " "); strings.EqualFold(word, "FROM") && !cont {
			lines = lines[len(lines)-1:]
		}
	}
	final := map[string]string{}
	var env, runs []string
	for _, l := range lines {
		word, rest, _ := strings.Cut(l, " ")
		word = strings.ToUpper(word)
		final[word] = strings.TrimSpace(rest)
		if word == "RUN" {
			runs = append(runs, rest)
		}
		if word == "ENV" {
			for _, kv := range strings.Fields(rest) {
				k, _, _ := strings.Cut(kv, "=")
				env = append(env, k)
			}
		}
	}
	checkEnvNames(t, rel(path), env)
	if u, _, _ := strings.Cut(final["USER"], ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("%s: USER %q, want a non-root user", rel(path), final["USER"])
	}
	for _, p := range strings.Fields(final["EXPOSE"]) {
		if n := portNumber(t, rel(path)+": EXPOSE", strings.TrimSuffix(p, "/tcp")); n != apiPort && n != metricsPort {
			t.Errorf("%s: EXPOSE %d, want %d or %d", rel(path), n, apiPort, metricsPort)
		}
	}
	var entry, cmd []string
	for _, x := range []struct {
		word string
		into *[]string
	}{{"ENTRYPOINT", &entry}, {"CMD", &cmd}} {
		if err := yaml.Unmarshal([]byte(final[x.word]), x.into); err != nil || len(*x.into) == 0 {
			t.Errorf("%s: %s %s: want the exec form", rel(path), x.word, final[x.word])
		}
	}
	if len(entry) != 1 || filepath.Base(entry[0]) != "exporter" {
		t.Errorf("%s: ENTRYPOINT %q, want the exporter binary alone", rel(path), entry)
	}
	if len(cmd) != 1 || !slices.Contains(exporterRoles, cmd[0]) {
		t.Errorf("%s: CMD %q, want a role", rel(path), cmd)
	}
	// Role all without a Redis URL runs redis-server as a child process.
	if !slices.ContainsFunc(runs, func(r string) bool {
		return strings.Contains(r, "apt-get install") && slices.Contains(strings.Fields(r), "redis-server")
	}) {
		t.Errorf("%s: the runtime stage does not install redis-server, which role all runs as its embedded Redis", rel(path))
	}
}

func TestDeploymentsCompose(t *testing.T) {
	t.Parallel()
	docs := readYAML(t, deploymentsDir+"/compose.yaml")
	if len(docs) != 1 {
		t.Fatalf("compose.yaml: %d documents, want 1", len(docs))
	}
	services := asMap(docs[0]["services"])
	if len(services) == 0 {
		t.Fatal("compose.yaml: no services")
	}
	var cs []deployedContainer
	byService := map[string]deployedContainer{}
	for _, svc := range slices.Sorted(maps.Keys(services)) {
		c := composeContainer(t, svc, asMap(services[svc]))
		cs = append(cs, c)
		byService[svc] = c
	}
	checkContainers(t, cs)

	for _, role := range []string{"trigger", "worker", "scheduler"} {
		c, ok := byService[role]
		if !ok || !isExporterImage(c.image) || len(c.args) == 0 || c.args[0] != role {
			t.Errorf("compose.yaml: want a service %q running exporter %s", role, role)
		}
	}
	if r := asInt(asMap(asMap(services["worker"])["deploy"])["replicas"]); r < 2 {
		t.Errorf("compose.yaml: worker deploy.replicas = %d, want several", r)
	}
	// Bind mounts name files of the repository (the monitoring
	// configuration): they must exist.
	for _, svc := range slices.Sorted(maps.Keys(services)) {
		for _, v := range asSlice(asMap(services[svc])["volumes"]) {
			src := ""
			switch v := v.(type) {
			case string:
				src, _, _ = strings.Cut(v, ":")
			case map[string]any:
				if asString(v["type"]) == "bind" {
					src = asString(v["source"])
				}
			}
			if !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				continue // a named volume
			}
			if _, err := os.Stat(filepath.Join(deploymentsDir, src)); err != nil {
				t.Errorf("compose.yaml: service %s mounts %s: %v", svc, src, err)
			}
		}
	}
	checkPrometheusScrapes(t, byService)
}

// checkPrometheusScrapes checks that the Prometheus configuration the
// Compose file mounts scrapes each exporter service on a port where that
// service serves /metrics without a token.
func checkPrometheusScrapes(t *testing.T, services map[string]deployedContainer) {
	t.Helper()
	path := repoRoot + "/monitoring/prometheus/prometheus.yml"
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		t.Logf("%s is missing: scrape ports not checked", rel(path))
		return
	}
	docs := readYAML(t, path)
	if len(docs) == 0 {
		t.Fatalf("%s: empty", rel(path))
	}
	scraped := map[string]bool{}
	for _, sc := range asSlice(docs[0]["scrape_configs"]) {
		sc := asMap(sc)
		withToken := sc["authorization"] != nil || sc["bearer_token_file"] != nil
		var targets []string
		for _, sd := range asSlice(sc["dns_sd_configs"]) {
			sd := asMap(sd)
			for _, n := range asSlice(sd["names"]) {
				targets = append(targets, net.JoinHostPort(asString(n), asString(sd["port"])))
			}
		}
		for _, st := range asSlice(sc["static_configs"]) {
			for _, tg := range asSlice(asMap(st)["targets"]) {
				targets = append(targets, asString(tg))
			}
		}
		for _, target := range targets {
			host, port, err := net.SplitHostPort(target)
			c, ok := services[host]
			if err != nil || !ok || !isExporterImage(c.image) {
				continue
			}
			scraped[host] = true
			cfg := loadContainerConfig(t, c)
			p, _ := strconv.Atoi(port)
			public := []int{addrPort(cfg.HTTP.MetricsAddr)}
			if c.args[0] != "trigger" && c.args[0] != "all" {
				public = append(public, addrPort(cfg.HTTP.Addr)) // no API: /metrics without a token
			}
			if !withToken && !slices.Contains(public, p) {
				t.Errorf("%s: job %s scrapes %s without a token, but %s serves /metrics without one on %v only",
					rel(path), asString(sc["job_name"]), target, host, public)
			}
		}
	}
	for _, role := range []string{"trigger", "worker", "scheduler"} {
		if !scraped[role] {
			t.Errorf("%s: no job scrapes the Compose service %s", rel(path), role)
		}
	}
}

func TestDeploymentsKubernetes(t *testing.T) {
	t.Parallel()
	dir := deploymentsDir + "/k8s"
	files, err := filepath.Glob(dir + "/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", rel(dir), err)
	}
	var docs []manifest
	for _, f := range files {
		for _, d := range readYAML(t, f) {
			docs = append(docs, manifest{file: rel(f), doc: d})
		}
	}
	// Every resource the kustomization lists exists.
	for _, m := range docs {
		if asString(m.doc["kind"]) != "Kustomization" {
			continue
		}
		for _, r := range asSlice(m.doc["resources"]) {
			if _, err := os.Stat(filepath.Join(dir, asString(r))); err != nil {
				t.Errorf("%s: resource %s: %v", m.file, asString(r), err)
			}
		}
	}
	checkKubernetes(t, docs)
}

// TestDeploymentsKustomize renders deployments/k8s with kustomize's own
// library, as `kubectl kustomize` does, and checks the result.
func TestDeploymentsKustomize(t *testing.T) {
	t.Parallel()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot, "deployments", "k8s"))
	if err != nil {
		t.Fatalf("kustomize deployments/k8s: %v", err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatalf("kustomize deployments/k8s: %v", err)
	}
	docs := decodeYAML(t, "kustomize output", out)
	ms := make([]manifest, len(docs))
	for i, d := range docs {
		ms[i] = manifest{file: "kustomize output", doc: d}
		if ns := asString(asMap(d["metadata"])["namespace"]); ns == "" && asString(d["kind"]) != "Namespace" {
			t.Errorf("kustomize output: %s %s has no namespace", asString(d["kind"]), metaName(d))
		}
	}
	checkKubernetes(t, ms)
}

// TestDeploymentsComposeConfig loads deployments/compose.yaml with the
// Compose specification's reference loader, as `docker compose config`
// does: schema, interpolation (with the file's defaults only, not this
// shell's settings) and consistency.
func TestDeploymentsComposeConfig(t *testing.T) {
	t.Parallel()
	project := loadCompose(t, "compose.yaml")
	if _, ok := project.Services["worker"]; !ok {
		t.Errorf("compose project has services %v, want a worker among them", project.ServiceNames())
	}
}

// manifest is one Kubernetes document and the file it came from.
type manifest struct {
	file string
	doc  map[string]any
}

// checkKubernetes checks a set of Kubernetes manifests: the containers of
// every Deployment, and that Services, budgets, the autoscaler and the
// ServiceMonitor point at what exists.
func checkKubernetes(t *testing.T, docs []manifest) {
	t.Helper()
	configMaps := map[string]map[string]string{}
	secrets := map[string]map[string]string{}
	for _, m := range docs {
		switch asString(m.doc["kind"]) {
		case "ConfigMap":
			data := map[string]string{}
			for k, v := range asMap(m.doc["data"]) {
				data[k] = asString(v)
			}
			configMaps[metaName(m.doc)] = data
		case "Secret":
			data := map[string]string{}
			for k, v := range asMap(m.doc["data"]) {
				b, err := base64.StdEncoding.DecodeString(asString(v))
				if err != nil {
					t.Errorf("%s: Secret %s: key %s: %v", m.file, metaName(m.doc), k, err)
				}
				data[k] = string(b)
			}
			for k, v := range asMap(m.doc["stringData"]) {
				data[k] = asString(v)
			}
			secrets[metaName(m.doc)] = data
		}
	}
	for n, data := range configMaps {
		checkEnvNames(t, "ConfigMap "+n, slices.Collect(maps.Keys(data)))
	}
	for n, data := range secrets {
		checkEnvNames(t, "Secret "+n, slices.Collect(maps.Keys(data)))
	}

	type deployment struct {
		name        string
		labels      map[string]any
		annotations map[string]any
		containers  []deployedContainer
		ports       map[string]int // by name and by number
	}
	var deployments []deployment
	var cs []deployedContainer
	roleOf := map[string]string{}                    // Deployment name → role
	containersOf := map[string][]deployedContainer{} // Deployment name → containers
	for _, m := range docs {
		kind := asString(m.doc["kind"])
		if kind != "Deployment" && kind != "StatefulSet" && kind != "DaemonSet" {
			continue
		}
		tmpl := asMap(asMap(m.doc["spec"])["template"])
		meta, pod := asMap(tmpl["metadata"]), maps.Clone(asMap(tmpl["spec"]))
		// A StatefulSet's volume claim templates are volumes of its pods.
		for _, vct := range asSlice(asMap(m.doc["spec"])["volumeClaimTemplates"]) {
			pod["volumes"] = append(slices.Clone(asSlice(pod["volumes"])), map[string]any{"name": metaName(asMap(vct))})
		}
		d := deployment{name: metaName(m.doc), labels: asMap(meta["labels"]), annotations: asMap(meta["annotations"]), ports: map[string]int{}}
		for _, c := range asSlice(pod["containers"]) {
			c := k8sContainer(t, fmt.Sprintf("%s: %s %s", m.file, kind, d.name), pod, asMap(c), configMaps, secrets)
			d.containers = append(d.containers, c)
			cs = append(cs, c)
			if isExporterImage(c.image) && len(c.args) > 0 {
				roleOf[d.name] = c.args[0]
			}
		}
		for _, c := range asSlice(pod["containers"]) {
			for _, p := range asSlice(asMap(c)["ports"]) {
				p := asMap(p)
				n := asInt(p["containerPort"])
				d.ports[strconv.Itoa(n)] = n
				if pn := asString(p["name"]); pn != "" {
					d.ports[pn] = n
				}
			}
		}
		if sel := asMap(asMap(asMap(m.doc["spec"])["selector"])["matchLabels"]); !labelsMatch(sel, d.labels) {
			t.Errorf("%s: %s %s: selector %v does not match its pod labels %v", m.file, kind, d.name, sel, d.labels)
		}
		// Scrape annotations name the metrics port.
		if asString(d.annotations["prometheus.io/scrape"]) == "true" {
			if p := asString(d.annotations["prometheus.io/port"]); d.ports[p] != metricsPort {
				t.Errorf("%s: %s: prometheus.io/port = %q, want %d", m.file, d.name, p, metricsPort)
			}
		}
		deployments = append(deployments, d)
		containersOf[d.name] = d.containers
	}
	checkContainers(t, cs)
	for _, role := range []string{"trigger", "worker", "scheduler"} {
		if !slices.Contains(slices.Collect(maps.Values(roleOf)), role) {
			t.Errorf("no Deployment runs exporter %s", role)
		}
	}

	selected := func(sel map[string]any) []deployment {
		var out []deployment
		for _, d := range deployments {
			if len(sel) > 0 && labelsMatch(sel, d.labels) {
				out = append(out, d)
			}
		}
		return out
	}
	servicePorts := map[string][]string{} // Service name → port names
	serviceLabels := map[string]map[string]any{}
	for _, m := range docs {
		spec := asMap(m.doc["spec"])
		switch asString(m.doc["kind"]) {
		case "Service":
			serviceLabels[metaName(m.doc)] = asMap(asMap(m.doc["metadata"])["labels"])
			ds := selected(asMap(spec["selector"]))
			if len(ds) == 0 {
				t.Errorf("%s: Service %s selects no Deployment", m.file, metaName(m.doc))
			}
			for _, p := range asSlice(spec["ports"]) {
				p := asMap(p)
				servicePorts[metaName(m.doc)] = append(servicePorts[metaName(m.doc)], asString(p["name"]))
				target := asString(p["targetPort"])
				if target == "" {
					target = asString(p["port"])
				}
				for _, d := range ds {
					if roleOf[d.name] == "" {
						if _, ok := d.ports[target]; !ok {
							t.Errorf("%s: Service %s targets port %s, which %s does not declare", m.file, metaName(m.doc), target, d.name)
						}
						continue
					}
					if n, ok := d.ports[target]; !ok || (n != apiPort && n != metricsPort) {
						t.Errorf("%s: Service %s targets port %s, which Deployment %s does not declare as %d or %d",
							m.file, metaName(m.doc), target, d.name, apiPort, metricsPort)
					}
				}
			}
		case "PodDisruptionBudget":
			if len(selected(asMap(asMap(spec["selector"])["matchLabels"]))) == 0 {
				t.Errorf("%s: PodDisruptionBudget %s selects no Deployment", m.file, metaName(m.doc))
			}
		case "ScaledObject":
			checkScaledObject(t, m, roleOf, containersOf)
		}
	}
	for _, m := range docs {
		if asString(m.doc["kind"]) != "ServiceMonitor" {
			continue
		}
		spec := asMap(m.doc["spec"])
		sel := asMap(asMap(spec["selector"])["matchLabels"])
		var names []string
		for n, l := range serviceLabels {
			if labelsMatch(sel, l) {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			t.Errorf("%s: ServiceMonitor %s selects no Service", m.file, metaName(m.doc))
		}
		for _, e := range asSlice(spec["endpoints"]) {
			port := asString(asMap(e)["port"])
			for _, n := range names {
				if !slices.Contains(servicePorts[n], port) {
					t.Errorf("%s: ServiceMonitor %s scrapes port %q, which Service %s lacks", m.file, metaName(m.doc), port, n)
				}
			}
		}
	}
}

// checkScaledObject checks the KEDA ScaledObject of the workers: it scales
// a worker Deployment on the export queues' pending and active tasks,
// within sane bounds, and scales down slowly.
func checkScaledObject(t *testing.T, m manifest, roleOf map[string]string, containers map[string][]deployedContainer) {
	t.Helper()
	spec := asMap(m.doc["spec"])
	where := fmt.Sprintf("%s: ScaledObject %s", m.file, metaName(m.doc))
	target := asString(asMap(spec["scaleTargetRef"])["name"])
	if roleOf[target] != "worker" {
		t.Errorf("%s: scaleTargetRef %q is not a Deployment of exporter worker", where, target)
	}
	minR, maxR := asInt(spec["minReplicaCount"]), asInt(spec["maxReplicaCount"])
	if minR < 1 || maxR <= minR {
		t.Errorf("%s: replicas %d..%d, want at least one worker and room above it", where, minR, maxR)
	}
	down := asMap(asMap(asMap(asMap(spec["advanced"])["horizontalPodAutoscalerConfig"])["behavior"])["scaleDown"])
	if w := asInt(down["stabilizationWindowSeconds"]); w < 300 {
		t.Errorf("%s: scaleDown.stabilizationWindowSeconds = %d, want a slow scale-down (≥ 300)", where, w)
	}
	triggers := asSlice(spec["triggers"])
	if len(triggers) == 0 {
		t.Fatalf("%s: no triggers", where)
	}
	for _, tr := range triggers {
		tr := asMap(tr)
		if asString(tr["type"]) != "prometheus" {
			continue
		}
		md := asMap(tr["metadata"])
		q := asString(md["query"])
		for _, want := range append(slices.Clone(job.Queues), "pending", "active", "asynq_tasks_enqueued_total") {
			if !strings.Contains(q, want) {
				t.Errorf("%s: query %q does not mention %s", where, q, want)
			}
		}
		// The threshold is tasks per worker: one worker's concurrency.
		for _, c := range containers[target] {
			if !isExporterImage(c.image) {
				continue
			}
			cfg := loadContainerConfig(t, c)
			if th, err := strconv.ParseFloat(asString(md["threshold"]), 64); err != nil || th != float64(cfg.Worker.Concurrency) {
				t.Errorf("%s: threshold %q, want the worker's EXPORTER_WORKER_CONCURRENCY %d", where, asString(md["threshold"]), cfg.Worker.Concurrency)
			}
			if _, set := c.env[config.EnvName("worker-concurrency")]; !set {
				t.Errorf("%s: worker concurrency is not set explicitly; its default follows the node's CPUs", c.where)
			}
		}
	}
}

// checkContainers checks every container: its image is known, its
// EXPORTER_* variables exist, and an exporter container runs a role whose
// configuration loads, listens where its ports and probes say, and stops
// within its grace period.
func checkContainers(t *testing.T, cs []deployedContainer) {
	t.Helper()
	for _, c := range cs {
		checkEnvNames(t, c.where, slices.Collect(maps.Keys(c.env)))
		if !isExporterImage(c.image) {
			if !slices.Contains(thirdPartyImages, imageRepo(c.image)) {
				t.Errorf("%s: image %q is neither the exporter's nor one of %v", c.where, c.image, thirdPartyImages)
			}
			continue
		}
		if len(c.args) == 0 || !slices.Contains(exporterRoles, c.args[0]) {
			t.Errorf("%s: command %q, want one of the roles %v", c.where, c.args, exporterRoles)
			continue
		}
		role := c.args[0]
		cfg := loadContainerConfig(t, c)
		httpPort, metrics := addrPort(cfg.HTTP.Addr), addrPort(cfg.HTTP.MetricsAddr)
		if httpPort != apiPort {
			t.Errorf("%s: EXPORTER_HTTP_ADDR %q, want port %d", c.where, cfg.HTTP.Addr, apiPort)
		}
		if cfg.HTTP.MetricsAddr != "" && metrics != metricsPort {
			t.Errorf("%s: EXPORTER_HTTP_METRICS_ADDR %q, want port %d", c.where, cfg.HTTP.MetricsAddr, metricsPort)
		}
		for _, p := range c.ports {
			if p != httpPort && (cfg.HTTP.MetricsAddr == "" || p != metrics) {
				t.Errorf("%s: port %d is neither EXPORTER_HTTP_ADDR %q nor EXPORTER_HTTP_METRICS_ADDR %q", c.where, p, cfg.HTTP.Addr, cfg.HTTP.MetricsAddr)
			}
		}
		for _, pr := range c.probes {
			want := map[string][]string{"liveness": {"/healthz"}, "readiness": {"/readyz"}}[pr.kind]
			if want == nil {
				want = []string{"/healthz", "/readyz"}
			}
			if !slices.Contains(want, pr.path) {
				t.Errorf("%s: %s probe path %q, want one of %v", c.where, pr.kind, pr.path, want)
			}
			// The metrics address serves /metrics alone.
			if pr.port != httpPort {
				t.Errorf("%s: %s probe on port %d, want EXPORTER_HTTP_ADDR's %d", c.where, pr.kind, pr.port, httpPort)
			}
		}
		if role == "worker" || role == "all" {
			if _, set := c.env[config.EnvName("worker-shutdown-timeout")]; !set {
				t.Errorf("%s: EXPORTER_WORKER_SHUTDOWN_TIMEOUT is not set explicitly", c.where)
			}
			if c.grace <= cfg.Worker.ShutdownTimeout {
				t.Errorf("%s: grace period %v, want more than EXPORTER_WORKER_SHUTDOWN_TIMEOUT %v", c.where, c.grace, cfg.Worker.ShutdownTimeout)
			}
			if c.readOnlyRoot && !underAny(cfg.Worker.TempDir, c.mounts) {
				t.Errorf("%s: read-only root filesystem, but EXPORTER_WORKER_TEMP_DIR %q is on no mounted volume %v", c.where, cfg.Worker.TempDir, c.mounts)
			}
		}
		if c.readOnlyRoot && !underAny(c.env["TMPDIR"], c.mounts) && !underAny("/tmp", c.mounts) {
			t.Errorf("%s: read-only root filesystem without a writable /tmp or TMPDIR", c.where)
		}
	}
}

// checkEnvNames reports each EXPORTER_* name that is no setting.
func checkEnvNames(t *testing.T, where string, names []string) {
	t.Helper()
	known := map[string]bool{}
	for _, f := range config.Flags() {
		known[config.EnvName(f)] = true
	}
	slices.Sort(names)
	for _, n := range names {
		if strings.HasPrefix(n, config.EnvPrefix) && !known[n] {
			t.Errorf("%s: %s is not a setting (see config.Flags and the README's configuration table)", where, n)
		}
	}
}

// loadContainerConfig loads the configuration the container's process
// would, from its environment and flags, and validates it.
func loadContainerConfig(t *testing.T, c deployedContainer) config.Config {
	t.Helper()
	getenv := func(k string) string { return c.env[k] }
	cfg, rest, err := config.Load("exporter "+c.args[0], c.args[1:], getenv, io.Discard)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("unexpected arguments %q", rest)
	}
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Errorf("%s: the configuration does not load: %v", c.where, err)
	}
	return cfg
}

// composeContainer reads one Compose service. Interpolation takes each
// variable's default.
func composeContainer(t *testing.T, name string, svc map[string]any) deployedContainer {
	t.Helper()
	c := deployedContainer{where: "compose.yaml: service " + name, image: interpolate(asString(svc["image"])), env: map[string]string{}, grace: 10 * time.Second}
	if c.image == "" && svc["build"] != nil {
		c.image = "exporter" // built from deployments/Dockerfile
	}
	if svc["build"] != nil && !isExporterImage(c.image) {
		t.Errorf("%s: builds the exporter image but names it %q", c.where, c.image)
	}
	switch cmd := svc["command"].(type) {
	case string:
		c.args = strings.Fields(interpolate(cmd))
	case []any:
		for _, a := range cmd {
			c.args = append(c.args, interpolate(asString(a)))
		}
	}
	switch env := svc["environment"].(type) {
	case map[string]any:
		for k, v := range env {
			c.env[k] = interpolate(asString(v))
		}
	case []any:
		for _, kv := range env {
			k, v, _ := strings.Cut(asString(kv), "=")
			c.env[k] = interpolate(v)
		}
	}
	for _, p := range asSlice(svc["ports"]) {
		var target string
		switch p := p.(type) {
		case map[string]any:
			target = asString(p["target"])
		default:
			s := interpolate(asString(p))
			s, _, _ = strings.Cut(s, "/")
			target = s[strings.LastIndex(s, ":")+1:]
		}
		c.ports = append(c.ports, portNumber(t, c.where+": port", target))
	}
	for _, p := range asSlice(svc["expose"]) {
		s, _, _ := strings.Cut(interpolate(asString(p)), "/")
		c.ports = append(c.ports, portNumber(t, c.where+": expose", s))
	}
	if s := asString(svc["stop_grace_period"]); s != "" {
		d, err := time.ParseDuration(interpolate(s))
		if err != nil {
			t.Errorf("%s: stop_grace_period: %v", c.where, err)
		}
		c.grace = d
	}
	if hc := asMap(svc["healthcheck"]); hc != nil && isExporterImage(c.image) {
		var test string
		switch v := hc["test"].(type) {
		case string:
			test = v
		case []any:
			for _, a := range v {
				test += asString(a) + " "
			}
		}
		port := regexp.MustCompile(`/dev/tcp/[^/\s]+/(\d+)|//[^/:\s]+:(\d+)`).FindStringSubmatch(test)
		path := regexp.MustCompile(`GET (/\S*)|//[^/\s]+(/\S*)`).FindStringSubmatch(test)
		if port == nil || path == nil {
			t.Errorf("%s: healthcheck %q: want an HTTP request to /healthz or /readyz", c.where, test)
		} else {
			c.probes = append(c.probes, deployProbe{kind: "healthcheck", path: port2(path), port: portNumber(t, c.where, port2(port))})
		}
	}
	c.readOnlyRoot, _ = svc["read_only"].(bool)
	for _, v := range asSlice(svc["tmpfs"]) {
		c.mounts = append(c.mounts, asString(v))
	}
	for _, v := range asSlice(svc["volumes"]) {
		if s, ok := v.(string); ok {
			if parts := strings.Split(s, ":"); len(parts) > 1 {
				c.mounts = append(c.mounts, parts[1])
			}
		}
	}
	return c
}

// port2 is the first non-empty group of a two-alternative match.
func port2(m []string) string {
	if m[1] != "" {
		return m[1]
	}
	return m[2]
}

// k8sContainer reads one container of a pod spec, resolving envFrom and
// valueFrom against the ConfigMaps and Secrets given.
func k8sContainer(t *testing.T, where string, pod, c map[string]any, configMaps, secrets map[string]map[string]string) deployedContainer {
	t.Helper()
	out := deployedContainer{where: where + " container " + asString(c["name"]), image: asString(c["image"]), env: map[string]string{}, grace: 30 * time.Second}
	cmd := append(asStrings(c["command"]), asStrings(c["args"])...)
	if len(cmd) > 0 && filepath.Base(cmd[0]) == "exporter" {
		cmd = cmd[1:]
	}
	out.args = cmd
	lookup := func(kind string, all map[string]map[string]string, ref map[string]any, key string) (string, bool) {
		data, ok := all[asString(ref["name"])]
		if !ok {
			if opt, _ := ref["optional"].(bool); !opt {
				t.Errorf("%s: %s %q is not among the manifests", out.where, kind, asString(ref["name"]))
			}
			return "", false
		}
		if key == "" {
			return "", true
		}
		v, ok := data[key]
		if !ok {
			t.Errorf("%s: %s %q has no key %q", out.where, kind, asString(ref["name"]), key)
		}
		return v, ok
	}
	for _, ef := range asSlice(c["envFrom"]) {
		ef := asMap(ef)
		if ref := asMap(ef["configMapRef"]); ref != nil {
			if _, ok := lookup("ConfigMap", configMaps, ref, ""); ok {
				maps.Copy(out.env, configMaps[asString(ref["name"])])
			}
		}
		if ref := asMap(ef["secretRef"]); ref != nil {
			if _, ok := lookup("Secret", secrets, ref, ""); ok {
				maps.Copy(out.env, secrets[asString(ref["name"])])
			}
		}
	}
	for _, e := range asSlice(c["env"]) {
		e := asMap(e)
		n := asString(e["name"])
		out.env[n] = asString(e["value"])
		vf := asMap(e["valueFrom"])
		if ref := asMap(vf["secretKeyRef"]); ref != nil {
			out.env[n], _ = lookup("Secret", secrets, ref, asString(ref["key"]))
		}
		if ref := asMap(vf["configMapKeyRef"]); ref != nil {
			out.env[n], _ = lookup("ConfigMap", configMaps, ref, asString(ref["key"]))
		}
	}
	named := map[string]int{}
	for _, p := range asSlice(c["ports"]) {
		p := asMap(p)
		n := asInt(p["containerPort"])
		out.ports = append(out.ports, n)
		if pn := asString(p["name"]); pn != "" {
			named[pn] = n
		}
	}
	for _, kind := range []string{"liveness", "readiness", "startup"} {
		pr := asMap(c[kind+"Probe"])
		if pr == nil {
			if kind != "startup" && isExporterImage(out.image) {
				t.Errorf("%s: no %s probe", out.where, kind)
			}
			continue
		}
		hg := asMap(pr["httpGet"])
		if hg == nil {
			// Redis and its sentinels are probed with redis-cli.
			if isExporterImage(out.image) || asMap(pr["exec"]) == nil {
				t.Errorf("%s: %s probe is not an httpGet", out.where, kind)
			}
			continue
		}
		port, ok := named[asString(hg["port"])]
		if !ok {
			port = portNumber(t, out.where+": "+kind+" probe port", asString(hg["port"]))
		}
		out.probes = append(out.probes, deployProbe{kind: kind, path: asString(hg["path"]), port: port})
	}
	if g, ok := asMap(pod)["terminationGracePeriodSeconds"]; ok {
		out.grace = time.Duration(asInt(g)) * time.Second
	}
	sc := asMap(c["securityContext"])
	out.readOnlyRoot, _ = sc["readOnlyRootFilesystem"].(bool)
	if isExporterImage(out.image) {
		psc := asMap(pod["securityContext"])
		nonRoot, _ := psc["runAsNonRoot"].(bool)
		if cnr, ok := sc["runAsNonRoot"].(bool); ok {
			nonRoot = cnr
		}
		if !nonRoot || !out.readOnlyRoot {
			t.Errorf("%s: want runAsNonRoot and readOnlyRootFilesystem", out.where)
		}
		if res := asMap(c["resources"]); asMap(res["requests"]) == nil || asMap(res["limits"]) == nil {
			t.Errorf("%s: want resource requests and limits", out.where)
		}
	}
	volumes := map[string]bool{}
	for _, v := range asSlice(pod["volumes"]) {
		volumes[asString(asMap(v)["name"])] = true
	}
	for _, vm := range asSlice(c["volumeMounts"]) {
		vm := asMap(vm)
		if !volumes[asString(vm["name"])] {
			t.Errorf("%s: mounts volume %q, which the pod lacks", out.where, asString(vm["name"]))
		}
		if ro, _ := vm["readOnly"].(bool); !ro {
			out.mounts = append(out.mounts, asString(vm["mountPath"]))
		}
	}
	return out
}

// interpolate replaces Compose's ${VAR}, ${VAR:-default}, ${VAR-default},
// ${VAR:?error} and ${VAR?error} with the default (or nothing), and $$
// with $, so the result does not depend on the shell running the test.
func interpolate(s string) string {
	re := regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}`)
	return re.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := re.FindStringSubmatch(m)
		if strings.HasSuffix(sub[2], "-") {
			return sub[3]
		}
		return ""
	})
}

// isExporterImage reports whether image is the exporter's: its last path
// element is "exporter".
func isExporterImage(image string) bool {
	repo := imageRepo(image)
	return repo == "exporter" || strings.HasSuffix(repo, "/exporter")
}

// imageRepo is image without tag, digest and Docker Hub's implicit parts.
func imageRepo(image string) string {
	repo, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	repo = strings.TrimPrefix(repo, "docker.io/")
	return strings.TrimPrefix(repo, "library/")
}

// addrPort is the port of a listen address such as ":8080", or 0.
func addrPort(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// underAny reports whether path lies in one of dirs.
func underAny(path string, dirs []string) bool {
	if path == "" {
		return false
	}
	path = filepath.Clean(path)
	for _, d := range dirs {
		d = filepath.Clean(d)
		if path == d || strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
}

func labelsMatch(selector, labels map[string]any) bool {
	for k, v := range selector {
		if asString(labels[k]) != asString(v) {
			return false
		}
	}
	return len(selector) > 0
}

func readYAML(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodeYAML(t, rel(path), b)
}

// decodeYAML decodes every document of a multi-document stream; empty
// documents are skipped.
func decodeYAML(t *testing.T, where string, b []byte) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for i := 0; ; i++ {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", where, i, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

func isYAML(path string) bool {
	ext := filepath.Ext(path)
	return ext == ".yaml" || ext == ".yml"
}

func rel(path string) string {
	if r, err := filepath.Rel(repoRoot, path); err == nil {
		return r
	}
	return path
}

func metaName(doc map[string]any) string { return asString(asMap(doc["metadata"])["name"]) }

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

func asSlice(v any) []any { s, _ := v.([]any); return s }

func asStrings(v any) []string {
	var out []string
	for _, e := range asSlice(v) {
		out = append(out, asString(e))
	}
	return out
}

func asString(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func asInt(v any) int {
	n, _ := strconv.Atoi(asString(v))
	return n
}

func portNumber(t *testing.T, where, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Errorf("%s: %q is not a port number", where, s)
	}
	return n
}
