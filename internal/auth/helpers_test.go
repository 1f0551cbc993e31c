package auth_test

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
