package auth

import "fmt"

// Kind says why a request is refused.
type Kind int

const (
	// Unauthenticated: no acceptable token (HTTP 401).
	Unauthenticated Kind = iota + 1
	// Forbidden: a valid token without the required role (HTTP 403).
	Forbidden
)

// String returns "unauthenticated" or "forbidden".
func (k Kind) String() string {
	switch k {
	case Unauthenticated:
		return "unauthenticated"
	case Forbidden:
		return "forbidden"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is a token that was refused by Verify (Unauthenticated) or a
// principal refused by Authorize (Forbidden). Message is safe to show: it
// never holds the token.
type Error struct {
	Kind Kind
	// Message says what is wrong, for example "token expired".
	Message string
	// Code is the RFC 6750 error code of the challenge: "invalid_token"
	// for Unauthenticated, "insufficient_scope" for Forbidden.
	Code string
	// Description is the challenge's error_description, unquoted.
	Description string
}

func (e *Error) Error() string { return e.Message }

// unauthorized refuses a token that was presented but is not acceptable.
func unauthorized(format string, a ...any) *Error {
	msg := fmt.Sprintf(format, a...)
	return &Error{Kind: Unauthenticated, Message: msg, Code: "invalid_token", Description: msg}
}

// forbidden refuses a principal that lacks role.
func forbidden(role string) *Error {
	msg := fmt.Sprintf("token lacks role %s", role)
	return &Error{Kind: Forbidden, Message: msg, Code: "insufficient_scope", Description: msg}
}
