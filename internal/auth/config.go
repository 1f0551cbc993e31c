package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/geoexport/exporter/internal/setting"
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
	// minSecretBytes is the shortest HS256 secret accepted: RFC 7518
	// section 3.2 asks for a key at least as long as the hash.
	minSecretBytes = 32
	// minRSABits is the smallest RSA modulus accepted.
	minRSABits = 2048
)

// MaxTokenBytes bounds the work spent on one presented token; Verify
// refuses a longer one with "token too large". A server's read buffer
// must hold a token of this size besides its other headers.
const MaxTokenBytes = 8 << 10

// ErrNoKey is returned by New and LoadSigningKey when no key source is
// configured.
var ErrNoKey = errors.New("auth: no auth key configured: set auth-hs256-secret, auth-public-key-file or auth-jwks-file")

// Config configures the verification of JWT bearer tokens. At least one
// of HS256Secret, PublicKeyFile and JWKSFile is required.
type Config struct {
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

// DefaultConfig returns the defaults of every setting that has one; a
// deployment sets a key.
func DefaultConfig() Config {
	return Config{RoleClaim: "role", ClientRole: "client", OperatorRole: "operator", Leeway: 30 * time.Second}
}

// MaxLeeway is the most clock skew a Config may allow.
const MaxLeeway = 10 * time.Minute

// Validate reports every problem of c at once, each naming its fields
// (setting.FieldError). It does not require a key nor read the key files;
// New does.
func (c Config) Validate() error {
	var errs []error
	if n := len(c.HS256Secret); n > 0 && n < minSecretBytes {
		errs = append(errs, setting.Error(fmt.Errorf("auth: %d bytes is too short for an hs256 secret (%d bytes, want at least %d random bytes)", n, n, minSecretBytes), "HS256Secret"))
	}
	if c.RoleClaim == "" || c.ClientRole == "" || c.OperatorRole == "" {
		errs = append(errs, setting.Error(errors.New("auth: role claim, client role and operator role are required"), "RoleClaim", "ClientRole", "OperatorRole"))
	}
	switch {
	case c.Leeway < 0:
		errs = append(errs, setting.Error(fmt.Errorf("auth: leeway %v is negative", c.Leeway), "Leeway"))
	case c.Leeway > MaxLeeway:
		errs = append(errs, setting.Error(fmt.Errorf("auth: leeway %v is more than %v", c.Leeway, MaxLeeway), "Leeway"))
	}
	return errors.Join(errs...)
}

// LogValue logs the configuration without the secret.
func (c Config) LogValue() slog.Value {
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
