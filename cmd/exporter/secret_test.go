package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestDataDirSecretCreatedOnce(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data", "nested")
	first, err := dataDirSecret(dir)
	if err != nil {
		t.Fatalf("dataDirSecret(%s) = %v", dir, err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(string(first))
	if err != nil || len(raw) != 32 {
		t.Errorf("dataDirSecret() = %d characters decoding to %d bytes (%v), want base64url of 32 bytes", len(first), len(raw), err)
	}
	fi, err := os.Stat(filepath.Join(dir, ".auth-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("secret file mode = %v, want 0600", got)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("data dir mode = %v, want 0700", got)
	}
	second, err := dataDirSecret(dir)
	if err != nil || !bytes.Equal(first, second) {
		t.Errorf("second dataDirSecret() = %v, want the first secret", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("data dir holds %q, want only .auth-secret (temp files removed)", names)
	}
}

func TestDataDirSecretConcurrentCallersAgree(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	const callers = 32
	secrets := make([][]byte, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			secrets[i], errs[i] = dataDirSecret(dir)
		})
	}
	close(start)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: dataDirSecret() = %v", i, errs[i])
		}
		if !bytes.Equal(secrets[i], secrets[0]) {
			t.Errorf("caller %d got another secret than caller 0", i)
		}
	}
}

func TestDataDirSecretExistingFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    string
		wantErr string
	}{
		{name: "kept as it is, trailing space trimmed", content: strings.Repeat("s", 50) + "\r\n", want: strings.Repeat("s", 50)},
		{name: "too short", content: "short-secret\n", wantErr: "holds 12 characters, want at least 43: delete it"},
		{name: "empty", content: "", wantErr: "holds 0 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, ".auth-secret")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := dataDirSecret(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("dataDirSecret() = %v, want an error naming %s and containing %q", err, path, tc.wantErr)
				}
				if tc.content != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.content)) {
					t.Errorf("dataDirSecret() = %q, echoes the secret", err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("dataDirSecret() = %q, %v, want %q", got, err, tc.want)
			}
		})
	}
}

func TestDataDirSecretErrors(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dir     string
		wantErr string
	}{
		{name: "no data dir", dir: "", wantErr: "data dir is not set"},
		{name: "data dir is a file", dir: file, wantErr: file},
		{name: "below a file", dir: filepath.Join(file, "sub"), wantErr: file},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := dataDirSecret(tc.dir)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("dataDirSecret(%q) = %q, %v, want an error containing %q", tc.dir, got, err, tc.wantErr)
			}
		})
	}
}
