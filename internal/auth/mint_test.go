package auth_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/auth"
	"github.com/geoexport/exporter/internal/auth/authtest"
)

// privateKeyFiles writes k's private keys in every PEM encoding
// LoadSigningKey accepts.
func privateKeyFiles(t testing.TB, k authtest.Keys) map[string]string {
	t.Helper()
	sec1, err := x509.MarshalECPrivateKey(k.EC1)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"RS256 PKCS#8": authtest.WritePEM(t, authtest.PKCS8Block(t, k.RSA)),
		"RS256 PKCS#1": authtest.WritePEM(t, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.RSA)}),
		"ES256 PKCS#8": authtest.WritePEM(t, authtest.PKCS8Block(t, k.EC1)),
		"ES256 SEC1":   authtest.WritePEM(t, &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
	}
}

func TestMintRoundTrip(t *testing.T) {
	t.Parallel()
	k := authtest.TestKeys(t)
	files := privateKeyFiles(t, k)
	publicPEM := authtest.WritePEM(t, authtest.PKIXBlock(t, &k.RSA.PublicKey), authtest.PKIXBlock(t, &k.EC1.PublicKey))
	jwks := authtest.WriteJWKS(t,
		jose.JSONWebKey{Key: &k.RSA.PublicKey, KeyID: "r1", Algorithm: "RS256"},
		jose.JSONWebKey{Key: &k.EC1.PublicKey, KeyID: "e1", Algorithm: "ES256"},
	)
	tests := []struct {
		name    string
		key     func(t *testing.T) auth.SigningKey
		kid     string
		verify  auth.Config
		joseKey any
		wantAlg string
	}{
		{
			name:    "HS256",
			key:     func(t *testing.T) auth.SigningKey { return mustSigningKey(t, authtest.Secret, "") },
			verify:  auth.Config{HS256Secret: authtest.Secret},
			joseKey: authtest.Secret, wantAlg: "HS256",
		},
		{
			name:    "RS256 PKCS#8 against PEM",
			key:     func(t *testing.T) auth.SigningKey { return mustSigningKey(t, nil, files["RS256 PKCS#8"]) },
			verify:  auth.Config{PublicKeyFile: publicPEM},
			joseKey: &k.RSA.PublicKey, wantAlg: "RS256",
		},
		{
			name:    "RS256 PKCS#1 against JWKS by kid",
			key:     func(t *testing.T) auth.SigningKey { return mustSigningKey(t, nil, files["RS256 PKCS#1"]) },
			kid:     "r1",
			verify:  auth.Config{JWKSFile: jwks},
			joseKey: &k.RSA.PublicKey, wantAlg: "RS256",
		},
		{
			name:    "ES256 SEC1 against PEM",
			key:     func(t *testing.T) auth.SigningKey { return mustSigningKey(t, nil, files["ES256 SEC1"]) },
			verify:  auth.Config{PublicKeyFile: publicPEM},
			joseKey: &k.EC1.PublicKey, wantAlg: "ES256",
		},
		{
			name:    "ES256 PKCS#8 against JWKS by kid",
			key:     func(t *testing.T) auth.SigningKey { return mustSigningKey(t, nil, files["ES256 PKCS#8"]) },
			kid:     "e1",
			verify:  auth.Config{JWKSFile: jwks},
			joseKey: &k.EC1.PublicKey, wantAlg: "ES256",
		},
		{
			name:    "private key file wins over the secret",
			key:     func(t *testing.T) auth.SigningKey { return mustSigningKey(t, authtest.Secret, files["ES256 SEC1"]) },
			verify:  auth.Config{PublicKeyFile: publicPEM},
			joseKey: &k.EC1.PublicKey, wantAlg: "ES256",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := tc.key(t)
			key.KeyID = tc.kid
			if got := key.Algorithm(); got != tc.wantAlg {
				t.Errorf("Algorithm() = %q, want %q", got, tc.wantAlg)
			}
			claims := auth.MintClaims{
				Subject: "bob", Role: "operator", TTL: 2 * time.Hour,
				Issuer: "https://idp.example", Audience: "exporter-api", Now: authtest.Now,
			}
			tok, err := auth.Mint(key, claims)
			if err != nil {
				t.Fatalf("Mint() = %v", err)
			}

			cfg := tc.verify
			cfg.RoleClaim, cfg.ClientRole, cfg.OperatorRole = "role", "client", "operator"
			cfg.Issuer, cfg.Audience = "https://idp.example", "exporter-api"
			cfg.Now = func() time.Time { return authtest.Now.Add(time.Hour) }
			a, err := auth.New(cfg)
			if err != nil {
				t.Fatalf("New() = %v", err)
			}
			p, err := a.Verify(tok)
			if err != nil {
				t.Fatalf("Verify(Mint()) = %v", err)
			}
			if p.Subject != "bob" || !p.Operator() || !cmp.Equal(p.Roles, []string{"operator"}) {
				t.Errorf("Verify(Mint()) = %+v (operator %v), want bob with role operator", p, p.Operator())
			}
			cfg.Now = func() time.Time { return authtest.Now.Add(2*time.Hour + time.Second) }
			if a, err = auth.New(cfg); err != nil {
				t.Fatal(err)
			}
			var aerr *auth.Error
			if _, err := a.Verify(tok); !errors.As(err, &aerr) || aerr.Message != "token expired" {
				t.Errorf("Verify(Mint()) after the ttl = %v, want token expired", err)
			}

			// go-jose, the independent client, agrees.
			parsed, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tc.wantAlg)})
			if err != nil {
				t.Fatalf("josejwt.ParseSigned(Mint()) = %v", err)
			}
			if got := parsed.Headers[0].KeyID; got != tc.kid {
				t.Errorf("kid = %q, want %q", got, tc.kid)
			}
			var std josejwt.Claims
			var extra struct {
				Role string `json:"role"`
			}
			if err := parsed.Claims(tc.joseKey, &std, &extra); err != nil {
				t.Fatalf("go-jose verify Mint() = %v", err)
			}
			if err := std.Validate(josejwt.Expected{Issuer: "https://idp.example", AnyAudience: josejwt.Audience{"exporter-api"}, Time: authtest.Now.Add(time.Minute)}); err != nil {
				t.Errorf("go-jose validate Mint() = %v", err)
			}
			want := josejwt.Claims{
				Subject: "bob", Issuer: "https://idp.example", Audience: josejwt.Audience{"exporter-api"},
				IssuedAt: josejwt.NewNumericDate(authtest.Now), NotBefore: josejwt.NewNumericDate(authtest.Now),
				Expiry: josejwt.NewNumericDate(authtest.Now.Add(2 * time.Hour)),
			}
			if diff := cmp.Diff(want, std); diff != "" {
				t.Errorf("Mint() claims mismatch (-want +got):\n%s", diff)
			}
			if extra.Role != "operator" {
				t.Errorf("Mint() role = %q, want operator", extra.Role)
			}
		})
	}
}

func mustSigningKey(t testing.TB, secret []byte, file string) auth.SigningKey {
	t.Helper()
	k, err := auth.LoadSigningKey(secret, file)
	if err != nil {
		t.Fatalf("LoadSigningKey(%q) = %v", file, err)
	}
	return k
}

func TestMintMinimalClaims(t *testing.T) {
	t.Parallel()
	key := mustSigningKey(t, authtest.Secret, "")
	tok, err := auth.Mint(key, auth.MintClaims{Subject: "carol", Role: "client", RoleClaim: "groups", TTL: time.Minute})
	if err != nil {
		t.Fatalf("Mint() = %v", err)
	}
	parsed, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := parsed.Claims(authtest.Secret, &got); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"iss", "aud", "role"} {
		if _, ok := got[name]; ok {
			t.Errorf("Mint() claims %v have %s, want none", got, name)
		}
	}
	if got["groups"] != "client" || got["sub"] != "carol" {
		t.Errorf("Mint() claims = %v, want sub carol and groups client", got)
	}
	exp, _ := got["exp"].(float64)
	if d := time.Until(time.Unix(int64(exp), 0)); d <= 0 || d > time.Minute {
		t.Errorf("Mint() exp in %v, want within a minute", d)
	}
}

func TestMintErrors(t *testing.T) {
	t.Parallel()
	key := mustSigningKey(t, authtest.Secret, "")
	valid := auth.MintClaims{Subject: "alice", Role: "client", TTL: time.Hour}
	tests := []struct {
		name   string
		key    auth.SigningKey
		edit   func(*auth.MintClaims)
		wantIn string
	}{
		{name: "no key", edit: func(*auth.MintClaims) {}, wantIn: "no signing key"},
		{name: "no subject", key: key, edit: func(c *auth.MintClaims) { c.Subject = "" }, wantIn: "subject is required"},
		{name: "no role", key: key, edit: func(c *auth.MintClaims) { c.Role = "" }, wantIn: "role is required"},
		{name: "zero ttl", key: key, edit: func(c *auth.MintClaims) { c.TTL = 0 }, wantIn: "ttl 0s must be positive"},
		{name: "negative ttl", key: key, edit: func(c *auth.MintClaims) { c.TTL = -time.Hour }, wantIn: "ttl -1h0m0s must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := valid
			tc.edit(&c)
			tok, err := auth.Mint(tc.key, c)
			if err == nil || !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("Mint() = %q, %v, want an error containing %q", tok, err, tc.wantIn)
			}
		})
	}
}

func TestLoadSigningKeyErrors(t *testing.T) {
	t.Parallel()
	k := authtest.TestKeys(t)
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "absent.pem")
	tests := []struct {
		name   string
		secret []byte
		file   string
		wantIs error
		wantIn string
	}{
		{name: "nothing configured", wantIs: auth.ErrNoKey},
		{name: "short secret", secret: []byte("tiny"), wantIn: "4 bytes, want at least 32"},
		{name: "missing file", file: missing, wantIs: os.ErrNotExist, wantIn: missing},
		{name: "no PEM", file: authtest.WriteFile(t, "x.pem", []byte("hello")), wantIn: "no PEM block"},
		{name: "public key", file: authtest.WritePEM(t, authtest.PKIXBlock(t, &k.RSA.PublicKey)), wantIn: `PEM block is "PUBLIC KEY", want PRIVATE KEY`},
		{name: "encrypted", file: authtest.WritePEM(t, &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("x")}), wantIn: "(unencrypted)"},
		{name: "corrupt", file: authtest.WritePEM(t, &pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("x")}), wantIn: "keys.pem: EC PRIVATE KEY"},
		{name: "P-384", file: authtest.WritePEM(t, authtest.PKCS8Block(t, ec384)), wantIn: "curve P-384, want P-256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key, err := auth.LoadSigningKey(tc.secret, tc.file)
			if err == nil {
				t.Fatalf("LoadSigningKey() = %v, nil, want an error", key)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("LoadSigningKey() = %v, want errors.Is %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("LoadSigningKey() = %q, want it to contain %q", err, tc.wantIn)
			}
		})
	}
}

func TestSigningKeyRedacted(t *testing.T) {
	t.Parallel()
	key := mustSigningKey(t, authtest.Secret, "")
	key.KeyID = "k1"
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("key", "key", key, "cfg", auth.Config{HS256Secret: authtest.Secret})
	outputs := []string{fmt.Sprint(key), fmt.Sprintf("%v %+v %#v %s %q %x", key, key, key, key, key, key), logged.String()}
	for _, out := range outputs {
		if strings.Contains(out, string(authtest.Secret)) || strings.Contains(out, fmt.Sprintf("%x", authtest.Secret)) {
			t.Errorf("output %q leaks the secret", out)
		}
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("output %q lacks REDACTED", out)
		}
	}
}
