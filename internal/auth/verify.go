package auth

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// verificationKey is a public key and the one algorithm it verifies.
type verificationKey struct {
	alg string
	key any
}

// Verifier verifies bearer tokens. It is safe for concurrent use.
type Verifier struct {
	cfg     Config
	pemKeys []verificationKey
	jwks    []verificationKey          // in file order
	jwksKid map[string]verificationKey // the JWKS keys that have a kid
	methods []string
	parser  *jwt.Parser
}

// New validates cfg and loads its key files. Errors name the file and the
// PEM block or JWK at fault, never key material.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.HS256Secret) == 0 && cfg.PublicKeyFile == "" && cfg.JWKSFile == "" {
		return nil, ErrNoKey
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.HS256Secret = slices.Clone(cfg.HS256Secret)
	v := &Verifier{cfg: cfg, jwksKid: map[string]verificationKey{}}
	if cfg.PublicKeyFile != "" {
		keys, err := loadPublicKeyFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		v.pemKeys = keys
	}
	if cfg.JWKSFile != "" {
		keys, byKid, err := loadJWKSFile(cfg.JWKSFile)
		if err != nil {
			return nil, err
		}
		v.jwks, v.jwksKid = keys, byKid
	}
	if len(cfg.HS256Secret) > 0 {
		v.methods = append(v.methods, algHS256)
	}
	for _, k := range slices.Concat(v.pemKeys, v.jwks) {
		if !slices.Contains(v.methods, k.alg) {
			v.methods = append(v.methods, k.alg)
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
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
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// ClientRole returns the configured role of API clients.
func (v *Verifier) ClientRole() string { return v.cfg.ClientRole }

// OperatorRole returns the configured operator role.
func (v *Verifier) OperatorRole() string { return v.cfg.OperatorRole }

// Algorithms returns the signature algorithms the configured keys accept.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.methods) }

// Principal is the verified caller.
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

// Authorize admits p when it has role or the operator role; an empty role
// admits operators only. Otherwise it returns an *Error of Kind Forbidden
// naming the role (the operator role when role is empty).
func (v *Verifier) Authorize(p Principal, role string) error {
	if p.operator || (role != "" && slices.Contains(p.Roles, role)) {
		return nil
	}
	if role == "" {
		role = v.cfg.OperatorRole
	}
	return forbidden(role)
}

// Verify checks a raw token: size, signature, algorithm, exp (required),
// nbf, iat, iss and aud when configured, a non-empty sub and the role
// claim's type. Every error is an *Error of Kind Unauthenticated.
func (v *Verifier) Verify(raw string) (Principal, error) {
	if len(raw) > MaxTokenBytes {
		return Principal{}, unauthorized("token too large")
	}
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(raw, claims, v.keyFor)
	if err != nil {
		return Principal{}, v.classify(tok, claims, err)
	}
	sub, err := claims.GetSubject()
	if err != nil {
		return Principal{}, unauthorized("token claim sub is not a string")
	}
	if sub == "" {
		return Principal{}, unauthorized("token lacks sub")
	}
	roles, err := rolesOf(claims[v.cfg.RoleClaim])
	if err != nil {
		return Principal{}, unauthorized("token claim %s is not a string or an array of strings", v.cfg.RoleClaim)
	}
	return Principal{Subject: sub, Roles: roles, operator: slices.Contains(roles, v.cfg.OperatorRole)}, nil
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
// The parser has already restricted tok's algorithm to v.methods.
func (v *Verifier) keyFor(tok *jwt.Token) (any, error) {
	if _, ok := tok.Header["crit"]; ok {
		// RFC 7515 section 4.1.11: extensions we do not understand.
		return nil, unauthorized("token has critical header parameters this server does not support")
	}
	alg := tok.Method.Alg()
	if alg == algHS256 {
		return v.cfg.HS256Secret, nil
	}
	var set jwt.VerificationKeySet
	for _, k := range v.pemKeys {
		if k.alg == alg {
			set.Keys = append(set.Keys, k.key)
		}
	}
	kid, _ := tok.Header["kid"].(string)
	switch {
	case len(v.jwks) == 0:
	case kid != "":
		k, ok := v.jwksKid[kid]
		switch {
		case ok && k.alg == alg:
			set.Keys = append(set.Keys, k.key)
		case ok && len(set.Keys) == 0:
			return nil, unauthorized("token algorithm %s does not match its key", alg)
		case !ok && len(set.Keys) == 0:
			return nil, unauthorized("token key id unknown")
		}
	case len(v.jwks) == 1:
		if v.jwks[0].alg == alg {
			set.Keys = append(set.Keys, v.jwks[0].key)
		}
	case len(set.Keys) == 0:
		return nil, unauthorized("token lacks kid: the key set has several keys")
	}
	if len(set.Keys) == 0 {
		return nil, unauthorized("token signature invalid: no %s key", alg)
	}
	return set, nil
}

// classify turns a parse error into the refusal that says what is wrong.
func (v *Verifier) classify(tok *jwt.Token, claims jwt.MapClaims, err error) *Error {
	var aerr *Error
	if errors.As(err, &aerr) {
		return aerr
	}
	algOK := tok != nil && tok.Method != nil && slices.Contains(v.methods, tok.Method.Alg())
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthorized("token malformed: want a JWT (header.payload.signature)")
	case !algOK && (errors.Is(err, jwt.ErrTokenUnverifiable) || errors.Is(err, jwt.ErrTokenSignatureInvalid)):
		return unauthorized("token algorithm not accepted, want %s", strings.Join(v.methods, " or "))
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
		return unauthorized("token lacks %s", missingClaim(claims, v.cfg.Issuer != "", v.cfg.Audience != ""))
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
