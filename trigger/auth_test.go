package trigger_test

import (
	"bytes"
	stdcmp "cmp"
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
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/gofiber/fiber/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/trigger"
)

// authNow is the fixed clock of the auth tests.
var authNow = time.Unix(1_900_000_000, 0)

// authSecret is the HS256 secret of the auth tests.
var authSecret = []byte("0123456789abcdef0123456789abcdef-test")

// authKeys are generated once per test binary: RSA generation is slow.
type authKeys struct {
	rsa, rsaOther *rsa.PrivateKey
	ec1, ec2      *ecdsa.PrivateKey
}

var authKeysOnce = sync.OnceValues(func() (authKeys, error) {
	var (
		k   authKeys
		err error
	)
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return k, err
	}
	if k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return k, err
	}
	if k.ec1, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return k, err
	}
	k.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return k, err
})

func testAuthKeys(t testing.TB) authKeys {
	t.Helper()
	k, err := authKeysOnce()
	if err != nil {
		t.Fatalf("generate keys: %v", err)
	}
	return k
}

// writePEM writes PEM blocks to a new file in a temp dir.
func writePEM(t testing.TB, blocks ...*pem.Block) string {
	t.Helper()
	var b bytes.Buffer
	for _, bl := range blocks {
		if err := pem.Encode(&b, bl); err != nil {
			t.Fatal(err)
		}
	}
	return writeAuthFile(t, "keys.pem", b.Bytes())
}

func writeAuthFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pkixBlock(t testing.TB, pub any) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PUBLIC KEY", Bytes: der}
}

func pkcs8Block(t testing.TB, key any) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

// writeJWKS writes a JSON Web Key Set with go-jose, independently of the
// code under test.
func writeJWKS(t testing.TB, keys ...jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return writeAuthFile(t, "jwks.json", b)
}

// joseSign mints a token with go-jose, the independent client.
func joseSign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatalf("jose.NewSigner(%s): %v", alg, err)
	}
	tok, err := josejwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatalf("sign %s token: %v", alg, err)
	}
	return tok
}

// baseClaims are the claims of a valid client token at authNow.
func baseClaims(edits ...func(map[string]any)) map[string]any {
	c := map[string]any{
		"sub":  "alice",
		"role": "client",
		"iat":  authNow.Unix(),
		"nbf":  authNow.Unix(),
		"exp":  authNow.Add(time.Hour).Unix(),
	}
	for _, e := range edits {
		e(c)
	}
	return c
}

func claimSet(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }
func claimDel(k string) func(map[string]any)        { return func(c map[string]any) { delete(c, k) } }

func authB64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// authErrorHandler maps errors to responses as the server's handler does.
func authErrorHandler(c *fiber.Ctx, err error) error {
	var aerr *trigger.AuthError
	if errors.As(err, &aerr) {
		if aerr.Challenge != "" {
			c.Set(fiber.HeaderWWWAuthenticate, aerr.Challenge)
		}
		return c.Status(aerr.Status).JSON(fiber.Map{"message": aerr.Message})
	}
	return c.Status(fiber.StatusInternalServerError).JSON(fiber.Map{"message": "internal server error"})
}

// authApp serves /client and /operator behind a's Require, answering the
// principal.
func authApp(a *trigger.Authenticator) *fiber.App {
	// A read buffer above the 4 KiB default lets the oversized token reach
	// the authenticator.
	app := fiber.New(fiber.Config{DisableStartupMessage: true, ErrorHandler: authErrorHandler, ReadBufferSize: 16 << 10})
	answer := func(c *fiber.Ctx) error {
		p, ok := trigger.PrincipalFrom(c)
		if !ok {
			return errors.New("no principal")
		}
		return c.JSON(fiber.Map{"sub": p.Subject, "roles": p.Roles, "operator": p.Operator()})
	}
	app.Get("/client", a.Require(a.ClientRole()), answer)
	app.Get("/operator", a.Require(a.OperatorRole()), answer)
	return app
}

// authResult is what a test request observed.
type authResult struct {
	Status    int
	Message   string
	Challenge string
	Sub       string
	Roles     []string
	Operator  bool
}

func authDo(t testing.TB, app *fiber.App, req *http.Request) authResult {
	t.Helper()
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatalf("app.Test(%s %s): %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Message  string   `json:"message"`
		Sub      string   `json:"sub"`
		Roles    []string `json:"roles"`
		Operator bool     `json:"operator"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", req.Method, req.URL, body, err)
	}
	return authResult{
		Status: resp.StatusCode, Message: b.Message, Challenge: resp.Header.Get("WWW-Authenticate"),
		Sub: b.Sub, Roles: b.Roles, Operator: b.Operator,
	}
}

func authOK(sub string, operator bool, roles ...string) authResult {
	return authResult{Status: 200, Sub: sub, Roles: roles, Operator: operator}
}

func authDenied(msg string) authResult {
	return authResult{
		Status: 401, Message: msg,
		Challenge: fmt.Sprintf(`Bearer realm="exporter", error="invalid_token", error_description="%s"`, msg),
	}
}

func authLacksRole(role string) authResult {
	msg := "token lacks role " + role
	return authResult{
		Status: 403, Message: msg,
		Challenge: fmt.Sprintf(`Bearer realm="exporter", error="insufficient_scope", error_description="%s"`, msg),
	}
}

func TestRequire(t *testing.T) {
	t.Parallel()
	k := testAuthKeys(t)
	rsaPEM := writePEM(t, pkixBlock(t, &k.rsa.PublicKey))
	jwks := writeJWKS(t,
		jose.JSONWebKey{Key: &k.ec1.PublicKey, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
		jose.JSONWebKey{Key: &k.ec2.PublicKey, KeyID: "ec-2", Algorithm: "ES256", Use: "sig"},
	)
	base := trigger.AuthConfig{
		RoleClaim: "role", ClientRole: "client", OperatorRole: "operator",
		Leeway: 30 * time.Second, Now: func() time.Time { return authNow },
	}
	configs := map[string]func(*trigger.AuthConfig){
		"all": func(c *trigger.AuthConfig) {
			c.HS256Secret, c.PublicKeyFile, c.JWKSFile = authSecret, rsaPEM, jwks
		},
		"rsa only": func(c *trigger.AuthConfig) { c.PublicKeyFile = rsaPEM },
		"iss and aud": func(c *trigger.AuthConfig) {
			c.HS256Secret, c.Issuer, c.Audience = authSecret, "https://idp.example", "exporter-api"
		},
		"roles claim": func(c *trigger.AuthConfig) { c.HS256Secret, c.RoleClaim = authSecret, "groups" },
	}
	apps := map[string]*fiber.App{}
	for name, edit := range configs {
		cfg := base
		edit(&cfg)
		a, err := trigger.NewAuthenticator(cfg)
		if err != nil {
			t.Fatalf("NewAuthenticator(%s) = %v", name, err)
		}
		apps[name] = authApp(a)
	}

	hs := func(edits ...func(map[string]any)) string {
		return joseSign(t, jose.HS256, authSecret, "", baseClaims(edits...))
	}
	rs := joseSign(t, jose.RS256, k.rsa, "", baseClaims())
	rsaPublicPEM, err := os.ReadFile(rsaPEM)
	if err != nil {
		t.Fatal(err)
	}
	bigToken := hs(claimSet("pad", strings.Repeat("x", 9000)))
	critical := func() string {
		opts := (&jose.SignerOptions{}).WithType("JWT").WithCritical("exp").WithHeader("exp", authNow.Unix())
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: authSecret}, opts)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := josejwt.Signed(sig).Claims(baseClaims()).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}()

	const (
		bearer = "bearer"
		apiKey = "x-api-key"
		query  = "query"
	)
	tests := []struct {
		name   string
		config string // key of configs; default "all"
		path   string // default "/client"
		source string // default bearer
		token  string
		header map[string]string // extra request headers
		want   authResult
	}{
		{name: "HS256 valid", token: hs(), want: authOK("alice", false, "client")},
		{name: "RS256 from PEM public key", token: rs, want: authOK("alice", false, "client")},
		{name: "ES256 from JWKS by kid", token: joseSign(t, jose.ES256, k.ec2, "ec-2", baseClaims()), want: authOK("alice", false, "client")},
		{name: "ES256 first JWKS key", token: joseSign(t, jose.ES256, k.ec1, "ec-1", baseClaims()), want: authOK("alice", false, "client")},
		{name: "ES256 unknown kid", token: joseSign(t, jose.ES256, k.ec1, "ec-9", baseClaims()), want: authDenied("token key id unknown")},
		{name: "ES256 without kid, two keys in the set", token: joseSign(t, jose.ES256, k.ec1, "", baseClaims()), want: authDenied("token lacks kid: the key set has several keys")},
		{name: "ES256 kid of another key", token: joseSign(t, jose.ES256, k.ec1, "ec-2", baseClaims()), want: authDenied("token signature invalid")},
		{name: "x-api-key", source: apiKey, token: hs(), want: authOK("alice", false, "client")},
		{name: "query parameter", source: query, token: hs(), want: authOK("alice", false, "client")},
		{name: "bearer before x-api-key", token: hs(), header: map[string]string{"X-Api-Key": "garbage"}, want: authOK("alice", false, "client")},
		{name: "x-api-key before query", source: query, token: hs(), header: map[string]string{"X-Api-Key": "garbage"}, want: authDenied("token malformed: want a JWT (header.payload.signature)")},
		{name: "bearer scheme is case-insensitive", header: map[string]string{"Authorization": "bearer " + hs()}, want: authOK("alice", false, "client")},
		{
			name: "missing token",
			want: authResult{Status: 401, Message: "missing token: send Authorization: Bearer <token>", Challenge: `Bearer realm="exporter"`},
		},
		{
			name: "basic auth", header: map[string]string{"Authorization": "Basic YWxpY2U6cHc="},
			want: authResult{Status: 401, Message: "authorization scheme not supported: send Authorization: Bearer <token>", Challenge: `Bearer realm="exporter"`},
		},
		{name: "garbage", token: "not-a-jwt", want: authDenied("token malformed: want a JWT (header.payload.signature)")},
		{name: "garbage with dots", token: "a.b.c", want: authDenied("token malformed: want a JWT (header.payload.signature)")},
		{name: "too large", token: bigToken, want: authDenied("token too large")},
		{name: "expired beyond leeway", token: hs(claimSet("exp", authNow.Add(-31*time.Second).Unix())), want: authDenied("token expired")},
		{name: "expired within leeway", token: hs(claimSet("exp", authNow.Add(-29*time.Second).Unix())), want: authOK("alice", false, "client")},
		{name: "exp missing", token: hs(claimDel("exp")), want: authDenied("token lacks exp")},
		{name: "exp not a number", token: hs(claimSet("exp", "tomorrow")), want: authDenied("token claim exp has the wrong type")},
		{name: "nbf in the future beyond leeway", token: hs(claimSet("nbf", authNow.Add(5*time.Minute).Unix())), want: authDenied("token not valid yet")},
		{name: "nbf in the future within leeway", token: hs(claimSet("nbf", authNow.Add(20*time.Second).Unix())), want: authOK("alice", false, "client")},
		{name: "iat in the future", token: hs(claimSet("iat", authNow.Add(5*time.Minute).Unix())), want: authDenied("token issued in the future")},
		{name: "iat and nbf missing", token: hs(claimDel("iat"), claimDel("nbf")), want: authOK("alice", false, "client")},
		{
			name: "iss and aud match", config: "iss and aud",
			token: hs(claimSet("iss", "https://idp.example"), claimSet("aud", []string{"other", "exporter-api"})),
			want:  authOK("alice", false, "client"),
		},
		{name: "wrong iss", config: "iss and aud", token: hs(claimSet("iss", "https://evil.example"), claimSet("aud", "exporter-api")), want: authDenied("token issuer not accepted")},
		{name: "iss missing", config: "iss and aud", token: hs(claimSet("aud", "exporter-api")), want: authDenied("token lacks iss")},
		{name: "wrong aud", config: "iss and aud", token: hs(claimSet("iss", "https://idp.example"), claimSet("aud", "other")), want: authDenied("token audience not accepted")},
		{name: "aud missing", config: "iss and aud", token: hs(claimSet("iss", "https://idp.example")), want: authDenied("token lacks aud")},
		{name: "iss and aud not checked unless configured", token: hs(claimSet("iss", "anyone"), claimSet("aud", "anything")), want: authOK("alice", false, "client")},
		{name: "HS256 signed with another secret", token: joseSign(t, jose.HS256, []byte("another-secret-of-at-least-32-bytes!"), "", baseClaims()), want: authDenied("token signature invalid")},
		{name: "RS256 signed with another key", token: joseSign(t, jose.RS256, k.rsaOther, "", baseClaims()), want: authDenied("token signature invalid")},
		{
			name: "alg confusion: HS256 keyed with the RSA public key", config: "rsa only",
			token: joseSign(t, jose.HS256, rsaPublicPEM, "", baseClaims()),
			want:  authDenied("token algorithm not accepted, want RS256"),
		},
		{
			name: "alg confusion: HS256 keyed with the RSA public key DER", config: "rsa only",
			token: joseSign(t, jose.HS256, pkixBlock(t, &k.rsa.PublicKey).Bytes, "", baseClaims()),
			want:  authDenied("token algorithm not accepted, want RS256"),
		},
		{
			name:  "alg none",
			token: authB64(`{"alg":"none","typ":"JWT"}`) + "." + authB64(`{"sub":"alice","role":"operator","exp":1900003600}`) + ".",
			want:  authDenied("token algorithm not accepted, want HS256 or RS256 or ES256"),
		},
		{
			name: "alg none, rsa only", config: "rsa only",
			token: authB64(`{"alg":"none"}`) + "." + authB64(`{"sub":"alice","role":"operator","exp":1900003600}`) + ".",
			want:  authDenied("token algorithm not accepted, want RS256"),
		},
		{name: "RS384 not accepted", token: joseSign(t, jose.RS384, k.rsa, "", baseClaims()), want: authDenied("token algorithm not accepted, want HS256 or RS256 or ES256")},
		{name: "unknown alg", token: authB64(`{"alg":"XS999"}`) + "." + authB64(`{"sub":"alice"}`) + ".c2ln", want: authDenied("token algorithm not accepted, want HS256 or RS256 or ES256")},
		{name: "critical header", token: critical, want: authDenied("token has critical header parameters this server does not support")},
		{name: "no sub", token: hs(claimDel("sub")), want: authDenied("token lacks sub")},
		{name: "empty sub", token: hs(claimSet("sub", "")), want: authDenied("token lacks sub")},
		{name: "sub not a string", token: hs(claimSet("sub", 42)), want: authDenied("token claim sub is not a string")},
		{name: "role as a string", token: hs(claimSet("role", "client")), want: authOK("alice", false, "client")},
		{name: "role as an array", token: hs(claimSet("role", []string{"viewer", "client"})), want: authOK("alice", false, "viewer", "client")},
		{name: "role claim named by config", config: "roles claim", token: hs(claimDel("role"), claimSet("groups", []string{"client"})), want: authOK("alice", false, "client")},
		{name: "role claim named by config ignores role", config: "roles claim", token: hs(), want: authLacksRole("client")},
		{name: "role not a string", token: hs(claimSet("role", 7)), want: authDenied("token claim role is not a string or an array of strings")},
		{name: "role array with a number", token: hs(claimSet("role", []any{"client", 7})), want: authDenied("token claim role is not a string or an array of strings")},
		{name: "missing role", token: hs(claimDel("role")), want: authLacksRole("client")},
		{name: "other role", token: hs(claimSet("role", "viewer")), want: authLacksRole("client")},
		{name: "empty role", token: hs(claimSet("role", "")), want: authLacksRole("client")},
		{name: "operator on a client route", token: hs(claimSet("role", "operator")), want: authOK("alice", true, "operator")},
		{name: "operator in an array", path: "/operator", token: hs(claimSet("role", []string{"client", "operator"})), want: authOK("alice", true, "client", "operator")},
		{name: "client on an operator route", path: "/operator", token: hs(), want: authLacksRole("operator")},
		{name: "role check after expiry", path: "/operator", token: hs(claimSet("exp", authNow.Add(-time.Hour).Unix())), want: authDenied("token expired")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := apps[stdcmp.Or(tc.config, "all")]
			target := stdcmp.Or(tc.path, "/client")
			if tc.source == query {
				target += "?token=" + url.QueryEscape(tc.token)
			}
			req := httptest.NewRequest(http.MethodGet, target, nil)
			switch {
			case tc.token == "":
			case tc.source == apiKey:
				req.Header.Set("X-Api-Key", tc.token)
			case tc.source == "" || tc.source == bearer:
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			got := authDo(t, app, req)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("GET %s: response mismatch (-want +got):\n%s", stdcmp.Or(tc.path, "/client"), diff)
			}
			if tc.token != "" && (strings.Contains(got.Message, tc.token) || strings.Contains(got.Challenge, tc.token)) {
				t.Errorf("GET %s: response echoes the token", target)
			}
		})
	}
}

func TestAuthenticatorKeyFiles(t *testing.T) {
	t.Parallel()
	k := testAuthKeys(t)
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, k.ec1)
	tests := []struct {
		name   string
		cfg    func(t *testing.T) trigger.AuthConfig
		tokens []string // all must verify
	}{
		{
			name: "PEM: PKCS#1 RSA PUBLIC KEY and EC CERTIFICATE",
			cfg: func(t *testing.T) trigger.AuthConfig {
				return trigger.AuthConfig{PublicKeyFile: writePEM(t,
					&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)},
					&pem.Block{Type: "CERTIFICATE", Bytes: cert},
				)}
			},
			tokens: []string{
				joseSign(t, jose.RS256, k.rsa, "", baseClaims()),
				joseSign(t, jose.ES256, k.ec1, "", baseClaims()),
				joseSign(t, jose.ES256, k.ec1, "any-kid", baseClaims()),
			},
		},
		{
			name: "PEM: several keys of one type",
			cfg: func(t *testing.T) trigger.AuthConfig {
				return trigger.AuthConfig{PublicKeyFile: writePEM(t, pkixBlock(t, &k.rsaOther.PublicKey), pkixBlock(t, &k.rsa.PublicKey))}
			},
			tokens: []string{joseSign(t, jose.RS256, k.rsa, "", baseClaims()), joseSign(t, jose.RS256, k.rsaOther, "", baseClaims())},
		},
		{
			name: "JWKS: the only usable key needs no kid; foreign keys are skipped",
			cfg: func(t *testing.T) trigger.AuthConfig {
				return trigger.AuthConfig{JWKSFile: writeJWKS(t,
					jose.JSONWebKey{Key: &k.rsa.PublicKey, KeyID: "enc", Algorithm: "RSA-OAEP", Use: "enc"},
					jose.JSONWebKey{Key: []byte("symmetric-key-symmetric-key-1234"), KeyID: "oct"},
					jose.JSONWebKey{Key: &ec384.PublicKey, KeyID: "p384"},
					jose.JSONWebKey{Key: &k.rsaOther.PublicKey, KeyID: "rs384", Algorithm: "RS384"},
					jose.JSONWebKey{Key: &k.ec2.PublicKey},
				)}
			},
			tokens: []string{joseSign(t, jose.ES256, k.ec2, "", baseClaims())},
		},
		{
			name: "JWKS: keys Go cannot parse are skipped",
			cfg: func(t *testing.T) trigger.AuthConfig {
				ec, err := json.Marshal(jose.JSONWebKey{Key: &k.ec1.PublicKey, KeyID: "e1", Algorithm: "ES256", Use: "sig"})
				if err != nil {
					t.Fatal(err)
				}
				return trigger.AuthConfig{JWKSFile: writeAuthFile(t, "jwks.json", []byte(`{"keys":[`+
					`{"kty":"EC","crv":"secp256k1","alg":"ES256K","kid":"k1","x":"AAAA","y":"AAAA"},`+
					`{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},`+
					`{"kty":"EC","crv":"P-521","kid":"p521","x":"AAAA","y":"AAAA"},`+
					string(ec)+`]}`))}
			},
			tokens: []string{joseSign(t, jose.ES256, k.ec1, "e1", baseClaims()), joseSign(t, jose.ES256, k.ec1, "", baseClaims())},
		},
		{
			name: "JWKS: RSA key without alg, selected by kid",
			cfg: func(t *testing.T) trigger.AuthConfig {
				return trigger.AuthConfig{JWKSFile: writeJWKS(t,
					jose.JSONWebKey{Key: &k.rsa.PublicKey, KeyID: "r1"},
					jose.JSONWebKey{Key: &k.ec1.PublicKey, KeyID: "e1"},
				)}
			},
			tokens: []string{joseSign(t, jose.RS256, k.rsa, "r1", baseClaims()), joseSign(t, jose.ES256, k.ec1, "e1", baseClaims())},
		},
		{
			name: "JWKS with a private key uses its public half",
			cfg: func(t *testing.T) trigger.AuthConfig {
				return trigger.AuthConfig{JWKSFile: writeJWKS(t, jose.JSONWebKey{Key: k.ec1, KeyID: "e1", Algorithm: "ES256"})}
			},
			tokens: []string{joseSign(t, jose.ES256, k.ec1, "e1", baseClaims())},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg(t)
			cfg.RoleClaim, cfg.ClientRole, cfg.OperatorRole = "role", "client", "operator"
			cfg.Now = func() time.Time { return authNow }
			a, err := trigger.NewAuthenticator(cfg)
			if err != nil {
				t.Fatalf("NewAuthenticator() = %v", err)
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

func TestNewAuthenticatorErrors(t *testing.T) {
	t.Parallel()
	k := testAuthKeys(t)
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
		cfg     trigger.AuthConfig
		wantIs  error
		wantIn  []string
		private []byte // must not appear in the error
	}{
		{name: "no key source", cfg: trigger.AuthConfig{}, wantIs: trigger.ErrNoAuthKey, wantIn: []string{"auth-hs256-secret", "auth-public-key-file", "auth-jwks-file"}},
		{name: "short secret", cfg: trigger.AuthConfig{HS256Secret: []byte("short-secret")}, wantIn: []string{"12 bytes, want at least 32"}, private: []byte("short-secret")},
		{name: "public key file missing", cfg: trigger.AuthConfig{PublicKeyFile: missing}, wantIs: os.ErrNotExist, wantIn: []string{missing}},
		{name: "jwks file missing", cfg: trigger.AuthConfig{JWKSFile: missing}, wantIs: os.ErrNotExist, wantIn: []string{missing}},
		{name: "PEM without blocks", cfg: trigger.AuthConfig{PublicKeyFile: writeAuthFile(t, "empty.pem", []byte("nothing here"))}, wantIn: []string{"empty.pem", "no PEM block"}},
		{
			name:    "PEM private key",
			cfg:     trigger.AuthConfig{PublicKeyFile: writePEM(t, pkixBlock(t, &k.rsa.PublicKey), pkcs8Block(t, k.ec1))},
			wantIn:  []string{"keys.pem", "PEM block 2", `"PRIVATE KEY"`, "want PUBLIC KEY"},
			private: pkcs8Block(t, k.ec1).Bytes,
		},
		{name: "PEM corrupt block", cfg: trigger.AuthConfig{PublicKeyFile: writePEM(t, &pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")})}, wantIn: []string{"keys.pem", "PEM block 1 (PUBLIC KEY)"}},
		{name: "PEM small RSA key", cfg: trigger.AuthConfig{PublicKeyFile: writePEM(t, pkixBlock(t, &rsa1024.PublicKey))}, wantIn: []string{"keys.pem", "1024 bits, want at least 2048"}},
		{name: "PEM P-384 key", cfg: trigger.AuthConfig{PublicKeyFile: writePEM(t, pkixBlock(t, &ec384.PublicKey))}, wantIn: []string{"keys.pem", "curve P-384, want P-256"}},
		{name: "JWKS not JSON", cfg: trigger.AuthConfig{JWKSFile: writeAuthFile(t, "bad.json", []byte("{"))}, wantIn: []string{"bad.json", "not a JSON Web Key Set"}},
		{
			name:   "JWKS without a signature key",
			cfg:    trigger.AuthConfig{JWKSFile: writeJWKS(t, jose.JSONWebKey{Key: &k.rsa.PublicKey, KeyID: "enc", Use: "enc"})},
			wantIn: []string{"jwks.json", "no RS256 or ES256 signature key"},
		},
		{
			name:   "JWKS duplicate kid",
			cfg:    trigger.AuthConfig{JWKSFile: writeJWKS(t, jose.JSONWebKey{Key: &k.ec1.PublicKey, KeyID: "k"}, jose.JSONWebKey{Key: &k.ec2.PublicKey, KeyID: "k"})},
			wantIn: []string{"jwks.json", `kid "k" appears twice`},
		},
		{
			name:   "JWKS small RSA key",
			cfg:    trigger.AuthConfig{JWKSFile: writeJWKS(t, jose.JSONWebKey{Key: &rsa1024.PublicKey, KeyID: "small"})},
			wantIn: []string{"jwks.json", `key 1 (kid "small")`, "1024 bits"},
		},
		{
			name:   "JWKS corrupt key",
			cfg:    trigger.AuthConfig{JWKSFile: writeAuthFile(t, "corrupt.json", []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","kid":"c"}]}`))},
			wantIn: []string{"corrupt.json", `key 1 (kid "c")`},
		},
		{name: "roles required", cfg: trigger.AuthConfig{HS256Secret: authSecret, RoleClaim: "role"}, wantIn: []string{"role claim, client role and operator role are required"}},
		{name: "negative leeway", cfg: trigger.AuthConfig{HS256Secret: authSecret, Leeway: -time.Second}, wantIn: []string{"leeway -1s is negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			if cfg.RoleClaim == "" {
				cfg.RoleClaim, cfg.ClientRole, cfg.OperatorRole = "role", "client", "operator"
			}
			a, err := trigger.NewAuthenticator(cfg)
			if err == nil {
				t.Fatalf("NewAuthenticator() = %v, nil, want an error", a)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("NewAuthenticator() = %v, want errors.Is %v", err, tc.wantIs)
			}
			for _, s := range tc.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("NewAuthenticator() = %q, want it to contain %q", err, s)
				}
			}
			if len(tc.private) > 0 && (strings.Contains(err.Error(), string(tc.private)) ||
				strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(tc.private)[:8])) {
				t.Errorf("NewAuthenticator() = %q, leaks key material", err)
			}
		})
	}
}

// privateKeyFiles writes k's private keys in every PEM encoding
// LoadSigningKey accepts.
func privateKeyFiles(t testing.TB, k authKeys) map[string]string {
	t.Helper()
	sec1, err := x509.MarshalECPrivateKey(k.ec1)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"RS256 PKCS#8": writePEM(t, pkcs8Block(t, k.rsa)),
		"RS256 PKCS#1": writePEM(t, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.rsa)}),
		"ES256 PKCS#8": writePEM(t, pkcs8Block(t, k.ec1)),
		"ES256 SEC1":   writePEM(t, &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
	}
}

func TestMintRoundTrip(t *testing.T) {
	t.Parallel()
	k := testAuthKeys(t)
	files := privateKeyFiles(t, k)
	publicPEM := writePEM(t, pkixBlock(t, &k.rsa.PublicKey), pkixBlock(t, &k.ec1.PublicKey))
	jwks := writeJWKS(t,
		jose.JSONWebKey{Key: &k.rsa.PublicKey, KeyID: "r1", Algorithm: "RS256"},
		jose.JSONWebKey{Key: &k.ec1.PublicKey, KeyID: "e1", Algorithm: "ES256"},
	)
	tests := []struct {
		name    string
		key     func(t *testing.T) trigger.SigningKey
		kid     string
		verify  trigger.AuthConfig
		joseKey any
		wantAlg string
	}{
		{
			name:    "HS256",
			key:     func(t *testing.T) trigger.SigningKey { return mustSigningKey(t, authSecret, "") },
			verify:  trigger.AuthConfig{HS256Secret: authSecret},
			joseKey: authSecret, wantAlg: "HS256",
		},
		{
			name:    "RS256 PKCS#8 against PEM",
			key:     func(t *testing.T) trigger.SigningKey { return mustSigningKey(t, nil, files["RS256 PKCS#8"]) },
			verify:  trigger.AuthConfig{PublicKeyFile: publicPEM},
			joseKey: &k.rsa.PublicKey, wantAlg: "RS256",
		},
		{
			name:    "RS256 PKCS#1 against JWKS by kid",
			key:     func(t *testing.T) trigger.SigningKey { return mustSigningKey(t, nil, files["RS256 PKCS#1"]) },
			kid:     "r1",
			verify:  trigger.AuthConfig{JWKSFile: jwks},
			joseKey: &k.rsa.PublicKey, wantAlg: "RS256",
		},
		{
			name:    "ES256 SEC1 against PEM",
			key:     func(t *testing.T) trigger.SigningKey { return mustSigningKey(t, nil, files["ES256 SEC1"]) },
			verify:  trigger.AuthConfig{PublicKeyFile: publicPEM},
			joseKey: &k.ec1.PublicKey, wantAlg: "ES256",
		},
		{
			name:    "ES256 PKCS#8 against JWKS by kid",
			key:     func(t *testing.T) trigger.SigningKey { return mustSigningKey(t, nil, files["ES256 PKCS#8"]) },
			kid:     "e1",
			verify:  trigger.AuthConfig{JWKSFile: jwks},
			joseKey: &k.ec1.PublicKey, wantAlg: "ES256",
		},
		{
			name:    "private key file wins over the secret",
			key:     func(t *testing.T) trigger.SigningKey { return mustSigningKey(t, authSecret, files["ES256 SEC1"]) },
			verify:  trigger.AuthConfig{PublicKeyFile: publicPEM},
			joseKey: &k.ec1.PublicKey, wantAlg: "ES256",
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
			claims := trigger.MintClaims{
				Subject: "bob", Role: "operator", TTL: 2 * time.Hour,
				Issuer: "https://idp.example", Audience: "exporter-api", Now: authNow,
			}
			tok, err := trigger.Mint(key, claims)
			if err != nil {
				t.Fatalf("Mint() = %v", err)
			}

			cfg := tc.verify
			cfg.RoleClaim, cfg.ClientRole, cfg.OperatorRole = "role", "client", "operator"
			cfg.Issuer, cfg.Audience = "https://idp.example", "exporter-api"
			cfg.Now = func() time.Time { return authNow.Add(time.Hour) }
			a, err := trigger.NewAuthenticator(cfg)
			if err != nil {
				t.Fatalf("NewAuthenticator() = %v", err)
			}
			p, err := a.Verify(tok)
			if err != nil {
				t.Fatalf("Verify(Mint()) = %v", err)
			}
			if p.Subject != "bob" || !p.Operator() || !cmp.Equal(p.Roles, []string{"operator"}) {
				t.Errorf("Verify(Mint()) = %+v (operator %v), want bob with role operator", p, p.Operator())
			}
			cfg.Now = func() time.Time { return authNow.Add(2*time.Hour + time.Second) }
			if a, err = trigger.NewAuthenticator(cfg); err != nil {
				t.Fatal(err)
			}
			var aerr *trigger.AuthError
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
			if err := std.Validate(josejwt.Expected{Issuer: "https://idp.example", AnyAudience: josejwt.Audience{"exporter-api"}, Time: authNow.Add(time.Minute)}); err != nil {
				t.Errorf("go-jose validate Mint() = %v", err)
			}
			want := josejwt.Claims{
				Subject: "bob", Issuer: "https://idp.example", Audience: josejwt.Audience{"exporter-api"},
				IssuedAt: josejwt.NewNumericDate(authNow), NotBefore: josejwt.NewNumericDate(authNow),
				Expiry: josejwt.NewNumericDate(authNow.Add(2 * time.Hour)),
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

func mustSigningKey(t testing.TB, secret []byte, file string) trigger.SigningKey {
	t.Helper()
	k, err := trigger.LoadSigningKey(secret, file)
	if err != nil {
		t.Fatalf("LoadSigningKey(%q) = %v", file, err)
	}
	return k
}

func TestMintMinimalClaims(t *testing.T) {
	t.Parallel()
	key := mustSigningKey(t, authSecret, "")
	tok, err := trigger.Mint(key, trigger.MintClaims{Subject: "carol", Role: "client", RoleClaim: "groups", TTL: time.Minute})
	if err != nil {
		t.Fatalf("Mint() = %v", err)
	}
	parsed, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := parsed.Claims(authSecret, &got); err != nil {
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
	key := mustSigningKey(t, authSecret, "")
	valid := trigger.MintClaims{Subject: "alice", Role: "client", TTL: time.Hour}
	tests := []struct {
		name   string
		key    trigger.SigningKey
		edit   func(*trigger.MintClaims)
		wantIn string
	}{
		{name: "no key", edit: func(*trigger.MintClaims) {}, wantIn: "no signing key"},
		{name: "no subject", key: key, edit: func(c *trigger.MintClaims) { c.Subject = "" }, wantIn: "subject is required"},
		{name: "no role", key: key, edit: func(c *trigger.MintClaims) { c.Role = "" }, wantIn: "role is required"},
		{name: "zero ttl", key: key, edit: func(c *trigger.MintClaims) { c.TTL = 0 }, wantIn: "ttl 0s must be positive"},
		{name: "negative ttl", key: key, edit: func(c *trigger.MintClaims) { c.TTL = -time.Hour }, wantIn: "ttl -1h0m0s must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := valid
			tc.edit(&c)
			tok, err := trigger.Mint(tc.key, c)
			if err == nil || !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("Mint() = %q, %v, want an error containing %q", tok, err, tc.wantIn)
			}
		})
	}
}

func TestLoadSigningKeyErrors(t *testing.T) {
	t.Parallel()
	k := testAuthKeys(t)
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
		{name: "nothing configured", wantIs: trigger.ErrNoAuthKey},
		{name: "short secret", secret: []byte("tiny"), wantIn: "4 bytes, want at least 32"},
		{name: "missing file", file: missing, wantIs: os.ErrNotExist, wantIn: missing},
		{name: "no PEM", file: writeAuthFile(t, "x.pem", []byte("hello")), wantIn: "no PEM block"},
		{name: "public key", file: writePEM(t, pkixBlock(t, &k.rsa.PublicKey)), wantIn: `PEM block is "PUBLIC KEY", want PRIVATE KEY`},
		{name: "encrypted", file: writePEM(t, &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("x")}), wantIn: "(unencrypted)"},
		{name: "corrupt", file: writePEM(t, &pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("x")}), wantIn: "keys.pem: EC PRIVATE KEY"},
		{name: "P-384", file: writePEM(t, pkcs8Block(t, ec384)), wantIn: "curve P-384, want P-256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key, err := trigger.LoadSigningKey(tc.secret, tc.file)
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
	key := mustSigningKey(t, authSecret, "")
	key.KeyID = "k1"
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("key", "key", key, "cfg", trigger.AuthConfig{HS256Secret: authSecret})
	outputs := []string{fmt.Sprint(key), fmt.Sprintf("%v %+v %#v %s %q %x", key, key, key, key, key, key), logged.String()}
	for _, out := range outputs {
		if strings.Contains(out, string(authSecret)) || strings.Contains(out, fmt.Sprintf("%x", authSecret)) {
			t.Errorf("output %q leaks the secret", out)
		}
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("output %q lacks REDACTED", out)
		}
	}
}
