package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Environment variables that point at the server binaries, overriding PATH.
const (
	EnvRedisServer = "EXPORTER_TEST_REDIS_SERVER"
	EnvMinIO       = "EXPORTER_TEST_MINIO"
	EnvPrometheus  = "EXPORTER_TEST_PROMETHEUS"
	EnvPromtool    = "EXPORTER_TEST_PROMTOOL"
)

// errBinaryNotFound is wrapped by findBinary's error.
var errBinaryNotFound = errors.New("testenv: server binary not found")

// findBinary locates a server binary: the path in the environment variable
// env if it is set, then name on PATH, then <module root>/bin/name. The
// error names every place it looked and how to install the binary.
func findBinary(name, env string) (string, error) {
	if p := os.Getenv(env); p != "" {
		abs, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("%w: %s=%q: %w; unset it or point it at an executable", errBinaryNotFound, env, p, err)
		}
		return abs, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var inModule string
	if root, err := moduleRoot(); err == nil {
		inModule = filepath.Join(root, "bin", name)
		if p, err := exec.LookPath(inModule); err == nil {
			return p, nil
		}
	}
	where := fmt.Sprintf("$%s is unset, %q is not on PATH", env, name)
	if inModule != "" {
		where += fmt.Sprintf(" and %s does not exist", inModule)
	}
	return "", fmt.Errorf("%w: %s; run `make tools` to install it, or set %s (use go test -short to skip integration tests)",
		errBinaryNotFound, where, env)
}

// requireBinary skips t under -short, as a test that needs the real
// server name, and returns the binary [findBinary] locates for it,
// failing t when there is none.
func requireBinary(t testing.TB, name, env string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("testenv: test needs a real " + name + "; skipped under -short")
	}
	bin, err := findBinary(name, env)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// moduleRoot walks up from the working directory (a test's package
// directory) to the directory that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !fi.IsDir() {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod above the working directory")
		}
		dir = parent
	}
}
