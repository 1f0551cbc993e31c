package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/geoexport/exporter/internal/config"
)

func TestRunCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		inOutput string
	}{
		{"version", []string{"version"}, nil, 0, "exporter "},
		{"help", []string{"help"}, nil, 0, "Commands:"},
		{"help flag lists the commands", []string{"-h"}, nil, 0, "Commands:"},
		{"export help", []string{"export", "-h"}, nil, 0, "EXPORTER_TOKEN"},
		{"export needs a token, a layer, an area", []string{"export"}, nil, 2, "token: required"},
		{"export names a bad variable", []string{"export"}, map[string]string{"EXPORTER_MAX_ZOOM": "fine"}, 2, "EXPORTER_MAX_ZOOM"},
		{"export takes no arguments", []string{"export", "-token", "t", "-layer", "l", "-bbox", "1,2,3,4", "-max-zoom", "3", "x"}, nil, 2, "unexpected arguments"},
		{"role help", []string{"worker", "-h"}, nil, 0, "EXPORTER_WORKER_CONCURRENCY"},
		{"unknown command", []string{"render"}, nil, 2, `unknown command "render"`},
		{"unknown flag", []string{"trigger", "-nope"}, nil, 2, "flag provided but not defined"},
		{"extra arguments", []string{"all", "x"}, nil, 2, "unexpected arguments"},
		{"invalid config lists every problem", []string{"all"}, map[string]string{"EXPORTER_LOG_LEVEL": "loud", "EXPORTER_WORKER_FETCHERS": "0"}, 2, "worker-fetchers"},
		{"roles need redis", []string{"worker"}, nil, 2, "role worker needs redis-url"},
		{"bad redis url", []string{"trigger", "-redis-url", "redis://[::1"}, nil, 2, "redis-url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			getenv := func(k string) string { return tc.env[k] }
			err := run(t.Context(), tc.args, getenv, &out, &errOut)
			code := exitCode(err, &errOut)
			if code != tc.code {
				t.Errorf("run(%v) exit %d (%v), want %d", tc.args, code, err, tc.code)
			}
			if all := out.String() + errOut.String(); !strings.Contains(all, tc.inOutput) {
				t.Errorf("run(%v) output %q lacks %q", tc.args, all, tc.inOutput)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if exitCode(nil, &b) != 0 || exitCode(flag.ErrHelp, &b) != 0 || exitCode(errors.New("boom"), &b) != 1 || exitCode(&usageError{errors.New("bad")}, &b) != 2 {
		t.Error("exit codes: want 0 for success and help, 1 for failure, 2 for usage")
	}
}

func TestRunAllWithoutRedisServer(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	env := map[string]string{"EXPORTER_DATA_DIR": t.TempDir(), "EXPORTER_REDIS_SERVER": "no-such-redis-server", "EXPORTER_LOG_LEVEL": "error"}
	err := run(t.Context(), []string{"all"}, func(k string) string { return env[k] }, &out, &errOut)
	if code := exitCode(err, &errOut); code != 1 {
		t.Errorf("run(all) without redis-server exit %d (%v), want 1", code, err)
	}
	for _, want := range []string{"no-such-redis-server not found", "apt-get install redis-server", "brew install redis", "EXPORTER_REDIS_SERVER", "EXPORTER_REDIS_URL"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("run(all) without redis-server said %q, want it to contain %q", errOut.String(), want)
		}
	}
}

// TestREADMEListsExportFlags keeps the README's table of the export
// command true.
func TestREADMEListsExportFlags(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range exportFlagNames() {
		if row := "| `-" + name + "`, `" + config.EnvName(name) + "` |"; !strings.Contains(string(readme), row) {
			t.Errorf("README.md does not list %s", row)
		}
	}
}

func TestOutputPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const uri = "http://localhost:8080/downloads/0c7e6d5a-1b0f-4c8e-9a51-3f6f2d9e8b71/Orthophoto_z14.gpkg"
	tests := []struct{ out, want string }{
		{"", "Orthophoto_z14.gpkg"},
		{dir, filepath.Join(dir, "Orthophoto_z14.gpkg")},
		{filepath.Join(dir, "new") + string(filepath.Separator), filepath.Join(dir, "new", "Orthophoto_z14.gpkg")},
		{filepath.Join(dir, "mine.gpkg"), filepath.Join(dir, "mine.gpkg")},
	}
	for _, tc := range tests {
		if got, err := outputPath(tc.out, uri); got != tc.want || err != nil {
			t.Errorf("outputPath(%q) = %q, %v, want %q", tc.out, got, err, tc.want)
		}
	}
	if got, err := outputPath("", "http://localhost:8080/"); err == nil {
		t.Errorf("outputPath of a fileUri without a file = %q, want an error", got)
	}
}

// TestBinaryHelpListsCommands runs the built binary's -h, as a person
// does, and checks that it lists every command rather than one role's
// flags, and exits 0.
func TestBinaryHelpListsCommands(t *testing.T) {
	skipShort(t)
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		cmd := exec.Command(binary(t), args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("exporter %v: %v\n%s", args, err, out)
			continue
		}
		for _, c := range []string{"all", "trigger", "worker", "scheduler", "token", "export", "version"} {
			if !regexp.MustCompile(`(?m)^  ` + c + ` +\S`).Match(out) {
				t.Errorf("exporter %v does not list the command %q:\n%s", args, c, out)
			}
		}
		if bytes.Contains(out, []byte("-redis-url")) || bytes.Contains(out, []byte("EXPORTER_WORKER_CONCURRENCY")) {
			t.Errorf("exporter %v prints a role's flags:\n%s", args, out)
		}
	}
}
