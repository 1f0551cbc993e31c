package egress

import (
	"net/netip"
	"strconv"
	"strings"
)

// addrRange is a range of addresses no client-supplied URL may reach,
// with what finishes the sentences "host is …" and "resolves to addr, …".
type addrRange struct {
	prefix netip.Prefix
	what   string
}

// nonPublic is every range that is not public. The first match names the
// reason, so specific entries come before the ranges that contain them.
var nonPublic = []addrRange{
	// Cloud metadata services: AWS, GCP, Azure, OCI (169.254.169.254),
	// Alibaba (100.100.100.200), AWS over IPv6 (fd00:ec2::254).
	{netip.MustParsePrefix("169.254.169.254/32"), "a cloud metadata address"},
	{netip.MustParsePrefix("100.100.100.200/32"), "a cloud metadata address"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata address"},

	{netip.MustParsePrefix("0.0.0.0/32"), "an unspecified address"},
	{netip.MustParsePrefix("0.0.0.0/8"), `a "this network" address`},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the broadcast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},

	{netip.MustParsePrefix("::/128"), "an unspecified address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("fc00::/7"), "a private address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	{netip.MustParsePrefix("100::/64"), "a discard-only address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local-use NAT64 address"},
	{netip.MustParsePrefix("2001:2::/48"), "a benchmarking address"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
	{netip.MustParsePrefix("3fff::/20"), "a documentation address"},
}

// v4Embedding is an IPv6 range whose addresses carry an IPv4 address in
// bytes at..at+3. Such an address is as public as the IPv4 one it carries:
// the kernel, a NAT64 gateway or a 6to4 relay turns it into that address.
type v4Embedding struct {
	prefix netip.Prefix
	form   string
	at     int
}

var v4Embeddings = []v4Embedding{
	{netip.MustParsePrefix("::ffff:0:0/96"), "an IPv4-mapped", 12},
	{netip.MustParsePrefix("::/96"), "an IPv4-compatible", 12},
	{netip.MustParsePrefix("64:ff9b::/96"), "a NAT64", 12},
	{netip.MustParsePrefix("2002::/16"), "a 6to4", 2},
}

// nonPublicReason reports whether a is not public and, if so, what it is,
// phrased to follow "is" ("a loopback address").
func nonPublicReason(a netip.Addr) (string, bool) {
	a = a.WithZone("")
	for _, r := range nonPublic {
		if r.prefix.Contains(a) {
			return r.what, true
		}
	}
	for _, e := range v4Embeddings {
		if !e.prefix.Contains(a) {
			continue
		}
		b := a.As16()
		v4 := netip.AddrFrom4([4]byte(b[e.at : e.at+4]))
		if what, bad := nonPublicReason(v4); bad {
			return e.form + " form of " + v4.String() + ", " + what, true
		}
		return "", false
	}
	return "", false
}

// endsInNumber reports whether the last label of host is a number, which
// makes URL parsers and inet_aton read the whole host as an IPv4 address
// (the WHATWG URL standard's "ends in a number").
func endsInNumber(host string) bool {
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if strings.Trim(last, "0123456789") == "" {
		return true
	}
	_, ok := parseLooseIPv4Part(last)
	return ok
}

// parseLooseIPv4 parses the IPv4 notations inet_aton and browsers accept
// but netip rejects: one to four parts, each decimal, octal (leading 0)
// or hexadecimal (0x), the last filling the remaining bytes. With glibc's
// resolver, Go dials "2130706433", "0x7f.1" and "127.1" as 127.0.0.1.
func parseLooseIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, p := range parts {
		n, ok := parseLooseIPv4Part(p)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 0xff {
				return netip.Addr{}, false
			}
			b[i] = byte(n)
			continue
		}
		if rest := 4 - i; rest < 4 && n >= 1<<(8*rest) {
			return netip.Addr{}, false
		}
		for j := 3; j >= i; j-- {
			b[j] = byte(n)
			n >>= 8
		}
	}
	return netip.AddrFrom4(b), true
}

func parseLooseIPv4Part(p string) (uint64, bool) {
	base := 10
	switch {
	case len(p) >= 2 && (p[:2] == "0x" || p[:2] == "0X"):
		p, base = p[2:], 16
		if p == "" {
			return 0, true
		}
	case len(p) > 1 && p[0] == '0':
		p, base = p[1:], 8
	}
	n, err := strconv.ParseUint(p, base, 32)
	return n, err == nil
}

// hostNameReasons are names refused without resolving them, because they
// name this machine or a metadata service wherever they are resolved.
var hostNameReasons = map[string]string{
	"localhost":                "is a loopback host name",
	"localhost.localdomain":    "is a loopback host name",
	"ip6-localhost":            "is a loopback host name",
	"ip6-loopback":             "is a loopback host name",
	"metadata.google.internal": "is a cloud metadata host name",
	"metadata":                 "is a cloud metadata host name",
}

// hostNameReason returns why the lowercase host name must not be reached
// whatever it resolves to, or "" if it may be resolved and checked.
func hostNameReason(name string) string {
	if why, ok := hostNameReasons[name]; ok {
		return why
	}
	if strings.HasSuffix(name, ".localhost") {
		return "is a loopback host name"
	}
	return ""
}

// validHostName reports whether name, lowercase and without a trailing
// dot, is an ASCII DNS name: labels of letters, digits, '-' and '_', each
// 1 to 63 bytes, 253 bytes in all.
func validHostName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := range len(label) {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
