package trigger

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/geoexport/exporter/internal/auth"
)

const (
	// authRealm is the realm of every WWW-Authenticate challenge.
	authRealm = "exporter"
	// maxHeaderBytes is the server's read buffer, which bounds the request
	// line and headers together (a request beyond it is refused with 431
	// before any handler runs). It holds a token of auth.MaxTokenBytes, in
	// a header or in the token parameter, and 8 KiB of other headers.
	// fasthttp's default of 4 KiB refused tokens that identity providers
	// issue.
	maxHeaderBytes = auth.MaxTokenBytes + 8<<10
)

// Authenticator is the authentication middleware of the API: it finds a
// request's token, has an *auth.Verifier verify it and check the caller's
// role, and turns refusals into *AuthError. It is safe for concurrent use.
type Authenticator struct {
	v *auth.Verifier
}

// NewAuthenticator returns the middleware that verifies tokens with v.
func NewAuthenticator(v *auth.Verifier) *Authenticator { return &Authenticator{v: v} }

// ClientRole returns the configured role of API clients, for Require.
func (a *Authenticator) ClientRole() string { return a.v.ClientRole() }

// OperatorRole returns the configured operator role, for Require.
func (a *Authenticator) OperatorRole() string { return a.v.OperatorRole() }

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

// httpAuthError turns a refusal of package auth into the *AuthError the
// error handler answers; other errors pass unchanged.
func httpAuthError(err error) error {
	var aerr *auth.Error
	if !errors.As(err, &aerr) {
		return err
	}
	status := fiber.StatusUnauthorized
	if aerr.Kind == auth.Forbidden {
		status = fiber.StatusForbidden
	}
	return &AuthError{Status: status, Message: aerr.Message, Challenge: challenge(aerr.Code, aerr.Description)}
}

func challenge(code, description string) string {
	// A quoted-string: drop what would end or escape it.
	description = strings.NewReplacer(`"`, "'", `\`, "/").Replace(description)
	return fmt.Sprintf(`Bearer realm=%q, error=%q, error_description="%s"`, authRealm, code, description)
}

// principalKey is the c.Locals key of the request's Principal.
type principalKey struct{}

// PrincipalFrom returns the Principal that Require stored for this request.
func PrincipalFrom(c *fiber.Ctx) (auth.Principal, bool) {
	p, ok := c.Locals(principalKey{}).(auth.Principal)
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
		if err := a.v.Authorize(p, role); err != nil {
			return httpAuthError(err)
		}
		c.Locals(principalKey{}, p)
		return c.Next()
	}
}

// Authenticate verifies the request's token and returns its principal. The
// token is taken from, in order, the Authorization: Bearer header, the
// x-api-key header and the token query parameter (for browser download
// links). Every error is an *AuthError with status 401.
func (a *Authenticator) Authenticate(c *fiber.Ctx) (auth.Principal, error) {
	raw, err := tokenFrom(c)
	if err != nil {
		return auth.Principal{}, err
	}
	p, err := a.v.Verify(raw)
	if err != nil {
		return auth.Principal{}, httpAuthError(err)
	}
	return p, nil
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
