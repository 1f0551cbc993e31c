package storage_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geoexport/exporter/internal/storage"
)

func newTestLocal(t *testing.T) (*storage.Local, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	s, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatalf("NewLocal(%s) = %v", dir, err)
	}
	return s, dir
}

func TestNewLocal(t *testing.T) {
	t.Parallel()
	s, dir := newTestLocal(t)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("NewLocal did not create %s: %v", dir, err)
	}
	if s.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", s.Dir(), dir)
	}
	if _, err := storage.NewLocal(""); err == nil {
		t.Errorf("NewLocal(\"\") error = nil, want an error")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.NewLocal(file); err == nil {
		t.Errorf("NewLocal(a file) error = nil, want an error")
	}
}

func TestLocalLayout(t *testing.T) {
	t.Parallel()
	s, dir := newTestLocal(t)
	ctx := t.Context()
	mustPut(t, s, "packages/a/b.gpkg", []byte("x"), "")
	if got, err := os.ReadFile(filepath.Join(dir, "packages", "a", "b.gpkg")); err != nil || string(got) != "x" {
		t.Errorf("file for key packages/a/b.gpkg = %q, %v, want %q", got, err, "x")
	}

	// Failed puts leave no temporary files behind.
	for range 3 {
		_ = s.Put(ctx, "packages/a/c.gpkg", strings.NewReader("short"), 100, "")
	}
	mustPut(t, s, "packages/a/c.gpkg", []byte("x"), "")
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if strings.Join(files, ",") != "packages/a/b.gpkg,packages/a/c.gpkg" {
		t.Errorf("files in the store = %q, want only the two objects", files)
	}

	// A key cannot also be a directory of keys.
	if err := s.Put(ctx, "packages/a", strings.NewReader("x"), 1, ""); err == nil {
		t.Errorf("Put over a directory of keys = nil, want an error")
	}

	// Delete prunes the directories it empties, never the store itself.
	for _, key := range []string{"packages/a/b.gpkg", "packages/a/c.gpkg"} {
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("store after deleting everything holds %v (%v), want it empty and present", entries, err)
	}
	mustPut(t, s, "packages/a/b.gpkg", []byte("again"), "")
}

func TestLocalSymlinkEscape(t *testing.T) {
	t.Parallel()
	s, dir := newTestLocal(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if obj, err := s.Open(ctx, "link/secret"); err == nil {
		b, _ := io.ReadAll(obj)
		obj.Close()
		t.Errorf("Open(link/secret) read %q from outside the store", b)
	}
	if err := s.Put(ctx, "link/new", strings.NewReader("x"), 1, ""); err == nil {
		t.Errorf("Put(link/new) = nil, want an error: it would write outside the store")
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Put(link/new) wrote outside the store")
	}
}

func TestLocalPing(t *testing.T) {
	t.Parallel()
	s, dir := newTestLocal(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping() = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Ping left %d files behind", len(entries))
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Errorf("Ping() with the directory gone = nil, want an error")
	}
}
