package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// defaultLookupTimeout bounds CheckURL's lookup when Config leaves it zero:
// long enough for a healthy resolver, short enough not to stall a request.
const defaultLookupTimeout = 2 * time.Second

// Resolver looks up the addresses of host names; *net.Resolver is one.
//
// LookupNetIP is called with network "ip", "ip4" or "ip6" and a host name
// (never an IP literal). It returns the host's addresses, IPv4 ones plain
// or IPv4-mapped, or an error when the host does not resolve; it must give
// up when ctx is done.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config configures a [Policy].
type Config struct {
	// Allow is a comma-separated allowlist of destinations that may be
	// reached although they are not public: CIDRs ("10.1.0.0/16",
	// "::1/128"), single IP addresses (taken as /32 or /128) and host names
	// ("callbacks.internal", matched exactly and case-insensitively). An
	// allowlisted name is reached whatever it resolves to; an allowlisted
	// CIDR allows its addresses for any host name. Empty allows public
	// destinations only.
	Allow string
	// Resolver resolves host names, both in CheckURL and when the client
	// dials. Nil is net.DefaultResolver.
	Resolver Resolver
	// LookupTimeout bounds the host name lookup in CheckURL. Zero is 2s.
	LookupTimeout time.Duration
}

// Validate reports every problem of c at once: each bad allowlist entry,
// by name, and a negative timeout.
func (c Config) Validate() error {
	_, _, err := parseAllow(c.Allow)
	if c.LookupTimeout < 0 {
		err = errors.Join(err, fmt.Errorf("egress: lookup timeout %v is negative", c.LookupTimeout))
	}
	return err
}

// Policy decides which destinations client-supplied URLs may reach. It is
// safe for concurrent use.
type Policy struct {
	prefixes      []netip.Prefix
	names         map[string]bool
	resolver      Resolver
	lookupTimeout time.Duration
}

// New returns the policy cfg describes, or cfg's validation error.
func New(cfg Config) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	prefixes, names, _ := parseAllow(cfg.Allow)
	p := &Policy{prefixes: prefixes, names: names, resolver: cfg.Resolver, lookupTimeout: cfg.LookupTimeout}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	if p.lookupTimeout == 0 {
		p.lookupTimeout = defaultLookupTimeout
	}
	return p, nil
}

// parseAllow splits an allowlist into CIDRs and lowercase host names. Its
// error joins one error per bad entry, each matching ErrAllowEntry.
func parseAllow(s string) ([]netip.Prefix, map[string]bool, error) {
	var (
		prefixes []netip.Prefix
		names    = make(map[string]bool)
		errs     []error
	)
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if strings.Contains(entry, "/") {
			pr, err := netip.ParsePrefix(entry)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w %q: not a CIDR", ErrAllowEntry, entry))
				continue
			}
			prefixes = append(prefixes, pr.Masked())
			continue
		}
		if a, err := netip.ParseAddr(entry); err == nil {
			prefixes = append(prefixes, netip.PrefixFrom(a.WithZone(""), a.BitLen()))
			continue
		}
		name := strings.ToLower(strings.TrimSuffix(entry, "."))
		if !validHostName(name) || endsInNumber(name) {
			errs = append(errs, fmt.Errorf("%w %q: not a CIDR, IP address or host name", ErrAllowEntry, entry))
			continue
		}
		names[name] = true
	}
	return prefixes, names, errors.Join(errs...)
}

// CheckURL validates a client-supplied URL when it is handed in: it must
// be an absolute http or https URL with a host, without user info, and
// with a port, if any, from 1 to 65535. Unless its host name is
// allowlisted, the host must not be a non-public IP literal, a loopback
// or metadata name such as "localhost" or "*.localhost", or a number in a
// notation other than dotted-decimal, and none of the addresses it
// resolves to may be non-public unless an allowlisted CIDR holds it.
//
// A refusal is a *URLError, which matches ErrForbidden. A lookup that
// fails or times out is no refusal: the client checks again when it
// dials. CheckURL returns ctx's error if ctx ends during the lookup.
func (p *Policy) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the whole URL, which may hold secrets.
		return &URLError{Reason: "does not parse"}
	}
	return p.checkURL(ctx, u)
}

func (p *Policy) checkURL(ctx context.Context, u *url.URL) error {
	refuse := func(reason string) error { return &URLError{URL: redact(u), Reason: reason} }
	switch {
	case !u.IsAbs():
		return refuse("is not an absolute URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return refuse("does not use http or https")
	case u.Opaque != "" || u.Hostname() == "":
		return refuse("has no host")
	case u.User != nil:
		return refuse("contains user info")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return refuse("has a port outside 1-65535")
		}
	}
	h := p.screenHost(u.Hostname())
	switch {
	case h.reason != "":
		return refuse(h.reason)
	case h.addr.IsValid() || h.allowed:
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, p.lookupTimeout)
	defer cancel()
	addrs, err := p.resolver.LookupNetIP(lctx, "ip", h.name)
	if err != nil {
		return ctx.Err()
	}
	if why := p.resolvedReason(addrs); why != "" {
		return refuse(why)
	}
	return nil
}

// redact reduces u to scheme://host[:port] for error messages.
func redact(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
}

// hostVerdict is what can be decided about a host without resolving it.
type hostVerdict struct {
	addr    netip.Addr // the host as an IP literal, if it is one
	name    string     // otherwise its lowercase name, without a trailing dot
	allowed bool       // name is allowlisted
	reason  string     // why the host is refused, or ""
}

// screenHost checks a URL's or a dial address's host, without brackets or
// port, as far as it can without resolving it.
func (p *Policy) screenHost(host string) hostVerdict {
	host = strings.TrimSuffix(host, ".")
	if a, err := netip.ParseAddr(host); err == nil {
		if why, bad := nonPublicReason(a); bad && !p.allowedAddr(a) {
			return hostVerdict{addr: a, reason: "is " + why}
		}
		return hostVerdict{addr: a}
	}
	name := strings.ToLower(host)
	if p.names[name] {
		return hostVerdict{name: name, allowed: true}
	}
	if endsInNumber(name) {
		if a, ok := parseLooseIPv4(name); ok {
			return hostVerdict{name: name, reason: "is " + a.String() + " in a non-standard notation"}
		}
		return hostVerdict{name: name, reason: "is not a valid host name"}
	}
	if !validHostName(name) {
		if !isASCII(name) {
			// Transports map Unicode names to ASCII (IDNA), and the
			// mapping can turn "ｌｏｃａｌｈｏｓｔ" into "localhost".
			return hostVerdict{name: name, reason: "is not an ASCII host name; use its xn-- form"}
		}
		return hostVerdict{name: name, reason: "is not a valid host name"}
	}
	if why := hostNameReason(name); why != "" {
		return hostVerdict{name: name, reason: why}
	}
	return hostVerdict{name: name}
}

// allowedAddr reports whether an allowlisted CIDR holds a.
func (p *Policy) allowedAddr(a netip.Addr) bool {
	a = a.WithZone("")
	for _, pr := range p.prefixes {
		if pr.Contains(a) || pr.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// resolvedReason returns why a host resolving to addrs is refused: the
// first address that is neither public nor allowlisted. It returns "" if
// there is none.
func (p *Policy) resolvedReason(addrs []netip.Addr) string {
	for _, a := range addrs {
		a = a.Unmap()
		if why, bad := nonPublicReason(a); bad && !p.allowedAddr(a) {
			return "resolves to " + a.String() + ", " + why
		}
	}
	return ""
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
