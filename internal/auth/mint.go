package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

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
		return SigningKey{}, fmt.Errorf("auth: hs256 secret is %d bytes, want at least %d", len(secret), minSecretBytes)
	}
	return SigningKey{alg: algHS256, key: slices.Clone(secret)}, nil
}

// LoadSigningKey returns the key of privateKeyFile when it is set (a PEM
// PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block, unencrypted), else
// an HS256 key of hs256Secret, else ErrNoKey.
func LoadSigningKey(hs256Secret []byte, privateKeyFile string) (SigningKey, error) {
	if privateKeyFile == "" {
		if len(hs256Secret) == 0 {
			return SigningKey{}, ErrNoKey
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
		errs = append(errs, errors.New("auth: mint: no signing key"))
	}
	if claims.Subject == "" {
		errs = append(errs, errors.New("auth: mint: subject is required"))
	}
	if claims.Role == "" {
		errs = append(errs, errors.New("auth: mint: role is required"))
	}
	if claims.TTL <= 0 {
		errs = append(errs, fmt.Errorf("auth: mint: ttl %v must be positive", claims.TTL))
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
