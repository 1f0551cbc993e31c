// Package egress guards outbound HTTP to client-supplied URLs, such as job
// callbacks, against server-side request forgery (SSRF): a URL must not
// reach loopback, private, link-local, cloud metadata or other non-public
// addresses unless an operator allowlisted the destination.
//
// A [Policy] checks twice. [Policy.CheckURL] validates a URL when a client
// hands it in, so a bad URL is refused with a reason the client can read.
// The [http.Client] from [Policy.Client] checks again while sending: it
// resolves the host itself, refuses the request if any address is not
// public, and its dialer re-checks the address it actually connects to.
// A host name that resolves to a public address at request time and to a
// private one later (DNS rebinding), or a redirect to a private address, is
// therefore refused when it matters.
//
// Which addresses are not public is stated once, as data, in address.go.
//
// The package uses only the standard library and imports no other project
// package.
package egress
