// Package authtest holds what the tests of tokens share: fixed keys and
// clock, key files and tokens signed by an independent JWT library. It is
// for tests only.
package authtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// Now is the fixed clock of the tests of tokens.
var Now = time.Unix(1_900_000_000, 0)

// Secret is the HS256 secret of the tests of tokens.
var Secret = []byte("0123456789abcdef0123456789abcdef-test")

// Keys are test keys, generated once per test binary: RSA generation is
// slow.
type Keys struct {
	RSA, RSAOther *rsa.PrivateKey
	EC1, EC2      *ecdsa.PrivateKey
}

var keysOnce = sync.OnceValues(func() (Keys, error) {
	var (
		k   Keys
		err error
	)
	if k.RSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return k, err
	}
	if k.RSAOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return k, err
	}
	if k.EC1, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return k, err
	}
	k.EC2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return k, err
})

// TestKeys returns the test binary's keys.
func TestKeys(t testing.TB) Keys {
	t.Helper()
	k, err := keysOnce()
	if err != nil {
		t.Fatalf("generate keys: %v", err)
	}
	return k
}

// WritePEM writes PEM blocks to a new file in a temp dir.
func WritePEM(t testing.TB, blocks ...*pem.Block) string {
	t.Helper()
	var b bytes.Buffer
	for _, bl := range blocks {
		if err := pem.Encode(&b, bl); err != nil {
			t.Fatal(err)
		}
	}
	return WriteFile(t, "keys.pem", b.Bytes())
}

// WriteFile writes data to a new file name in a temp dir.
func WriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// PKIXBlock is pub as a PUBLIC KEY block.
func PKIXBlock(t testing.TB, pub any) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	return mustBlock(t, "PUBLIC KEY", der, err)
}

// PKCS8Block is key as a PRIVATE KEY block.
func PKCS8Block(t testing.TB, key any) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	return mustBlock(t, "PRIVATE KEY", der, err)
}

// mustBlock is der as a PEM block of type typ, unless err says der could
// not be made.
func mustBlock(t testing.TB, typ string, der []byte, err error) *pem.Block {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: typ, Bytes: der}
}

// WriteJWKS writes a JSON Web Key Set with go-jose, independently of the
// code under test.
func WriteJWKS(t testing.TB, keys ...jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return WriteFile(t, "jwks.json", b)
}

// Sign mints a token with go-jose, a JWT library the exporter does not
// use: an independent client. kid, when set, goes in the header.
func Sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
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

// Claims are the claims of a valid client token at Now, after edits.
func Claims(edits ...func(map[string]any)) map[string]any {
	c := map[string]any{
		"sub":  "alice",
		"role": "client",
		"iat":  Now.Unix(),
		"nbf":  Now.Unix(),
		"exp":  Now.Add(time.Hour).Unix(),
	}
	for _, e := range edits {
		e(c)
	}
	return c
}
