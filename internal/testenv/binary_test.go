package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindBinary(t *testing.T) {
	// t.Setenv: not parallel.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const env = "EXPORTER_TEST_TESTENV_FAKE"

	t.Run("env wins", func(t *testing.T) {
		t.Setenv(env, exe)
		got, err := findBinary("sh", env)
		if err != nil || got != exe {
			t.Errorf("findBinary(sh) with $%s=%s = %q, %v, want %q", env, exe, got, err, exe)
		}
	})
	t.Run("env points nowhere", func(t *testing.T) {
		t.Setenv(env, filepath.Join(t.TempDir(), "nope"))
		_, err := findBinary("sh", env)
		if !errors.Is(err, errBinaryNotFound) || !strings.Contains(err.Error(), env) {
			t.Errorf("findBinary(sh) with a bad $%s = %v, want errBinaryNotFound naming it", env, err)
		}
	})
	t.Run("PATH", func(t *testing.T) {
		t.Setenv(env, "")
		dir := t.TempDir()
		bin := filepath.Join(dir, "fake-server")
		if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", dir)
		got, err := findBinary("fake-server", env)
		if err != nil || got != bin {
			t.Errorf("findBinary(fake-server) = %q, %v, want %q", got, err, bin)
		}
	})
	t.Run("missing", func(t *testing.T) {
		t.Setenv(env, "")
		t.Setenv("PATH", t.TempDir())
		_, err := findBinary("exporter-no-such-server", env)
		if !errors.Is(err, errBinaryNotFound) {
			t.Fatalf("findBinary(missing) = %v, want errBinaryNotFound", err)
		}
		for _, want := range []string{"make tools", env, "exporter-no-such-server", filepath.Join("bin", "exporter-no-such-server")} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("findBinary(missing) = %q, want it to mention %q", err, want)
			}
		}
	})
}

func TestModuleRoot(t *testing.T) {
	t.Parallel()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("moduleRoot() = %v", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Dir(filepath.Dir(wd)); root != want {
		t.Errorf("moduleRoot() = %q, want %q", root, want)
	}
}
