package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// authSecretFile is the generated HS256 secret, in the data directory.
const authSecretFile = ".auth-secret"

// authSecretBytes is the entropy of a generated secret.
const authSecretBytes = 32

// minAuthSecretLen is the shortest secret file accepted, the length of a
// generated one: 32 bytes in unpadded base64url.
const minAuthSecretLen = 43

// dataDirSecret returns the HS256 secret kept in dataDir/.auth-secret,
// creating it on first use: 32 random bytes written as base64url, mode
// 0600, in a directory created with mode 0700. The secret is the file's
// text (trailing space trimmed), so EXPORTER_AUTH_HS256_SECRET set to the
// file's content is the same key.
//
// Creation is atomic: the secret is written to a temp file and hard-linked
// into place, which fails rather than overwrites when another process got
// there first; every caller then reads the file, so processes that start
// at once agree on the secret.
func dataDirSecret(dataDir string) ([]byte, error) {
	if dataDir == "" {
		return nil, errors.New("auth secret: data dir is not set")
	}
	path := filepath.Join(dataDir, authSecretFile)
	secret, err := readAuthSecret(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create auth secret: %w", err)
	}
	if err := createAuthSecret(dataDir, path); err != nil {
		return nil, err
	}
	return readAuthSecret(path)
}

// readAuthSecret reads and checks an existing secret file.
func readAuthSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read auth secret: %w", err)
	}
	secret := bytes.TrimSpace(data)
	if len(secret) < minAuthSecretLen {
		return nil, fmt.Errorf("auth secret %s holds %d characters, want at least %d: delete it to generate a new one", path, len(secret), minAuthSecretLen)
	}
	return secret, nil
}

// createAuthSecret links a new secret to path unless path exists.
func createAuthSecret(dir, path string) error {
	raw := make([]byte, authSecretBytes)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("generate auth secret: %w", err)
	}
	tmp, err := os.CreateTemp(dir, authSecretFile+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("create auth secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(base64.RawURLEncoding.EncodeToString(raw) + "\n")
	err = errors.Join(err, tmp.Chmod(0o600), tmp.Sync(), tmp.Close())
	if err != nil {
		return fmt.Errorf("write auth secret %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create auth secret: %w", err)
	}
	return nil
}
