package egress

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNonPublicReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		addr string
		want string // "" is public
	}{
		{name: "public v4", addr: "93.184.216.34"},
		{name: "public v6", addr: "2606:4700::1111"},
		{name: "below 10/8", addr: "9.255.255.255"},
		{name: "above 10/8", addr: "11.0.0.0"},
		{name: "below 172.16/12", addr: "172.15.255.255"},
		{name: "above 172.16/12", addr: "172.32.0.0"},
		{name: "above 192.168/16", addr: "192.169.0.0"},
		{name: "below 100.64/10", addr: "100.63.255.255"},
		{name: "above 100.64/10", addr: "100.128.0.0"},
		{name: "below 198.18/15", addr: "198.17.255.255"},
		{name: "above 198.18/15", addr: "198.20.0.0"},
		{name: "between 192.0.0/24 and 192.0.2/24", addr: "192.0.1.1"},
		{name: "below 169.254/16", addr: "169.253.255.255"},
		{name: "last unicast before multicast", addr: "223.255.255.255"},
		{name: "outside 2001:db8::/32", addr: "2001:db9::1"},
		{name: "mapped public", addr: "::ffff:93.184.216.34"},
		{name: "NAT64 of public", addr: "64:ff9b::808:808"},
		{name: "6to4 of public", addr: "2002:5db8:d822::1"},
		{name: "zero", addr: "0.0.0.0", want: "an unspecified address"},
		{name: "this network", addr: "0.255.255.255", want: `a "this network" address`},
		{name: "loopback top", addr: "127.255.255.255", want: "a loopback address"},
		{name: "private 172.31", addr: "172.31.255.255", want: "a private address"},
		{name: "AWS metadata", addr: "169.254.169.254", want: "a cloud metadata address"},
		{name: "Alibaba metadata", addr: "100.100.100.200", want: "a cloud metadata address"},
		{name: "AWS IPv6 metadata", addr: "fd00:ec2::254", want: "a cloud metadata address"},
		{name: "CGNAT top", addr: "100.127.255.255", want: "a shared (carrier-grade NAT) address"},
		{name: "IETF protocol assignments", addr: "192.0.0.170", want: "an IETF protocol assignment"},
		{name: "broadcast", addr: "255.255.255.255", want: "the broadcast address"},
		{name: "reserved", addr: "255.255.255.254", want: "a reserved address"},
		{name: "multicast v4", addr: "239.255.255.250", want: "a multicast address"},
		{name: "link-local v6 with zone", addr: "fe80::1%eth0", want: "a link-local address"},
		{name: "unique local top", addr: "fdff:ffff::1", want: "a private address"},
		{name: "documentation 3fff::/20", addr: "3fff:fff::1", want: "a documentation address"},
		{name: "mapped loopback", addr: "::ffff:127.0.0.1", want: "an IPv4-mapped form of 127.0.0.1, a loopback address"},
		{name: "compatible metadata", addr: "::a9fe:a9fe", want: "an IPv4-compatible form of 169.254.169.254, a cloud metadata address"},
		{name: "NAT64 private", addr: "64:ff9b::c0a8:101", want: "a NAT64 form of 192.168.1.1, a private address"},
		{name: "6to4 loopback", addr: "2002:7f00:1::", want: "a 6to4 form of 127.0.0.1, a loopback address"},
		{name: "v6 loopback is not compatible 0.0.0.1", addr: "::1", want: "a loopback address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, bad := nonPublicReason(netip.MustParseAddr(tc.addr))
			if bad != (tc.want != "") {
				t.Fatalf("nonPublicReason(%s) = %q, %v, want %q", tc.addr, got, bad, tc.want)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("nonPublicReason(%s) reason (-want +got):\n%s", tc.addr, diff)
			}
		})
	}
}

func TestParseLooseIPv4(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string // "" is not an address
	}{
		{name: "one decimal number", in: "2130706433", want: "127.0.0.1"},
		{name: "hex parts", in: "0x7f.1", want: "127.0.0.1"},
		{name: "one hex number", in: "0x7F000001", want: "127.0.0.1"},
		{name: "one octal number", in: "017700000001", want: "127.0.0.1"},
		{name: "octal first part", in: "0177.0.0.1", want: "127.0.0.1"},
		{name: "two parts", in: "127.1", want: "127.0.0.1"},
		{name: "three parts", in: "127.0.1", want: "127.0.0.1"},
		{name: "dotted decimal", in: "93.184.216.34", want: "93.184.216.34"},
		{name: "zero", in: "0", want: "0.0.0.0"},
		{name: "bare 0x", in: "0x", want: "0.0.0.0"},
		{name: "largest", in: "4294967295", want: "255.255.255.255"},
		{name: "largest last of two", in: "1.16777215", want: "1.255.255.255"},
		{name: "too large", in: "4294967296"},
		{name: "last of two too large", in: "1.16777216"},
		{name: "part too large", in: "256.1"},
		{name: "five parts", in: "1.2.3.4.5"},
		{name: "bad octal", in: "08"},
		{name: "bad hex", in: "0x1g"},
		{name: "empty", in: ""},
		{name: "empty part", in: "1..2"},
		{name: "sign", in: "+1"},
		{name: "name", in: "a.b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, ok := parseLooseIPv4(tc.in)
			got := ""
			if ok {
				got = a.String()
			}
			if got != tc.want {
				t.Errorf("parseLooseIPv4(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
