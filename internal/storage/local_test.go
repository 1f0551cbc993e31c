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
	src := filepath.Join(filepath.Dir(dir), "src")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.PutFile(ctx, "link/linked", src, ""); err == nil {
		t.Errorf("PutFile(link/linked) = nil, want an error: it would link outside the store")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("PutFile(link/linked) left %d entries outside the store, want only the secret", len(entries))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("PutFile(link/linked) left %d entries in the store, want only the link", len(entries))
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

// TestLocalPutFileLinks checks that PutFile on the store's file system
// makes the object a link to the file rather than a copy, that the object
// outlives the file's removal, and that Path names the file holding a key.
func TestLocalPutFileLinks(t *testing.T) {
	t.Parallel()
	s, dir := newTestLocal(t)
	ctx := t.Context()
	src := filepath.Join(filepath.Dir(dir), "package.gpkg")
	data := []byte(strings.Repeat("tiles ", 10_000))
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.PutFile(ctx, "packages/p.gpkg", src, "application/geopackage+sqlite3"); err != nil {
		t.Fatalf("PutFile = %v", err)
	}
	name, err := s.Path("packages/p.gpkg")
	if err != nil || name != filepath.Join(dir, "packages", "p.gpkg") {
		t.Fatalf("Path = %q, %v, want the file under %s", name, err, dir)
	}
	a, errA := os.Stat(src)
	b, errB := os.Stat(name)
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Errorf("stored object is not a link to the file put (%v, %v)", errA, errB)
	}
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(name); err != nil || string(got) != string(data) {
		t.Errorf("object after removing the source: %d bytes, %v; want %d", len(got), err, len(data))
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "packages")); len(entries) != 1 {
		t.Errorf("PutFile left %d entries in packages/, want 1", len(entries))
	}
}

func TestLocalPathErrors(t *testing.T) {
	t.Parallel()
	s, dir := newTestLocal(t)
	if err := os.MkdirAll(filepath.Join(dir, "parts", "j"), 0o755); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		want error
	}{
		{key: "missing.gpkg", want: storage.ErrNotFound},
		{key: "parts/j", want: storage.ErrNotFound},
		{key: "link", want: storage.ErrNotFound},
		{key: "../escape", want: storage.ErrInvalidKey},
		{key: "", want: storage.ErrInvalidKey},
	} {
		if name, err := s.Path(tc.key); !errors.Is(err, tc.want) {
			t.Errorf("Path(%q) = %q, %v, want %v", tc.key, name, err, tc.want)
		}
	}
}

func TestLocalCapacity(t *testing.T) {
	t.Parallel()
	l, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	free, size, err := l.Capacity(t.Context())
	if err != nil || size <= 0 || free < 0 || free > size {
		t.Errorf("Capacity = %d free of %d, %v; want a file system's numbers", free, size, err)
	}
}
