package egress

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// server is an httptest server on loopback that counts its requests.
type server struct {
	*httptest.Server
	hits atomic.Int64
	addr netip.AddrPort
}

// newServer starts a plain HTTP server (or TLS, if tls) running h and
// closes it when the test ends.
func newServer(t testing.TB, tls bool, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	count := func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}
	if tls {
		s.Server = httptest.NewTLSServer(http.HandlerFunc(count))
	} else {
		s.Server = httptest.NewServer(http.HandlerFunc(count))
	}
	t.Cleanup(s.Close)
	s.addr = netip.MustParseAddrPort(s.Listener.Addr().String())
	return s
}

// urlFor is the server's URL with host in place of its address.
func (s *server) urlFor(host, path string) string {
	scheme := "http"
	if s.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(int(s.addr.Port()))) + path
}

func ok(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

func redirectTo(target string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, target, http.StatusFound) }
}

// newClient returns the policy's client and closes its idle connections
// when the test ends.
func newClient(t testing.TB, cfg Config) *http.Client {
	t.Helper()
	c := newPolicy(t, cfg).Client(5 * time.Second)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// get fetches url and returns the status code, or 0 and the error.
func get(t testing.TB, c *http.Client, url string) (int, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("NewRequest(%q) = %v", url, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// loopbackResolver maps every test name to the loopback address.
var loopbackResolver = staticResolver(map[string][]string{
	"allowed.test": {"127.0.0.1"},
	"evil.test":    {"127.0.0.1"},
	"localhost":    {"127.0.0.1"},
})

func TestClientDial(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		allow      string
		host       string // how the request names the server
		wantStatus int    // 0 is refused with ErrForbidden
	}{
		{name: "loopback refused by default", host: "127.0.0.1"},
		{name: "loopback allowed by CIDR", allow: "127.0.0.1/32", host: "127.0.0.1", wantStatus: http.StatusNoContent},
		{name: "other CIDR does not help", allow: "10.0.0.0/8", host: "127.0.0.1"},
		{name: "name resolving to loopback refused", host: "evil.test"},
		{name: "name resolving into allowed CIDR", allow: "127.0.0.0/8", host: "evil.test", wantStatus: http.StatusNoContent},
		{name: "allowlisted name", allow: "allowed.test", host: "allowed.test", wantStatus: http.StatusNoContent},
		{name: "localhost refused before resolving", host: "localhost"},
		{name: "number notation refused", host: "2130706433"},
		{name: "short notation refused", host: "127.1"},
		{name: "mapped loopback refused", host: "::ffff:127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, false, ok)
			c := newClient(t, Config{Allow: tc.allow, Resolver: loopbackResolver})
			url := srv.urlFor(tc.host, "/callback")
			got, err := get(t, c, url)
			if tc.wantStatus != 0 {
				if err != nil || got != tc.wantStatus {
					t.Fatalf("Get(%q) = %d, %v, want %d", url, got, err, tc.wantStatus)
				}
				return
			}
			if !errors.Is(err, ErrForbidden) {
				t.Fatalf("Get(%q) = %d, %v, want ErrForbidden", url, got, err)
			}
			if n := srv.hits.Load(); n != 0 {
				t.Errorf("Get(%q): server got %d requests, want 0", url, n)
			}
		})
	}
}

func TestClientRedirect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		allow  string
		from   string                     // how the first request names the first server
		target func(final *server) string // where the first server redirects
		reason string                     // "" is followed
	}{
		{
			name:   "allowlisted name to loopback literal",
			allow:  "allowed.test",
			from:   "allowed.test",
			target: func(s *server) string { return s.urlFor("127.0.0.1", "/") },
			reason: "is a loopback address",
		},
		{
			name:   "allowlisted name to name resolving to loopback",
			allow:  "allowed.test",
			from:   "allowed.test",
			target: func(s *server) string { return s.urlFor("evil.test", "/") },
			reason: "resolves to 127.0.0.1, a loopback address",
		},
		{
			name:   "to localhost",
			allow:  "127.0.0.1/32",
			from:   "127.0.0.1",
			target: func(s *server) string { return s.urlFor("localhost", "/") },
			reason: "is a loopback host name",
		},
		{
			name:   "to metadata",
			allow:  "127.0.0.1/32",
			from:   "127.0.0.1",
			target: func(*server) string { return "http://169.254.169.254/latest/meta-data/" },
			reason: "is a cloud metadata address",
		},
		{
			name:   "to another scheme",
			allow:  "127.0.0.1/32",
			from:   "127.0.0.1",
			target: func(*server) string { return "ftp://93.184.216.34/" },
			reason: "does not use http or https",
		},
		{
			name:   "within allowlisted CIDR",
			allow:  "127.0.0.1/32",
			from:   "127.0.0.1",
			target: func(s *server) string { return s.urlFor("127.0.0.1", "/") },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			final := newServer(t, false, ok)
			first := newServer(t, false, redirectTo(tc.target(final)))
			c := newClient(t, Config{Allow: tc.allow, Resolver: loopbackResolver})
			url := first.urlFor(tc.from, "/callback")
			got, err := get(t, c, url)
			if n := first.hits.Load(); n != 1 {
				t.Errorf("Get(%q): first server got %d requests, want 1", url, n)
			}
			if tc.reason == "" {
				if err != nil || got != http.StatusNoContent {
					t.Fatalf("Get(%q) = %d, %v, want %d", url, got, err, http.StatusNoContent)
				}
				if n := final.hits.Load(); n != 1 {
					t.Errorf("Get(%q): final server got %d requests, want 1", url, n)
				}
				return
			}
			var ue *URLError
			if !errors.Is(err, ErrForbidden) || !errors.As(err, &ue) {
				t.Fatalf("Get(%q) = %d, %v, want a *URLError", url, got, err)
			}
			if diff := cmp.Diff(tc.reason, ue.Reason); diff != "" {
				t.Errorf("Get(%q) reason (-want +got):\n%s", url, diff)
			}
			if n := final.hits.Load(); n != 0 {
				t.Errorf("Get(%q): final server got %d requests, want 0", url, n)
			}
		})
	}
}

func TestClientRedirectLimit(t *testing.T) {
	t.Parallel()
	srv := newServer(t, false, redirectTo("/again"))
	c := newClient(t, Config{Allow: "127.0.0.1/32"})
	_, err := get(t, c, srv.URL)
	if !errors.Is(err, ErrTooManyRedirects) {
		t.Fatalf("Get(%q) = %v, want ErrTooManyRedirects", srv.URL, err)
	}
	if got, want := srv.hits.Load(), int64(maxRedirects+1); got != want {
		t.Errorf("Get(%q): server got %d requests, want %d", srv.URL, got, want)
	}
}

func TestClientRefusesHTTPSDowngrade(t *testing.T) {
	t.Parallel()
	plain := newServer(t, false, ok)
	secure := newServer(t, true, redirectTo(plain.URL+"/callback"))
	c := newClient(t, Config{Allow: "127.0.0.1/32"})
	// Trust the test server's certificate, which names 127.0.0.1.
	c.Transport.(*http.Transport).TLSClientConfig = secure.Client().Transport.(*http.Transport).TLSClientConfig.Clone()

	_, err := get(t, c, secure.URL)
	var ue *URLError
	if !errors.Is(err, ErrForbidden) || !errors.As(err, &ue) {
		t.Fatalf("Get(%q) = %v, want a *URLError", secure.URL, err)
	}
	want := &URLError{URL: plain.URL, Reason: "is a redirect from https to http"}
	if diff := cmp.Diff(want, ue); diff != "" {
		t.Errorf("Get(%q) error (-want +got):\n%s", secure.URL, diff)
	}
	if secure.hits.Load() != 1 || plain.hits.Load() != 0 {
		t.Errorf("Get(%q): servers got %d (https) and %d (http) requests, want 1 and 0", secure.URL, secure.hits.Load(), plain.hits.Load())
	}
}

func TestClientDNSRebinding(t *testing.T) {
	t.Parallel()
	srv := newServer(t, false, ok)
	// The first answer (CheckURL's) is public, every later one loopback.
	var lookups atomic.Int64
	rebind := resolverFunc(func(context.Context, string, string) ([]netip.Addr, error) {
		if lookups.Add(1) == 1 {
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		}
		return []netip.Addr{srv.addr.Addr()}, nil
	})
	p := newPolicy(t, Config{Resolver: rebind})
	url := srv.urlFor("rebind.test", "/callback?token=s3cret")
	if err := p.CheckURL(t.Context(), url); err != nil {
		t.Fatalf("CheckURL(%q) = %v, want nil", url, err)
	}
	c := p.Client(5 * time.Second)
	t.Cleanup(c.CloseIdleConnections)

	_, err := get(t, c, url)
	var ue *URLError
	if !errors.Is(err, ErrForbidden) || !errors.As(err, &ue) {
		t.Fatalf("Get(%q) = %v, want a *URLError", url, err)
	}
	host := "rebind.test:" + strconv.Itoa(int(srv.addr.Port()))
	want := "egress: destination not allowed: " + host + " resolves to 127.0.0.1, a loopback address"
	if diff := cmp.Diff(want, ue.Error()); diff != "" {
		t.Errorf("Get(%q) message (-want +got):\n%s", url, diff)
	}
	if strings.Contains(ue.Error(), "s3cret") {
		t.Errorf("Get(%q) message %q leaks the query", url, ue.Error())
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("Get(%q): server got %d requests, want 0", url, n)
	}
}

func TestClientLookupFailureIsNotForbidden(t *testing.T) {
	t.Parallel()
	c := newClient(t, Config{Resolver: staticResolver(nil)})
	const url = "http://gone.test/callback"
	_, err := get(t, c, url)
	var dnsErr *net.DNSError
	if err == nil || errors.Is(err, ErrForbidden) || !errors.As(err, &dnsErr) {
		t.Fatalf("Get(%q) = %v, want a *net.DNSError that is not ErrForbidden", url, err)
	}
}

func TestClientTransport(t *testing.T) {
	t.Parallel()
	c := newPolicy(t, Config{}).Client(7 * time.Second)
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Client().Transport = %T, want *http.Transport", c.Transport)
	}
	if tr.Proxy != nil {
		t.Error("Client().Transport.Proxy is set, want nil: a proxy would connect unchecked")
	}
	if c.Timeout != 7*time.Second {
		t.Errorf("Client(7s).Timeout = %v, want 7s", c.Timeout)
	}
	if c.CheckRedirect == nil {
		t.Error("Client().CheckRedirect = nil, want the policy's check")
	}
}

func TestControl(t *testing.T) {
	t.Parallel()
	p := newPolicy(t, Config{Allow: "10.1.0.0/16"})
	tests := []struct {
		name    string
		address string
		want    *URLError // nil is allowed
	}{
		{name: "public v4", address: "93.184.216.34:443"},
		{name: "public v6", address: "[2606:4700::1111]:443"},
		{name: "allowlisted CIDR", address: "10.1.2.3:80"},
		{name: "loopback", address: "127.0.0.1:80", want: &URLError{URL: "127.0.0.1:80", Reason: "is a loopback address"}},
		{name: "mapped loopback", address: "[::ffff:127.0.0.1]:80", want: &URLError{URL: "[::ffff:127.0.0.1]:80", Reason: "is an IPv4-mapped form of 127.0.0.1, a loopback address"}},
		{name: "metadata", address: "169.254.169.254:80", want: &URLError{URL: "169.254.169.254:80", Reason: "is a cloud metadata address"}},
		{name: "link-local with zone", address: "[fe80::1%eth0]:80", want: &URLError{URL: "[fe80::1%eth0]:80", Reason: "is a link-local address"}},
		{name: "not an address", address: "evil.test:80", want: &URLError{URL: "evil.test:80", Reason: "is not an IP address and port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := p.control("tcp", tc.address, nil)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("control(%q) = %v, want nil", tc.address, err)
				}
				return
			}
			var ue *URLError
			if !errors.Is(err, ErrForbidden) || !errors.As(err, &ue) {
				t.Fatalf("control(%q) = %v, want a *URLError", tc.address, err)
			}
			if diff := cmp.Diff(tc.want, ue); diff != "" {
				t.Errorf("control(%q) (-want +got):\n%s", tc.address, diff)
			}
		})
	}
}
