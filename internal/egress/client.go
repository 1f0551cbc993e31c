package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// maxRedirects is how many redirects a client follows: enough for an
// http→https hop and a moved endpoint, few enough to bound the work a
// hostile server can cause.
const maxRedirects = 3

// Client returns an HTTP client for client-supplied URLs, with timeout
// bounding each request including redirects (zero is none, as in
// http.Client).
//
// Its transport resolves each host with the policy's resolver and refuses
// the connection, with a *URLError matching ErrForbidden, if the host is
// refused by the rules of [Policy.CheckURL] or any address it resolves to
// is neither public nor allowlisted; the dialer then re-checks the address
// it connects to. The check therefore holds after CheckURL, across DNS
// rebinding and for every redirect. A host name on the allowlist is
// dialled unchecked. Proxies from the environment are never used, since a
// proxy would connect on the client's behalf unchecked.
//
// The client follows at most 3 redirects (then ErrTooManyRedirects),
// refuses a redirect from https to http, and checks each redirect's URL
// with CheckURL. A caller that must follow no redirect at all, as the
// worker's job callbacks, sets CheckRedirect on a copy of the client; the
// dial-time checks still apply. Errors reach the caller wrapped in
// *url.Error, whose message quotes the whole URL; use errors.As to get the
// *URLError, whose message names the host only.
func (p *Policy) Client(timeout time.Duration) *http.Client {
	strict := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.control}
	open := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return p.dial(ctx, network, addr, strict, open)
		},
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{Transport: t, CheckRedirect: p.checkRedirect, Timeout: timeout}
}

// dial connects to addr (host:port, as the transport derives it from the
// request URL) if the policy allows it: strict dials checked addresses,
// open dials those of allowlisted names.
func (p *Policy) dial(ctx context.Context, network, addr string, strict, open *net.Dialer) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	h := p.screenHost(host)
	if h.reason != "" {
		return nil, &URLError{URL: addr, Reason: h.reason}
	}
	if h.addr.IsValid() {
		return strict.DialContext(ctx, network, net.JoinHostPort(h.addr.String(), port))
	}
	ipNetwork := "ip"
	switch network {
	case "tcp4":
		ipNetwork = "ip4"
	case "tcp6":
		ipNetwork = "ip6"
	}
	addrs, err := p.resolver.LookupNetIP(ctx, ipNetwork, h.name)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", h.name, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: %w", h.name, &net.DNSError{Err: "no addresses", Name: h.name, IsNotFound: true})
	}
	d := strict
	if h.allowed {
		d = open
	} else if why := p.resolvedReason(addrs); why != "" {
		return nil, &URLError{URL: addr, Reason: why}
	}
	var errs []error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// control is the strict dialer's last word, run on the address the socket
// is about to connect to: whatever resolved it, a non-public address that
// no allowlisted CIDR holds is refused.
func (p *Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &URLError{URL: address, Reason: "is not an IP address and port"}
	}
	if why, bad := nonPublicReason(ap.Addr()); bad && !p.allowedAddr(ap.Addr()) {
		return &URLError{URL: address, Reason: "is " + why}
	}
	return nil
}

// checkRedirect is the client's CheckRedirect: a cap, no downgrade to
// plain http, and CheckURL's rules for the new URL.
func (p *Policy) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("%w: stopped after %d", ErrTooManyRedirects, maxRedirects)
	}
	if req.URL.Scheme == "http" {
		for _, prev := range via {
			if prev.URL.Scheme == "https" {
				return &URLError{URL: redact(req.URL), Reason: "is a redirect from https to http"}
			}
		}
	}
	return p.checkURL(req.Context(), req.URL)
}
