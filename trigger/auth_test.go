package trigger_test

import (
	stdcmp "cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/gofiber/fiber/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/geoexport/exporter/internal/auth"
	"github.com/geoexport/exporter/internal/auth/authtest"
	"github.com/geoexport/exporter/trigger"
)

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
	k := authtest.TestKeys(t)
	rsaPEM := authtest.WritePEM(t, authtest.PKIXBlock(t, &k.RSA.PublicKey))
	jwks := authtest.WriteJWKS(t,
		jose.JSONWebKey{Key: &k.EC1.PublicKey, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
		jose.JSONWebKey{Key: &k.EC2.PublicKey, KeyID: "ec-2", Algorithm: "ES256", Use: "sig"},
	)
	base := auth.Config{
		RoleClaim: "role", ClientRole: "client", OperatorRole: "operator",
		Leeway: 30 * time.Second, Now: func() time.Time { return authtest.Now },
	}
	configs := map[string]func(*auth.Config){
		"all": func(c *auth.Config) {
			c.HS256Secret, c.PublicKeyFile, c.JWKSFile = authtest.Secret, rsaPEM, jwks
		},
		"rsa only": func(c *auth.Config) { c.PublicKeyFile = rsaPEM },
		"iss and aud": func(c *auth.Config) {
			c.HS256Secret, c.Issuer, c.Audience = authtest.Secret, "https://idp.example", "exporter-api"
		},
		"roles claim": func(c *auth.Config) { c.HS256Secret, c.RoleClaim = authtest.Secret, "groups" },
	}
	apps := map[string]*fiber.App{}
	for name, edit := range configs {
		cfg := base
		edit(&cfg)
		v, err := auth.New(cfg)
		if err != nil {
			t.Fatalf("auth.New(%s) = %v", name, err)
		}
		apps[name] = authApp(trigger.NewAuthenticator(v))
	}

	hs := func(edits ...func(map[string]any)) string {
		return authtest.Sign(t, jose.HS256, authtest.Secret, "", authtest.Claims(edits...))
	}
	rs := authtest.Sign(t, jose.RS256, k.RSA, "", authtest.Claims())
	rsaPublicPEM, err := os.ReadFile(rsaPEM)
	if err != nil {
		t.Fatal(err)
	}
	bigToken := hs(claimSet("pad", strings.Repeat("x", 9000)))
	critical := func() string {
		opts := (&jose.SignerOptions{}).WithType("JWT").WithCritical("exp").WithHeader("exp", authtest.Now.Unix())
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: authtest.Secret}, opts)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := josejwt.Signed(sig).Claims(authtest.Claims()).Serialize()
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
		{name: "ES256 from JWKS by kid", token: authtest.Sign(t, jose.ES256, k.EC2, "ec-2", authtest.Claims()), want: authOK("alice", false, "client")},
		{name: "ES256 first JWKS key", token: authtest.Sign(t, jose.ES256, k.EC1, "ec-1", authtest.Claims()), want: authOK("alice", false, "client")},
		{name: "ES256 unknown kid", token: authtest.Sign(t, jose.ES256, k.EC1, "ec-9", authtest.Claims()), want: authDenied("token key id unknown")},
		{name: "ES256 without kid, two keys in the set", token: authtest.Sign(t, jose.ES256, k.EC1, "", authtest.Claims()), want: authDenied("token lacks kid: the key set has several keys")},
		{name: "ES256 kid of another key", token: authtest.Sign(t, jose.ES256, k.EC1, "ec-2", authtest.Claims()), want: authDenied("token signature invalid")},
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
		{name: "expired beyond leeway", token: hs(claimSet("exp", authtest.Now.Add(-31*time.Second).Unix())), want: authDenied("token expired")},
		{name: "expired within leeway", token: hs(claimSet("exp", authtest.Now.Add(-29*time.Second).Unix())), want: authOK("alice", false, "client")},
		{name: "exp missing", token: hs(claimDel("exp")), want: authDenied("token lacks exp")},
		{name: "exp not a number", token: hs(claimSet("exp", "tomorrow")), want: authDenied("token claim exp has the wrong type")},
		{name: "nbf in the future beyond leeway", token: hs(claimSet("nbf", authtest.Now.Add(5*time.Minute).Unix())), want: authDenied("token not valid yet")},
		{name: "nbf in the future within leeway", token: hs(claimSet("nbf", authtest.Now.Add(20*time.Second).Unix())), want: authOK("alice", false, "client")},
		{name: "iat in the future", token: hs(claimSet("iat", authtest.Now.Add(5*time.Minute).Unix())), want: authDenied("token issued in the future")},
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
		{name: "HS256 signed with another secret", token: authtest.Sign(t, jose.HS256, []byte("another-secret-of-at-least-32-bytes!"), "", authtest.Claims()), want: authDenied("token signature invalid")},
		{name: "RS256 signed with another key", token: authtest.Sign(t, jose.RS256, k.RSAOther, "", authtest.Claims()), want: authDenied("token signature invalid")},
		{
			name: "alg confusion: HS256 keyed with the RSA public key", config: "rsa only",
			token: authtest.Sign(t, jose.HS256, rsaPublicPEM, "", authtest.Claims()),
			want:  authDenied("token algorithm not accepted, want RS256"),
		},
		{
			name: "alg confusion: HS256 keyed with the RSA public key DER", config: "rsa only",
			token: authtest.Sign(t, jose.HS256, authtest.PKIXBlock(t, &k.RSA.PublicKey).Bytes, "", authtest.Claims()),
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
		{name: "RS384 not accepted", token: authtest.Sign(t, jose.RS384, k.RSA, "", authtest.Claims()), want: authDenied("token algorithm not accepted, want HS256 or RS256 or ES256")},
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
		{name: "role check after expiry", path: "/operator", token: hs(claimSet("exp", authtest.Now.Add(-time.Hour).Unix())), want: authDenied("token expired")},
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
