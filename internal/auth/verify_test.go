package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/geoexport/exporter/internal/auth"
	"github.com/geoexport/exporter/internal/auth/authtest"
)

func TestVerifierKeyFiles(t *testing.T) {
	t.Parallel()
	k := authtest.TestKeys(t)
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, k.EC1)
	tests := []struct {
		name   string
		cfg    func(t *testing.T) auth.Config
		tokens []string // all must verify
	}{
		{
			name: "PEM: PKCS#1 RSA PUBLIC KEY and EC CERTIFICATE",
			cfg: func(t *testing.T) auth.Config {
				return auth.Config{PublicKeyFile: authtest.WritePEM(t,
					&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.RSA.PublicKey)},
					&pem.Block{Type: "CERTIFICATE", Bytes: cert},
				)}
			},
			tokens: []string{
				authtest.Sign(t, jose.RS256, k.RSA, "", authtest.Claims()),
				authtest.Sign(t, jose.ES256, k.EC1, "", authtest.Claims()),
				authtest.Sign(t, jose.ES256, k.EC1, "any-kid", authtest.Claims()),
			},
		},
		{
			name: "PEM: several keys of one type",
			cfg: func(t *testing.T) auth.Config {
				return auth.Config{PublicKeyFile: authtest.WritePEM(t, authtest.PKIXBlock(t, &k.RSAOther.PublicKey), authtest.PKIXBlock(t, &k.RSA.PublicKey))}
			},
			tokens: []string{authtest.Sign(t, jose.RS256, k.RSA, "", authtest.Claims()), authtest.Sign(t, jose.RS256, k.RSAOther, "", authtest.Claims())},
		},
		{
			name: "JWKS: the only usable key needs no kid; foreign keys are skipped",
			cfg: func(t *testing.T) auth.Config {
				return auth.Config{JWKSFile: authtest.WriteJWKS(t,
					jose.JSONWebKey{Key: &k.RSA.PublicKey, KeyID: "enc", Algorithm: "RSA-OAEP", Use: "enc"},
					jose.JSONWebKey{Key: []byte("symmetric-key-symmetric-key-1234"), KeyID: "oct"},
					jose.JSONWebKey{Key: &ec384.PublicKey, KeyID: "p384"},
					jose.JSONWebKey{Key: &k.RSAOther.PublicKey, KeyID: "rs384", Algorithm: "RS384"},
					jose.JSONWebKey{Key: &k.EC2.PublicKey},
				)}
			},
			tokens: []string{authtest.Sign(t, jose.ES256, k.EC2, "", authtest.Claims())},
		},
		{
			name: "JWKS: keys Go cannot parse are skipped",
			cfg: func(t *testing.T) auth.Config {
				ec, err := json.Marshal(jose.JSONWebKey{Key: &k.EC1.PublicKey, KeyID: "e1", Algorithm: "ES256", Use: "sig"})
				if err != nil {
					t.Fatal(err)
				}
				return auth.Config{JWKSFile: authtest.WriteFile(t, "jwks.json", []byte(`{"keys":[`+
					`{"kty":"EC","crv":"secp256k1","alg":"ES256K","kid":"k1","x":"AAAA","y":"AAAA"},`+
					`{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},`+
					`{"kty":"EC","crv":"P-521","kid":"p521","x":"AAAA","y":"AAAA"},`+
					string(ec)+`]}`))}
			},
			tokens: []string{authtest.Sign(t, jose.ES256, k.EC1, "e1", authtest.Claims()), authtest.Sign(t, jose.ES256, k.EC1, "", authtest.Claims())},
		},
		{
			name: "JWKS: RSA key without alg, selected by kid",
			cfg: func(t *testing.T) auth.Config {
				return auth.Config{JWKSFile: authtest.WriteJWKS(t,
					jose.JSONWebKey{Key: &k.RSA.PublicKey, KeyID: "r1"},
					jose.JSONWebKey{Key: &k.EC1.PublicKey, KeyID: "e1"},
				)}
			},
			tokens: []string{authtest.Sign(t, jose.RS256, k.RSA, "r1", authtest.Claims()), authtest.Sign(t, jose.ES256, k.EC1, "e1", authtest.Claims())},
		},
		{
			name: "JWKS with a private key uses its public half",
			cfg: func(t *testing.T) auth.Config {
				return auth.Config{JWKSFile: authtest.WriteJWKS(t, jose.JSONWebKey{Key: k.EC1, KeyID: "e1", Algorithm: "ES256"})}
			},
			tokens: []string{authtest.Sign(t, jose.ES256, k.EC1, "e1", authtest.Claims())},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg(t)
			cfg.RoleClaim, cfg.ClientRole, cfg.OperatorRole = "role", "client", "operator"
			cfg.Now = func() time.Time { return authtest.Now }
			a, err := auth.New(cfg)
			if err != nil {
				t.Fatalf("New() = %v", err)
			}
			for i, tok := range tc.tokens {
				p, err := a.Verify(tok)
				if err != nil || p.Subject != "alice" {
					t.Errorf("Verify(token %d) = %+v, %v, want alice", i, p, err)
				}
			}
		})
	}
}

func selfSigned(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1, 0), // expired: dates are not checked
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestNewKeyAndConfigErrors(t *testing.T) {
	t.Parallel()
	k := authtest.TestKeys(t)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "absent.pem")
	tests := []struct {
		name    string
		cfg     auth.Config
		wantIs  error
		wantIn  []string
		private []byte // must not appear in the error
	}{
		{name: "no key source", cfg: auth.Config{}, wantIs: auth.ErrNoKey, wantIn: []string{"auth-hs256-secret", "auth-public-key-file", "auth-jwks-file"}},
		{name: "short secret", cfg: auth.Config{HS256Secret: []byte("short-secret")}, wantIn: []string{"12 bytes, want at least 32"}, private: []byte("short-secret")},
		{name: "public key file missing", cfg: auth.Config{PublicKeyFile: missing}, wantIs: os.ErrNotExist, wantIn: []string{missing}},
		{name: "jwks file missing", cfg: auth.Config{JWKSFile: missing}, wantIs: os.ErrNotExist, wantIn: []string{missing}},
		{name: "PEM without blocks", cfg: auth.Config{PublicKeyFile: authtest.WriteFile(t, "empty.pem", []byte("nothing here"))}, wantIn: []string{"empty.pem", "no PEM block"}},
		{
			name:    "PEM private key",
			cfg:     auth.Config{PublicKeyFile: authtest.WritePEM(t, authtest.PKIXBlock(t, &k.RSA.PublicKey), authtest.PKCS8Block(t, k.EC1))},
			wantIn:  []string{"keys.pem", "PEM block 2", `"PRIVATE KEY"`, "want PUBLIC KEY"},
			private: authtest.PKCS8Block(t, k.EC1).Bytes,
		},
		{name: "PEM corrupt block", cfg: auth.Config{PublicKeyFile: authtest.WritePEM(t, &pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")})}, wantIn: []string{"keys.pem", "PEM block 1 (PUBLIC KEY)"}},
		{name: "PEM small RSA key", cfg: auth.Config{PublicKeyFile: authtest.WritePEM(t, authtest.PKIXBlock(t, &rsa1024.PublicKey))}, wantIn: []string{"keys.pem", "1024 bits, want at least 2048"}},
		{name: "PEM P-384 key", cfg: auth.Config{PublicKeyFile: authtest.WritePEM(t, authtest.PKIXBlock(t, &ec384.PublicKey))}, wantIn: []string{"keys.pem", "curve P-384, want P-256"}},
		{name: "JWKS not JSON", cfg: auth.Config{JWKSFile: authtest.WriteFile(t, "bad.json", []byte("{"))}, wantIn: []string{"bad.json", "not a JSON Web Key Set"}},
		{
			name:   "JWKS without a signature key",
			cfg:    auth.Config{JWKSFile: authtest.WriteJWKS(t, jose.JSONWebKey{Key: &k.RSA.PublicKey, KeyID: "enc", Use: "enc"})},
			wantIn: []string{"jwks.json", "no RS256 or ES256 signature key"},
		},
		{
			name:   "JWKS duplicate kid",
			cfg:    auth.Config{JWKSFile: authtest.WriteJWKS(t, jose.JSONWebKey{Key: &k.EC1.PublicKey, KeyID: "k"}, jose.JSONWebKey{Key: &k.EC2.PublicKey, KeyID: "k"})},
			wantIn: []string{"jwks.json", `kid "k" appears twice`},
		},
		{
			name:   "JWKS small RSA key",
			cfg:    auth.Config{JWKSFile: authtest.WriteJWKS(t, jose.JSONWebKey{Key: &rsa1024.PublicKey, KeyID: "small"})},
			wantIn: []string{"jwks.json", `key 1 (kid "small")`, "1024 bits"},
		},
		{
			name:   "JWKS corrupt key",
			cfg:    auth.Config{JWKSFile: authtest.WriteFile(t, "corrupt.json", []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","kid":"c"}]}`))},
			wantIn: []string{"corrupt.json", `key 1 (kid "c")`},
		},
		{name: "roles required", cfg: auth.Config{HS256Secret: authtest.Secret, RoleClaim: "role"}, wantIn: []string{"role claim, client role and operator role are required"}},
		{name: "negative leeway", cfg: auth.Config{HS256Secret: authtest.Secret, Leeway: -time.Second}, wantIn: []string{"leeway -1s is negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			if cfg.RoleClaim == "" {
				cfg.RoleClaim, cfg.ClientRole, cfg.OperatorRole = "role", "client", "operator"
			}
			a, err := auth.New(cfg)
			if err == nil {
				t.Fatalf("New() = %v, nil, want an error", a)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("New() = %v, want errors.Is %v", err, tc.wantIs)
			}
			for _, s := range tc.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("New() = %q, want it to contain %q", err, s)
				}
			}
			if len(tc.private) > 0 && (strings.Contains(err.Error(), string(tc.private)) ||
				strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(tc.private)[:8])) {
				t.Errorf("New() = %q, leaks key material", err)
			}
		})
	}
}

// roleVerifier verifies HS256 tokens signed with authtest.Secret at
// authtest.Now, reading roles from the "role" claim.
func roleVerifier(t *testing.T) *auth.Verifier {
	t.Helper()
	v, err := auth.New(auth.Config{
		HS256Secret: authtest.Secret, RoleClaim: "role", ClientRole: "client", OperatorRole: "operator",
		Now: func() time.Time { return authtest.Now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	v := roleVerifier(t)
	principal := func(roles ...any) auth.Principal {
		t.Helper()
		p, err := v.Verify(authtest.Sign(t, jose.HS256, authtest.Secret, "", authtest.Claims(func(c map[string]any) { c["role"] = roles })))
		if err != nil {
			t.Fatalf("Verify(roles %v) = %v", roles, err)
		}
		return p
	}
	tests := []struct {
		name      string
		p         auth.Principal
		role      string
		wantLacks string // the role the refusal names; empty: admitted
	}{
		{name: "client on a client route", p: principal("client"), role: "client"},
		{name: "one of several roles", p: principal("viewer", "client"), role: "client"},
		{name: "operator on a client route", p: principal("operator"), role: "client"},
		{name: "operator on an operator route", p: principal("operator"), role: "operator"},
		{name: "operator where only operators pass", p: principal("operator"), role: ""},
		{name: "other role", p: principal("viewer"), role: "client", wantLacks: "client"},
		{name: "no role", p: principal(), role: "client", wantLacks: "client"},
		{name: "client on an operator route", p: principal("client"), role: "operator", wantLacks: "operator"},
		{name: "client where only operators pass", p: principal("client"), role: "", wantLacks: "operator"},
		{name: "zero principal", p: auth.Principal{}, role: "client", wantLacks: "client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := v.Authorize(tc.p, tc.role)
			if tc.wantLacks == "" {
				if err != nil {
					t.Errorf("Authorize(%q) = %v, want nil", tc.role, err)
				}
				return
			}
			msg := "token lacks role " + tc.wantLacks
			want := &auth.Error{Kind: auth.Forbidden, Message: msg, Code: "insufficient_scope", Description: msg}
			var aerr *auth.Error
			if !errors.As(err, &aerr) || *aerr != *want {
				t.Errorf("Authorize(%q) = %#v, want %#v", tc.role, err, want)
			}
		})
	}
}

func TestVerifyErrorKind(t *testing.T) {
	t.Parallel()
	v := roleVerifier(t)
	expired := authtest.Sign(t, jose.HS256, authtest.Secret, "", authtest.Claims(func(c map[string]any) { c["exp"] = authtest.Now.Add(-time.Hour).Unix() }))
	for _, tc := range []struct{ token, msg string }{
		{"not-a-jwt", "token malformed: want a JWT (header.payload.signature)"},
		{expired, "token expired"},
		{strings.Repeat("x", auth.MaxTokenBytes+1), "token too large"},
	} {
		_, err := v.Verify(tc.token)
		want := &auth.Error{Kind: auth.Unauthenticated, Message: tc.msg, Code: "invalid_token", Description: tc.msg}
		var aerr *auth.Error
		if !errors.As(err, &aerr) || *aerr != *want {
			t.Errorf("Verify() = %#v, want %#v", err, want)
		}
		if err != nil && err.Error() != tc.msg {
			t.Errorf("Verify().Error() = %q, want %q", err, tc.msg)
		}
	}
}

// TestVerifyRemembersWithinTimeChecks: a token that verified is not
// checked afresh while its time claims pass, and is refused as before
// once they no longer do; near its edges the leeway applies as before.
func TestVerifyRemembersWithinTimeChecks(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	at := func(d time.Duration) { now.Store(authtest.Now.Add(d).UnixNano()) }
	v, err := auth.New(auth.Config{
		HS256Secret: authtest.Secret, RoleClaim: "role", ClientRole: "client", OperatorRole: "operator",
		Leeway: 30 * time.Second, Now: func() time.Time { return time.Unix(0, now.Load()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := authtest.Sign(t, jose.HS256, authtest.Secret, "", authtest.Claims(func(c map[string]any) {
		c["nbf"] = authtest.Now.Add(10 * time.Second).Unix() // valid from Now thanks to the leeway
	}))
	for _, tc := range []struct {
		name    string
		at      time.Duration
		wantErr string
	}{
		{name: "before nbf, within the leeway", at: 0},
		{name: "after nbf", at: time.Minute},
		{name: "again, remembered", at: 2 * time.Minute},
		{name: "after exp, within the leeway", at: time.Hour + 20*time.Second},
		{name: "after exp and the leeway", at: time.Hour + 31*time.Second, wantErr: "token expired"},
		{name: "before nbf and the leeway", at: -time.Minute, wantErr: "token not valid yet"},
		{name: "valid again", at: 30 * time.Minute},
	} {
		at(tc.at)
		p, err := v.Verify(tok)
		switch {
		case tc.wantErr == "" && (err != nil || p.Subject != "alice" || len(p.Roles) != 1 || p.Roles[0] != "client"):
			t.Errorf("%s: Verify = %+v, %v; want alice, client", tc.name, p, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: Verify = %+v, %v; want %q", tc.name, p, err, tc.wantErr)
		}
	}
}
