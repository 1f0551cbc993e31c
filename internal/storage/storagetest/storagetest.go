// Package storagetest holds an in-memory store of keys for the unit tests
// of the worker's and the scheduler's decisions under -short: it records
// which keys exist and when they were written, not their bytes. The
// contract of the real stores is tested against storage.Local and
// storage.S3 (internal/storage/contract_test.go).
//
// It is imported by _test.go files only.
package storagetest

import (
	"context"
	"errors"
	"io"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/geoexport/exporter/internal/storage"
)

// ErrRefused is what Delete returns for a key made to fail.
var ErrRefused = errors.New("storagetest: delete refused")

// Files is an in-memory store of keys, with the time each was written.
type Files struct {
	mu      sync.Mutex
	files   map[string]time.Time
	failing map[string]bool
}

// New returns an empty store.
func New() *Files { return &Files{files: map[string]time.Time{}, failing: map[string]bool{}} }

// Add stores key as written at mod.
func (f *Files) Add(key string, mod time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[key] = mod
}

// FailDelete makes every Delete of key fail with ErrRefused.
func (f *Files) FailDelete(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing[key] = true
}

// Keys returns the stored keys, sorted.
func (f *Files) Keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.files))
	for k := range f.files {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Put stores key as written now; r is read to its end, its bytes not
// kept.
func (f *Files) Put(_ context.Context, key string, r io.Reader, _ int64, _ string) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	f.Add(key, time.Now())
	return nil
}

// PutFile stores key as written now; the file's bytes are not kept.
func (f *Files) PutFile(_ context.Context, key, _, _ string) error {
	f.Add(key, time.Now())
	return nil
}

// GetFile returns storage.ErrNotFound for a key not stored; it writes no
// file.
func (f *Files) GetFile(_ context.Context, key, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.files[key]; !ok {
		return storage.ErrNotFound
	}
	return nil
}

// Delete removes key; a missing key is not an error.
func (f *Files) Delete(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing[key] {
		return ErrRefused
	}
	delete(f.files, key)
	return nil
}

// List yields the keys under prefix in order, each of 4 bytes.
func (f *Files) List(_ context.Context, prefix string) iter.Seq2[storage.Info, error] {
	f.mu.Lock()
	var infos []storage.Info
	for k, mod := range f.files {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, storage.Info{Key: k, ModTime: mod, Size: 4})
		}
	}
	f.mu.Unlock()
	slices.SortFunc(infos, func(a, b storage.Info) int { return strings.Compare(a.Key, b.Key) })
	return func(yield func(storage.Info, error) bool) {
		for _, info := range infos {
			if !yield(info, nil) {
				return
			}
		}
	}
}
