package trigger

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
)

// Algorithms the exporter signs and verifies. Nothing else is accepted, so
// a token cannot pick its own verification method (no "none", no HS256
// keyed with a public key).
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algES256 = "ES256"
)

const (
	// authRealm is the realm of every WWW-Authenticate challenge.
	authRealm = "exporter"
	// minSecretBytes is the shortest HS256 secret accepted: RFC 7518
	// section 3.2 asks for a key at least as long as the hash.
	minSecretBytes = 32
	// minRSABits is the smallest RSA modulus accepted.
	minRSABits = 2048
	// maxTokenBytes bounds the work spent on one presented token; a longer
	// one is refused with 401 "token too large".
	maxTokenBytes = 8 << 10
	// maxHeaderBytes is the server's read buffer, which bounds the request
	// line and headers together (a request beyond it is refused with 431
	// before any handler runs). It holds a token of maxTokenBytes, in a
	// header or in the token parameter, and 8 KiB of other headers.
	// fasthttp's default of 4 KiB refused tokens that identity providers
	// issue.
	maxHeaderBytes = maxTokenBytes + 8<<10
)

// ErrNoAuthKey is returned by NewAuthenticator and LoadSigningKey when no
// key source is configured.
var ErrNoAuthKey = errors.New("trigger: no auth key configured: set auth-hs256-secret, auth-public-key-file or auth-jwks-file")

// AuthConfig configures the verification of JWT bearer tokens. At least one
// of HS256Secret, PublicKeyFile and JWKSFile is required.
type AuthConfig struct {
	// HS256Secret verifies HS256 tokens; at least 32 bytes. Empty: HS256
	// tokens are rejected.
	HS256Secret []byte
	// PublicKeyFile is a PEM file of one or more PUBLIC KEY, RSA PUBLIC KEY
	// or CERTIFICATE blocks: RSA keys (at least 2048 bits) verify RS256,
	// EC P-256 keys verify ES256. Certificates are only key containers:
	// their validity dates and chain are not checked. Empty: none.
	PublicKeyFile string
	// JWKSFile is a JSON Web Key Set file. Its RS256 and ES256 signature
	// keys are selected by the token's kid; a token without kid may use
	// the set's only key. Keys for other algorithms or for encryption are
	// skipped. Empty: none.
	JWKSFile string
	// Issuer and Audience, when set, must match the iss and aud claims.
	// Empty: not checked.
	Issuer   string
	Audience string
	// RoleClaim names the claim holding the caller's role, a string or an
	// array of strings. Required.
	RoleClaim string
	// ClientRole is the role of API clients. Required.
	ClientRole string
	// OperatorRole is the role of operators; it satisfies every role
	// requirement. Required.
	OperatorRole string
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero: none.
	Leeway time.Duration
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Validate reports every problem of c at once. It does not read the key
// files; NewAuthenticator does.
func (c AuthConfig) Validate() error {
	var errs []error
	if len(c.HS256Secret) == 0 && c.PublicKeyFile == "" && c.JWKSFile == "" {
		errs = append(errs, ErrNoAuthKey)
	}
	if n := len(c.HS256Secret); n > 0 && n < minSecretBytes {
		errs = append(errs, fmt.Errorf("trigger: hs256 secret is %d bytes, want at least %d", n, minSecretBytes))
	}
	if c.RoleClaim == "" || c.ClientRole == "" || c.OperatorRole == "" {
		errs = append(errs, errors.New("trigger: auth role claim, client role and operator role are required"))
	}
	if c.Leeway < 0 {
		errs = append(errs, fmt.Errorf("trigger: auth leeway %v is negative", c.Leeway))
	}
	return errors.Join(errs...)
}

// LogValue logs the configuration without the secret.
func (c AuthConfig) LogValue() slog.Value {
	secret := ""
	if len(c.HS256Secret) > 0 {
		secret = "REDACTED"
	}
	return slog.GroupValue(
		slog.String("hs256_secret", secret),
		slog.String("public_key_file", c.PublicKeyFile),
		slog.String("jwks_file", c.JWKSFile),
		slog.String("issuer", c.Issuer),
		slog.String("audience", c.Audience),
		slog.String("role_claim", c.RoleClaim),
		slog.String("client_role", c.ClientRole),
		slog.String("operator_role", c.OperatorRole),
		slog.Duration("leeway", c.Leeway),
	)
}

// verificationKey is a public key and the one algorithm it verifies.
type verificationKey struct {
	alg string
	key any
}

// Authenticator verifies bearer tokens. It is safe for concurrent use.
type Authenticator struct {
	cfg     AuthConfig
	pemKeys []verificationKey
	jwks    []verificationKey          // in file order
	jwksKid map[string]verificationKey // the JWKS keys that have a kid
	methods []string
	parser  *jwt.Parser
}

// NewAuthenticator validates cfg and loads its key files. Errors name the
// file and the PEM block or JWK at fault, never key material.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.HS256Secret = slices.Clone(cfg.HS256Secret)
	a := &Authenticator{cfg: cfg, jwksKid: map[string]verificationKey{}}
	if cfg.PublicKeyFile != "" {
		keys, err := loadPublicKeyFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		a.pemKeys = keys
	}
	if cfg.JWKSFile != "" {
		keys, byKid, err := loadJWKSFile(cfg.JWKSFile)
		if err != nil {
			return nil, err
		}
		a.jwks, a.jwksKid = keys, byKid
	}
	if len(cfg.HS256Secret) > 0 {
		a.methods = append(a.methods, algHS256)
	}
	for _, k := range slices.Concat(a.pemKeys, a.jwks) {
		if !slices.Contains(a.methods, k.alg) {
			a.methods = append(a.methods, k.alg)
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(a.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

// ClientRole returns the configured role of API clients, for Require.
func (a *Authenticator) ClientRole() string { return a.cfg.ClientRole }

// OperatorRole returns the configured operator role, for Require.
func (a *Authenticator) OperatorRole() string { return a.cfg.OperatorRole }

// Algorithms returns the signature algorithms the configured keys accept.
func (a *Authenticator) Algorithms() []string { return slices.Clone(a.methods) }

// Principal is the verified caller of a request.
type Principal struct {
	// Subject is the token's sub claim, never empty.
	Subject string
	// Roles are the non-empty values of the role claim.
	Roles []string
	// operator is whether Roles include the configured operator role.
	operator bool
}

// Operator reports whether the principal has the operator role, which
// satisfies every role requirement.
func (p Principal) Operator() bool { return p.operator }

// AuthError is a request that failed authentication (401) or
// authorisation (403). Message is safe to show: it never holds the token.
// The server's error handler answers Status with {"message": Message} and,
// when Challenge is set, a WWW-Authenticate header of that value.
type AuthError struct {
	// Status is fiber.StatusUnauthorized or fiber.StatusForbidden.
	Status int
	// Message says what is wrong, for example "token expired".
	Message string
	// Challenge is the WWW-Authenticate value (RFC 6750): error
	// "invalid_token" on 401 and "insufficient_scope" on 403; a bare
	// `Bearer realm="exporter"` when no token was sent.
	Challenge string
}

func (e *AuthError) Error() string { return e.Message }

// unauthorized is a 401 for a token that was sent but is not acceptable.
func unauthorized(format string, a ...any) *AuthError {
	msg := fmt.Sprintf(format, a...)
	return &AuthError{
		Status:    fiber.StatusUnauthorized,
		Message:   msg,
		Challenge: challenge("invalid_token", msg),
	}
}

func forbidden(role string) *AuthError {
	msg := fmt.Sprintf("token lacks role %s", role)
	return &AuthError{Status: fiber.StatusForbidden, Message: msg, Challenge: challenge("insufficient_scope", msg)}
}

func challenge(code, description string) string {
	// A quoted-string: drop what would end or escape it.
	description = strings.NewReplacer(`"`, "'", `\`, "/").Replace(description)
	return fmt.Sprintf(`Bearer realm=%q, error=%q, error_description="%s"`, authRealm, code, description)
}

// principalKey is the c.Locals key of the request's Principal.
type principalKey struct{}

// PrincipalFrom returns the Principal that Require stored for this request.
func PrincipalFrom(c *fiber.Ctx) (Principal, bool) {
	p, ok := c.Locals(principalKey{}).(Principal)
	return p, ok
}

// Require returns middleware that authenticates the request, admits it when
// the principal has role or the operator role, stores the Principal for
// PrincipalFrom and calls the next handler. Otherwise it returns an
// *AuthError: 401 without an acceptable token, 403 without the role. An
// empty role admits operators only.
func (a *Authenticator) Require(role string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, err := a.Authenticate(c)
		if err != nil {
			return err
		}
		if !p.operator && (role == "" || !slices.Contains(p.Roles, role)) {
			if role == "" {
				role = a.cfg.OperatorRole
			}
			return forbidden(role)
		}
		c.Locals(principalKey{}, p)
		return c.Next()
	}
}

// Authenticate verifies the request's token and returns its principal. The
// token is taken from, in order, the Authorization: Bearer header, the
// x-api-key header and the token query parameter (for browser download
// links). Every error is an *AuthError with status 401.
func (a *Authenticator) Authenticate(c *fiber.Ctx) (Principal, error) {
	raw, err := tokenFrom(c)
	if err != nil {
		return Principal{}, err
	}
	return a.Verify(raw)
}

// tokenFrom finds the request's token.
func tokenFrom(c *fiber.Ctx) (string, error) {
	otherScheme := false
	if h := strings.TrimSpace(c.Get(fiber.HeaderAuthorization)); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") {
			if tok = strings.TrimSpace(tok); tok != "" {
				return tok, nil
			}
		} else {
			otherScheme = true
		}
	}
	if tok := strings.TrimSpace(c.Get("X-Api-Key")); tok != "" {
		return tok, nil
	}
	if tok := strings.TrimSpace(c.Query("token")); tok != "" {
		return tok, nil
	}
	msg := "missing token: send Authorization: Bearer <token>"
	if otherScheme {
		msg = "authorization scheme not supported: send Authorization: Bearer <token>"
	}
	return "", &AuthError{Status: fiber.StatusUnauthorized, Message: msg, Challenge: fmt.Sprintf("Bearer realm=%q", authRealm)}
}

// Verify checks a raw token as Authenticate does: signature, algorithm,
// exp (required), nbf, iat, iss and aud when configured, and a non-empty
// sub. Every error is an *AuthError with status 401.
func (a *Authenticator) Verify(raw string) (Principal, error) {
	if len(raw) > maxTokenBytes {
		return Principal{}, unauthorized("token too large")
	}
	claims := jwt.MapClaims{}
	tok, err := a.parser.ParseWithClaims(raw, claims, a.keyFor)
	if err != nil {
		return Principal{}, a.classify(tok, claims, err)
	}
	sub, err := claims.GetSubject()
	if err != nil {
		return Principal{}, unauthorized("token claim sub is not a string")
	}
	if sub == "" {
		return Principal{}, unauthorized("token lacks sub")
	}
	roles, err := rolesOf(claims[a.cfg.RoleClaim])
	if err != nil {
		return Principal{}, unauthorized("token claim %s is not a string or an array of strings", a.cfg.RoleClaim)
	}
	return Principal{Subject: sub, Roles: roles, operator: slices.Contains(roles, a.cfg.OperatorRole)}, nil
}

// rolesOf reads a role claim: absent, a string or an array of strings.
func rolesOf(v any) ([]string, error) {
	var roles []string
	switch v := v.(type) {
	case nil:
	case string:
		if v != "" {
			roles = append(roles, v)
		}
	case []any:
		for _, r := range v {
			s, ok := r.(string)
			if !ok {
				return nil, errors.New("role is not a string")
			}
			if s != "" {
				roles = append(roles, s)
			}
		}
	default:
		return nil, errors.New("roles are not a string or an array")
	}
	return roles, nil
}

// keyFor is the jwt.Keyfunc: it returns the keys that may have signed tok.
// The parser has already restricted tok's algorithm to a.methods.
func (a *Authenticator) keyFor(tok *jwt.Token) (any, error) {
	if _, ok := tok.Header["crit"]; ok {
		// RFC 7515 section 4.1.11: extensions we do not understand.
		return nil, unauthorized("token has critical header parameters this server does not support")
	}
	alg := tok.Method.Alg()
	if alg == algHS256 {
		return a.cfg.HS256Secret, nil
	}
	var set jwt.VerificationKeySet
	for _, k := range a.pemKeys {
		if k.alg == alg {
			set.Keys = append(set.Keys, k.key)
		}
	}
	kid, _ := tok.Header["kid"].(string)
	switch {
	case len(a.jwks) == 0:
	case kid != "":
		k, ok := a.jwksKid[kid]
		switch {
		case ok && k.alg == alg:
			set.Keys = append(set.Keys, k.key)
		case ok && len(set.Keys) == 0:
			return nil, unauthorized("token algorithm %s does not match its key", alg)
		case !ok && len(set.Keys) == 0:
			return nil, unauthorized("token key id unknown")
		}
	case len(a.jwks) == 1:
		if a.jwks[0].alg == alg {
			set.Keys = append(set.Keys, a.jwks[0].key)
		}
	case len(set.Keys) == 0:
		return nil, unauthorized("token lacks kid: the key set has several keys")
	}
	if len(set.Keys) == 0 {
		return nil, unauthorized("token signature invalid: no %s key", alg)
	}
	return set, nil
}

// classify turns a parse error into the 401 that says what is wrong.
func (a *Authenticator) classify(tok *jwt.Token, claims jwt.MapClaims, err error) *AuthError {
	var aerr *AuthError
	if errors.As(err, &aerr) {
		return aerr
	}
	algOK := tok != nil && tok.Method != nil && slices.Contains(a.methods, tok.Method.Alg())
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthorized("token malformed: want a JWT (header.payload.signature)")
	case !algOK && (errors.Is(err, jwt.ErrTokenUnverifiable) || errors.Is(err, jwt.ErrTokenSignatureInvalid)):
		return unauthorized("token algorithm not accepted, want %s", strings.Join(a.methods, " or "))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return unauthorized("token signature invalid")
	case errors.Is(err, jwt.ErrInvalidType):
		return unauthorized("token claim %s has the wrong type", badlyTypedClaim(claims))
	case errors.Is(err, jwt.ErrTokenExpired):
		return unauthorized("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return unauthorized("token not valid yet")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return unauthorized("token issued in the future")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return unauthorized("token lacks %s", missingClaim(claims, a.cfg.Issuer != "", a.cfg.Audience != ""))
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return unauthorized("token issuer not accepted")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return unauthorized("token audience not accepted")
	}
	return unauthorized("token invalid")
}

// missingClaim names the first required claim that claims lack.
func missingClaim(claims jwt.MapClaims, wantIss, wantAud bool) string {
	if exp, err := claims.GetExpirationTime(); err == nil && exp == nil {
		return "exp"
	}
	if iss, err := claims.GetIssuer(); wantIss && err == nil && iss == "" {
		return "iss"
	}
	if wantAud {
		return "aud"
	}
	return "a required claim"
}

// badlyTypedClaim names the first registered claim of the wrong type.
func badlyTypedClaim(claims jwt.MapClaims) string {
	for _, name := range []string{"exp", "nbf", "iat"} {
		switch claims[name].(type) {
		case nil, float64, json.Number:
		default:
			return name
		}
	}
	if _, err := claims.GetIssuer(); err != nil {
		return "iss"
	}
	return "aud"
}

// loadPublicKeyFile reads a PEM file of public keys and certificates.
func loadPublicKeyFile(path string) ([]verificationKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read auth public key file: %w", err)
	}
	var keys []verificationKey
	for i := 1; ; i++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var pub any
		switch block.Type {
		case "PUBLIC KEY", "EC PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("auth public key file %s: PEM block %d is %q, want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", path, i, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("auth public key file %s: PEM block %d (%s): %w", path, i, block.Type, err)
		}
		k, err := newVerificationKey(pub, "")
		if err != nil {
			return nil, fmt.Errorf("auth public key file %s: PEM block %d (%s): %w", path, i, block.Type, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("auth public key file %s: no PEM block", path)
	}
	return keys, nil
}

// errKeySkipped marks a JWK that is valid but not for us (other algorithm,
// encryption key); it is left out of the set.
var errKeySkipped = errors.New("trigger: key not for RS256 or ES256 signatures")

// newVerificationKey checks a public key and pairs it with its algorithm.
// alg is the JWK's alg parameter; empty when it has none.
func newVerificationKey(pub any, alg string) (verificationKey, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if alg != "" && alg != algRS256 {
			return verificationKey{}, errKeySkipped
		}
		if n := pub.N.BitLen(); n < minRSABits {
			return verificationKey{}, fmt.Errorf("rsa key of %d bits, want at least %d", n, minRSABits)
		}
		return verificationKey{alg: algRS256, key: pub}, nil
	case *ecdsa.PublicKey:
		if alg != "" && alg != algES256 {
			return verificationKey{}, errKeySkipped
		}
		if pub.Curve != elliptic.P256() {
			return verificationKey{}, fmt.Errorf("ec key on curve %s, want P-256 (ES256)", pub.Curve.Params().Name)
		}
		return verificationKey{alg: algES256, key: pub}, nil
	}
	return verificationKey{}, fmt.Errorf("key type %T not supported, want RSA or EC P-256", pub)
}

// loadJWKSFile reads a JSON Web Key Set and keeps its RS256 and ES256
// signature keys.
func loadJWKSFile(path string) ([]verificationKey, map[string]verificationKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read auth jwks file: %w", err)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, nil, fmt.Errorf("auth jwks file %s: not a JSON Web Key Set: %w", path, err)
	}
	var keys []verificationKey
	byKid := map[string]verificationKey{}
	for i, m := range set.Keys {
		switch {
		case m.USE != "" && m.USE != jwkset.UseSig: // an encryption key
			continue
		case m.ALG != "" && m.ALG != algRS256 && m.ALG != algES256:
			continue
		case m.KTY != jwkset.KtyRSA && m.KTY != jwkset.KtyEC:
			continue
		case m.KTY == jwkset.KtyEC && m.CRV != jwkset.CrvP256:
			continue
		}
		m.D, m.P, m.Q, m.DP, m.DQ, m.QI, m.OTH = "", "", "", "", "", "", nil // public parts only
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			return nil, nil, fmt.Errorf("auth jwks file %s: key %d (kid %q): %w", path, i+1, m.KID, err)
		}
		k, err := newVerificationKey(jwk.Key(), m.ALG.String())
		if errors.Is(err, errKeySkipped) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("auth jwks file %s: key %d (kid %q): %w", path, i+1, m.KID, err)
		}
		if m.KID != "" {
			if _, dup := byKid[m.KID]; dup {
				return nil, nil, fmt.Errorf("auth jwks file %s: kid %q appears twice", path, m.KID)
			}
			byKid[m.KID] = k
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, nil, fmt.Errorf("auth jwks file %s: no RS256 or ES256 signature key", path)
	}
	return keys, byKid, nil
}

// SigningKey signs tokens for Mint: an HS256 secret, an RSA private key
// (RS256) or an EC P-256 private key (ES256). It prints and logs without
// its key material.
type SigningKey struct {
	// KeyID, when set, is written as the kid header, for servers that
	// select keys from a JWKS.
	KeyID string
	alg   string
	key   any
}

// Algorithm returns HS256, RS256 or ES256; empty for the zero SigningKey.
func (k SigningKey) Algorithm() string { return k.alg }

// String returns the algorithm and kid, never the key.
func (k SigningKey) String() string {
	return fmt.Sprintf("SigningKey(%s, kid %q, key REDACTED)", k.alg, k.KeyID)
}

// Format writes String for every fmt verb, %#v included.
func (k SigningKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// LogValue makes slog log the algorithm and kid only.
func (k SigningKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("alg", k.alg), slog.String("kid", k.KeyID), slog.String("key", "REDACTED"))
}

// NewHS256Key returns a key that signs HS256 with secret, which must be at
// least 32 bytes.
func NewHS256Key(secret []byte) (SigningKey, error) {
	if len(secret) < minSecretBytes {
		return SigningKey{}, fmt.Errorf("trigger: hs256 secret is %d bytes, want at least %d", len(secret), minSecretBytes)
	}
	return SigningKey{alg: algHS256, key: slices.Clone(secret)}, nil
}

// LoadSigningKey returns the key of privateKeyFile when it is set (a PEM
// PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block, unencrypted), else
// an HS256 key of hs256Secret, else ErrNoAuthKey.
func LoadSigningKey(hs256Secret []byte, privateKeyFile string) (SigningKey, error) {
	if privateKeyFile == "" {
		if len(hs256Secret) == 0 {
			return SigningKey{}, ErrNoAuthKey
		}
		return NewHS256Key(hs256Secret)
	}
	data, err := os.ReadFile(privateKeyFile)
	if err != nil {
		return SigningKey{}, fmt.Errorf("read private key file: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return SigningKey{}, fmt.Errorf("private key file %s: no PEM block", privateKeyFile)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return SigningKey{}, fmt.Errorf("private key file %s: PEM block is %q, want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY (unencrypted)", privateKeyFile, block.Type)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("private key file %s: %s: %w", privateKeyFile, block.Type, err)
	}
	k, err := NewSigningKey(key)
	if err != nil {
		return SigningKey{}, fmt.Errorf("private key file %s: %w", privateKeyFile, err)
	}
	return k, nil
}

// NewSigningKey returns a key that signs RS256 with an *rsa.PrivateKey of
// at least 2048 bits, or ES256 with an *ecdsa.PrivateKey on P-256.
func NewSigningKey(key any) (SigningKey, error) {
	switch key := key.(type) {
	case *rsa.PrivateKey:
		if n := key.N.BitLen(); n < minRSABits {
			return SigningKey{}, fmt.Errorf("rsa key of %d bits, want at least %d", n, minRSABits)
		}
		return SigningKey{alg: algRS256, key: key}, nil
	case *ecdsa.PrivateKey:
		if key.Curve != elliptic.P256() {
			return SigningKey{}, fmt.Errorf("ec key on curve %s, want P-256 (ES256)", key.Curve.Params().Name)
		}
		return SigningKey{alg: algES256, key: key}, nil
	}
	return SigningKey{}, fmt.Errorf("key type %T not supported, want RSA or EC P-256", key)
}

// MintClaims are the claims of a token made by Mint.
type MintClaims struct {
	// Subject is the sub claim. Required.
	Subject string
	// RoleClaim names the role claim. Empty: "role".
	RoleClaim string
	// Role is the role claim's value, a string. Required.
	Role string
	// TTL is the time from Now to exp. Required, positive.
	TTL time.Duration
	// Issuer and Audience become iss and aud when set.
	Issuer   string
	Audience string
	// Now sets iat and nbf. Zero: the current time.
	Now time.Time
}

// Mint signs a token with sub, the role claim, iat, nbf, exp and, when
// set, iss and aud.
func Mint(key SigningKey, claims MintClaims) (string, error) {
	var errs []error
	if key.alg == "" {
		errs = append(errs, errors.New("trigger: mint: no signing key"))
	}
	if claims.Subject == "" {
		errs = append(errs, errors.New("trigger: mint: subject is required"))
	}
	if claims.Role == "" {
		errs = append(errs, errors.New("trigger: mint: role is required"))
	}
	if claims.TTL <= 0 {
		errs = append(errs, fmt.Errorf("trigger: mint: ttl %v must be positive", claims.TTL))
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	now := claims.Now
	if now.IsZero() {
		now = time.Now()
	}
	roleClaim := claims.RoleClaim
	if roleClaim == "" {
		roleClaim = "role"
	}
	mc := jwt.MapClaims{
		"sub":     claims.Subject,
		roleClaim: claims.Role,
		"iat":     now.Unix(),
		"nbf":     now.Unix(),
		"exp":     now.Add(claims.TTL).Unix(),
	}
	if claims.Issuer != "" {
		mc["iss"] = claims.Issuer
	}
	if claims.Audience != "" {
		mc["aud"] = claims.Audience
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(key.alg), mc)
	if key.KeyID != "" {
		tok.Header["kid"] = key.KeyID
	}
	s, err := tok.SignedString(key.key)
	if err != nil {
		return "", fmt.Errorf("sign %s token: %w", key.alg, err)
	}
	return s, nil
}
