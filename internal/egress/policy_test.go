package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The default resolver satisfies Resolver.
var _ Resolver = (*net.Resolver)(nil)

// resolverFunc adapts a function to Resolver.
type resolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

// staticResolver answers from a map of host name to addresses; other
// names do not exist.
func staticResolver(hosts map[string][]string) Resolver {
	return resolverFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		addrs, ok := hosts[host]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		out := make([]netip.Addr, len(addrs))
		for i, a := range addrs {
			out[i] = netip.MustParseAddr(a)
		}
		return out, nil
	})
}

// newPolicy returns the policy of cfg or fails the test.
func newPolicy(t testing.TB, cfg Config) *Policy {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v) = %v", cfg, err)
	}
	return p
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		cfg          Config
		wantPrefixes []string
		wantNames    []string
		wantBad      []string // entries the error must name; nil is no error
	}{
		{name: "empty"},
		{
			name:         "CIDRs and a name",
			cfg:          Config{Allow: "10.1.0.0/16,127.0.0.1/32,::1/128,callbacks.internal"},
			wantPrefixes: []string{"10.1.0.0/16", "127.0.0.1/32", "::1/128"},
			wantNames:    []string{"callbacks.internal"},
		},
		{
			name:         "spaces, empty entries, case, trailing dot, host bits",
			cfg:          Config{Allow: " 10.1.2.3/16 , CallBacks.Internal. ,, "},
			wantPrefixes: []string{"10.1.0.0/16"},
			wantNames:    []string{"callbacks.internal"},
		},
		{
			name:         "bare addresses",
			cfg:          Config{Allow: "127.0.0.1,::1,fe80::1%eth0"},
			wantPrefixes: []string{"127.0.0.1/32", "::1/128", "fe80::1/128"},
		},
		{name: "prefix too long", cfg: Config{Allow: "10.0.0.0/33"}, wantBad: []string{`"10.0.0.0/33"`}},
		{name: "octet too large", cfg: Config{Allow: "300.1.1.1"}, wantBad: []string{`"300.1.1.1"`}},
		{name: "non-standard number", cfg: Config{Allow: "2130706433"}, wantBad: []string{`"2130706433"`}},
		{name: "wildcard", cfg: Config{Allow: "*.internal"}, wantBad: []string{`"*.internal"`}},
		{name: "URL", cfg: Config{Allow: "http://callbacks.internal"}, wantBad: []string{`"http://callbacks.internal"`}},
		{name: "empty label", cfg: Config{Allow: "a..b"}, wantBad: []string{`"a..b"`}},
		{
			name:    "every bad entry is named",
			cfg:     Config{Allow: "10.0.0.0/33,ok.test,*.x"},
			wantBad: []string{`"10.0.0.0/33"`, `"*.x"`},
		},
		{name: "negative lookup timeout", cfg: Config{LookupTimeout: -time.Second}, wantBad: []string{"lookup timeout -1s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := New(tc.cfg)
			if tc.wantBad != nil {
				if err == nil {
					t.Fatalf("New(%+v) = nil error, want one naming %q", tc.cfg, tc.wantBad)
				}
				for _, bad := range tc.wantBad {
					if !strings.Contains(err.Error(), bad) {
						t.Errorf("New(%+v) = %v, want it to name %s", tc.cfg, err, bad)
					}
				}
				if tc.cfg.LookupTimeout == 0 && !errors.Is(err, ErrAllowEntry) {
					t.Errorf("New(%+v) = %v, want ErrAllowEntry", tc.cfg, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%+v) = %v", tc.cfg, err)
			}
			var gotPrefixes, gotNames []string
			for _, pr := range p.prefixes {
				gotPrefixes = append(gotPrefixes, pr.String())
			}
			for n := range p.names {
				gotNames = append(gotNames, n)
			}
			if diff := cmp.Diff(tc.wantPrefixes, gotPrefixes); diff != "" {
				t.Errorf("New(%+v) prefixes (-want +got):\n%s", tc.cfg, diff)
			}
			if diff := cmp.Diff(tc.wantNames, gotNames); diff != "" {
				t.Errorf("New(%+v) names (-want +got):\n%s", tc.cfg, diff)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	p := newPolicy(t, Config{
		Allow: "10.1.0.0/16, callbacks.internal, fd12:3456::/32",
		Resolver: staticResolver(map[string][]string{
			"good.test":          {"93.184.216.34"},
			"good6.test":         {"2606:4700::1111"},
			"evil.test":          {"127.0.0.1"},
			"mapped.test":        {"::ffff:127.0.0.1"},
			"mixed.test":         {"93.184.216.34", "10.0.0.5"},
			"meta.test":          {"169.254.169.254"},
			"nat64.test":         {"64:ff9b::a00:5"},
			"internal.test":      {"10.1.2.3"},
			"callbacks.internal": {"10.9.9.9"},
		}),
	})
	tests := []struct {
		name   string
		raw    string
		reason string // "" is allowed
	}{
		// Shape of the URL.
		{name: "does not parse", raw: "http://[::1/", reason: "does not parse"},
		{name: "space in host", raw: "http://a b/", reason: "does not parse"},
		{name: "percent-encoded host", raw: "http://%6c%6fcalhost/", reason: "does not parse"},
		{name: "empty", raw: "", reason: "is not an absolute URL"},
		{name: "relative", raw: "/callback", reason: "is not an absolute URL"},
		{name: "scheme-relative", raw: "//good.test/callback", reason: "is not an absolute URL"},
		{name: "ftp", raw: "ftp://93.184.216.34/", reason: "does not use http or https"},
		{name: "file", raw: "file:///etc/passwd", reason: "does not use http or https"},
		{name: "gopher", raw: "gopher://93.184.216.34:70/_", reason: "does not use http or https"},
		{name: "javascript", raw: "javascript:alert(1)", reason: "does not use http or https"},
		{name: "opaque http", raw: "http:good.test", reason: "has no host"},
		{name: "no host", raw: "http://", reason: "has no host"},
		{name: "port without host", raw: "http://:80/", reason: "has no host"},
		{name: "empty authority", raw: "https:///callback", reason: "has no host"},
		{name: "user and password", raw: "http://user:pass@93.184.216.34/", reason: "contains user info"},
		{name: "empty user info", raw: "http://@93.184.216.34/", reason: "contains user info"},
		{name: "port 0", raw: "http://93.184.216.34:0/", reason: "has a port outside 1-65535"},
		{name: "port 65536", raw: "http://93.184.216.34:65536/", reason: "has a port outside 1-65535"},
		{name: "port 1", raw: "http://93.184.216.34:1/"},
		{name: "port 65535", raw: "https://93.184.216.34:65535/"},
		{name: "empty port", raw: "http://93.184.216.34:/"},
		{name: "uppercase scheme", raw: "HTTPS://93.184.216.34/"},

		// Public literals.
		{name: "public v4", raw: "http://93.184.216.34/callback?job=1"},
		{name: "public v6", raw: "https://[2606:4700::1111]:8443/callback"},
		{name: "mapped public v4", raw: "http://[::ffff:93.184.216.34]/"},
		{name: "NAT64 of public v4", raw: "http://[64:ff9b::5db8:d822]/"},

		// Non-public IPv4 literals.
		{name: "0.0.0.0", raw: "http://0.0.0.0/", reason: "is an unspecified address"},
		{name: "0/8", raw: "http://0.1.2.3/", reason: `is a "this network" address`},
		{name: "loopback", raw: "http://127.0.0.1:8080/", reason: "is a loopback address"},
		{name: "loopback top", raw: "http://127.255.255.254/", reason: "is a loopback address"},
		{name: "loopback trailing dot", raw: "http://127.0.0.1./", reason: "is a loopback address"},
		{name: "private 10/8", raw: "http://10.0.0.5/", reason: "is a private address"},
		{name: "private 172.16/12", raw: "http://172.16.0.1/", reason: "is a private address"},
		{name: "private 192.168/16", raw: "http://192.168.1.1/", reason: "is a private address"},
		{name: "link-local", raw: "http://169.254.1.1/", reason: "is a link-local address"},
		{name: "metadata", raw: "http://169.254.169.254/latest/meta-data/", reason: "is a cloud metadata address"},
		{name: "Alibaba metadata", raw: "http://100.100.100.200/", reason: "is a cloud metadata address"},
		{name: "CGNAT", raw: "http://100.64.0.1/", reason: "is a shared (carrier-grade NAT) address"},
		{name: "IETF protocol assignments", raw: "http://192.0.0.8/", reason: "is an IETF protocol assignment"},
		{name: "TEST-NET-1", raw: "http://192.0.2.1/", reason: "is a documentation address"},
		{name: "TEST-NET-2", raw: "http://198.51.100.7/", reason: "is a documentation address"},
		{name: "TEST-NET-3", raw: "http://203.0.113.9/", reason: "is a documentation address"},
		{name: "benchmarking", raw: "http://198.19.255.255/", reason: "is a benchmarking address"},
		{name: "multicast v4", raw: "http://224.0.0.1/", reason: "is a multicast address"},
		{name: "broadcast", raw: "http://255.255.255.255/", reason: "is the broadcast address"},
		{name: "reserved", raw: "http://240.0.0.1/", reason: "is a reserved address"},

		// Non-public IPv6 literals.
		{name: "unspecified v6", raw: "http://[::]/", reason: "is an unspecified address"},
		{name: "loopback v6", raw: "http://[::1]:8080/", reason: "is a loopback address"},
		{name: "unique local fc", raw: "http://[fc00::1]/", reason: "is a private address"},
		{name: "unique local fd", raw: "http://[fd00::1]/", reason: "is a private address"},
		{name: "link-local v6", raw: "http://[fe80::1]/", reason: "is a link-local address"},
		{name: "link-local v6 with zone", raw: "http://[fe80::1%25eth0]/", reason: "is a link-local address"},
		{name: "site-local", raw: "http://[fec0::1]/", reason: "is a site-local address"},
		{name: "multicast v6", raw: "http://[ff02::1]/", reason: "is a multicast address"},
		{name: "documentation v6", raw: "http://[2001:db8::1]/", reason: "is a documentation address"},
		{name: "AWS IPv6 metadata", raw: "http://[fd00:ec2::254]/", reason: "is a cloud metadata address"},
		{name: "discard-only", raw: "http://[100::1]/", reason: "is a discard-only address"},
		{name: "local-use NAT64", raw: "http://[64:ff9b:1::a00:5]/", reason: "is a local-use NAT64 address"},
		{name: "mapped loopback", raw: "http://[::ffff:127.0.0.1]/", reason: "is an IPv4-mapped form of 127.0.0.1, a loopback address"},
		{name: "mapped loopback hex", raw: "http://[::ffff:7f00:1]/", reason: "is an IPv4-mapped form of 127.0.0.1, a loopback address"},
		{name: "mapped loopback long", raw: "http://[0:0:0:0:0:ffff:127.0.0.1]/", reason: "is an IPv4-mapped form of 127.0.0.1, a loopback address"},
		{name: "mapped metadata", raw: "http://[::ffff:169.254.169.254]/", reason: "is an IPv4-mapped form of 169.254.169.254, a cloud metadata address"},
		{name: "mapped private", raw: "http://[::ffff:10.0.0.5]/", reason: "is an IPv4-mapped form of 10.0.0.5, a private address"},
		{name: "compatible loopback", raw: "http://[::127.0.0.1]/", reason: "is an IPv4-compatible form of 127.0.0.1, a loopback address"},
		{name: "compatible metadata", raw: "http://[::a9fe:a9fe]/", reason: "is an IPv4-compatible form of 169.254.169.254, a cloud metadata address"},
		{name: "NAT64 private", raw: "http://[64:ff9b::10.0.0.5]/", reason: "is a NAT64 form of 10.0.0.5, a private address"},
		{name: "NAT64 loopback", raw: "http://[64:ff9b::7f00:1]/", reason: "is a NAT64 form of 127.0.0.1, a loopback address"},
		{name: "6to4 loopback", raw: "http://[2002:7f00:1::1]/", reason: "is a 6to4 form of 127.0.0.1, a loopback address"},

		// Numbers in notations netip rejects but inet_aton accepts.
		{name: "decimal number", raw: "http://2130706433/", reason: "is 127.0.0.1 in a non-standard notation"},
		{name: "hex parts", raw: "http://0x7f.1/", reason: "is 127.0.0.1 in a non-standard notation"},
		{name: "hex number", raw: "http://0x7f000001/", reason: "is 127.0.0.1 in a non-standard notation"},
		{name: "octal number", raw: "http://017700000001/", reason: "is 127.0.0.1 in a non-standard notation"},
		{name: "octal part", raw: "http://0177.0.0.1/", reason: "is 127.0.0.1 in a non-standard notation"},
		{name: "short form", raw: "http://127.1:8080/", reason: "is 127.0.0.1 in a non-standard notation"},
		{name: "zero", raw: "http://0/", reason: "is 0.0.0.0 in a non-standard notation"},
		{name: "public as a number", raw: "http://1572395042/", reason: "is 93.184.216.34 in a non-standard notation"},
		{name: "number too large", raw: "http://4294967296/", reason: "is not a valid host name"},
		{name: "five parts", raw: "http://1.2.3.4.5/", reason: "is not a valid host name"},
		{name: "numeric top-level label", raw: "http://good.test.123/", reason: "is not a valid host name"},

		// Host names refused without resolving.
		{name: "localhost", raw: "http://localhost:8080/", reason: "is a loopback host name"},
		{name: "localhost uppercase with dot", raw: "http://LOCALHOST./", reason: "is a loopback host name"},
		{name: "under .localhost", raw: "http://Foo.LocalHost/", reason: "is a loopback host name"},
		{name: "localhost.localdomain", raw: "http://localhost.localdomain/", reason: "is a loopback host name"},
		{name: "ip6-localhost", raw: "http://ip6-localhost/", reason: "is a loopback host name"},
		{name: "GCP metadata name", raw: "http://metadata.google.internal/computeMetadata/v1/", reason: "is a cloud metadata host name"},
		{name: "fullwidth localhost", raw: "http://ｌｏｃａｌｈｏｓｔ/", reason: "is not an ASCII host name; use its xn-- form"},
		{name: "underscore label ok but empty label not", raw: "http://a..b/", reason: "is not a valid host name"},

		// Host names checked by what they resolve to.
		{name: "resolves public", raw: "https://good.test/callback"},
		{name: "resolves public, case and dot", raw: "https://GOOD.Test./callback"},
		{name: "resolves public v6", raw: "https://good6.test/callback"},
		{name: "does not resolve", raw: "https://nxdomain.test/callback"},
		{name: "resolves loopback", raw: "http://evil.test/", reason: "resolves to 127.0.0.1, a loopback address"},
		{name: "resolves mapped loopback", raw: "http://mapped.test/", reason: "resolves to 127.0.0.1, a loopback address"},
		{name: "one of several private", raw: "http://mixed.test/", reason: "resolves to 10.0.0.5, a private address"},
		{name: "resolves metadata", raw: "http://meta.test/", reason: "resolves to 169.254.169.254, a cloud metadata address"},
		{name: "resolves NAT64 private", raw: "http://nat64.test/", reason: "resolves to 64:ff9b::a00:5, a NAT64 form of 10.0.0.5, a private address"},

		// The allowlist.
		{name: "allowlisted CIDR literal", raw: "http://10.1.2.3:8080/"},
		{name: "allowlisted CIDR mapped literal", raw: "http://[::ffff:10.1.2.3]/"},
		{name: "allowlisted v6 CIDR literal", raw: "http://[fd12:3456::1]/"},
		{name: "outside allowlisted CIDR", raw: "http://10.2.0.1/", reason: "is a private address"},
		{name: "resolves into allowlisted CIDR", raw: "http://internal.test/"},
		{name: "allowlisted name", raw: "http://callbacks.internal:9000/hook"},
		{name: "allowlisted name, case and dot", raw: "http://CallBacks.Internal./hook"},
		{name: "allowlisted name still needs http", raw: "ftp://callbacks.internal/", reason: "does not use http or https"},
		{name: "allowlisted name still without user info", raw: "http://u@callbacks.internal/", reason: "contains user info"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := p.CheckURL(t.Context(), tc.raw)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want nil", tc.raw, err)
				}
				return
			}
			if !errors.Is(err, ErrForbidden) {
				t.Fatalf("CheckURL(%q) = %v, want ErrForbidden", tc.raw, err)
			}
			var ue *URLError
			if !errors.As(err, &ue) {
				t.Fatalf("CheckURL(%q) = %T, want *URLError", tc.raw, err)
			}
			if diff := cmp.Diff(tc.reason, ue.Reason); diff != "" {
				t.Errorf("CheckURL(%q) reason (-want +got):\n%s", tc.raw, diff)
			}
		})
	}
}

func TestCheckURLMessage(t *testing.T) {
	t.Parallel()
	p := newPolicy(t, Config{Resolver: staticResolver(map[string][]string{"evil.test": {"10.0.0.5"}})})
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{
			name: "literal with path and query",
			raw:  "http://127.0.0.1:8080/cb?token=s3cret",
			want: "egress: destination not allowed: http://127.0.0.1:8080 is a loopback address",
		},
		{
			name: "user info",
			raw:  "https://user:s3cret@93.184.216.34/cb",
			want: "egress: destination not allowed: https://93.184.216.34 contains user info",
		},
		{
			name: "resolved name with fragment",
			raw:  "http://evil.test/s3cret#s3cret",
			want: "egress: destination not allowed: http://evil.test resolves to 10.0.0.5, a private address",
		},
		{
			name: "unparsable",
			raw:  "http://[::1/?token=s3cret",
			want: "egress: destination not allowed: URL does not parse",
		},
		{
			name: "IPv6 with zone",
			raw:  "http://[fe80::1%25eth0]:80/s3cret",
			want: "egress: destination not allowed: http://[fe80::1%25eth0]:80 is a link-local address",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := p.CheckURL(t.Context(), tc.raw)
			if err == nil {
				t.Fatalf("CheckURL(%q) = nil, want %q", tc.raw, tc.want)
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("CheckURL(%q) message (-want +got):\n%s", tc.raw, diff)
			}
		})
	}
}

func TestCheckURLLookupFails(t *testing.T) {
	t.Parallel()
	// hang blocks until the lookup's context ends, like an unanswered query.
	hang := resolverFunc(func(ctx context.Context, _, _ string) ([]netip.Addr, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	tests := []struct {
		name     string
		resolver Resolver
		cancel   bool
		want     error
	}{
		{name: "no such host", resolver: staticResolver(nil)},
		{name: "timeout", resolver: hang},
		{name: "caller cancels", resolver: hang, cancel: true, want: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPolicy(t, Config{Resolver: tc.resolver, LookupTimeout: 10 * time.Millisecond})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			const raw = "https://slow.test/callback"
			if err := p.CheckURL(ctx, raw); !errors.Is(err, tc.want) {
				t.Errorf("CheckURL(%q) = %v, want %v", raw, err, tc.want)
			}
		})
	}
}

func BenchmarkCheckURL(b *testing.B) {
	p := newPolicy(b, Config{})
	for _, raw := range []string{
		"https://93.184.216.34:8443/callback?job=42",
		"https://[2606:4700::1111]/callback?job=42",
	} {
		b.Run(raw, func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if err := p.CheckURL(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
