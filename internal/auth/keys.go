package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/MicahParks/jwkset"
)

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
var errKeySkipped = errors.New("auth: key not for RS256 or ES256 signatures")

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
