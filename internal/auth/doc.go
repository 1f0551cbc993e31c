// Package auth holds the exporter's tokens: it loads the keys that verify
// and sign JWT bearer tokens (an HS256 secret, PEM public keys and
// certificates, JSON Web Key Sets, PEM private keys), verifies a presented
// token into the caller's [Principal], decides whether a principal has a
// role, and mints tokens (for the token command and the operator token
// that "exporter all" prints).
//
// It knows nothing of HTTP: where a token comes from and how a refusal is
// answered belong to the caller. A refusal is an [*Error] whose [Kind]
// says whether the caller is not authenticated or lacks a role, with the
// RFC 6750 error code and description a WWW-Authenticate challenge needs.
// Its messages are safe to show to the caller: they never hold the token
// or key material.
//
// The package must not import an HTTP server package (fiber, net/http) or
// any other project package; depguard in .golangci.yml keeps it so.
package auth
