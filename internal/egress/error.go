package egress

import "errors"

// ErrForbidden is matched, through errors.Is, by every refusal of a
// destination: by [Policy.CheckURL], by redirects the client refuses and
// by the client's dialer.
var ErrForbidden = errors.New("egress: destination not allowed")

// ErrTooManyRedirects is returned, wrapped, when a client from
// [Policy.Client] stops following a chain of redirects.
var ErrTooManyRedirects = errors.New("egress: too many redirects")

// ErrAllowEntry is matched by the error of an allowlist entry that is
// neither a CIDR, an IP address nor a host name.
var ErrAllowEntry = errors.New("egress: invalid allowlist entry")

// URLError is a refused destination and the reason it was refused.
//
// Its message names only the destination's scheme and host, never the
// path, query or user info, which may carry credentials. It unwraps to
// [ErrForbidden].
type URLError struct {
	// URL is the refused URL reduced to scheme://host[:port], or the
	// host:port being dialled when the dialer refused it. It is empty when
	// the URL did not parse.
	URL string
	// Reason completes a sentence about URL, for example "is a loopback
	// address" or "resolves to 10.0.0.5, a private address".
	Reason string
}

func (e *URLError) Error() string {
	subject := e.URL
	if subject == "" {
		subject = "URL"
	}
	return ErrForbidden.Error() + ": " + subject + " " + e.Reason
}

// Unwrap returns [ErrForbidden].
func (e *URLError) Unwrap() error { return ErrForbidden }
