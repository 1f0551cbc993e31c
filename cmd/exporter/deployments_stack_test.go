package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads Compose files of deployments/ with the Compose
// specification's reference loader, as `docker compose config` does:
// schema, interpolation (with the files' defaults only, not this shell's
// settings) and consistency.
func loadCompose(t *testing.T, files ...string) *types.Project {
	t.Helper()
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(deploymentsDir, f))
	}
	opts, err := cli.NewProjectOptions(paths, cli.WithWorkingDirectory(deploymentsDir), cli.WithEnv(nil), cli.WithConsistency(true))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("load %v: %v", files, err)
	}
	return project
}

// versionTag is a tag that names one release: a whole version
// (7.4.7-bookworm, v3.5.0, 12.1.1) or MinIO's dated RELEASE.…, never
// "latest" or a major version that moves (7-bookworm).
var versionTag = regexp.MustCompile(`^(v?[0-9]+\.[0-9]+\.[0-9]+|RELEASE\.[0-9]{4}-[0-9]{2}-[0-9]{2}T)`)

// TestDeploymentsComposeStack checks that compose.yaml starts the whole
// stack from nothing: every third-party image pinned to a released
// version, the data of Redis, MinIO, Prometheus and Grafana on named
// volumes, and Prometheus and Grafana provisioned from monitoring/.
// (Docker is not needed: the file is checked as Compose loads it.)
func TestDeploymentsComposeStack(t *testing.T) {
	t.Parallel()
	for _, files := range [][]string{{"compose.yaml"}, {"compose.yaml", "compose.sentinel.yaml"}} {
		p := loadCompose(t, files...)
		for _, name := range p.ServiceNames() {
			s := p.Services[name]
			where := fmt.Sprintf("%v: service %s", files, name)
			repo, tag := imageRepo(s.Image), imageTag(s.Image)
			switch {
			case tag == "":
				t.Errorf("%s: image %q has no tag", where, s.Image)
			case isExporterImage(s.Image):
				if s.Build == nil {
					t.Errorf("%s: runs the exporter image %q without building it", where, s.Image)
				}
			case !versionTag.MatchString(tag):
				t.Errorf("%s: image %q is not pinned to a release (tag %q)", where, s.Image, tag)
			case !slices.Contains(thirdPartyImages, repo):
				t.Errorf("%s: image %q is neither the exporter's nor one of %v", where, s.Image, thirdPartyImages)
			}
		}
	}

	p := loadCompose(t, "compose.yaml")
	// Where each stateful service keeps its data.
	dataDirs := map[string]string{
		"redis":      "/data",
		"minio":      argAfter(p.Services["minio"].Command, "server"),
		"prometheus": flagValue(p.Services["prometheus"].Command, "--storage.tsdb.path"),
		"grafana":    "/var/lib/grafana",
	}
	for svc, dir := range dataDirs {
		if dir == "" {
			t.Errorf("service %s: cannot tell its data directory from its command %q", svc, p.Services[svc].Command)
			continue
		}
		v, ok := mountAt(p.Services[svc], dir)
		switch {
		case !ok:
			t.Errorf("service %s: nothing mounted at its data directory %s", svc, dir)
		case v.Type != types.VolumeTypeVolume:
			t.Errorf("service %s: %s is a %s mount, want a named volume", svc, dir, v.Type)
		default:
			if _, declared := p.Volumes[v.Source]; !declared {
				t.Errorf("service %s: volume %q is not declared under volumes", svc, v.Source)
			}
		}
	}

	// Prometheus reads the repository's configuration and rules where the
	// configuration names them.
	prom := p.Services["prometheus"]
	configFile := flagValue(prom.Command, "--config.file")
	wantBind(t, prom, configFile, "monitoring/prometheus/prometheus.yml")
	wantBind(t, prom, filepath.Join(filepath.Dir(configFile), "rules"), "monitoring/prometheus/rules")
	cfg, err := os.ReadFile(filepath.Join(repoRoot, "monitoring/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "- rules/*.yml") {
		t.Errorf("monitoring/prometheus/prometheus.yml does not load rules/*.yml, the directory Compose mounts")
	}

	// Grafana reads the provisioning, which finds the dashboards where
	// Compose mounts them and Prometheus at its service's address.
	graf := p.Services["grafana"]
	wantBind(t, graf, "/etc/grafana/provisioning", "monitoring/grafana/provisioning")
	dash, err := os.ReadFile(filepath.Join(repoRoot, "monitoring/grafana/provisioning/dashboards/exporter.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*path:\s*(\S+)`).FindSubmatch(dash)
	if m == nil {
		t.Fatal("monitoring/grafana/provisioning/dashboards/exporter.yaml names no path")
	}
	wantBind(t, graf, string(m[1]), "monitoring/grafana/dashboards")
	ds, err := os.ReadFile(filepath.Join(repoRoot, "monitoring/grafana/provisioning/datasources/prometheus.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ds), "url: http://prometheus:9090") || !slices.ContainsFunc(prom.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == 9090 }) {
		t.Errorf("the Grafana data source is not the prometheus service on 9090")
	}
}

// imageTag is the tag of image, or "".
func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[i+1:]
	}
	return ""
}

// argAfter is the argument after arg in args, or "".
func argAfter(args []string, arg string) string {
	if i := slices.Index(args, arg); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// flagValue is the value of a --flag=value in args, or "".
func flagValue(args []string, flag string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return argAfter(args, flag)
}

// mountAt is the volume of s mounted at target.
func mountAt(s types.ServiceConfig, target string) (types.ServiceVolumeConfig, bool) {
	for _, v := range s.Volumes {
		if filepath.Clean(v.Target) == filepath.Clean(target) {
			return v, true
		}
	}
	return types.ServiceVolumeConfig{}, false
}

// wantBind checks that s bind-mounts the repository's path src at target.
func wantBind(t *testing.T, s types.ServiceConfig, target, src string) {
	t.Helper()
	v, ok := mountAt(s, target)
	if !ok || v.Type != types.VolumeTypeBind {
		t.Errorf("service %s: %s is not bind-mounted (mounts %v)", s.Name, target, s.Volumes)
		return
	}
	want, err := filepath.Abs(filepath.Join(repoRoot, src))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Clean(v.Source) != want {
		t.Errorf("service %s: %s mounts %s, want %s", s.Name, target, v.Source, want)
	}
}
