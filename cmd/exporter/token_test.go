package main

import (
	"bytes"
	stdcmp "cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/auth"
)

const tokenTestSecret = "an-hs256-secret-of-more-than-32-bytes"

// tokenTestKey writes a P-256 private key as PKCS#8 PEM and its public key
// as a JWKS with kid "k1", built with go-jose.
func tokenTestKey(t *testing.T) (privatePEM, jwks string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	privatePEM = filepath.Join(dir, "key.pem")
	if err := os.WriteFile(privatePEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"},
		{Key: &key.PublicKey, KeyID: "k2", Algorithm: "ES256", Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	jwks = filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwks, set, 0o600); err != nil {
		t.Fatal(err)
	}
	return privatePEM, jwks
}

func TestTokenCommand(t *testing.T) {
	t.Parallel()
	privatePEM, jwks := tokenTestKey(t)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		// verify builds the authenticator the printed token must satisfy;
		// dataDir is EXPORTER_DATA_DIR.
		verify    func(t *testing.T, dataDir string) auth.Config
		wantSub   string
		wantRoles []string
		wantTTL   time.Duration
		wantAlg   string
	}{
		{
			name: "defaults: data-dir secret, client role, 24h",
			args: []string{"-sub", "alice"},
			verify: func(t *testing.T, dataDir string) auth.Config {
				secret, err := dataDirSecret(dataDir)
				if err != nil {
					t.Fatal(err)
				}
				return auth.Config{HS256Secret: secret}
			},
			wantSub: "alice", wantRoles: []string{"client"}, wantTTL: 24 * time.Hour, wantAlg: "HS256",
		},
		{
			name: "configured secret, role, ttl, iss and aud",
			args: []string{"-sub=bob", "--role", "operator", "-ttl", "90m", "-auth-issuer", "https://idp.example"},
			env:  map[string]string{"EXPORTER_AUTH_HS256_SECRET": tokenTestSecret, "EXPORTER_AUTH_AUDIENCE": "exporter-api"},
			verify: func(*testing.T, string) auth.Config {
				return auth.Config{HS256Secret: []byte(tokenTestSecret), Issuer: "https://idp.example", Audience: "exporter-api"}
			},
			wantSub: "bob", wantRoles: []string{"operator"}, wantTTL: 90 * time.Minute, wantAlg: "HS256",
		},
		{
			name: "config flags before token flags, custom role claim",
			args: []string{"-auth-role-claim", "groups", "-auth-client-role", "api", "-sub", "carol"},
			env:  map[string]string{"EXPORTER_AUTH_HS256_SECRET": tokenTestSecret},
			verify: func(*testing.T, string) auth.Config {
				return auth.Config{HS256Secret: []byte(tokenTestSecret), RoleClaim: "groups", ClientRole: "api"}
			},
			wantSub: "carol", wantRoles: []string{"api"}, wantTTL: 24 * time.Hour, wantAlg: "HS256",
		},
		{
			name: "private key with kid against the configured JWKS",
			args: []string{"-sub", "dave", "-private-key", privatePEM, "-kid", "k2", "-ttl", "1h"},
			env:  map[string]string{"EXPORTER_AUTH_JWKS_FILE": jwks},
			verify: func(*testing.T, string) auth.Config {
				return auth.Config{JWKSFile: jwks}
			},
			wantSub: "dave", wantRoles: []string{"client"}, wantTTL: time.Hour, wantAlg: "ES256",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "data")
			env := map[string]string{"EXPORTER_DATA_DIR": dataDir}
			for k, v := range tc.env {
				env[k] = v
			}
			var out, errOut bytes.Buffer
			args := append([]string{"token"}, tc.args...)
			before := time.Now().Truncate(time.Second)
			err := run(t.Context(), args, func(k string) string { return env[k] }, &out, &errOut)
			if code := exitCode(err, &errOut); code != 0 {
				t.Fatalf("run(%q) exit %d: %v\n%s", args, code, err, errOut.String())
			}
			tok, ok := strings.CutSuffix(out.String(), "\n")
			if !ok || strings.ContainsAny(tok, " \n") {
				t.Fatalf("run(%q) stdout = %q, want one token and a newline", args, out.String())
			}
			if strings.Contains(errOut.String(), tok) || strings.Contains(errOut.String(), tokenTestSecret) {
				t.Errorf("run(%q) stderr %q echoes the token or the secret", args, errOut.String())
			}

			cfg := tc.verify(t, dataDir)
			cfg.RoleClaim = stdcmp.Or(cfg.RoleClaim, "role")
			cfg.ClientRole = stdcmp.Or(cfg.ClientRole, "client")
			cfg.OperatorRole = "operator"
			a, err := auth.New(cfg)
			if err != nil {
				t.Fatalf("auth.New() = %v", err)
			}
			p, err := a.Verify(tok)
			if err != nil {
				t.Fatalf("Verify(printed token) = %v", err)
			}
			if p.Subject != tc.wantSub || !cmp.Equal(p.Roles, tc.wantRoles) {
				t.Errorf("Verify(printed token) = %s %q, want %s %q", p.Subject, p.Roles, tc.wantSub, tc.wantRoles)
			}

			parsed, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tc.wantAlg)})
			if err != nil {
				t.Fatalf("go-jose parse printed token = %v", err)
			}
			var c josejwt.Claims
			if err := parsed.UnsafeClaimsWithoutVerification(&c); err != nil {
				t.Fatal(err)
			}
			if c.Expiry == nil || c.IssuedAt == nil || c.NotBefore == nil {
				t.Fatalf("printed token claims %+v lack exp, iat or nbf", c)
			}
			if got := c.Expiry.Time().Sub(c.IssuedAt.Time()); got != tc.wantTTL {
				t.Errorf("printed token exp - iat = %v, want %v", got, tc.wantTTL)
			}
			if iat := c.IssuedAt.Time(); iat.Before(before) || iat.After(time.Now()) {
				t.Errorf("printed token iat = %v, want now", iat)
			}
		})
	}
}

func TestTokenCommandErrors(t *testing.T) {
	t.Parallel()
	privatePEM, jwks := tokenTestKey(t)
	missing := filepath.Join(t.TempDir(), "absent.pem")
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		inOutput string
	}{
		{name: "help", args: []string{"-h"}, code: 0, inOutput: "-private-key"},
		{name: "help lists config flags", args: []string{"-sub", "x", "--help"}, code: 0, inOutput: "EXPORTER_AUTH_HS256_SECRET"},
		{name: "missing sub", args: nil, code: 2, inOutput: "-sub is required"},
		{name: "blank sub", args: []string{"-sub", " "}, code: 2, inOutput: "-sub is required"},
		{name: "sub without value", args: []string{"-sub"}, code: 2, inOutput: "flag needs an argument: -sub"},
		{name: "bad ttl", args: []string{"-sub", "a", "-ttl", "forever"}, code: 2, inOutput: `invalid value "forever" for flag -ttl`},
		{name: "negative ttl", args: []string{"-sub", "a", "-ttl", "-1h"}, code: 2, inOutput: "-ttl: -1h0m0s must be positive"},
		{name: "unknown flag", args: []string{"-sub", "a", "-nope"}, code: 2, inOutput: "flag provided but not defined: -nope"},
		{name: "extra arguments", args: []string{"-sub", "a", "extra"}, code: 2, inOutput: `unexpected arguments ["extra"]`},
		{name: "invalid config", args: []string{"-sub", "a", "-auth-leeway", "1h"}, code: 2, inOutput: "auth-leeway"},
		{name: "missing private key", args: []string{"-sub", "a", "-private-key", missing}, code: 2, inOutput: "-private-key: read private key file"},
		{name: "private key is a public key", args: []string{"-sub", "a", "-private-key", jwks}, code: 2, inOutput: "no PEM block"},
		{name: "short configured secret", args: []string{"-sub", "a"}, env: map[string]string{"EXPORTER_AUTH_HS256_SECRET": "short"}, code: 2, inOutput: "auth-hs256-secret: 5 bytes is too short"},
		{
			name: "public keys only need -private-key", args: []string{"-sub", "a"},
			env: map[string]string{"EXPORTER_AUTH_PUBLIC_KEY_FILE": privatePEM}, code: 2, inOutput: "pass -private-key",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"EXPORTER_DATA_DIR": filepath.Join(t.TempDir(), "data")}
			for k, v := range tc.env {
				env[k] = v
			}
			var out, errOut bytes.Buffer
			args := append([]string{"token"}, tc.args...)
			err := run(t.Context(), args, func(k string) string { return env[k] }, &out, &errOut)
			code := exitCode(err, &errOut)
			if code != tc.code {
				t.Errorf("run(%q) exit %d (%v), want %d", args, code, err, tc.code)
			}
			if all := out.String() + errOut.String(); !strings.Contains(all, tc.inOutput) {
				t.Errorf("run(%q) output %q lacks %q", args, all, tc.inOutput)
			}
			if tc.code != 0 && out.Len() > 0 {
				t.Errorf("run(%q) stdout = %q, want nothing on failure", args, out.String())
			}
		})
	}
}

func TestSplitTokenArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantOwn  []string
		wantRest []string
	}{
		{name: "empty"},
		{
			name:     "mixed",
			args:     []string{"-data-dir", "d", "-sub", "a", "--role=r", "-http-debug", "--ttl", "1h", "pos"},
			wantOwn:  []string{"-sub", "a", "--role=r", "--ttl", "1h"},
			wantRest: []string{"-data-dir", "d", "-http-debug", "pos"},
		},
		{name: "value that looks like a flag", args: []string{"-sub", "-role"}, wantOwn: []string{"-sub", "-role"}},
		{name: "stops at --", args: []string{"-sub", "a", "--", "-role", "x"}, wantOwn: []string{"-sub", "a"}, wantRest: []string{"--", "-role", "x"}},
		{name: "trailing flag without value", args: []string{"-kid"}, wantOwn: []string{"-kid"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var tf tokenFlags
			own, rest := splitTokenArgs(tf.flagSet(&bytes.Buffer{}), tc.args)
			if diff := cmp.Diff(tc.wantOwn, own); diff != "" {
				t.Errorf("splitTokenArgs(%q) own mismatch (-want +got):\n%s", tc.args, diff)
			}
			if diff := cmp.Diff(tc.wantRest, rest); diff != "" {
				t.Errorf("splitTokenArgs(%q) rest mismatch (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}
